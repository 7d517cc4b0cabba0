//! The portal in a real headless Chromium, as customers use it: the login form and
//! its mail, the overview of each role, a new ticket with an attachment, a reply, a
//! reopen, every list and record page, logout; at a desktop and a phone width, by
//! keyboard, with the contrast of every text checked. Screenshots land in
//! `target/screenshots/`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::portal::{cast, id, link_in_mail, notices, path_of, ticket_for, Cast};
use crate::support::*;

/// Every text's contrast against its background, as WCAG 2 computes it; the
/// elements below `min` (4.5, or 3 for large text) are returned as descriptions.
const CONTRAST_SCRIPT: &str = r#"
function lum(c){var m=c.match(/[\d.]+/g);if(!m)return null;var a=m.length>3?parseFloat(m[3]):1;
 var v=m.slice(0,3).map(function(x){x=x/255;return x<=0.03928?x/12.92:Math.pow((x+0.055)/1.055,2.4)});
 return {l:0.2126*v[0]+0.7152*v[1]+0.0722*v[2],a:a};}
function bg(e){while(e){var s=getComputedStyle(e);var b=lum(s.backgroundColor);if(b&&b.a>0.5)return b.l;e=e.parentElement;}return 1;}
var bad=[];
document.querySelectorAll('body *').forEach(function(e){
 if(e.closest('script,style,noscript,[hidden]'))return;
 var own=Array.prototype.some.call(e.childNodes,function(n){return n.nodeType===3&&n.textContent.trim()!=='';});
 if(!own)return; var s=getComputedStyle(e); if(s.visibility==='hidden'||s.display==='none')return;
 var r=e.getBoundingClientRect(); if(r.width===0||r.height===0)return;
 var f=lum(s.color); if(!f)return; var b=bg(e);
 var ratio=(Math.max(f.l,b)+0.05)/(Math.min(f.l,b)+0.05);
 var size=parseFloat(s.fontSize); var bold=parseInt(s.fontWeight,10)>=700;
 var min=(size>=24||(bold&&size>=18.66))?3:4.5;
 if(ratio<min)bad.push(e.tagName+' "'+e.textContent.trim().slice(0,30)+'" '+ratio.toFixed(2));
});
return bad;
"#;

async fn assert_readable(browser: &Browser, what: &str) {
    let bad = browser
        .script(CONTRAST_SCRIPT, vec![])
        .await
        .expect("contrast script");
    assert_eq!(bad, json!([]), "{what}: text below WCAG AA contrast");
    let labelless = browser
        .script(
            "return Array.prototype.filter.call(document.querySelectorAll('input:not([type=hidden]),select,textarea'), function(e){ return !(e.labels && e.labels.length) && !e.getAttribute('aria-label'); }).map(function(e){return e.name;});",
            vec![],
        )
        .await
        .expect("label script");
    assert_eq!(labelless, json!([]), "{what}: every control has a label");
}

/// At 375 px nothing is wider than the screen.
async fn assert_fits_a_phone(browser: &Browser, what: &str) {
    browser.set_size(375, 812).await.expect("phone size");
    let widths = browser
        .script(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
            vec![],
        )
        .await
        .expect("width script");
    let scroll = widths[0].as_u64().unwrap_or(0);
    let client = widths[1].as_u64().unwrap_or(0);
    assert!(
        scroll <= client,
        "{what}: {scroll}px wide on a {client}px phone"
    );
    browser.set_size(1280, 900).await.expect("desktop size");
}

