//! Indexing and query benchmark on synthetic helpdesk history.
//!
//! `cargo bench --bench search`; SEARCH_BENCH_MESSAGES sets the number of
//! history messages (default 1,000,000), SEARCH_BENCH_QUERIES the number of
//! queries per category (default 1000).
//!
//! Text is drawn from a Zipf distribution over a German and an English
//! vocabulary (real frequent words, then synthetic but stemmable compounds),
//! so posting-list lengths resemble real text: a few words occur in nearly
//! every record, most in few.

use std::path::Path;
use std::time::{Duration, Instant};

use kontor_engine::search::{EntryDoc, IndexDoc, RecordKind, SearchIndex, SearchQuery, Viewer};

const COMPANIES: usize = 50;
const CONTACTS_PER_COMPANY: usize = 10;
/// Users search for content words, not "und"/"the".
const QUERY_SKIP_TOP_RANKS: usize = 20;

const DE_WORDS: &str = "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als auch es an werden aus er hat dass sie nach wird bei einer um am sind noch wie einem über einen so zum war haben nur oder aber vor zur bis mehr durch man sehr wir ich Sie Ihnen bitte danke Drucker Kasse Rechnung Bestellung Angebot Lieferung Fehler Problem Server Netzwerk Passwort Zugang Benutzer Konto Anmeldung Update Version Installation Lizenz Vertrag Kunde Kundin Termin Rückruf Anruf Nachricht Anhang Datei Dokument Bildschirm Tastatur Maus Laptop Rechner Software Hardware Drucken Papier Toner Scanner Etikett Kassenbon Beleg Zahlung Mahnung Gutschrift Stornierung Rücksendung Ersatzteil Techniker Einsatz Wartung Störung Ausfall Neustart Sicherung Datensicherung Datenbank Schnittstelle Filiale Lager Ware Artikel Preis Rabatt Mehrwertsteuer Betrag Summe Konto Überweisung Frist Woche Monat heute morgen gestern dringend sofort leider schnell langsam funktioniert funktioniert geht druckt startet meldet zeigt erscheint fehlt benötigt erhalten gesendet bestellt geliefert bezahlt geprüft erledigt offen geschlossen neu alt richtig falsch freundlichen Grüßen Grüße Gruß Hallo Herr Frau geehrte geehrter Damen Herren Team Support Service Hilfe Frage Anfrage Antwort Rückmeldung Information Hinweis Problembeschreibung Fehlermeldung Seite Zeile Feld Eingabe Ausgabe Menü Einstellung Konfiguration Verbindung Internet WLAN Router Telefon Handy Straße Hausnummer Adresse Postleitzahl Ort Büro Standort Abteilung Buchhaltung Vertrieb Einkauf Geschäftsführung Mitarbeiter Kollege Kollegin Kassensystem Kassenschublade Bondrucker Waage Barcode Kartenzahlung Terminal EC Kreditkarte Tagesabschluss Monatsabschluss Jahresabschluss Inventur Bestand Lieferschein Auftrag Auftragsbestätigung Abonnement Verlängerung Kündigung";
const EN_WORDS: &str = "the of and to a in is it you that he was for on are with as I his they be at one have this from or had by not but some what there we can out other were all your when up use word how said an each she which do their time if will way about many then them would write like so these her long make thing see him two has look more day could go come did my sound no most number who over know water than call first people may down side been now find please thanks hello regards best kind customer printer printers invoice order quote delivery error problem server network password access user account login update version installation license contract appointment callback call message attachment file document screen keyboard mouse laptop computer software hardware print paper toner scanner label receipt payment reminder credit cancellation return spare part technician visit maintenance outage failure restart backup database interface branch warehouse goods item price discount tax amount total transfer deadline week month today tomorrow yesterday urgent immediately unfortunately fast slow works working broken prints starts shows appears missing needs received sent ordered delivered paid checked done open closed new old right wrong team support service help question request answer feedback information note description page line field input output menu setting configuration connection internet wifi router phone mobile street address office location department accounting sales purchasing management employee colleague register drawer scale barcode card terminal closing inventory stock shipment confirmation subscription renewal termination jammed stuck offline online error code crash freeze install upgrade downgrade invoice number reference ticket issue issues request";

