use std::collections::BTreeSet;

use super::*;

fn open() -> (tempfile::TempDir, SearchIndex) {
    let dir = tempfile::tempdir().unwrap();
    let index = SearchIndex::open(dir.path()).unwrap();
    (dir, index)
}

fn entry(id: &str, text: &str, internal: bool) -> EntryDoc {
    EntryDoc {
        entry_id: id.into(),
        text: text.into(),
        internal,
        attachment_names: Vec::new(),
        at: 1_700_000_000,
    }
}

fn doc(id: &str, title: &str, texts: &[&str]) -> IndexDoc {
    IndexDoc {
        kind: RecordKind::Ticket,
        record_id: id.into(),
        number: None,
        title: title.into(),
        entries: texts
            .iter()
            .enumerate()
            .map(|(i, t)| entry(&format!("{id}-{i}"), t, false))
            .collect(),
        requester: "Erika Mustermann erika@example.org".into(),
        company_id: Some("c1".into()),
        company_name: Some("Beispiel GmbH".into()),
        reseller_id: None,
        audience: tokens(&["p1".to_string()], Some("c1"), None),
        status: "open".into(),
        created_at: 1_700_000_000,
        updated_at: 1_700_000_000,
        locale: "de".into(),
    }
}

fn q(text: &str) -> SearchQuery {
    SearchQuery {
        q: text.into(),
        kind: None,
        limit: 100,
        offset: 0,
    }
}