/// Whether a computed colour (`rgb(…)`) is reddish: red well above green and blue.
fn reddish(colour: &str) -> bool {
    let parts: Vec<u32> = colour
        .trim_start_matches("rgb(")
        .trim_start_matches("rgba(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect();
    parts.len() >= 3 && parts[0] > parts[1] + 10 && parts[0] > parts[2] + 10
}

async fn login(browser: &Browser, app: &TestApp, email: &str) {
    browser
        .goto(&app.url("/portal/login"))
        .await
        .expect("login page");
    browser.fill("E-Mail", email).await.expect("email field");
    browser
        .click_button("Anmeldelink senden")
        .await
        .expect("submit");
    let text = browser.text().await.expect("text");
    assert!(text.contains("Prüfen Sie Ihr Postfach"), "{text}");
    let link = link_in_mail(app, "login_link", email)
        .await
        .expect("a login link");
    browser
        .goto(&app.url(&path_of(&link)))
        .await
        .expect("the link");
    let url = browser.wait_for_url("/portal").await.expect("portal");
    assert!(url.ends_with("/portal"), "{url}");
    assert!(!url.contains("/l/"), "the token left the address bar");
}

async fn logout(browser: &Browser) {
    browser.click_button("Abmelden").await.expect("logout");
    browser
        .wait_for_url("/portal/login")
        .await
        .expect("login page");
}

async fn menu(browser: &Browser) -> Vec<String> {
    let value = browser
        .script(
            "return Array.prototype.map.call(document.querySelectorAll('nav.menu a'), function(a){return a.textContent.trim();});",
            vec![],
        )
        .await
        .expect("menu");
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Quotes, an order, an invoice and a subscription for the bakery's manager.
async fn commercial_records(app: &TestApp, cast: &Cast) -> (Value, Value, Value, Value) {
    let quote = |title: &str| {
        json!({"company_id": id(&cast.bakery), "contact_id": id(&cast.petra), "title": title,
               "lines": [{"description": "Kassenterminal T2", "quantity": 2, "unit_price_cents": 129900},
                         {"description": "Einrichtung", "quantity": 3, "unit_price_cents": 9500}],
               "currency": "EUR", "valid_until": "2099-12-31", "staff_id": id(&cast.staff)})
    };
    let open = expect(
        StatusCode::CREATED,
        app.post("/api/v1/quotes", &quote("Zweite Kasse")).await,
    );
    expect(
        StatusCode::OK,
        app.post(&format!("/api/v1/quotes/{}/send", id(&open)), &json!({}))
            .await,
    );
    let accepted = expect(
        StatusCode::CREATED,
        app.post("/api/v1/quotes", &quote("Waage")).await,
    );
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/quotes/{}/send", id(&accepted)),
            &json!({}),
        )
        .await,
    );
    let order = expect(
        StatusCode::CREATED,
        app.post(
            &format!("/api/v1/quotes/{}/accept", id(&accepted)),
            &json!({"contact_id": id(&cast.petra), "signature": "Petra Schmidt"}),
        )
        .await,
    );
    let invoice = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/invoices",
            &json!({"company_id": id(&cast.bakery), "contact_id": id(&cast.petra), "number": "RE-2026-0042",
                    "lines": [{"description": "Wartung Dezember", "quantity": 1, "unit_price_cents": 4900}],
                    "currency": "EUR", "due_date": "2026-12-31"}),
        )
        .await,
    );
    let subscription = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/subscriptions",
            &json!({"company_id": id(&cast.bakery), "contact_id": id(&cast.petra), "plan": "onRetail Business",
                    "modules": [{"code": "POS", "name": "Kasse", "components": ["Bondrucker", "Kassenlade"]},
                                {"code": "INV", "name": "Warenwirtschaft", "components": ["Inventur"]}],
                    "started_on": "2026-01-01", "renews_on": "2027-01-01"}),
        )
        .await,
    );
    (open, order, invoice, subscription)
}