const DE_STEMS: &[&str] = &[
    "druck", "kass", "netz", "rechn", "serv", "liefer", "bestell", "zahl", "kund", "konfig",
    "anmeld", "sicher", "wart", "stör", "lager", "preis", "buch", "kart", "schnitt", "lizenz",
    "vertrag", "termin", "geräte", "daten", "waren", "filial", "abrech", "melde", "prüf",
    "einstell", "verbind", "zugangs", "benutz", "artikel", "beleg", "etikett", "scann", "bild",
    "tast", "fehl",
];
const DE_SUFFIXES: &[&str] = &[
    "er", "ung", "en", "e", "ern", "heit", "ungen", "system", "stelle", "daten", "nummer",
    "problem", "fehler", "modul", "dienst", "plan", "liste", "gerät", "konto", "schein", "bericht",
    "vorgang", "auftrag", "zentrale", "prozess",
];
const EN_STEMS: &[&str] = &[
    "print", "regist", "network", "bill", "serv", "deliver", "order", "pay", "custom", "config",
    "login", "back", "maint", "fail", "stor", "pric", "account", "card", "interfac", "licens",
    "contract", "schedul", "devic", "data", "good", "branch", "settl", "report", "check", "set",
    "connect", "access", "user", "item", "receipt", "label", "scan", "display", "key", "error",
];
const EN_SUFFIXES: &[&str] = &[
    "er", "ing", "ed", "s", "ers", "ment", "ments", "ation", "able", "ly", "system", "queue",
    "module", "service", "plan", "list", "device", "log", "form", "report", "process", "tool",
    "center", "desk", "flow",
];
const COMPANY_PREFIXES: &[&str] = &[
    "Café",
    "Bäckerei",
    "Autohaus",
    "Praxis",
    "Kanzlei",
    "Hotel",
    "Metzgerei",
    "Apotheke",
    "Buchhandlung",
    "Blumen",
];
const COMPANY_NAMES: &[&str] = &["Müller", "Schmidt", "Weiß", "Schäfer", "Becker"];
const STATUSES: &[(&str, u32)] = &[("open", 15), ("pending", 10), ("done", 45), ("closed", 30)];

/// splitmix64: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Vocab {
    words: Vec<String>,
    /// Cumulative Zipf weights (s = 1) for rank sampling.
    cdf: Vec<f64>,
}

impl Vocab {
    fn new(real: &str, stems: &[&str], suffixes: &[&str], capitalize: bool) -> Vocab {
        let mut words: Vec<String> = Vec::new();
        for w in real.split_whitespace() {
            if !words.iter().any(|x| x == w) {
                words.push(w.to_string());
            }
        }
        for s in suffixes {
            for stem in stems {
                let mut w = format!("{stem}{s}");
                if capitalize {
                    w = w[..1].to_uppercase() + &w[1..];
                }
                words.push(w);
            }
        }
        let mut cdf = Vec::with_capacity(words.len());
        let mut acc = 0.0;
        for rank in 0..words.len() {
            acc += 1.0 / (rank as f64 + 2.7);
            cdf.push(acc);
        }
        Vocab { words, cdf }
    }

    fn rank(&self, rng: &mut Rng, skip: usize) -> usize {
        let lo = if skip == 0 { 0.0 } else { self.cdf[skip - 1] };
        let total = *self.cdf.last().expect("non-empty");
        let x = lo + rng.unit() * (total - lo);
        self.cdf
            .partition_point(|&c| c < x)
            .min(self.words.len() - 1)
    }

    fn sentence(&self, rng: &mut Rng, n: usize, out: &mut String) {
        for i in 0..n {
            if i > 0 {
                out.push(if rng.below(12) == 0 { '.' } else { ' ' });
                if out.ends_with('.') {
                    out.push(' ');
                }
            }
            out.push_str(&self.words[self.rank(rng, 0)]);
        }
    }
}

struct Company {
    id: String,
    name: String,
    reseller: Option<usize>,
}

struct Gen {
    rng: Rng,
    de: Vocab,
    en: Vocab,
    companies: Vec<Company>,
    next_record: u64,
}

impl Gen {
    fn new() -> Gen {
        let companies = (0..COMPANIES)
            .map(|i| Company {
                id: format!("company-{i}"),
                name: format!(
                    "{} {}",
                    COMPANY_PREFIXES[i % COMPANY_PREFIXES.len()],
                    COMPANY_NAMES[i / COMPANY_PREFIXES.len() % COMPANY_NAMES.len()],
                ),
                // Companies 0..5 resell; 20 others are their customers.
                reseller: (5..25).contains(&i).then_some(i % 5),
            })
            .collect();
        Gen {
            rng: Rng(42),
            de: Vocab::new(DE_WORDS, DE_STEMS, DE_SUFFIXES, true),
            en: Vocab::new(EN_WORDS, EN_STEMS, EN_SUFFIXES, false),
            companies,
            next_record: 0,
        }
    }