fn ids(index: &SearchIndex, viewer: &Viewer, text: &str) -> Vec<String> {
    index
        .search(viewer, &q(text))
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// A ticket's audience as `access::audience_tokens` gives it: its contacts, the
/// managers of its company, those of its company's reseller.
fn tokens(contacts: &[String], company: Option<&str>, reseller: Option<&str>) -> Vec<String> {
    let mut tokens: Vec<String> = contacts.iter().map(|c| format!("c:{c}")).collect();
    tokens.extend(company.map(|c| format!("m:{c}")));
    tokens.extend(reseller.map(|r| format!("r:{r}")));
    tokens
}

/// A contact's tokens as `access::viewer_tokens` gives them.
fn contact(contact_id: &str, company_id: &str, sees_company: bool, reseller_of: bool) -> Viewer {
    let mut audience = vec![format!("c:{contact_id}")];
    if sees_company {
        audience.push(format!("m:{company_id}"));
        if reseller_of {
            audience.push(format!("r:{company_id}"));
        }
    }
    Viewer::Contact { audience }
}

#[test]
fn german_stemming_and_folding() {
    let (_d, index) = open();
    index
        .upsert(&doc("kasse", "Problem", &["Die Kasse startet nicht."]))
        .unwrap();
    index
        .upsert(&doc("ue", "Anfrage", &["Viele Gruesse aus der Strasse"]))
        .unwrap();
    index
        .upsert(&doc("u", "Anfrage", &["Beste Grusse"]))
        .unwrap();
    index
        .upsert(&doc(
            "umlaut",
            "Anfrage",
            &["Mit freundlichen Grüßen, Hauptstraße 5"],
        ))
        .unwrap();
    index.commit(1).unwrap();
    let staff = Viewer::Staff;
    assert_eq!(ids(&index, &staff, "Kassen"), vec!["kasse"]);
    assert_eq!(ids(&index, &staff, "KASSE"), vec!["kasse"]);
    assert_eq!(
        sorted(ids(&index, &staff, "Grüße")),
        vec!["u", "ue", "umlaut"]
    );
    assert_eq!(
        sorted(ids(&index, &staff, "grusse")),
        vec!["u", "ue", "umlaut"]
    );
    assert_eq!(ids(&index, &staff, "Straße"), vec!["ue"]);
    assert_eq!(ids(&index, &staff, "Hauptstrasse"), vec!["umlaut"]);
}

#[test]
fn english_stemming_regardless_of_locale() {
    let (_d, index) = open();
    // Locale claims German; the English analysis must still find it.
    index
        .upsert(&doc("p", "Help", &["Our printer is jammed again"]))
        .unwrap();
    index.commit(1).unwrap();
    assert_eq!(ids(&index, &Viewer::Staff, "printers"), vec!["p"]);
    assert_eq!(ids(&index, &Viewer::Staff, "jams"), vec!["p"]);
}

#[test]
fn phrases_on_stemmed_fields() {
    let (_d, index) = open();
    index
        .upsert(&doc("a", "Drucker", &["Der Drucker hat kein Papier mehr"]))
        .unwrap();
    index
        .upsert(&doc("b", "Drucker", &["Papier ist da, aber kein Toner"]))
        .unwrap();
    index
        .upsert(&doc("c", "Printers", &["All printers jammed at noon"]))
        .unwrap();
    // Words split over two entries must not form a phrase.
    index
        .upsert(&doc("d", "Other", &["Heute kein", "Papier geliefert"]))
        .unwrap();
    index.commit(1).unwrap();
    let staff = Viewer::Staff;
    assert_eq!(
        sorted(ids(&index, &staff, "kein Papier")),
        vec!["a", "b", "d"]
    );
    assert_eq!(ids(&index, &staff, "\"kein Papier\""), vec!["a"]);
    assert_eq!(ids(&index, &staff, "\"printer jams\""), vec!["c"]);
    assert!(ids(&index, &staff, "\"jammed printers\"").is_empty());
    let hit = &index.search(&staff, &q("\"kein Papier\"")).unwrap().hits[0];
    assert!(
        hit.snippet.contains("<b>kein</b> <b>Papier</b>"),
        "{}",
        hit.snippet
    );
}

#[test]
fn field_filters() {
    let (_d, index) = open();
    let mut a = doc("a", "Kasse", &["Bon fehlt"]);
    a.status = "Done".into();
    a.company_id = Some("cafe".into());
    a.company_name = Some("Café Müller".into());
    let mut b = doc("b", "Kasse", &["Bon fehlt"]);
    b.kind = RecordKind::Invoice;
    let mut c = doc("c", "Kasse", &["Bon fehlt"]);
    c.company_id = Some("mueller-bau".into());
    c.company_name = Some("Müller Bau AG".into());
    for d in [&a, &b, &c] {
        index.upsert(d).unwrap();
    }
    index.commit(1).unwrap();
    let staff = Viewer::Staff;
    assert_eq!(ids(&index, &staff, "status:done"), vec!["a"]);
    assert_eq!(ids(&index, &staff, "Kasse status:DONE"), vec!["a"]);
    assert_eq!(sorted(ids(&index, &staff, "status:open")), vec!["b", "c"]);
    assert_eq!(ids(&index, &staff, "kind:invoice"), vec!["b"]);
    assert_eq!(
        sorted(ids(&index, &staff, "kind:ticket bon")),
        vec!["a", "c"]
    );
    assert_eq!(ids(&index, &staff, "company:\"Café Müller\""), vec!["a"]);
    assert_eq!(ids(&index, &staff, "company:\"cafe mueller\""), vec!["a"]);
    assert_eq!(ids(&index, &staff, "company:mueller-bau"), vec!["c"]);
    assert_eq!(
        sorted(ids(&index, &staff, "company:Müller")),
        vec!["a", "c"]
    );
    // Two values of one field are alternatives.
    assert_eq!(
        sorted(ids(&index, &staff, "company:cafe company:mueller-bau")),
        vec!["a", "c"]
    );
    // The request's kind is ANDed with the query's.
    let mut req = q("kind:invoice");
    req.kind = Some(RecordKind::Ticket);
    assert_eq!(index.search(&staff, &req).unwrap().total, 0);
    req.kind = Some(RecordKind::Invoice);
    assert_eq!(index.search(&staff, &req).unwrap().total, 1);
    assert!(matches!(
        index.search(&staff, &q("\"Kasse")),
        Err(SearchError::InvalidQuery(_))
    ));
}

#[test]
fn filter_only_results_are_newest_first() {
    let (_d, index) = open();
    for (id, at) in [("old", 10), ("new", 30), ("mid", 20)] {
        let mut d = doc(id, "x", &["y"]);
        d.updated_at = at;
        index.upsert(&d).unwrap();
    }
    index.commit(1).unwrap();
    assert_eq!(
        ids(&index, &Viewer::Staff, "status:open"),
        vec!["new", "mid", "old"]
    );
    assert_eq!(ids(&index, &Viewer::Staff, ""), vec!["new", "mid", "old"]);
}

#[test]
fn subject_hit_ranks_above_body_hit() {
    let (_d, index) = open();
    index
        .upsert(&doc(
            "body",
            "Allgemeine Frage",
            &[
                "Der Scanner macht Ärger. Scanner neu gestartet, Scanner geht nicht.",
                "Noch eine Frage zum Netzwerk und den Rechnern im Büro",
            ],
        ))
        .unwrap();
    index
        .upsert(&doc(
            "title",
            "Scanner defekt",
            &["Seit heute früh geht nichts mehr, bitte um Rückruf wegen des Geräts im Lager"],
        ))
        .unwrap();
    index.commit(1).unwrap();
    let res = index.search(&Viewer::Staff, &q("scanner")).unwrap();
    assert_eq!(res.total, 2);
    assert_eq!(res.hits[0].id, "title");
    assert!(res.hits[0].score > res.hits[1].score);
}

#[test]
fn internal_notes_are_staff_only() {
    let (_d, index) = open();
    let mut d = doc("t", "Kasse", &["Kunde meldet Fehler an der Kasse"]);
    d.entries.push(entry(
        "n1",
        "Intern: Kunde zahlt schlecht, Geheimwort Zitronenfalter",
        true,
    ));
    d.entries
        .push(entry("n2", "Intern: Kasse wird ausgetauscht", true));
    index.upsert(&d).unwrap();
    index.commit(1).unwrap();
    let me = contact("p1", "c1", true, false);
    assert_eq!(index.search(&me, &q("Zitronenfalter")).unwrap().total, 0);
    assert_eq!(index.search(&me, &q("ausgetauscht")).unwrap().total, 0);
    assert_eq!(
        index
            .search(&me, &q("\"wird ausgetauscht\""))
            .unwrap()
            .total,
        0
    );
    let staff_hit = &index
        .search(&Viewer::Staff, &q("Zitronenfalter"))
        .unwrap()
        .hits;
    assert_eq!(staff_hit.len(), 1);
    assert!(staff_hit[0].snippet.contains("<b>Zitronenfalter</b>"));
    // Matched on public text: the snippet must come from public text only.
    for text in ["Kasse", "Kunde", "Kasse status:open", "kind:ticket"] {
        for hit in index.search(&me, &q(text)).unwrap().hits {
            assert!(!hit.snippet.contains("Intern"), "{text}: {}", hit.snippet);
            assert!(!hit.snippet.contains("Zitronenfalter"));
        }
    }
}

#[test]
fn snippet_is_escaped_and_highlighted() {
    let (_d, index) = open();
    index
        .upsert(&doc("x", "t", &["<script>alert(1)</script> Drucker & Co"]))
        .unwrap();
    index.commit(1).unwrap();
    let hit = &index.search(&Viewer::Staff, &q("drucker")).unwrap().hits[0];
    assert!(!hit.snippet.contains("<script>"), "{}", hit.snippet);
    assert!(hit.snippet.contains("&lt;script&gt;"));
    assert!(hit.snippet.contains("<b>Drucker</b>"));
}

#[test]
fn number_search_and_paging() {
    let (_d, index) = open();
    for i in 0..25u64 {
        let mut d = doc(&format!("r{i}"), "Wartung", &["Routinewartung"]);
        d.number = Some(1000 + i);
        index.upsert(&d).unwrap();
    }
    index.commit(1).unwrap();
    let res = index.search(&Viewer::Staff, &q("#1007")).unwrap();
    assert_eq!(res.hits[0].id, "r7");
    assert_eq!(res.hits[0].number, Some(1007));
    let mut seen = BTreeSet::new();
    for page in 0..3 {
        let res = index
            .search(
                &Viewer::Staff,
                &SearchQuery {
                    q: "wartung".into(),
                    kind: None,
                    limit: 10,
                    offset: page * 10,
                },
            )
            .unwrap();
        assert_eq!(res.total, 25);
        seen.extend(res.hits.into_iter().map(|h| h.id));
    }
    assert_eq!(seen.len(), 25);
    let mut zero = q("wartung");
    zero.limit = 0;
    let res = index.search(&Viewer::Staff, &zero).unwrap();
    assert_eq!((res.total, res.hits.len()), (25, 0));
}

#[test]
fn upsert_replaces_and_delete_removes() {
    let (_d, index) = open();
    index.upsert(&doc("r", "alt", &["Apfel"])).unwrap();
    index.commit(1).unwrap();
    index.upsert(&doc("r", "neu", &["Birne"])).unwrap();
    // Same id, other kind: a different record.
    let mut other = doc("r", "anders", &["Apfel"]);
    other.kind = RecordKind::Quote;
    index.upsert(&other).unwrap();
    index.commit(2).unwrap();
    let staff = Viewer::Staff;
    let res = index.search(&staff, &q("apfel")).unwrap();
    assert_eq!(res.total, 1);
    assert_eq!(res.hits[0].kind, RecordKind::Quote);
    let res = index.search(&staff, &q("birne")).unwrap();
    assert_eq!((res.total, res.hits[0].title.as_str()), (1, "neu"));
    // Twice in one commit: only the last version survives.
    index.upsert(&doc("r", "drei", &["Kirsche"])).unwrap();
    index.upsert(&doc("r", "vier", &["Pflaume"])).unwrap();
    index.commit(3).unwrap();
    assert_eq!(index.search(&staff, &q("kirsche")).unwrap().total, 0);
    assert_eq!(index.search(&staff, &q("pflaume")).unwrap().total, 1);
    assert_eq!(index.search(&staff, &q("")).unwrap().total, 2);
    index.delete(RecordKind::Ticket, "r").unwrap();
    index.commit(4).unwrap();
    assert_eq!(index.search(&staff, &q("")).unwrap().total, 1);
    assert_eq!(index.search(&staff, &q("pflaume")).unwrap().total, 0);
}

#[test]
fn applied_seq_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        assert_eq!(index.applied_seq(), 0);
        index.upsert(&doc("a", "Kasse", &["x"])).unwrap();
        index.commit(42).unwrap();
        assert_eq!(index.applied_seq(), 42);
        // Uncommitted work is lost on close, and so is its seq.
        index.upsert(&doc("b", "Kasse", &["x"])).unwrap();
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.applied_seq(), 42);
    assert_eq!(index.search(&Viewer::Staff, &q("kasse")).unwrap().total, 1);
    index.commit(43).unwrap();
    drop(index);
    assert_eq!(SearchIndex::open(dir.path()).unwrap().applied_seq(), 43);
}

