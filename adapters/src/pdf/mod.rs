//! The PDFs the portal offers: a signed document's copy and its signature
//! certificate (with the evidence as an embedded `evidence.json`), an invoice, a quote
//! (with its signature once accepted) and an order confirmation.
//!
//! Pure functions from engine records to bytes: no store, no clock, no I/O. Written
//! with krilla (pure Rust, fonts embedded and subset per file) in DejaVu Sans, which is
//! compiled into the binary, so umlauts, ß and most European scripts come out right on
//! every reader. Times are shown in the vendor's time zone (`PdfSettings::timezone`).

mod layout;
mod texts;

#[cfg(test)]
mod tests;

use std::io::Cursor;

use base64::Engine as _;
use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use krilla::embed::{AssociationKind, EmbeddedFile, MimeType};
use krilla::image::Image;
use krilla::metadata::Metadata;
use serde_json::Value;

use kontor_engine::model::Locale;
use kontor_engine::records::commercial::{format_money, Line};
use kontor_engine::records::document::{Document, Evidence, FieldType};
use kontor_engine::records::invoice::Invoice;
use kontor_engine::records::order::{Order, OrderStatus};
use kontor_engine::records::quote::Quote;

use crate::http::record_wire::EvidenceJson;
use layout::{Align, Column, Flow, Fonts, Footer, Style};
use texts::{texts, Texts};