#[tokio::test]
async fn a_customer_logs_in_files_a_ticket_replies_reopens_and_reads_every_record_in_chromium() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let staff_ticket = ticket_for(&app, &cast.petra, "Waage zeigt falsches Gewicht").await;
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/tickets/{}/assign", id(&staff_ticket)),
            &json!({"staff_id": id(&cast.staff)}),
        )
        .await,
    );
    expect(
        StatusCode::CREATED,
        app.post(
            &format!("/api/v1/tickets/{}/time-entries", id(&staff_ticket)),
            &json!({"staff_id": id(&cast.staff), "minutes": 25, "note": "Waage kalibriert"}),
        )
        .await,
    );
    expect(
        StatusCode::CREATED,
        app.post(
            &format!("/api/v1/tickets/{}/messages", id(&staff_ticket)),
            &json!({"staff_id": id(&cast.staff), "body": "Interner Vermerk: Firmware 1.2", "visibility": "internal"}),
        )
        .await,
    );
    let (quote, order, invoice, subscription) = commercial_records(&app, &cast).await;
    let browser = Browser::start().await.expect("a browser");

    // In, and the overview of a manager with every permission.
    login(&browser, &app, "petra@schmidt.example").await;
    assert_eq!(
        menu(&browser).await,
        [
            "Übersicht",
            "Tickets",
            "Signaturen",
            "Angebote",
            "Verkaufsaufträge",
            "Rechnungen",
            "Abonnements"
        ]
    );
    let title = browser.title().await.expect("title");
    assert_eq!(title, "Übersicht – Support");
    assert_readable(&browser, "overview").await;
    assert_fits_a_phone(&browser, "overview").await;
    browser
        .full_page_screenshot("portal-overview", 1280)
        .await
        .expect("screenshot");
    browser
        .full_page_screenshot("portal-overview-phone", 375)
        .await
        .expect("screenshot");

    // The keyboard reaches the menu, and the focus shows.
    browser
        .script(
            "document.activeElement && document.activeElement.blur(); window.focus();",
            vec![],
        )
        .await
        .expect("blur");
    browser
        .post_keys(&["\u{E004}", "\u{E004}"])
        .await
        .expect("tab");
    let focused = browser
        .script(
            "var e=document.activeElement; var s=getComputedStyle(e); return [e.tagName, s.outlineStyle, s.boxShadow, s.backgroundColor];",
            vec![],
        )
        .await
        .expect("focus");
    assert_eq!(focused[0], "A", "Tab moves through the links: {focused}");
    assert!(
        focused[1] != "none" || focused[2] != "none",
        "the focus is visible: {focused}"
    );

    // A new ticket with an attachment.
    browser.click_button("Tickets").await.expect("tickets menu");
    browser.wait_for_url("/portal/tickets").await.expect("list");
    let list = browser.text().await.expect("list text");
    assert!(list.contains("Waage zeigt falsches Gewicht"), "{list}");
    browser
        .click_button("Neues Ticket")
        .await
        .expect("new ticket");
    browser
        .wait_for_url("/portal/tickets/new")
        .await
        .expect("form");
    assert_readable(&browser, "new ticket").await;
    browser
        .fill("Betreff", "Bondrucker druckt blass")
        .await
        .expect("subject");
    browser
        .fill(
            "Beschreibung",
            "Seit dem Rollenwechsel sind die Bons kaum lesbar.",
        )
        .await
        .expect("description");
    let upload = tempfile::tempdir().expect("dir");
    let file = upload.path().join("bon-foto.txt");
    std::fs::write(&file, "ein blasser Bon").expect("file");
    let input = browser
        .labelled("Anhänge (optional)")
        .await
        .expect("file input");
    browser
        .type_into(&input, &file.display().to_string())
        .await
        .expect("attach");
    browser
        .click_button("Ticket einreichen")
        .await
        .expect("submit");
    let url = browser
        .wait_for_url("/portal/tickets/")
        .await
        .expect("ticket page");
    let number: u64 = url
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a number");
    let ticket = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/tickets/tk_{number}")).await,
    );
    assert_eq!(ticket["channel"], "portal");
    assert_eq!(ticket["subject"], "Bondrucker druckt blass");
    assert_eq!(ticket["requester"]["contact_id"], cast.petra["id"]);
    let page = browser.text().await.expect("page");
    assert!(page.contains("bon-foto.txt"), "{page}");
    assert!(!page.contains("[#"), "no internal tags on the page");

    // A reply from the ticket's page.
    browser
        .fill("Nachricht", "Neue Rolle ist eingelegt, hilft nicht.")
        .await
        .expect("message");
    browser.click_button("Senden").await.expect("send");
    browser
        .wait_for_url("#reply")
        .await
        .expect("back on the page");
    let page = browser.text().await.expect("page");
    assert!(
        page.contains("Neue Rolle ist eingelegt, hilft nicht."),
        "{page}"
    );
    let history = app.history(&format!("tk_{number}")).await;
    assert_eq!(
        history.last().unwrap()["body_text"],
        "Neue Rolle ist eingelegt, hilft nicht."
    );

    // The staff-opened ticket: assignee, time entry, no internal note.
    browser
        .goto(&app.url(&format!("/portal/tickets/{}", staff_ticket["number"])))
        .await
        .expect("staff ticket");
    let page = browser.text().await.expect("page");
    assert!(page.contains("Sam Support"), "the assignee: {page}");
    assert!(
        page.contains("0:25 h") && page.contains("Waage kalibriert"),
        "the time entry: {page}"
    );
    assert!(
        !page.contains("Firmware 1.2"),
        "internal notes stay internal"
    );

    // Done by staff, reopened by the customer.
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/tickets/{}/status", id(&staff_ticket)),
            &json!({"status": "done", "staff_id": id(&cast.staff)}),
        )
        .await,
    );
    browser
        .goto(&app.url(&format!("/portal/tickets/{}", staff_ticket["number"])))
        .await
        .expect("reload");
    assert_readable(&browser, "ticket page").await;
    assert_fits_a_phone(&browser, "ticket page").await;
    browser
        .full_page_screenshot("portal-ticket", 1280)
        .await
        .expect("screenshot");
    browser
        .full_page_screenshot("portal-ticket-phone", 375)
        .await
        .expect("screenshot");
    browser.click_button("Wieder öffnen").await.expect("reopen");
    browser
        .wait_for_url(&format!("/portal/tickets/{}", staff_ticket["number"]))
        .await
        .expect("page");
    let page = browser.text().await.expect("page");
    assert!(page.contains("Zur Bearbeitung - Backlog"), "{page}");
    assert!(
        browser.button("Wieder öffnen").await.is_err(),
        "no reopen on an open ticket"
    );
    let reopened = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/tickets/{}", id(&staff_ticket)))
            .await,
    );
    assert_eq!(reopened["status"], "backlog");
    let history = app.history(id(&staff_ticket)).await;
    assert!(history.iter().any(|e| e["event"]["type"] == "reopened"));

    // Quotes, orders, invoices, subscriptions: lists and pages.
    browser.click_button("Angebote").await.expect("quotes");
    let page = browser.text().await.expect("quotes");
    assert!(
        page.contains("Zweite Kasse") && !page.contains("Waage\n"),
        "{page}"
    );
    browser
        .click_button("Zweite Kasse")
        .await
        .expect("quote page");
    let page = browser.text().await.expect("quote");
    assert!(
        page.contains("Kassenterminal T2") && page.contains("2.883,00"),
        "{page}"
    );
    assert!(browser.button("Akzeptieren und signieren").await.is_ok());
    assert!(browser.button("Ablehnen").await.is_ok());
    assert_readable(&browser, "quote page").await;
    browser
        .click_button("Verkaufsaufträge")
        .await
        .expect("orders");
    let page = browser.text().await.expect("orders");
    assert!(page.contains("Signiert von Petra Schmidt"), "{page}");
    browser
        .goto(&app.url(&format!("/portal/orders/{}", id(&order))))
        .await
        .expect("order page");
    let page = browser.text().await.expect("order");
    assert!(page.contains("Signiert von Petra Schmidt"), "{page}");
    assert!(
        !page.to_lowercase().contains("stornieren"),
        "no cancel button on an order"
    );
    browser.click_button("Rechnungen").await.expect("invoices");
    let page = browser.text().await.expect("invoices");
    assert!(
        page.contains("RE-2026-0042") && page.contains("31.12.2026") && page.contains("49,00"),
        "{page}"
    );
    assert_fits_a_phone(&browser, "invoice list").await;
    browser
        .goto(&app.url(&format!("/portal/invoices/{}", id(&invoice))))
        .await
        .expect("invoice");
    assert!(browser
        .text()
        .await
        .expect("invoice")
        .contains("Wartung Dezember"));
    browser
        .click_button("Abonnements")
        .await
        .expect("subscriptions");
    let page = browser.text().await.expect("subscriptions");
    assert!(
        page.contains("Warenwirtschaft") && page.contains("Bondrucker"),
        "{page}"
    );
    browser
        .fill("Modul oder Komponente suchen", "inventur")
        .await
        .expect("search");
    browser.click_button("Suchen").await.expect("search");
    let page = browser.text().await.expect("search");
    assert!(
        page.contains("Warenwirtschaft") && !page.contains("Bondrucker"),
        "{page}"
    );
    browser
        .goto(&app.url(&format!("/portal/subscriptions/{}", id(&subscription))))
        .await
        .expect("subscription");
    assert!(browser.text().await.expect("sub").contains("Kassenlade"));
    browser.click_button("Signaturen").await.expect("documents");
    assert!(browser
        .text()
        .await
        .expect("docs")
        .contains("Kein Dokument wartet"));
    let _ = quote;

    logout(&browser).await;
    browser
        .goto(&app.url("/portal/tickets"))
        .await
        .expect("after logout");
    browser
        .wait_for_url("/portal/login")
        .await
        .expect("back at the login");
    assert!(browser
        .cookie("kontor_session")
        .await
        .expect("cookies")
        .is_none());
}

