//! The PDFs read back with poppler (`pdftotext`, `pdfinfo`, `pdfimages`,
//! `pdfdetach`), as a person's reader or a third party would: text with umlauts, page
//! counts, the drawn signature, the embedded evidence. Records come from an
//! in-memory engine at a fixed clock, so they are what the portal would hand over.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use kontor_engine::clock::FixedClock;
use kontor_engine::ids::{CompanyId, ContactId, StaffId};
use kontor_engine::model::{CompanyKind, ContactRole, Locale};
use kontor_engine::ops::parties::{NewCompany, NewContact, NewStaff};
use kontor_engine::records::commercial::LineInput;
use kontor_engine::records::document::{Document, FieldInput, NewDocument, SignInput};
use kontor_engine::records::invoice::NewInvoice;
use kontor_engine::records::quote::{AcceptInput, NewQuote};
use kontor_engine::{Engine, EngineConfig};

use super::layout::{Fonts, Style};
use super::*;

const SIGNED_AT: &str = "2026-11-30T13:05:00Z";

struct Fixture {
    engine: Engine,
    company: CompanyId,
    contact: ContactId,
    staff: StaffId,
}

fn fixture() -> Fixture {
    let mut engine = Engine::in_memory(EngineConfig::default());
    let at = SIGNED_AT.parse().expect("a fixed time");
    engine.set_clock(Arc::new(FixedClock::new(at)));
    let company = engine
        .create_company(NewCompany {
            name: "Bäckerei Schmidt".into(),
            kind: CompanyKind::Customer,
            reseller_id: None,
            onretail_instance_ids: vec![],
        })
        .expect("company");
    let contact = engine
        .create_contact(NewContact {
            company_id: company.id,
            name: "Petra Schmidt".into(),
            email: "petra@example.org".into(),
            role: ContactRole::Manager,
            locale: None,
        })
        .expect("contact");
    let staff = engine
        .create_staff(NewStaff {
            name: "Sam".into(),
            email: "sam@vendor.example".into(),
        })
        .expect("staff");
    Fixture {
        engine,
        company: company.id,
        contact: contact.id,
        staff: staff.id,
    }
}

fn settings(locale: Locale) -> PdfSettings {
    PdfSettings {
        locale,
        timezone: chrono_tz::Europe::Berlin,
        vendor_name: "Kassensysteme Müller GmbH".into(),
    }
}

fn field(name: &str, label: &str, field_type: &str, required: bool) -> FieldInput {
    FieldInput {
        name: name.into(),
        label: label.into(),
        field_type: field_type.into(),
        required,
    }
}

/// A document sent and signed with `signature` (a data URL or a typed name).
fn signed_document(f: &Fixture, body_html: &str, signature: &str) -> Document {
    let document = f
        .engine
        .create_document(NewDocument {
            title: "Übergabe der Räume in der Königstraße".into(),
            company_id: f.company,
            signer_contact_id: f.contact,
            body_html: body_html.into(),
            fields: vec![
                field("meter", "Zählerstand", "text", true),
                field("handover", "Übergabetag", "date", true),
                field("keys", "Schlüssel erhalten", "checkbox", true),
                field("remarks", "Anmerkungen", "text", false),
                field("signature", "Unterschrift der Mieterin", "signature", true),
            ],
            valid_until: None,
            staff_id: Some(f.staff),
        })
        .expect("document");
    f.engine
        .send_document(document.id, Some(f.staff))
        .expect("sent");
    let values = BTreeMap::from([
        ("meter".to_string(), "004711 kWh".to_string()),
        ("handover".to_string(), "2026-12-01".to_string()),
        ("keys".to_string(), "on".to_string()),
        ("signature".to_string(), signature.to_string()),
    ]);
    f.engine
        .sign_document(
            document.id,
            SignInput {
                content_sha256: None,
                values,
                ip: "203.0.113.7".into(),
                user_agent: "Mozilla/5.0 (X11; Linux x86_64) Chromium/156.0".into(),
            },
        )
        .expect("signed")
}