/// How a PDF is worded and dated.
#[derive(Debug, Clone)]
pub struct PdfSettings {
    /// The reader's language.
    pub locale: Locale,
    /// The vendor's time zone (`display_timezone`): every time is shown in it.
    pub timezone: Tz,
    /// The vendor's name, at the top of the first page and in every footer.
    pub vendor_name: String,
}

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// The signed copy and the certificate exist only once a document is signed.
    #[error("{record} is not signed yet")]
    NotSigned { record: String },
    #[error("the built-in font {0} cannot be read")]
    Font(&'static str),
    #[error("the layout failed: {0}")]
    Layout(&'static str),
    #[error("the evidence cannot be written as JSON: {0}")]
    Evidence(#[from] serde_json::Error),
    #[error("the PDF cannot be written: {0}")]
    Write(String),
}

/// The name of the evidence inside the certificate (`pdfdetach -saveall`).
pub const EVIDENCE_FILE_NAME: &str = "evidence.json";

/// The signed copy of a document: its title and text, every field with its value, the
/// signature (the drawn image, or the typed name), who signed and when, and the
/// SHA-256 that binds it. A document not signed yet is [`PdfError::NotSigned`].
pub fn signed_document_pdf(
    document: &Document,
    settings: &PdfSettings,
) -> Result<Vec<u8>, PdfError> {
    let (signer, signed_at, sha256) = signature_of(document)?;
    let words = texts(settings.locale);
    let mut flow = start(settings)?;
    flow.title(&document.title);
    flow.paragraph(
        &format!("{} · {}", words.signed_document, document.id),
        Style::MUTED,
    );
    flow.rule();
    flow.text_block(&kontor_engine::intake::text::html_to_text(
        &document.body_html,
    ));

    let form_fields: Vec<_> = document
        .fields
        .iter()
        .filter(|field| field.field_type != FieldType::Signature)
        .collect();
    if !form_fields.is_empty() {
        flow.heading(words.fields);
        for field in form_fields {
            let value = document.values.get(&field.name).map(String::as_str);
            let shown = field_value(field.field_type, value, settings.locale, words);
            flow.pair(&field.label, &shown, Style::BODY);
        }
    }

    flow.heading(words.signature);
    let signature_field = document
        .fields
        .iter()
        .find(|field| field.field_type == FieldType::Signature);
    if let Some(field) = signature_field {
        flow.paragraph(&field.label, Style::MUTED);
        let value = document.values.get(&field.name).map_or("", String::as_str);
        signature_block(&mut flow, value, words);
    }
    flow.rule();
    signed_lines(
        &mut flow,
        settings,
        &format!("{} <{}>", signer.name, signer.email),
        signed_at,
        Some(sha256),
    );

    let label = format!("{} · {}", words.signed_document, document.id);
    finish(flow, settings, &document.title, &label, None)
}

/// The signature certificate of a signed document: the signer (name, email, IP, user
/// agent), the time, the SHA-256, the history chain (each entry's time, kind and
/// hash), and the evidence, the same JSON as `GET /api/v1/documents/{id}/evidence`,
/// as the embedded file [`EVIDENCE_FILE_NAME`].
pub fn certificate_pdf(
    document: &Document,
    evidence: &Evidence,
    settings: &PdfSettings,
) -> Result<Vec<u8>, PdfError> {
    let (signer, signed_at, sha256) = signature_of(document)?;
    let words = texts(settings.locale);
    let mut flow = start(settings)?;
    flow.title(words.certificate);
    flow.paragraph(&document.title, Style::MUTED);
    flow.rule();

    flow.heading(words.document);
    flow.pair(words.title, &document.title, Style::BODY);
    flow.pair(words.record_id, &document.id.to_string(), Style::BODY);
    flow.pair(words.sha256, sha256, Style::SMALL);

    flow.heading(words.signer);
    flow.pair(words.name, &signer.name, Style::BODY);
    flow.pair(words.email, &signer.email, Style::BODY);
    flow.pair(words.ip_address, &signer.ip, Style::BODY);
    flow.pair(words.user_agent, &signer.user_agent, Style::SMALL);

    flow.heading(words.time);
    flow.pair(
        words.signed_at,
        &format_exact_time(signed_at, settings.locale, settings.timezone),
        Style::BODY,
    );
    let signed_at_utc = evidence
        .inputs
        .get("signed_at")
        .and_then(Value::as_str)
        .map_or_else(|| signed_at.to_rfc3339(), str::to_string);
    flow.pair(words.time_utc, &signed_at_utc, Style::BODY);

    flow.heading(words.how_to_check);
    flow.paragraph(words.check_explained, Style::BODY);

    flow.heading(words.history);
    let rows: Vec<Vec<String>> = evidence
        .history
        .iter()
        .map(|entry| history_row(entry, settings, words))
        .collect();
    flow.table(
        &[
            Column {
                width: Some(112.0),
                align: Align::Left,
                style: Style::BODY,
            },
            Column {
                width: Some(92.0),
                align: Align::Left,
                style: Style::BODY,
            },
            Column {
                width: None,
                align: Align::Left,
                style: Style::SMALL,
            },
        ],
        &[
            words.history_time.to_string(),
            words.history_entry.to_string(),
            words.history_hash.to_string(),
        ],
        &rows,
    );

    let json = evidence_json(document, evidence)?;
    let attachment = EmbeddedFile {
        path: EVIDENCE_FILE_NAME.to_string(),
        mime_type: MimeType::new("application/json"),
        description: Some(words.evidence_description.to_string()),
        association_kind: AssociationKind::Supplement,
        data: json.into(),
        modification_date: Some(pdf_date(signed_at)),
        compress: None,
        location: None,
    };
    let label = format!("{} · {}", words.certificate, document.id);
    finish(flow, settings, words.certificate, &label, Some(attachment))
}

/// The evidence exactly as `GET /api/v1/documents/{id}/evidence` answers it.
pub fn evidence_json(document: &Document, evidence: &Evidence) -> Result<Vec<u8>, PdfError> {
    let wire = EvidenceJson::new(document.id, evidence.clone());
    Ok(serde_json::to_vec(&wire)?)
}

/// An invoice: number, customer, issue and due date, status, the lines (description,
/// quantity, unit price, line total) and the total.
pub fn invoice_pdf(
    invoice: &Invoice,
    company_name: &str,
    settings: &PdfSettings,
) -> Result<Vec<u8>, PdfError> {
    let words = texts(settings.locale);
    let locale = settings.locale;
    let mut flow = start(settings)?;
    let title = format!("{} {}", words.invoice, invoice.number);
    flow.title(&title);
    flow.rule();
    flow.pair(words.invoice_number, &invoice.number, Style::BODY);
    flow.pair(words.customer, company_name, Style::BODY);
    flow.pair(
        words.issued_on,
        &format_date(invoice.issued_on, locale),
        Style::BODY,
    );
    flow.pair(
        words.due_date,
        &format_date(invoice.due_date, locale),
        Style::BODY,
    );
    flow.pair(
        words.status,
        invoice.status.display_name(locale),
        Style::BODY,
    );
    if let Some(paid_at) = invoice.paid_at {
        flow.pair(
            words.paid_at,
            &format_time(paid_at, locale, settings.timezone),
            Style::BODY,
        );
    }
    if let Some(order_id) = invoice.order_id {
        flow.pair(words.order, &order_id.to_string(), Style::BODY);
    }
    flow.space(8.0);
    lines_table(
        &mut flow,
        &invoice.lines,
        &invoice.currency,
        invoice.total_cents,
        locale,
    );
    finish(flow, settings, &title, &title, None)
}

/// A quote: its lines and total, how long it is valid, its status, and once accepted
/// the signature, who signed, when, and the SHA-256 that binds it.
pub fn quote_pdf(
    quote: &Quote,
    company_name: &str,
    settings: &PdfSettings,
) -> Result<Vec<u8>, PdfError> {
    let words = texts(settings.locale);
    let locale = settings.locale;
    let mut flow = start(settings)?;
    flow.title(&quote.title);
    flow.paragraph(&format!("{} · {}", words.quote, quote.id), Style::MUTED);
    flow.rule();
    flow.pair(words.customer, company_name, Style::BODY);
    flow.pair(
        words.valid_until,
        &format_date(quote.valid_until, locale),
        Style::BODY,
    );
    flow.pair(words.status, quote.status.display_name(locale), Style::BODY);
    if let Some(reason) = &quote.decline_reason {
        flow.pair(words.decline_reason, reason, Style::BODY);
    }
    if let Some(reason) = &quote.cancel_reason {
        flow.pair(words.cancel_reason, reason, Style::BODY);
    }
    if let Some(order_id) = quote.order_id {
        flow.pair(words.order, &order_id.to_string(), Style::BODY);
    }
    flow.space(8.0);
    lines_table(
        &mut flow,
        &quote.lines,
        &quote.currency,
        quote.total_cents,
        locale,
    );
    if let (Some(signature), Some(signed_at)) = (&quote.signature, quote.signed_at) {
        flow.heading(words.signature);
        signature_block(&mut flow, signature, words);
        flow.rule();
        let signed_by = match &quote.signer {
            Some(signer) => format!("{} <{}>", signer.name, signer.email),
            None => quote.signed_by.clone().unwrap_or_default(),
        };
        signed_lines(
            &mut flow,
            settings,
            &signed_by,
            signed_at,
            quote.sha256.as_deref(),
        );
    }
    let label = format!("{} · {}", words.quote, quote.id);
    finish(flow, settings, &quote.title, &label, None)
}

/// An order confirmation: the lines and total, who signed the quote and when, the
/// SHA-256 of the signed quote, and a cancellation's reason.
pub fn order_pdf(
    order: &Order,
    company_name: &str,
    settings: &PdfSettings,
) -> Result<Vec<u8>, PdfError> {
    let words = texts(settings.locale);
    let locale = settings.locale;
    let mut flow = start(settings)?;
    flow.title(&format!("{}: {}", words.order_confirmation, order.title));
    flow.paragraph(&format!("{} · {}", words.order, order.id), Style::MUTED);
    flow.rule();
    flow.pair(words.customer, company_name, Style::BODY);
    flow.pair(words.quote, &order.quote_id.to_string(), Style::BODY);
    flow.pair(words.status, order.status.display_name(locale), Style::BODY);
    if order.status == OrderStatus::Cancelled {
        if let Some(reason) = &order.cancel_reason {
            flow.pair(words.cancel_reason, reason, Style::BODY);
        }
    }
    signed_lines(
        &mut flow,
        settings,
        &order.signed_by,
        order.signed_at,
        Some(&order.sha256),
    );
    flow.space(8.0);
    lines_table(
        &mut flow,
        &order.lines,
        &order.currency,
        order.total_cents,
        locale,
    );
    let label = format!("{} · {}", words.order_confirmation, order.id);
    finish(flow, settings, &order.title, &label, None)
}

/// A time as people read it: `30.11.2026, 14:05` (de) or `30 Nov 2026, 14:05` (en),
/// in `timezone`.
pub fn format_time(at: DateTime<Utc>, locale: Locale, timezone: Tz) -> String {
    let local = at.with_timezone(&timezone);
    format!(
        "{}, {:02}:{:02}",
        format_date(local.date_naive(), locale),
        local.hour(),
        local.minute()
    )
}

/// A date as people read it: `30.11.2026` (de) or `30 Nov 2026` (en).
pub fn format_date(date: NaiveDate, locale: Locale) -> String {
    match locale {
        Locale::De => format!("{:02}.{:02}.{}", date.day(), date.month(), date.year()),
        Locale::En => date.format("%-d %b %Y").to_string(),
    }
}

/// A time to the second with the zone's name, for the certificate:
/// `30.11.2026, 14:05:09 CET (Europe/Berlin)`.
fn format_exact_time(at: DateTime<Utc>, locale: Locale, timezone: Tz) -> String {
    let local = at.with_timezone(&timezone);
    format!(
        "{}:{:02} {} ({})",
        format_time(at, locale, timezone),
        local.second(),
        local.format("%Z"),
        timezone.name()
    )
}

/// The signer, time and hash of a signed document, or `NotSigned`.
fn signature_of(
    document: &Document,
) -> Result<
    (
        &kontor_engine::records::document::Signer,
        DateTime<Utc>,
        &str,
    ),
    PdfError,
> {
    match (&document.signer, document.signed_at, &document.sha256) {
        (Some(signer), Some(signed_at), Some(sha256)) => Ok((signer, signed_at, sha256)),
        _ => Err(PdfError::NotSigned {
            record: document.id.to_string(),
        }),
    }
}

/// A flow with the vendor's name at the top of the first page.
fn start(settings: &PdfSettings) -> Result<Flow, PdfError> {
    let mut flow = Flow::new(Fonts::load()?);
    if !settings.vendor_name.trim().is_empty() {
        flow.paragraph(&settings.vendor_name, Style::MUTED);
    }
    Ok(flow)
}

/// Who signed, when, and the hash that binds it.
fn signed_lines(
    flow: &mut Flow,
    settings: &PdfSettings,
    signed_by: &str,
    signed_at: DateTime<Utc>,
    sha256: Option<&str>,
) {
    let words = texts(settings.locale);
    flow.pair(words.signed_by, signed_by, Style::BODY);
    flow.pair(
        words.signed_at,
        &format_time(signed_at, settings.locale, settings.timezone),
        Style::BODY,
    );
    if let Some(sha256) = sha256 {
        flow.pair(words.sha256, sha256, Style::SMALL);
    }
}

fn finish(
    flow: Flow,
    settings: &PdfSettings,
    title: &str,
    footer_label: &str,
    attachment: Option<EmbeddedFile>,
) -> Result<Vec<u8>, PdfError> {
    let words = texts(settings.locale);
    let left = if settings.vendor_name.trim().is_empty() {
        footer_label.to_string()
    } else {
        format!("{} · {}", settings.vendor_name, footer_label)
    };
    let page_of = |page: usize, pages: usize| format!("{} {page} {} {pages}", words.page, words.of);
    let footer = Footer {
        left: &left,
        page_of: &page_of,
    };
    let metadata = Metadata::new()
        .title(title.to_string())
        .language(settings.locale.as_str().to_string())
        .creator("Kontor".to_string());
    let (fonts, pages) = flow.finish();
    layout::render(&fonts, pages, &footer, metadata, attachment)
}

/// A field's value as shown: a date in the reader's form, a checkbox as a ticked or
/// empty box with yes or no, nothing as a dash.
fn field_value(
    field_type: FieldType,
    value: Option<&str>,
    locale: Locale,
    words: &Texts,
) -> String {
    let value = value.map(str::trim).unwrap_or("");
    match field_type {
        FieldType::Checkbox => {
            if matches!(value, "true" | "on" | "yes" | "1") {
                format!("☑ {}", words.yes)
            } else {
                format!("☐ {}", words.no)
            }
        }
        _ if value.is_empty() => words.empty.to_string(),
        FieldType::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d")
            .map_or_else(|_| value.to_string(), |date| format_date(date, locale)),
        FieldType::Text | FieldType::Signature => value.to_string(),
    }
}

/// What a signature field holds, ready to draw.
enum SignatureMark {
    Drawn(Image),
    Typed(String),
    Unreadable,
}

/// The largest signature image drawn, in pixels: a pad is a few hundred wide; a
/// bigger image would only cost memory (a small PNG can unpack to gigabytes).
const MAX_SIGNATURE_PIXELS: u64 = 4_000_000;

fn read_signature(value: &str) -> SignatureMark {
    const PNG_URL: &str = "data:image/png;base64,";
    let value = value.trim();
    let is_png_url = value
        .get(..PNG_URL.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(PNG_URL));
    if is_png_url {
        return decode_png(&value[PNG_URL.len()..])
            .map_or(SignatureMark::Unreadable, SignatureMark::Drawn);
    }
    if value.starts_with("data:") {
        return SignatureMark::Unreadable;
    }
    SignatureMark::Typed(value.to_string())
}

/// The PNG of a data URL, decoded once here so that a broken or oversized image is
/// found before krilla (which decodes while writing) would fail the whole PDF.
fn decode_png(base64_payload: &str) -> Option<Image> {
    let payload: String = base64_payload
        .chars()
        .filter(|ch| !ch.is_ascii_whitespace())
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()?;
    {
        // png's own limit (64 MiB allocated) holds too.
        let mut reader = png::Decoder::new(Cursor::new(bytes.as_slice()))
            .read_info()
            .ok()?;
        let info = reader.info();
        if u64::from(info.width) * u64::from(info.height) > MAX_SIGNATURE_PIXELS {
            return None;
        }
        let mut pixels = vec![0; reader.output_buffer_size()?];
        reader.next_frame(&mut pixels).ok()?;
    }
    Image::from_png(bytes.into(), true).ok()
}

fn signature_block(flow: &mut Flow, value: &str, words: &Texts) {
    match read_signature(value) {
        SignatureMark::Drawn(image) => flow.image(image, 240.0, 100.0),
        SignatureMark::Typed(name) => flow.paragraph(&name, Style::SIGNATURE),
        SignatureMark::Unreadable => flow.paragraph(words.signature_unreadable, Style::MUTED),
    }
}

fn lines_table(flow: &mut Flow, lines: &[Line], currency: &str, total_cents: i64, locale: Locale) {
    let words = texts(locale);
    let number = |align| Column {
        width: Some(88.0),
        align,
        style: Style::BODY,
    };
    let columns = [
        Column {
            width: None,
            align: Align::Left,
            style: Style::BODY,
        },
        Column {
            width: Some(60.0),
            align: Align::Right,
            style: Style::BODY,
        },
        number(Align::Right),
        number(Align::Right),
    ];
    let header = [
        words.description.to_string(),
        words.quantity.to_string(),
        words.unit_price.to_string(),
        words.amount.to_string(),
    ];
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|line| {
            vec![
                line.description.clone(),
                line.quantity.to_string(),
                format_money(line.unit_price_cents, currency, locale),
                format_money(line.total_cents(), currency, locale),
            ]
        })
        .collect();
    flow.table(&columns, &header, &rows);
    flow.rule();
    flow.right_aligned(
        &format!(
            "{}: {}",
            words.total,
            format_money(total_cents, currency, locale)
        ),
        Style::STRONG,
    );
}

/// One history entry of the evidence as the certificate lists it: time, kind, hash.
fn history_row(entry: &Value, settings: &PdfSettings, words: &Texts) -> Vec<String> {
    let time = entry
        .get("at")
        .and_then(Value::as_str)
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map_or_else(String::new, |at| {
            format_exact_time(at.with_timezone(&Utc), settings.locale, settings.timezone)
        });
    let body = entry.get("body");
    let kind = body
        .and_then(|body| body.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let event = body
        .and_then(|body| body.get("type"))
        .and_then(Value::as_str);
    let hash = entry
        .get("hash")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    vec![time, words.entry_kind(kind, event), hash]
}

/// krilla's date of the embedded file: the signing time in UTC.
fn pdf_date(at: DateTime<Utc>) -> krilla::metadata::DateTime {
    let year = u16::try_from(at.year()).unwrap_or(0);
    // Every field fits its type: chrono's month, day, hour, minute and second do.
    krilla::metadata::DateTime::new(year)
        .month(at.month() as u8)
        .day(at.day() as u8)
        .hour(at.hour() as u8)
        .minute(at.minute() as u8)
        .second(at.second() as u8)
        .utc_offset_hour(0)
        .utc_offset_minute(0)
}