#[test]
fn reseller_sees_its_customers_records() {
    let (_d, index) = open();
    let mut own = doc("own", "Lizenz", &["x"]);
    own.company_id = Some("res".into());
    let mut customer = doc("cust", "Lizenz", &["x"]);
    customer.company_id = Some("c1".into());
    customer.reseller_id = Some("res".into());
    let mut foreign = doc("foreign", "Lizenz", &["x"]);
    foreign.company_id = Some("c2".into());
    foreign.reseller_id = Some("other".into());
    own.audience = tokens(&["r1".to_string()], Some("res"), None);
    customer.audience = tokens(&["p1".to_string()], Some("c1"), Some("res"));
    foreign.audience = tokens(&["p2".to_string()], Some("c2"), Some("other"));
    for d in [&own, &customer, &foreign] {
        index.upsert(d).unwrap();
    }
    index.commit(1).unwrap();
    let reseller = contact("r2", "res", true, true);
    assert_eq!(
        sorted(ids(&index, &reseller, "lizenz")),
        vec!["cust", "own"]
    );
    let plain = contact("r2", "res", true, false);
    assert_eq!(ids(&index, &plain, "lizenz"), vec!["own"]);
    // Without company-wide visibility a reseller's contact sees only its own.
    let narrow = contact("r2", "res", false, true);
    assert!(ids(&index, &narrow, "lizenz").is_empty());
    let customer_contact = contact("p1", "c1", true, false);
    assert_eq!(ids(&index, &customer_contact, "lizenz"), vec!["cust"]);
}