/// A signature as a pad draws it: dark strokes on a transparent 300×100 canvas.
fn drawn_signature() -> String {
    let (width, height) = (300u32, 100u32);
    let mut pixels = vec![0u8; (width * height * 4) as usize];
    for x in 20..280u32 {
        let y = 50.0 + 30.0 * ((x as f32) / 25.0).sin();
        for dy in 0..3u32 {
            let row = (y as u32 + dy).min(height - 1);
            let at = ((row * width + x) * 4) as usize;
            pixels[at..at + 4].copy_from_slice(&[20, 30, 90, 255]);
        }
    }
    let mut png_bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("png header");
        writer.write_image_data(&pixels).expect("png data");
    }
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png_bytes)
    )
}

const BODY: &str = "<h1>Übergabeprotokoll</h1><p>Die Mieterin übernimmt die Räume \
    im Erdgeschoß mit allen Schlüsseln. Größere Mängel sind nicht bekannt.</p>\
    <ul><li>Küche: gereinigt</li><li>Bad: Fliesen über der Wanne gesprungen</li></ul>";

// ---- poppler ----

/// Whether poppler's tools run here; installs Debian's poppler-utils once when they
/// do not (CI installs it in `.ci/run` already).
fn poppler() -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        let runs = || {
            Command::new("pdftotext")
                .arg("-v")
                .output()
                .is_ok_and(|out| out.status.success())
        };
        if runs() {
            return true;
        }
        let _ = Command::new("apt-get")
            .args(["install", "-y", "-q", "poppler-utils"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output();
        if runs() {
            return true;
        }
        eprintln!("pdf tests: poppler-utils cannot be installed here, so only the bytes are checked, not what a reader shows");
        false
    })
}