#[tokio::test]
async fn each_role_sees_its_own_overview_in_chromium() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let _ = &cast;
    let browser = Browser::start().await.expect("a browser");

    // A member without commercial permissions: tickets and signatures only.
    login(&browser, &app, "lena@schmidt.example").await;
    assert_eq!(menu(&browser).await, ["Übersicht", "Tickets", "Signaturen"]);
    logout(&browser).await;

    // A reseller's contact: tickets (its customers' too), never commercial menus.
    login(&browser, &app, "rolf@kassenprofi.example").await;
    assert_eq!(menu(&browser).await, ["Übersicht", "Tickets", "Signaturen"]);
    logout(&browser).await;

    // A contact of a reseller's customer: the reseller hint.
    login(&browser, &app, "maria@cafe.example").await;
    assert_eq!(menu(&browser).await, ["Übersicht", "Tickets", "Signaturen"]);
    let text = browser.text().await.expect("overview");
    assert!(
        text.contains(
            "Bitte holen Sie nicht einsehbare Informationen bei Ihrem Vertriebspartner ein."
        ),
        "{text}"
    );
    browser
        .full_page_screenshot("portal-overview-reseller-customer", 1280)
        .await
        .expect("screenshot");
    logout(&browser).await;

    // An English contact reads English.
    let liam = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/contacts",
            &json!({"company_id": id(&cast.bakery), "name": "Liam Baker", "email": "liam@schmidt.example",
                    "role": "member", "locale": "en"}),
        )
        .await,
    );
    expect(
        StatusCode::ACCEPTED,
        app.post(
            &format!("/api/v1/contacts/{}/login-link", id(&liam)),
            &json!({}),
        )
        .await,
    );
    let link = link_in_mail(&app, "login_link", "liam@schmidt.example")
        .await
        .expect("a login link");
    browser.goto(&app.url(&path_of(&link))).await.expect("link");
    browser.wait_for_url("/portal").await.expect("portal");
    assert_eq!(menu(&browser).await, ["Overview", "Tickets", "Signatures"]);
    browser.click_button("Log out").await.expect("logout");
    browser.wait_for_url("/portal/login").await.expect("login");
    assert!(
        browser.button("Anmeldelink senden").await.is_ok()
            || browser.button("Send login link").await.is_ok()
    );
}