/// Tiny deterministic generator so the access test needs no dependency.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Company {
    id: String,
    reseller: Option<String>,
}

#[test]
fn contacts_never_see_other_companies_records() {
    const COMPANIES: usize = 8;
    const RECORDS: usize = 400;
    const WORDS: usize = 12;
    let mut rng = Lcg(7);
    // Companies 0 and 1 are resellers; some others are their customers.
    let companies: Vec<Company> = (0..COMPANIES)
        .map(|i| Company {
            id: format!("co{i}"),
            reseller: match i {
                2 | 3 => Some("co0".into()),
                4 => Some("co1".into()),
                _ => None,
            },
        })
        .collect();
    // Tokens ending in a digit pass both stemmers unchanged, so brute force
    // can compare plain strings.
    let word = |i: usize| format!("kw{i}");
    let (_d, index) = open();
    let mut records = Vec::new();
    for r in 0..RECORDS {
        let co = &companies[rng.below(COMPANIES)];
        let mut contact_ids = vec![format!("{}-p{}", co.id, rng.below(3))];
        if rng.below(10) == 0 {
            // A participant from another company sees this record too.
            contact_ids.push(format!("co{}-p0", rng.below(COMPANIES)));
        }
        let public: Vec<String> = (0..3).map(|_| word(rng.below(WORDS))).collect();
        let internal = word(rng.below(WORDS));
        let mut d = doc(&format!("r{r}"), &word(rng.below(WORDS)), &[]);
        d.entries.push(entry("e1", &public.join(" "), false));
        d.entries.push(entry("e2", &internal, true));
        d.company_id = if rng.below(20) == 0 {
            None
        } else {
            Some(co.id.clone())
        };
        d.company_name = Some(format!("Firma {}", co.id));
        d.reseller_id = co.reseller.clone();
        d.audience = tokens(
            &contact_ids,
            d.company_id.as_deref(),
            d.reseller_id.as_deref(),
        );
        d.status = ["open", "done"][rng.below(2)].into();
        d.kind = RecordKind::RECORDS[rng.below(3)];
        index.upsert(&d).unwrap();
        records.push(d);
    }
    index.commit(1).unwrap();

    let mut queries: Vec<String> = (0..WORDS).map(word).collect();
    queries.extend(
        [
            "",
            "status:open",
            "kind:quote",
            "kw1 kw2",
            "\"kw3 kw4\"",
            "kw5 status:done",
        ]
        .map(String::from),
    );
    queries.extend((0..COMPANIES).map(|i| format!("company:co{i}")));

    let matches = |d: &IndexDoc, query: &str, staff: bool| -> bool {
        let mut public_words: Vec<&str> = vec![d.title.as_str()];
        let mut entries_public = Vec::new();
        for e in &d.entries {
            if staff || !e.internal {
                public_words.extend(e.text.split(' '));
                entries_public.push(e.text.as_str());
            }
        }
        query.split(' ').filter(|t| !t.is_empty()).all(|t| {
            if let Some(s) = t.strip_prefix("status:") {
                d.status == s
            } else if let Some(k) = t.strip_prefix("kind:") {
                d.kind.as_str() == k
            } else if let Some(c) = t.strip_prefix("company:") {
                d.company_id.as_deref() == Some(c)
                    || d.company_name.as_deref() == Some(&format!("Firma {c}"))
            } else if let Some(first) = t.strip_prefix('"') {
                // A two-word phrase: its second word is the next token.
                let second = query.split('"').nth(1).unwrap().split(' ').nth(1).unwrap();
                entries_public.iter().any(|e| {
                    let tokens: Vec<&str> = e.split(' ').collect();
                    tokens.windows(2).any(|w| w == [first, second])
                })
            } else if t.ends_with('"') {
                true
            } else {
                public_words.contains(&t)
            }
        })
    };

    let mut viewers = vec![Viewer::Staff];
    for co in &companies {
        for p in 0..3 {
            viewers.push(contact(
                &format!("{}-p{p}", co.id),
                &co.id,
                p == 0,
                co.id == "co0" || co.id == "co1",
            ));
        }
    }
    let mut checked_nonempty = 0;
    for viewer in &viewers {
        let allowed = |d: &IndexDoc| match viewer {
            Viewer::Staff => true,
            Viewer::Contact { audience } => d.audience.iter().any(|t| audience.contains(t)),
        };
        let staff = matches!(viewer, Viewer::Staff);
        for query in &queries {
            let expected: BTreeSet<String> = records
                .iter()
                .filter(|d| allowed(d) && matches(d, query, staff))
                .map(|d| d.record_id.clone())
                .collect();
            let mut req = q(query);
            req.limit = MAX_LIMIT;
            let res = index.search(viewer, &req).unwrap();
            let got: BTreeSet<String> = res.hits.iter().map(|h| h.id.clone()).collect();
            assert_eq!(res.total, expected.len(), "{viewer:?} {query}");
            assert_eq!(got, expected, "{viewer:?} {query}");
            if !expected.is_empty() {
                checked_nonempty += 1;
            }
        }
    }
    // Guard against a vacuous pass (e.g. every query returning nothing).
    assert!(
        checked_nonempty > viewers.len() * queries.len() / 2,
        "{checked_nonempty}"
    );
}