    fn record(&mut self, messages: usize) -> IndexDoc {
        let id = self.next_record;
        self.next_record += 1;
        let rng = &mut self.rng;
        let german = rng.below(10) < 7;
        let vocab = if german { &self.de } else { &self.en };
        let co = rng.below(COMPANIES);
        let company = &self.companies[co];
        let requester = rng.below(CONTACTS_PER_COMPANY);
        let mut contact_ids = vec![format!("{}-contact-{requester}", company.id)];
        if rng.below(5) == 0 {
            contact_ids.push(format!(
                "{}-contact-{}",
                company.id,
                rng.below(CONTACTS_PER_COMPANY)
            ));
        }
        let mut title = String::new();
        let title_len = rng.range(3, 8);
        for i in 0..title_len {
            if i > 0 {
                title.push(' ');
            }
            title.push_str(&vocab.words[vocab.rank(rng, QUERY_SKIP_TOP_RANKS)]);
        }
        let created = 1_600_000_000 + rng.below(150_000_000) as i64;
        let mut entries = Vec::with_capacity(messages);
        for m in 0..messages {
            let mut text = String::with_capacity(1024);
            let n = rng.range(30, 150);
            vocab.sentence(rng, n, &mut text);
            let attachment_names = if rng.below(10) == 0 {
                vec![format!("scan_{id}_{m}.pdf")]
            } else {
                Vec::new()
            };
            entries.push(EntryDoc {
                entry_id: format!("{id}-{m}"),
                text,
                internal: m > 0 && rng.below(5) == 0,
                attachment_names,
                at: created + m as i64 * 3600,
            });
        }
        let mut roll = rng.below(100) as u32;
        let status = STATUSES
            .iter()
            .find(|(_, w)| {
                let hit = roll < *w;
                roll = roll.saturating_sub(*w);
                hit
            })
            .map_or("open", |(s, _)| s);
        IndexDoc {
            kind: if rng.below(10) < 8 {
                RecordKind::Ticket
            } else {
                RecordKind::RECORDS[rng.range(1, 5)]
            },
            record_id: format!("rec-{id}"),
            number: Some(10_000 + id),
            title,
            entries,
            requester: format!(
                "Kontakt {requester} kontakt{requester}@{}.example",
                company.id
            ),
            company_id: Some(company.id.clone()),
            company_name: Some(company.name.clone()),
            reseller_id: company.reseller.map(|r| self.companies[r].id.clone()),
            // A ticket's audience, as `access::audience_tokens` gives it.
            audience: contact_ids
                .iter()
                .map(|c| format!("c:{c}"))
                .chain(std::iter::once(format!("m:{}", company.id)))
                .chain(
                    company
                        .reseller
                        .map(|r| format!("r:{}", self.companies[r].id)),
                )
                .collect(),
            status: status.to_string(),
            created_at: created,
            updated_at: created + messages as i64 * 3600,
            locale: if german { "de" } else { "en" }.to_string(),
        }
    }

    fn query_word(&mut self) -> String {
        let vocab = if self.rng.below(10) < 7 {
            &self.de
        } else {
            &self.en
        };
        vocab.words[vocab.rank(&mut self.rng, QUERY_SKIP_TOP_RANKS)].clone()
    }

    /// Two adjacent words from a fresh message, so the phrase usually occurs
    /// in the corpus; at least one of them is a content word.
    fn query_phrase(&mut self) -> String {
        let vocab = if self.rng.below(10) < 7 {
            &self.de
        } else {
            &self.en
        };
        loop {
            let a = vocab.rank(&mut self.rng, 0);
            let b = vocab.rank(&mut self.rng, 0);
            if a.max(b) >= QUERY_SKIP_TOP_RANKS {
                return format!("\"{} {}\"", vocab.words[a], vocab.words[b]);
            }
        }
    }

    fn query_filter(&mut self, i: usize) -> String {
        let co = self.rng.below(COMPANIES);
        let status = STATUSES[self.rng.below(STATUSES.len())].0;
        let word = self.query_word();
        let company = &self.companies[co];
        match i % 4 {
            0 => format!("status:{status}"),
            1 => format!("company:\"{}\"", company.name),
            2 => format!("{word} status:{status}"),
            _ => format!("company:{} {word}", company.id),
        }
    }