#[tokio::test]
async fn a_signer_is_guided_through_the_required_fields_draws_a_signature_and_signs_in_chromium() {
    let mut app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let document = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/documents",
            &json!({"title": "Auftragsverarbeitung", "company_id": id(&cast.bakery),
                    "signer_contact_id": id(&cast.petra),
                    "body_html": "<h2>Vertrag zur Auftragsverarbeitung</h2><p>Zwischen der Bäckerei Schmidt und uns.</p>",
                    "fields": [
                        {"name": "position", "label": "Funktion", "type": "text", "required": true},
                        {"name": "start", "label": "Gültig ab", "type": "date", "required": true},
                        {"name": "news", "label": "Neuigkeiten per E-Mail", "type": "checkbox", "required": false},
                        {"name": "signature", "label": "Unterschrift", "type": "signature", "required": true}
                    ]}),
        )
        .await,
    );
    let doc = id(&document).to_string();
    expect(
        StatusCode::OK,
        app.post(&format!("/api/v1/documents/{doc}/send"), &json!({}))
            .await,
    );
    let sign_link = link_in_mail(&app, "sign_request", "petra@schmidt.example")
        .await
        .expect("a sign link in the mail");
    let browser = Browser::start().await.expect("a browser");
    browser
        .goto(&app.url(&path_of(&sign_link)))
        .await
        .expect("sign link");
    browser
        .wait_for_url(&format!("/portal/documents/{doc}"))
        .await
        .expect("sign page");
    assert_readable(&browser, "sign page").await;
    browser
        .full_page_screenshot("portal-sign-before", 1280)
        .await
        .expect("screenshot");
    browser
        .full_page_screenshot("portal-sign-before-phone", 375)
        .await
        .expect("screenshot");

    // Required fields are reddish while empty, and marked in words too.
    let position = browser.css("#field-0").await.expect("position");
    assert!(reddish(
        &browser.style(&position, "background-color").await.unwrap()
    ));
    let pad_box = browser.css("fieldset.signature").await.expect("pad");
    assert!(reddish(
        &browser.style(&pad_box, "background-color").await.unwrap()
    ));
    assert!(browser.text().await.unwrap().contains("(Pflichtfeld)"));

    // "Nächste" walks the empty required fields and disappears when none is left.
    let next = browser.button("Nächste").await.expect("next");
    browser.click(&next).await.expect("next");
    assert_eq!(browser.focused_id().await.unwrap(), "field-0");
    browser
        .type_into(&position, "Inhaberin")
        .await
        .expect("type");
    assert!(!reddish(
        &browser.style(&position, "background-color").await.unwrap()
    ));
    browser.click(&next).await.expect("next");
    assert_eq!(browser.focused_id().await.unwrap(), "field-1");
    let start = browser.css("#field-1").await.expect("date");
    browser
        .script("arguments[0].value='2026-12-01'; arguments[0].dispatchEvent(new Event('input',{bubbles:true})); arguments[0].dispatchEvent(new Event('change',{bubbles:true}));", vec![Browser::reference(&start)])
        .await
        .expect("date");
    assert!(
        browser.displayed(&next).await.unwrap(),
        "the signature is still missing"
    );
    let pad = browser.css("canvas.pad").await.expect("canvas");
    browser
        .draw(
            &pad,
            "pen",
            &[(-120, 10), (-60, -20), (0, 15), (60, -10), (120, 20)],
        )
        .await
        .expect("draw");
    assert!(
        !browser.displayed(&next).await.unwrap(),
        "Nächste is gone once all are filled"
    );
    assert!(!reddish(
        &browser.style(&pad_box, "background-color").await.unwrap()
    ));

    // The drafts reached the server as they were typed: the same session, read
    // without the browser, shows them.
    let cookie = browser
        .cookie("kontor_session")
        .await
        .expect("cookies")
        .expect("a session");
    let session = cookie["value"].as_str().unwrap_or_default().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = reqwest::Client::new()
            .get(app.url(&format!("/portal/documents/{doc}")))
            .header("cookie", format!("kontor_session={session}"))
            .send()
            .await
            .expect("page")
            .text()
            .await
            .unwrap_or_default();
        if page.contains("value=\"Inhaberin\"")
            && page.contains("value=\"2026-12-01\"")
            && page.contains("name=\"signature_drawn\" value=\"data:image/png;base64,")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "drafts were not kept");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    browser.click_button("Signieren").await.expect("sign");
    browser.wait_for_url("#signed").await.expect("signed");
    let page = browser.text().await.expect("page");
    let signed = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/documents/{doc}")).await,
    );
    assert_eq!(signed["status"], "signed");
    assert!(page.contains("Signiert von Petra Schmidt"), "{page}");
    assert!(page.contains(signed["sha256"].as_str().unwrap()));
    assert!(signed["signer"]["user_agent"]
        .as_str()
        .unwrap()
        .contains("Chrome"));
    assert!(
        browser.button("Signieren").await.is_err(),
        "no form after signing"
    );
    assert!(
        browser.count("img.signature-image").await.unwrap() == 1,
        "the drawn signature shows"
    );
    browser
        .full_page_screenshot("portal-sign-after", 1280)
        .await
        .expect("screenshot");
    app.terminate();
    assert_eq!(app.command(&["verify"]).status.code(), Some(0));
}

