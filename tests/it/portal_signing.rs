//! Signing through the portal's forms (CONTRACT.md sections 3, 5): a document's
//! required fields checked again by the server, the signature bound to the content
//! hash the page showed, the evidence a third party recomputes, the PDFs; a quote
//! accepted and signed into an order, or declined only with a reason.

use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::portal::{cast, csrf_in, id, links_in_mails, Cast, Visitor};
use crate::support::*;

/// The canonical JSON of the README: sorted keys, no whitespace, non-ASCII as is.
fn canonical(value: &Value) -> String {
    // serde_json's maps are sorted and `to_string` writes no whitespace.
    serde_json::to_string(value).unwrap_or_default()
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The page count `pdfinfo` (poppler) reads from a PDF: proof that it opens.
fn pdf_pages(path: &std::path::Path) -> u32 {
    crate::tools::ensure(&crate::tools::POPPLER).expect("poppler-utils");
    let info = std::process::Command::new("pdfinfo")
        .arg(path)
        .output()
        .expect("pdfinfo (poppler-utils)");
    assert!(
        info.status.success(),
        "pdfinfo {}: {info:?}",
        path.display()
    );
    String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("Pages:"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or(0)
}

/// Runs the Python script the README gives third parties on `evidence`: its
/// output, or its error.
fn readme_evidence_check(evidence: &Value) -> Result<String, String> {
    use std::io::Write;
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .expect("README");
    let section = &readme[readme
        .find("### Checking a history or a signature yourself")
        .expect("the README explains the check")..];
    let start = section.find("```python\n").expect("a Python block") + "```python\n".len();
    let script = &section[start..start + section[start..].find("```").expect("its end")];
    let mut child = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(evidence.to_string().as_bytes())
        .expect("evidence to python");
    let output = child.wait_with_output().expect("python ran");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).to_string())
    }
}

/// How many `reminded` events a document's history holds.
async fn reminded(app: &TestApp, doc: &str) -> usize {
    let history = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/documents/{doc}/history?per_page=500"))
            .await,
    );
    history["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|entry| entry["event"]["type"] == "reminded")
                .count()
        })
        .unwrap_or(0)
}

fn value_after(html: &str, marker: &str) -> Option<String> {
    let start = html.find(marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// The content hash a sign page shows and its form sends back with the signature.
pub fn content_hash_in(html: &str) -> Option<String> {
    value_after(html, "name=\"content_sha256\" value=\"")
}

/// A document for Petra, the bakery's manager, to sign, sent (the sign link mailed);
/// its id.
pub async fn sent_document(
    app: &TestApp,
    cast: &Cast,
    title: &str,
    body_html: &str,
    fields: Value,
) -> String {
    let document = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/documents",
            &json!({"title": title, "company_id": id(&cast.bakery),
                    "signer_contact_id": id(&cast.petra), "body_html": body_html, "fields": fields}),
        )
        .await,
    );
    let doc = id(&document).to_string();
    expect(
        StatusCode::OK,
        app.post(&format!("/api/v1/documents/{doc}/send"), &json!({}))
            .await,
    );
    doc
}