    fn contact(&mut self) -> Viewer {
        let co = self.rng.below(COMPANIES);
        // A manager's tokens, as `access::viewer_tokens` gives them.
        let mut audience = vec![
            format!(
                "c:company-{co}-contact-{}",
                self.rng.below(CONTACTS_PER_COMPANY)
            ),
            format!("m:company-{co}"),
        ];
        if co < 5 {
            audience.push(format!("r:company-{co}"));
        }
        Viewer::Contact { audience }
    }
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.replace('_', ""))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// `kontor reindex` over the same corpus: the records go into a real store (through
/// `Engine::import`, the fast bulk path), then `Engine::reindex` rebuilds the index
/// from the store, as the command does.
fn reindex_from_store(messages: usize) {
    use kontor_engine::ids::{HistoryId, TicketId};
    use kontor_engine::model::{
        Author, Channel, EntryBody, HistoryEntry, RecordRef, Requester, Ticket, TicketStatus,
        Visibility,
    };
    use std::io::Write;

    // SEARCH_BENCH_STORE_DIR keeps the store for a server to run on (the realmail
    // bench measures memory on it): so it also gets what the engine would have
    // written beside the records, the sequences, the chains' heads and the
    // status index.
    let temp = tempfile::tempdir().expect("temp dir");
    let kept = std::env::var_os("SEARCH_BENCH_STORE_DIR").map(std::path::PathBuf::from);
    let dir = kept.clone().unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("store dir");
    let engine = kontor_engine::Engine::open(&dir, kontor_engine::EngineConfig::default())
        .expect("engine (SEARCH_BENCH_STORE_DIR must be a new directory)");
    let dump_path = temp.path().join("dump.jsonl");
    let mut dump = std::io::BufWriter::new(std::fs::File::create(&dump_path).expect("dump"));
    let mut generator = Gen::new();
    let mut done = 0usize;
    let mut number = 0u64;
    let mut history_id = 10_000_000u64;
    let at = chrono::DateTime::UNIX_EPOCH;
    while done < messages {
        let n = generator.rng.range(3, 7).min(messages - done);
        let doc = generator.record(n);
        done += n;
        number += 1;
        let id = TicketId(number);
        let ticket = Ticket {
            id,
            number,
            subject: doc.title.clone(),
            status: if doc.status == "done" {
                TicketStatus::Done
            } else {
                TicketStatus::InProgress
            },
            channel: Channel::Email,
            company_id: None,
            requester: Requester {
                contact_id: None,
                name: Some(doc.requester.clone()),
                email: None,
            },
            assignee_id: None,
            created_at: at,
            updated_at: at,
            done_at: None,
            participants: vec![],
            linked_ticket_id: None,
            origin: None,
            waiting_since: None,
            reminded_at: None,
        };
        let line =
            serde_json::json!({"tree": "tickets", "key": hex::encode(id.key()), "value": ticket});
        writeln!(dump, "{line}").expect("write");
        // Each ticket's history is a chain, as the engine writes it: import checks.
        let mut prev_hash = kontor_engine::chain::GENESIS.to_string();
        for entry in &doc.entries {
            history_id += 1;
            let record = RecordRef::ticket(id);
            let mut entry = HistoryEntry {
                id: HistoryId(history_id),
                record,
                at,
                author: Author::System,
                visibility: if entry.internal {
                    Visibility::Internal
                } else {
                    Visibility::Public
                },
                body: EntryBody::Message {
                    text: entry.text.clone(),
                    attachments: vec![],
                    threaded_by: None,
                },
                prev_hash: String::new(),
                hash: String::new(),
            };
            kontor_engine::chain::seal(&prev_hash, &mut entry);
            prev_hash = entry.hash.clone();
            let mut key = record.key_prefix().to_vec();
            key.extend_from_slice(&entry.id.key());
            let line =
                serde_json::json!({"tree": "history", "key": hex::encode(key), "value": entry});
            writeln!(dump, "{line}").expect("write");
        }
        let record = RecordRef::ticket(id);
        let head = serde_json::json!({"hash": prev_hash, "entries": doc.entries.len()});
        let line = serde_json::json!({"tree": "history_heads", "key": hex::encode(record.key_prefix()), "value": head});
        writeln!(dump, "{line}").expect("write");
        let mut status_key = vec![ticket.status.code()];
        status_key.extend_from_slice(&id.key());
        let line = serde_json::json!({"tree": "tickets_by_status", "key": hex::encode(status_key), "bytes": ""});
        writeln!(dump, "{line}").expect("write");
    }
    use base64::Engine as _;
    for (name, value) in [
        ("seq.record_id", history_id + 1),
        ("seq.ticket_number", number),
    ] {
        let bytes = base64::engine::general_purpose::STANDARD.encode(value.to_be_bytes());
        let line = serde_json::json!({"tree": "meta", "key": hex::encode(name), "bytes": bytes});
        writeln!(dump, "{line}").expect("write");
    }
    drop(dump);
    let started = Instant::now();
    let file = std::fs::File::open(&dump_path).expect("dump");
    engine
        .import(&mut std::io::BufReader::new(file))
        .expect("import");
    println!(
        "stored {done} messages in {number} tickets (bulk import) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let records = engine.reindex(&mut |_, _| {}).expect("reindex");
    let elapsed = started.elapsed();
    println!(
        "reindex from the store: {records} tickets, {done} messages in {:.1} s ({:.0} messages/s); index {:.0} MB",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        dir_size(&dir.join("search")) as f64 / 1e6
    );
    if let Some(kept) = kept {
        println!("store kept in {}", kept.display());
    }
}

fn main() {
    // `cargo bench` passes "--bench"; ignore arguments.
    let messages = env_usize("SEARCH_BENCH_MESSAGES", 1_000_000);
    if env_usize("SEARCH_BENCH_REINDEX", 1) == 1 {
        reindex_from_store(messages);
    }
    let queries = env_usize("SEARCH_BENCH_QUERIES", 1000);
    let dir = tempfile::tempdir().expect("temp dir");
    // A bulk load, as `reindex` writes.
    let index = SearchIndex::open_for(dir.path(), kontor_engine::search::IndexWriting::Bulk)
        .expect("open index");
    let mut generator = Gen::new();

    println!("indexing {messages} messages in records of ~5 …");
    let start = Instant::now();
    let mut done = 0usize;
    let mut records = 0usize;
    let mut text_bytes = 0usize;
    let mut seq = 0u64;
    while done < messages {
        let n = generator.rng.range(3, 7).min(messages - done);
        let doc = generator.record(n);
        text_bytes += doc.entries.iter().map(|e| e.text.len()).sum::<usize>();
        index.upsert(&doc).expect("upsert");
        done += n;
        records += 1;
        seq += 1;
        // The engine commits per changelog batch; commit periodically too so
        // the measured rate includes commit cost.
        if records.is_multiple_of(50_000) {
            index.commit(seq).expect("commit");
            println!(
                "  {done} messages, {:.0} msg/s",
                done as f64 / start.elapsed().as_secs_f64()
            );
        }
    }
    index.commit(seq).expect("commit");
    let elapsed = start.elapsed();
    println!(
        "indexed {done} messages ({records} records, {:.0} MB text) in {:.1} s: {:.0} messages/s",
        text_bytes as f64 / 1e6,
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    println!(
        "index size on disk: {:.0} MB",
        dir_size(dir.path()) as f64 / 1e6
    );

    // Background merges started by the last commits compete with queries
    // for the two cores; SEARCH_BENCH_SETTLE_SECS lets them finish first to
    // tell the two effects apart.
    let settle = env_usize("SEARCH_BENCH_SETTLE_SECS", 0);
    if settle > 0 {
        println!("settling {settle} s …");
        std::thread::sleep(Duration::from_secs(settle as u64));
        println!(
            "index size on disk after settling: {:.0} MB",
            dir_size(dir.path()) as f64 / 1e6
        );
    }

    type MakeQuery = fn(&mut Gen, usize) -> String;
    let categories: [(&str, MakeQuery); 3] = [
        ("words", |g, _| g.query_word()),
        ("phrases", |g, _| g.query_phrase()),
        ("field filters", |g, i| g.query_filter(i)),
    ];
    println!(
        "{:<14} {:<8} {:>10} {:>10} {:>10} {:>12}",
        "queries", "viewer", "median ms", "p99 ms", "max ms", "mean total"
    );
    for (name, make) in categories {
        for staff in [false, true] {
            let mut times = Vec::with_capacity(queries);
            let mut totals = 0usize;
            for i in 0..queries {
                let viewer = if staff {
                    Viewer::Staff
                } else {
                    generator.contact()
                };
                let q = SearchQuery {
                    q: make(&mut generator, i),
                    kind: None,
                    limit: 10,
                    offset: 0,
                };
                let t = Instant::now();
                let res = index.search(&viewer, &q).expect("search");
                times.push(t.elapsed());
                totals += res.total;
            }
            times.sort();
            println!(
                "{:<14} {:<8} {:>10.2} {:>10.2} {:>10.2} {:>12.0}",
                name,
                if staff { "staff" } else { "contact" },
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.99).as_secs_f64() * 1e3,
                times.last().expect("queries > 0").as_secs_f64() * 1e3,
                totals as f64 / queries as f64
            );
        }
    }
}