#[tokio::test]
async fn quotes_are_accepted_with_a_drawn_signature_declined_with_a_reason_cancelled_by_both_sides_and_expire_in_chromium(
) {
    let mut app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let today = chrono::Utc::now().date_naive();
    let mut quotes = Vec::new();
    for (title, days) in [
        ("Zweite Kasse", 30),
        ("Dritte Kasse", 30),
        ("Kasse für den Sommer", 1),
    ] {
        let quote = expect(
            StatusCode::CREATED,
            app.post(
                "/api/v1/quotes",
                &json!({"company_id": id(&cast.bakery), "contact_id": id(&cast.petra), "title": title,
                        "lines": [{"description": "Kassenterminal T2", "quantity": 1, "unit_price_cents": 129900}],
                        "currency": "EUR", "valid_until": (today + chrono::Duration::days(days)).to_string(),
                        "staff_id": id(&cast.staff)}),
            )
            .await,
        );
        expect(
            StatusCode::OK,
            app.post(&format!("/api/v1/quotes/{}/send", id(&quote)), &json!({}))
                .await,
        );
        quotes.push(id(&quote).to_string());
    }
    let (accepted, declined, expiring) = (&quotes[0], &quotes[1], &quotes[2]);
    let browser = Browser::start().await.expect("a browser");
    login(&browser, &app, "petra@schmidt.example").await;

    // Accept and sign: the dialog's pad takes a drawn signature; the order follows.
    browser
        .goto(&app.url(&format!("/portal/quotes/{accepted}")))
        .await
        .expect("quote page");
    browser
        .click_button("Akzeptieren und signieren")
        .await
        .expect("accept");
    assert_eq!(
        browser.count("dialog[open] canvas.pad").await.unwrap(),
        1,
        "the dialog with its pad"
    );
    assert_readable(&browser, "accept dialog").await;
    let margins = browser
        .script(
            "var r=document.querySelector('dialog[open]').getBoundingClientRect(); return [r.left, document.documentElement.clientWidth - r.right];",
            vec![],
        )
        .await
        .expect("dialog box");
    let (left, right) = (
        margins[0].as_f64().unwrap_or(0.0),
        margins[1].as_f64().unwrap_or(0.0),
    );
    assert!(
        (left - right).abs() < 4.0 && left > 0.0,
        "the dialog sits in the middle: {left} / {right}"
    );
    let pad_box = browser
        .css("dialog[open] fieldset.signature")
        .await
        .expect("pad box");
    assert!(
        reddish(&browser.style(&pad_box, "background-color").await.unwrap()),
        "the empty signature is marked as required"
    );
    browser
        .full_page_screenshot("portal-quote-accept", 1280)
        .await
        .expect("screenshot");
    let pad = browser.css("dialog[open] canvas.pad").await.expect("pad");
    browser
        .draw(
            &pad,
            "mouse",
            &[(-150, 0), (-80, -25), (-10, 20), (60, -15), (140, 10)],
        )
        .await
        .expect("draw");
    browser.click_button("Signieren").await.expect("sign");
    let order_url = browser
        .wait_for_url("/portal/orders/")
        .await
        .expect("order");
    let page = browser.text().await.expect("order page");
    assert!(page.contains("Signiert von Petra Schmidt"), "{page}");
    assert!(
        browser
            .xpath("//section[contains(@class,'order')]//button")
            .await
            .is_err(),
        "an order has no button, so none to cancel it"
    );
    let order_id = order_url.rsplit('/').next().unwrap_or_default().to_string();
    let order = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/orders/{order_id}")).await,
    );
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["signed_by"], "Petra Schmidt");
    assert_eq!(order["quote_id"], accepted.as_str());
    let quote = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/quotes/{accepted}")).await,
    );
    assert_eq!(quote["status"], "accepted");
    assert_eq!(
        notices(&app, "order_confirmed", "petra@schmidt.example").await,
        1
    );

    // Decline: with the browser's own check removed, the server still wants a reason.
    browser
        .goto(&app.url(&format!("/portal/quotes/{declined}")))
        .await
        .expect("quote page");
    browser.click_button("Ablehnen").await.expect("decline");
    let reason = browser.labelled("Grund").await.expect("reason field");
    browser
        .script(
            "arguments[0].removeAttribute('required');",
            vec![Browser::reference(&reason)],
        )
        .await
        .expect("drop required");
    browser
        .click_button("Ablehnung bestätigen")
        .await
        .expect("confirm");
    assert!(browser
        .text()
        .await
        .unwrap()
        .contains("Bitte nennen Sie einen Grund."));
    assert_eq!(
        expect(
            StatusCode::OK,
            app.get(&format!("/api/v1/quotes/{declined}")).await
        )["status"],
        "sent"
    );
    browser
        .fill("Grund", "Wir bleiben bei einer Kasse.")
        .await
        .expect("reason");
    browser
        .click_button("Ablehnung bestätigen")
        .await
        .expect("confirm");
    let page = browser.text().await.expect("declined page");
    assert!(page.contains("Dieses Angebot wurde storniert."), "{page}");
    assert!(browser.button("Akzeptieren und signieren").await.is_err());
    let quote = expect(
        StatusCode::OK,
        app.get(&format!("/api/v1/quotes/{declined}")).await,
    );
    assert_eq!(quote["status"], "cancelled");
    assert_eq!(quote["decline_reason"], "Wir bleiben bei einer Kasse.");
    assert_eq!(
        notices(&app, "quote_declined", "sam@vendor.example").await,
        1,
        "the staff member hears the customer's feedback"
    );

    // Both sides agree: staff cancel the order, and it is back with the quotes.
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/orders/{order_id}/cancel"),
            &json!({"reason": "Filiale schließt", "agreed_by": id(&cast.petra), "staff_id": id(&cast.staff)}),
        )
        .await,
    );
    browser.click_button("Angebote").await.expect("quotes");
    let row = browser
        .xpath("//tr[.//a[normalize-space()='Zweite Kasse']]")
        .await
        .expect("the cancelled order's quote is listed again");
    assert!(
        browser.text_of(&row).await.unwrap().contains("Abgebrochen"),
        "as Abgebrochen"
    );
    browser
        .click_button("Verkaufsaufträge")
        .await
        .expect("orders");
    assert!(
        !browser.text().await.unwrap().contains("Zweite Kasse"),
        "no longer a confirmed order"
    );

    // Expired: the job runs past its validity; the page says so and offers nothing.
    app.terminate();
    assert_eq!(
        app.run_job(
            "expire_quotes",
            chrono::Utc::now() + chrono::Duration::days(3)
        ),
        "expire_quotes: 1 examined, 1 expired"
    );
    app.start(false).await.expect("restart");
    browser
        .goto(&app.url(&format!("/portal/quotes/{expiring}")))
        .await
        .expect("expired quote");
    let page = browser.text().await.expect("expired page");
    assert!(page.contains("Dieses Angebot ist abgelaufen."), "{page}");
    assert!(browser.button("Akzeptieren und signieren").await.is_err());
    assert!(browser.button("Ablehnen").await.is_err());
    browser
        .full_page_screenshot("portal-quote-expired-phone", 375)
        .await
        .expect("screenshot");
    app.terminate();
    assert_eq!(app.command(&["verify"]).status.code(), Some(0));
}