#[tokio::test]
async fn a_document_is_signed_from_its_page_only_with_every_required_field_and_its_evidence_holds()
{
    let mut app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let doc = sent_document(
        &app,
        &cast,
        "Auftragsverarbeitung",
        "<h2>Vertrag</h2><p>Zwischen der Bäckerei und uns …</p><script>alert(1)</script>",
        json!([
            {"name": "position", "label": "Funktion", "type": "text", "required": true},
            {"name": "start", "label": "Gültig ab", "type": "date", "required": true},
            {"name": "consent", "label": "Ich stimme zu", "type": "checkbox", "required": true},
            {"name": "signature", "label": "Unterschrift", "type": "signature", "required": true}
        ]),
    )
    .await;
    let mut petra = Visitor::login(&app, "petra@schmidt.example").await;
    let page_path = format!("/portal/documents/{doc}");
    let page = petra.get(&page_path).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        !page.body.contains("<script>alert"),
        "the body is sanitised"
    );
    assert!(page.body.contains(">Nächste</button>") && page.body.contains(">Signieren</button>"));
    let content_hash = content_hash_in(&page.body).expect("the content hash");
    assert!(
        page.body.contains(&format!("<code>{content_hash}</code>")),
        "shown before signing"
    );
    let token = csrf_in(&page.body).expect("token");
    let history_before =
        app.get(&format!("/api/v1/documents/{doc}/history")).await.1["total"].clone();

    // The browser's own checks removed: the server refuses naming what is missing.
    let refused = petra
        .post_form(
            &format!("{page_path}/sign"),
            &[
                ("csrf", &token),
                ("content_sha256", &content_hash),
                ("field.position", "Inhaberin"),
                ("signature_field", "signature"),
                ("signature_typed", ""),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    for missing in ["start", "consent", "signature"] {
        assert!(
            refused.body.contains(&format!("<code>{missing}</code>")),
            "names {missing}"
        );
    }
    assert!(
        refused.body.contains("value=\"Inhaberin\""),
        "what was typed stays"
    );
    let still = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/documents/{doc}")).await,
    );
    assert_eq!(still["status"], "sent");
    assert_eq!(
        app.get(&format!("/api/v1/documents/{doc}/history")).await.1["total"],
        history_before
    );

    // A draft is kept per field.
    let draft = petra
        .post_form(
            &format!("{page_path}/draft"),
            &[("csrf", &token), ("field.position", "Inhaberin")],
        )
        .await;
    assert_eq!(draft.status, StatusCode::SEE_OTHER);
    assert!(petra
        .get(&page_path)
        .await
        .body
        .contains("value=\"Inhaberin\""));

    // A changed content hash is not what the person saw.
    let stale = petra
        .post_form(
            &format!("{page_path}/sign"),
            &[
                ("csrf", &token),
                ("content_sha256", &"0".repeat(64)),
                ("field.position", "Inhaberin"),
                ("field.start", "2026-12-01"),
                ("field.consent", "true"),
                ("signature_field", "signature"),
                ("signature_typed", "Petra Schmidt"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT);

    let signed = petra
        .post_form(
            &format!("{page_path}/sign"),
            &[
                ("csrf", &token),
                ("content_sha256", &content_hash),
                ("field.position", "Inhaberin"),
                ("field.start", "2026-12-01"),
                ("field.consent", "true"),
                ("signature_field", "signature"),
                ("signature_typed", "Petra Schmidt"),
            ],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let record = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/documents/{doc}")).await,
    );
    assert_eq!(record["status"], "signed");
    assert_eq!(record["values"]["signature"], "Petra Schmidt");
    assert_eq!(record["signer"]["email"], "petra@schmidt.example");
    assert_eq!(record["signer"]["ip"], "127.0.0.1");
    let sha = record["sha256"].as_str().unwrap().to_string();

    // Anyone recomputes the hash from the evidence, and the history chain holds.
    let evidence = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/documents/{doc}/evidence")).await,
    );
    assert_eq!(sha256_hex(&canonical(&evidence["inputs"])), sha);
    assert_eq!(evidence["inputs"]["content_sha256"], content_hash.as_str());
    let mut previous = "0".repeat(64);
    for entry in evidence["history"].as_array().unwrap() {
        let mut body = entry.clone();
        body.as_object_mut().unwrap().remove("hash");
        body.as_object_mut().unwrap().remove("prev_hash");
        assert_eq!(entry["prev_hash"], previous.as_str());
        previous = sha256_hex(&format!("{previous}{}", canonical(&body)));
        assert_eq!(entry["hash"], previous.as_str());
    }

    // The README's own script, run as a third party would, holds on the evidence
    // and fails on a value changed after the fact.
    assert_eq!(
        readme_evidence_check(&evidence),
        Ok("the signature and the history hold".to_string())
    );
    let mut forged = evidence.clone();
    forged["inputs"]["values"]["position"] = json!("Praktikantin");
    assert!(readme_evidence_check(&forged).is_err(), "a changed value");

    // Signed: who, when, the hash, the PDFs; no form any more; nothing changes again.
    let page = petra.get(&page_path).await;
    assert!(page.body.contains("Signiert von Petra Schmidt") && page.body.contains(&sha));
    assert!(!page.body.contains(">Signieren</button>"));
    assert!(
        page.body.contains("<dd>01.12.2026</dd>"),
        "a date value reads as a date in German"
    );
    let scratch = tempfile::tempdir().expect("scratch dir");
    for pdf in ["signed.pdf", "certificate.pdf"] {
        let file = petra.get(&format!("{page_path}/{pdf}")).await;
        assert_eq!(file.status, StatusCode::OK, "{pdf}");
        assert_eq!(file.content_type, "application/pdf");
        assert!(file.bytes.starts_with(b"%PDF-"), "{pdf}");
        let path = scratch.path().join(pdf);
        std::fs::write(&path, &file.bytes).expect("write pdf");
        let pages = pdf_pages(&path);
        assert!(pages >= 1, "{pdf} opens with {pages} pages");
    }
    // The certificate carries the evidence as a file a reader can save.
    let saved = std::process::Command::new("pdfdetach")
        .arg("-saveall")
        .arg("-o")
        .arg(scratch.path())
        .arg(scratch.path().join("certificate.pdf"))
        .output()
        .expect("pdfdetach (poppler-utils)");
    assert!(saved.status.success(), "{saved:?}");
    let embedded: Value = serde_json::from_slice(
        &std::fs::read(scratch.path().join("evidence.json")).expect("evidence.json"),
    )
    .expect("evidence JSON");
    assert_eq!(embedded["sha256"], sha.as_str());
    assert_eq!(
        readme_evidence_check(&embedded),
        Ok("the signature and the history hold".to_string())
    );
    let again = petra
        .post_form(
            &format!("{page_path}/sign"),
            &[
                ("csrf", &token),
                ("field.position", "Chefin"),
                ("signature_field", "signature"),
                ("signature_typed", "P. S."),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let unchanged = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/documents/{doc}")).await,
    );
    assert_eq!(unchanged["sha256"], sha.as_str());
    app.terminate();
    assert_eq!(app.command(&["verify"]).status.code(), Some(0));
}

#[tokio::test]
async fn a_quote_is_accepted_and_signed_into_an_order_or_declined_only_with_a_reason() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let new_quote = |title: &str| {
        json!({"company_id": id(&cast.bakery), "contact_id": id(&cast.petra), "title": title,
               "lines": [{"description": "Kassenterminal T2", "quantity": 1, "unit_price_cents": 129900}],
               "currency": "EUR", "valid_until": "2099-12-31", "staff_id": id(&cast.staff)})
    };
    let accepted = expect(
        StatusCode::CREATED,
        app.post("/api/v1/quotes", &new_quote("Zweite Kasse")).await,
    );
    let declined = expect(
        StatusCode::CREATED,
        app.post("/api/v1/quotes", &new_quote("Dritte Kasse")).await,
    );
    for quote in [&accepted, &declined] {
        expect(
            StatusCode::OK,
            app.post(&format!("/api/v1/quotes/{}/send", id(quote)), &json!({}))
                .await,
        );
    }
    let mut petra = Visitor::login(&app, "petra@schmidt.example").await;
    let path = format!("/portal/quotes/{}", id(&accepted));
    let page = petra.get(&path).await;
    assert!(
        page.body.contains(">Akzeptieren und signieren</button>")
            && page.body.contains(">Ablehnen</button>")
    );
    let dialog = petra.get(&format!("{path}?dialog=accept")).await;
    assert!(
        dialog.body.contains("<dialog open") && dialog.body.contains("aria-label=\"Unterschrift\"")
    );
    let token = csrf_in(&dialog.body).expect("token");
    let empty = petra
        .post_form(&format!("{path}/accept"), &[("csrf", &token)])
        .await;
    assert_eq!(
        empty.status,
        StatusCode::BAD_REQUEST,
        "no signature, no order"
    );
    let signed = petra
        .post_form(
            &format!("{path}/accept"),
            &[("csrf", &token), ("signature_typed", "Petra Schmidt")],
        )
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let order_path = signed.location.expect("the order's page");
    assert!(order_path.starts_with("/portal/orders/"), "{order_path}");
    let order_page = petra.get(&order_path).await;
    assert!(order_page
        .body
        .contains("Signiert von <strong>Petra Schmidt</strong>"));
    let quote = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/quotes/{}", id(&accepted))).await,
    );
    assert_eq!(quote["status"], "accepted");
    let twice = petra
        .post_form(
            &format!("{path}/accept"),
            &[("csrf", &token), ("signature_typed", "Petra Schmidt")],
        )
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);

    let path = format!("/portal/quotes/{}", id(&declined));
    let without = petra
        .post_form(
            &format!("{path}/decline"),
            &[("csrf", &token), ("reason", " ")],
        )
        .await;
    assert_eq!(without.status, StatusCode::BAD_REQUEST);
    assert!(without.body.contains("Bitte nennen Sie einen Grund"));
    assert_eq!(
        expect(
            StatusCode::OK,
            app.get(&format!("/api/v1/quotes/{}", id(&declined))).await
        )["status"],
        "sent"
    );
    let with = petra
        .post_form(
            &format!("{path}/decline"),
            &[("csrf", &token), ("reason", "Zu teuer für uns")],
        )
        .await;
    assert_eq!(with.status, StatusCode::SEE_OTHER);
    let quote = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/quotes/{}", id(&declined))).await,
    );
    assert_eq!(quote["status"], "cancelled");
    assert_eq!(quote["decline_reason"], "Zu teuer für uns");
    let page = petra.get(&path).await;
    assert!(page.body.contains("Dieses Angebot wurde storniert."));
    assert!(!page.body.contains(">Akzeptieren und signieren</button>"));
    let list = petra.get("/portal/quotes").await;
    assert!(
        list.body.contains("Dritte Kasse") && !list.body.contains("Zweite Kasse"),
        "accepted quotes leave the list"
    );

    let invoice = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/invoices",
            &json!({"company_id": id(&cast.bakery), "contact_id": id(&cast.petra), "number": "RE-7",
                    "lines": [{"description": "Wartung", "quantity": 1, "unit_price_cents": 4900}],
                    "currency": "EUR", "due_date": "2026-12-31"}),
        )
        .await,
    );
    let pdf = petra
        .get(&format!("/portal/invoices/{}/invoice.pdf", id(&invoice)))
        .await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    let mut lena = Visitor::login(&app, "lena@schmidt.example").await;
    assert_eq!(
        lena.get(&format!("/portal/invoices/{}/invoice.pdf", id(&invoice)))
            .await
            .status,
        StatusCode::NOT_FOUND,
        "no invoice permission, no PDF"
    );
}