/// A PDF written to a fresh directory, for poppler's tools.
struct PdfFile {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl PdfFile {
    fn new(bytes: &[u8]) -> Self {
        assert!(
            bytes.starts_with(b"%PDF-"),
            "not a PDF: {:?}",
            &bytes[..8.min(bytes.len())]
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("out.pdf");
        std::fs::write(&path, bytes).expect("write pdf");
        Self { dir, path }
    }

    /// The text poppler extracts, its runs of white space made single spaces.
    fn text(&self) -> String {
        self.text_of_pages(None)
    }

    fn text_of_page(&self, page: usize) -> String {
        self.text_of_pages(Some(page))
    }

    fn text_of_pages(&self, page: Option<usize>) -> String {
        let mut command = Command::new("pdftotext");
        if let Some(page) = page {
            command.args(["-f", &page.to_string(), "-l", &page.to_string()]);
        }
        let out = run(command.arg(&self.path).arg("-"));
        out.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn pages(&self) -> usize {
        let info = run(Command::new("pdfinfo").arg(&self.path));
        info.lines()
            .find_map(|line| line.strip_prefix("Pages:"))
            .and_then(|count| count.trim().parse().ok())
            .unwrap_or_else(|| panic!("no page count in:\n{info}"))
    }

    /// The images drawn (a transparent PNG's alpha is listed apart as an `smask`).
    fn images(&self) -> usize {
        let list = run(Command::new("pdfimages").arg("-list").arg(&self.path));
        list.lines()
            .skip(2)
            .filter(|line| line.split_whitespace().nth(2) == Some("image"))
            .count()
    }

    /// Every embedded file, saved with `pdfdetach -saveall`: name → bytes.
    fn attachments(&self) -> BTreeMap<String, Vec<u8>> {
        let out = self.dir.path().join("attachments");
        std::fs::create_dir_all(&out).expect("attachments dir");
        run(Command::new("pdfdetach")
            .arg("-saveall")
            .arg("-o")
            .arg(&out)
            .arg(&self.path));
        read_dir(&out)
    }
}

fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read attachments")
        .map(|entry| {
            let entry = entry.expect("entry");
            let bytes = std::fs::read(entry.path()).expect("read attachment");
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// The black-box suite's installer of missing test tools, shared so that these
/// tests too fetch poppler on a fresh machine.
/// (Only poppler is needed here; the other tools are the suite's.)
#[path = "../../../tests/it/tools.rs"]
#[allow(dead_code)]
mod tools;

fn run(command: &mut Command) -> String {
    tools::ensure(&tools::POPPLER).expect("poppler-utils");
    let out = command.output().expect("poppler runs");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_contains(text: &str, wanted: &[&str]) {
    for want in wanted {
        assert!(text.contains(want), "{want:?} is missing from:\n{text}");
    }
}

// ---- the signed copy ----

#[test]
fn the_signed_copy_shows_text_fields_drawn_signature_signer_time_and_hash() {
    let f = fixture();
    let document = signed_document(&f, BODY, &drawn_signature());
    let pdf = signed_document_pdf(&document, &settings(Locale::De)).expect("pdf");
    let file = PdfFile::new(&pdf);
    if !poppler() {
        return;
    }
    assert_eq!(file.pages(), 1);
    assert_eq!(file.images(), 1, "the drawn signature is an image");
    let sha256 = document.sha256.as_deref().expect("signed");
    assert_contains(
        &file.text(),
        &[
            "Kassensysteme Müller GmbH",
            "Übergabe der Räume in der Königstraße",
            "Signiertes Dokument",
            "Übergabeprotokoll",
            "im Erdgeschoß mit allen Schlüsseln. Größere Mängel",
            "- Bad: Fliesen über der Wanne gesprungen",
            "Zählerstand 004711 kWh",
            "Übergabetag 01.12.2026",
            "Schlüssel erhalten ☑ Ja",
            "Anmerkungen –",
            "Unterschrift der Mieterin",
            "Signiert von Petra Schmidt <petra@example.org>",
            "Signiert am 30.11.2026, 14:05",
            sha256,
            "Seite 1 von 1",
        ],
    );
}

#[test]
fn a_typed_signature_is_written_as_text_and_english_reads_english() {
    let f = fixture();
    let document = signed_document(&f, BODY, "Jörg Weiß");
    let pdf = signed_document_pdf(&document, &settings(Locale::En)).expect("pdf");
    let file = PdfFile::new(&pdf);
    if !poppler() {
        return;
    }
    assert_eq!(file.images(), 0);
    assert_contains(
        &file.text(),
        &[
            "Signed document",
            "Jörg Weiß",
            "Schlüssel erhalten ☑ Yes",
            "Übergabetag 1 Dec 2026",
            "Signed by Petra Schmidt <petra@example.org>",
            "Signed at 30 Nov 2026, 14:05",
            "Page 1 of 1",
        ],
    );
}

#[test]
fn a_long_document_breaks_across_pages_and_keeps_every_paragraph() {
    let f = fixture();
    let body: String = (1..=120)
        .map(|n| {
            format!(
                "<p>Absatz {n}: Der Mieter verpflichtet sich, die Räume pfleglich zu \
                 behandeln und Schäden unverzüglich zu melden (Nr. {n}).</p>"
            )
        })
        .collect();
    let document = signed_document(&f, &body, &drawn_signature());
    let pdf = signed_document_pdf(&document, &settings(Locale::De)).expect("pdf");
    let file = PdfFile::new(&pdf);
    if !poppler() {
        return;
    }
    let pages = file.pages();
    assert!(pages >= 3, "120 paragraphs on {pages} pages");
    let text = file.text();
    for n in [1, 60, 120] {
        assert_contains(&text, &[&format!("Absatz {n}: Der Mieter")]);
    }
    assert_contains(&text, &[&format!("Seite {pages} von {pages}")]);
    let last = file.text_of_page(pages);
    assert_contains(&last, &[document.sha256.as_deref().expect("signed")]);
    assert!(!file.text_of_page(1).contains("Absatz 120"));
    assert_eq!(file.images(), 1);
}

#[test]
fn an_unreadable_signature_image_still_gives_the_copy_with_a_notice() {
    let f = fixture();
    let document = signed_document(&f, BODY, "data:image/png;base64,bm90IGEgcG5n");
    let pdf = signed_document_pdf(&document, &settings(Locale::De)).expect("pdf");
    let file = PdfFile::new(&pdf);
    if !poppler() {
        return;
    }
    assert_eq!(file.images(), 0);
    assert_contains(
        &file.text(),
        &["Das Bild der Unterschrift ist nicht lesbar"],
    );
}

#[test]
fn an_unsigned_document_has_neither_copy_nor_certificate() {
    let f = fixture();
    let document = f
        .engine
        .create_document(NewDocument {
            title: "Entwurf".into(),
            company_id: f.company,
            signer_contact_id: f.contact,
            body_html: "<p>Text</p>".into(),
            fields: vec![field("signature", "Unterschrift", "signature", true)],
            valid_until: None,
            staff_id: None,
        })
        .expect("document");
    let settings = settings(Locale::De);
    assert!(matches!(
        signed_document_pdf(&document, &settings),
        Err(PdfError::NotSigned { .. })
    ));
    let evidence = Evidence {
        sha256: String::new(),
        inputs: Value::Null,
        history: vec![],
    };
    assert!(matches!(
        certificate_pdf(&document, &evidence, &settings),
        Err(PdfError::NotSigned { .. })
    ));
}

// ---- the certificate ----

#[test]
fn the_certificate_names_signer_and_chain_and_embeds_the_evidence_of_the_api() {
    let f = fixture();
    let document = signed_document(&f, BODY, &drawn_signature());
    let evidence = f.engine.document_evidence(document.id).expect("evidence");
    let pdf = certificate_pdf(&document, &evidence, &settings(Locale::De)).expect("pdf");
    let file = PdfFile::new(&pdf);
    if !poppler() {
        return;
    }
    assert_eq!(file.pages(), 1);
    let text = file.text();
    assert_contains(
        &text,
        &[
            "Signaturzertifikat",
            "Name Petra Schmidt",
            "E-Mail petra@example.org",
            "IP-Adresse 203.0.113.7",
            "Chromium/156.0",
            "30.11.2026, 14:05:00 CET (Europe/Berlin)",
            "2026-11-30T13:05:00.000Z",
            &evidence.sha256,
            "Versendet",
            "Signiert",
            "evidence.json",
        ],
    );
    assert!(evidence.history.len() >= 2, "sent and signed at least");
    for entry in &evidence.history {
        let hash = entry["hash"].as_str().expect("every entry has its hash");
        // The hash column wraps a hash onto two lines; its head stays on the first.
        assert_contains(&text, &[&hash[..32]]);
    }

    let attachments = file.attachments();
    let names: Vec<&String> = attachments.keys().collect();
    assert_eq!(names, [EVIDENCE_FILE_NAME]);
    let embedded = &attachments[EVIDENCE_FILE_NAME];
    let api =
        serde_json::to_vec(&EvidenceJson::new(document.id, evidence.clone())).expect("api json");
    assert_eq!(embedded, &api, "the same bytes as the API answers");
    let embedded: Value = serde_json::from_slice(embedded).expect("json");
    let inputs = &embedded["inputs"];
    let recomputed = kontor_engine::chain::sha256_hex(
        kontor_engine::chain::canonical_json_of(inputs).as_bytes(),
    );
    assert_eq!(embedded["sha256"], Value::String(recomputed));
    assert_eq!(
        embedded["history"].as_array().map(Vec::len),
        Some(evidence.history.len())
    );
}

#[test]
fn the_certificate_reads_english() {
    let f = fixture();
    let document = signed_document(&f, BODY, "Petra Schmidt");
    let evidence = f.engine.document_evidence(document.id).expect("evidence");
    let pdf = certificate_pdf(&document, &evidence, &settings(Locale::En)).expect("pdf");
    let file = PdfFile::new(&pdf);
    if !poppler() {
        return;
    }
    assert_contains(
        &file.text(),
        &[
            "Signature certificate",
            "IP address 203.0.113.7",
            "30 Nov 2026, 14:05:00 CET (Europe/Berlin)",
            "Sent",
            "Signed",
        ],
    );
}

// ---- invoices, quotes, orders ----

fn line(description: &str, quantity: i64, cents: i64) -> LineInput {
    LineInput {
        description: description.into(),
        quantity,
        unit_price_cents: cents,
    }
}

fn invoice(f: &Fixture, number: &str, lines: Vec<LineInput>) -> Invoice {
    f.engine
        .create_invoice(NewInvoice {
            company_id: f.company,
            contact_id: f.contact,
            number: number.into(),
            order_id: None,
            lines,
            currency: "EUR".into(),
            due_date: "2026-12-14".into(),
            staff_id: None,
        })
        .expect("invoice")
}

#[test]
fn an_invoice_lists_number_dates_lines_total_and_status_in_both_languages() {
    let f = fixture();
    let lines = vec![
        line("Kassensystem „Größe M“ mit Bondrucker", 2, 61_728),
        line("Einweisung vor Ort", 1, 12_000),
    ];
    let invoice = invoice(&f, "RE-2026-0042", lines);
    let german = PdfFile::new(
        &invoice_pdf(&invoice, "Bäckerei Schmidt", &settings(Locale::De)).expect("pdf"),
    );
    let english = PdfFile::new(
        &invoice_pdf(&invoice, "Bäckerei Schmidt", &settings(Locale::En)).expect("pdf"),
    );
    if !poppler() {
        return;
    }
    assert_eq!(german.pages(), 1);
    assert_contains(
        &german.text(),
        &[
            "Rechnung RE-2026-0042",
            "Kunde Bäckerei Schmidt",
            "Rechnungsdatum 30.11.2026",
            "Fällig am 14.12.2026",
            "Status Offen",
            "Beschreibung Menge Einzelpreis Betrag",
            "Kassensystem „Größe M“ mit Bondrucker 2 617,28 EUR 1.234,56 EUR",
            "Einweisung vor Ort 1 120,00 EUR 120,00 EUR",
            "Gesamt: 1.354,56 EUR",
        ],
    );
    assert_contains(
        &english.text(),
        &[
            "Invoice RE-2026-0042",
            "Invoice date 30 Nov 2026",
            "Due date 14 Dec 2026",
            "Status Open",
            "Description Quantity Unit price Amount",
            "1,234.56 EUR",
            "Total: 1,354.56 EUR",
        ],
    );
}

#[test]
fn an_invoice_of_many_lines_repeats_the_table_header_on_each_page() {
    let f = fixture();
    let lines: Vec<LineInput> = (1..=90)
        .map(|n| {
            line(
                &format!("Position {n}: Wartung Filiale Nürnberg"),
                1,
                1_000 * n,
            )
        })
        .collect();
    let invoice = invoice(&f, "RE-2026-0043", lines);
    let file = PdfFile::new(
        &invoice_pdf(&invoice, "Bäckerei Schmidt", &settings(Locale::De)).expect("pdf"),
    );
    if !poppler() {
        return;
    }
    let pages = file.pages();
    assert!(pages >= 2, "90 lines on {pages} page(s)");
    for page in 1..=pages {
        assert_contains(
            &file.text_of_page(page),
            &["Beschreibung Menge Einzelpreis Betrag"],
        );
    }
    assert_contains(
        &file.text_of_page(pages),
        &[
            "Position 90: Wartung Filiale Nürnberg",
            "Gesamt: 40.950,00 EUR",
        ],
    );
}

#[test]
fn an_accepted_quote_shows_its_signature_and_its_order_who_signed() {
    let f = fixture();
    let quote = f
        .engine
        .create_quote(NewQuote {
            company_id: f.company,
            contact_id: f.contact,
            title: "Zweite Kasse für die Filiale Fürth".into(),
            lines: vec![line("Kasse", 2, 1_000), line("Schublade", 1, 250)],
            currency: "EUR".into(),
            valid_until: "2026-12-31".into(),
            staff_id: Some(f.staff),
        })
        .expect("quote");
    let settings = settings(Locale::De);
    let open = PdfFile::new(&quote_pdf(&quote, "Bäckerei Schmidt", &settings).expect("pdf"));
    f.engine.send_quote(quote.id, None).expect("sent");
    let (quote, order) = f
        .engine
        .accept_quote(
            quote.id,
            AcceptInput {
                contact_id: f.contact,
                signature: drawn_signature(),
                ip: "203.0.113.7".into(),
                user_agent: "test".into(),
            },
        )
        .expect("accepted");
    let signed = PdfFile::new(&quote_pdf(&quote, "Bäckerei Schmidt", &settings).expect("pdf"));
    let confirmation =
        PdfFile::new(&order_pdf(&order, "Bäckerei Schmidt", &settings).expect("pdf"));
    if !poppler() {
        return;
    }
    assert_eq!(open.images(), 0);
    assert!(!open.text().contains("Signiert von"));
    assert_eq!(signed.images(), 1);
    let sha256 = quote.sha256.as_deref().expect("signed");
    assert_contains(
        &signed.text(),
        &[
            "Zweite Kasse für die Filiale Fürth",
            "Gültig bis 31.12.2026",
            "Status Angenommen",
            "Gesamt: 22,50 EUR",
            "Signiert von Petra Schmidt <petra@example.org>",
            "Signiert am 30.11.2026, 14:05",
            sha256,
        ],
    );
    assert_contains(
        &confirmation.text(),
        &[
            "Auftragsbestätigung: Zweite Kasse für die Filiale Fürth",
            "Status Bestätigt",
            "Signiert von Petra Schmidt",
            "Signiert am 30.11.2026, 14:05",
            sha256,
            "Gesamt: 22,50 EUR",
        ],
    );
}

// ---- layout ----

#[test]
fn wrapped_lines_fit_and_a_hash_breaks_inside_only_when_it_must() {
    let fonts = Fonts::load().expect("fonts");
    let text = "Größere Mängel sind nicht bekannt, die Schlüssel wurden übergeben. ".repeat(8);
    for line in fonts.wrap(&text, Style::BODY, 200.0) {
        assert!(
            fonts.width(&line, Style::BODY) <= 200.0,
            "{line:?} is too wide"
        );
        assert!(!line.starts_with(' ') && !line.ends_with(' '));
    }
    let hash = "ab".repeat(32);
    let pieces = fonts.wrap(&hash, Style::BODY, 100.0);
    assert!(pieces.len() > 1);
    assert_eq!(pieces.concat(), hash);
    assert_eq!(
        fonts.wrap(&hash, Style::SMALL, 400.0),
        std::slice::from_ref(&hash)
    );
    assert_eq!(fonts.wrap("", Style::BODY, 100.0), [""]);
}

#[test]
fn times_read_as_people_write_them_in_the_vendors_zone() {
    let winter: DateTime<Utc> = "2026-11-30T13:05:09Z".parse().expect("time");
    let summer: DateTime<Utc> = "2026-07-01T08:00:00Z".parse().expect("time");
    let berlin = chrono_tz::Europe::Berlin;
    assert_eq!(format_time(winter, Locale::De, berlin), "30.11.2026, 14:05");
    assert_eq!(format_time(summer, Locale::De, berlin), "01.07.2026, 10:00");
    assert_eq!(
        format_time(winter, Locale::En, berlin),
        "30 Nov 2026, 14:05"
    );
    assert_eq!(
        format_exact_time(winter, Locale::De, berlin),
        "30.11.2026, 14:05:09 CET (Europe/Berlin)"
    );
}