#[tokio::test]
async fn signers_are_reminded_once_per_interval_with_a_fresh_link_and_never_after_signing_or_validity(
) {
    let mut app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let today = chrono::Utc::now().date_naive();
    let document = |title: &str, valid_until: chrono::NaiveDate| {
        json!({"title": title, "company_id": id(&cast.bakery), "signer_contact_id": id(&cast.petra),
               "body_html": "<p>Bitte unterschreiben.</p>", "valid_until": valid_until.to_string(),
               "fields": [{"name": "signature", "label": "Unterschrift", "type": "signature", "required": true}]})
    };
    let mut sent = Vec::new();
    for (title, days) in [
        ("Wartungsvertrag", 365),
        ("Kurzes Angebot", 4),
        ("Schon signiert", 365),
        ("Zurückgezogen", 365),
    ] {
        let created = expect(
            StatusCode::CREATED,
            app.post(
                "/api/v1/documents",
                &document(title, today + chrono::Duration::days(days)),
            )
            .await,
        );
        let doc = id(&created).to_string();
        expect(
            StatusCode::OK,
            app.post(&format!("/api/v1/documents/{doc}/send"), &json!({}))
                .await,
        );
        sent.push(doc);
    }
    let (long, short, signed, cancelled) = (&sent[0], &sent[1], &sent[2], &sent[3]);
    let mut petra = Visitor::login(&app, "petra@schmidt.example").await;
    let page = petra.get(&format!("/portal/documents/{signed}")).await;
    let signing = petra
        .post_form(
            &format!("/portal/documents/{signed}/sign"),
            &[
                ("csrf", &csrf_in(&page.body).expect("token")),
                (
                    "content_sha256",
                    &content_hash_in(&page.body).expect("hash"),
                ),
                ("signature_field", "signature"),
                ("signature_typed", "Petra Schmidt"),
            ],
        )
        .await;
    assert_eq!(signing.status, StatusCode::SEE_OTHER, "{}", signing.body);
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/documents/{cancelled}/cancel"),
            &json!({"reason": "Falscher Entwurf", "staff_id": id(&cast.staff)}),
        )
        .await,
    );
    let request_links = links_in_mails(&app, "sign_request", "petra@schmidt.example").await;
    app.terminate();

    let run = |hours: i64| {
        app.run_job(
            "remind_signatures",
            chrono::Utc::now() + chrono::Duration::hours(hours),
        )
    };
    // after_days is 3: nothing after a day, both open documents after three, not
    // again in the same interval; the short one's validity ends before the second.
    assert_eq!(run(24), "remind_signatures: 2 examined, 0 reminded");
    assert_eq!(run(3 * 24 + 1), "remind_signatures: 2 examined, 2 reminded");
    assert_eq!(run(3 * 24 + 2), "remind_signatures: 2 examined, 0 reminded");
    assert_eq!(run(6 * 24 + 1), "remind_signatures: 2 examined, 1 reminded");
    assert_eq!(run(6 * 24 + 2), "remind_signatures: 2 examined, 0 reminded");

    app.start(false).await.expect("restart");
    let reminders = links_in_mails(&app, "sign_reminder", "petra@schmidt.example").await;
    assert_eq!(reminders.len(), 3, "{reminders:?}");
    let mut distinct: Vec<&String> = reminders.iter().chain(request_links.iter()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        reminders.len() + request_links.len(),
        "each reminder carries a fresh link"
    );
    for link in &reminders {
        let (mut visitor, opened) = Visitor::open_link(&app, link).await;
        assert_eq!(
            opened.status,
            StatusCode::SEE_OTHER,
            "{link}: {}",
            opened.body
        );
        let page = visitor
            .get(opened.location.as_deref().unwrap_or_default())
            .await;
        assert!(
            page.body.contains(">Signieren</button>"),
            "the reminder opens the sign page"
        );
    }
    assert_eq!(reminded(&app, long).await, 2);
    assert_eq!(reminded(&app, short).await, 1);
    assert_eq!(reminded(&app, signed).await, 0);
    assert_eq!(reminded(&app, cancelled).await, 0);
    app.terminate();
    assert_eq!(app.command(&["verify"]).status.code(), Some(0));
}
