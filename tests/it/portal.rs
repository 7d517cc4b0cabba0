//! The customer portal (CONTRACT.md section 5) over plain HTTP, as a browser without
//! JavaScript and as an attacker would see it: who sees which records, the login
//! form's answers and limit, sessions that end, tokens on every POST, and links
//! whose GET or HEAD changes nothing. `portal_browser.rs` drives the same pages in
//! a real Chromium.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

/// Everybody the portal tests need: a reseller with a manager and a member, its
/// customer with a manager and a member, a direct customer whose manager holds every
/// permission and whose member holds none, a second direct customer, and staff.
pub struct Cast {
    pub maria: Value,
    pub jonas: Value,
    pub bakery: Value,
    pub petra: Value,
    pub lena: Value,
    pub gelato: Value,
    pub enzo: Value,
    pub staff: Value,
}

pub fn id(value: &Value) -> &str {
    value["id"].as_str().unwrap_or_default()
}

async fn grant(app: &TestApp, contact: &Value, manager: &Value, all: bool) {
    expect(
        StatusCode::OK,
        app.put(
            &format!("/api/v1/contacts/{}/permissions", id(contact)),
            &json!({"portal": true, "quotes": all, "orders": all, "invoices": all,
                    "subscriptions": all, "requested_by": id(manager)}),
        )
        .await,
    );
}

pub async fn cast(app: &TestApp) -> Cast {
    let reseller = app
        .create_company("Kassenprofi Nord", "reseller", None)
        .await;
    let rita = app
        .create_contact(
            id(&reseller),
            "Rita Reseller",
            "rita@kassenprofi.example",
            "manager",
        )
        .await;
    let rolf = app
        .create_contact(
            id(&reseller),
            "Rolf Vertrieb",
            "rolf@kassenprofi.example",
            "member",
        )
        .await;
    let cafe = app
        .create_company("Café Müller", "customer", Some(id(&reseller)))
        .await;
    let maria = app
        .create_contact(id(&cafe), "Maria Müller", "maria@cafe.example", "manager")
        .await;
    let jonas = app
        .create_contact(id(&cafe), "Jonas Kellner", "jonas@cafe.example", "member")
        .await;
    let bakery = app
        .create_company("Bäckerei Schmidt", "customer", None)
        .await;
    let petra = app
        .create_contact(
            id(&bakery),
            "Petra Schmidt",
            "petra@schmidt.example",
            "manager",
        )
        .await;
    let lena = app
        .create_contact(id(&bakery), "Lena Berg", "lena@schmidt.example", "member")
        .await;
    let gelato = app
        .create_company("Eisdiele Venezia", "customer", None)
        .await;
    let enzo = app
        .create_contact(id(&gelato), "Enzo Rossi", "enzo@venezia.example", "manager")
        .await;
    let staff = app.create_staff("Sam Support", "sam@vendor.example").await;
    grant(app, &rita, &rita, false).await;
    grant(app, &rolf, &rita, false).await;
    grant(app, &maria, &maria, false).await;
    grant(app, &jonas, &maria, false).await;
    grant(app, &petra, &petra, true).await;
    grant(app, &lena, &petra, false).await;
    grant(app, &enzo, &enzo, true).await;
    Cast {
        maria,
        jonas,
        bakery,
        petra,
        lena,
        gelato,
        enzo,
        staff,
    }
}

/// A ticket opened by staff for `contact`, without the confirmation mail.
pub async fn ticket_for(app: &TestApp, contact: &Value, subject: &str) -> Value {
    app.create_ticket(
        &json!({"subject": subject, "body": format!("{subject}: bitte prüfen."),
                              "contact_id": id(contact), "notify": false}),
    )
    .await
}

/// The link of the newest notice of `kind` to `to`, read from the `.eml` the file
/// transport wrote.
pub async fn link_in_mail(app: &TestApp, kind: &str, to: &str) -> Option<String> {
    links_in_mails(app, kind, to).await.into_iter().next()
}

/// The links of every notice of `kind` to `to`, newest first.
pub async fn links_in_mails(app: &TestApp, kind: &str, to: &str) -> Vec<String> {
    app.sent_mails(kind, to)
        .await
        .into_iter()
        .filter_map(|(_, message)| message.link())
        .collect()
}

/// How many notices of `kind` went to `to`.
pub async fn notices(app: &TestApp, kind: &str, to: &str) -> usize {
    app.wait_until_outbox_drained().await;
    app.outbox(None)
        .await
        .iter()
        .filter(|row| row["kind"] == kind && row["to"] == to)
        .count()
}

/// The path of a link, for the test's own server address.
pub fn path_of(url: &str) -> String {
    match url.find("/l/") {
        Some(start) => url[start..].to_string(),
        None => url.to_string(),
    }
}

/// A person with a browser that runs no script: a cookie jar of one cookie.
pub struct Visitor {
    client: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
}

/// A page as fetched.
pub struct Fetched {
    pub status: StatusCode,
    pub location: Option<String>,
    pub content_type: String,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Visitor {
    pub fn new(app: &TestApp) -> Visitor {
        Visitor {
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: app.address.clone(),
            cookie: None,
        }
    }

    /// Logs `email` in through the login form and the mailed link.
    pub async fn login(app: &TestApp, email: &str) -> Visitor {
        let mut visitor = Visitor::new(app);
        let answer = visitor
            .post_form("/portal/login", &[("email", email)])
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let link = link_in_mail(app, "login_link", email)
            .await
            .unwrap_or_else(|| panic!("a login link to {email}"));
        let opened = visitor.get(&path_of(&link)).await;
        assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
        assert_eq!(opened.location.as_deref(), Some("/portal"));
        visitor
    }

    /// Opens a magic link and keeps the session it sets.
    pub async fn open_link(app: &TestApp, url: &str) -> (Visitor, Fetched) {
        let mut visitor = Visitor::new(app);
        let opened = visitor.get(&path_of(url)).await;
        (visitor, opened)
    }

    fn keep_cookie(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            if let Some(pair) = text.split(';').next() {
                if let Some(value) = pair.strip_prefix("kontor_session=") {
                    self.cookie = (!value.is_empty() && !text.contains("Max-Age=0"))
                        .then(|| value.to_string());
                }
            }
        }
    }

    async fn fetched(&mut self, response: reqwest::Response) -> Fetched {
        self.keep_cookie(&response);
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        Fetched {
            status,
            location,
            content_type,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.cookie {
            Some(cookie) => request.header("cookie", format!("kontor_session={cookie}")),
            None => request,
        }
    }

    pub async fn get(&mut self, path: &str) -> Fetched {
        let request = self.with_cookie(self.client.get(format!("{}{path}", self.base)));
        let response = request.send().await.expect("GET sent");
        self.fetched(response).await
    }

    pub async fn head(&mut self, path: &str) -> StatusCode {
        let request = self.with_cookie(self.client.head(format!("{}{path}", self.base)));
        let response = request.send().await.expect("HEAD sent");
        self.keep_cookie(&response);
        response.status()
    }

    pub async fn post_form(&mut self, path: &str, fields: &[(&str, &str)]) -> Fetched {
        self.post_form_from(path, fields, None).await
    }

    /// A form POST, optionally naming the page's origin as a browser does.
    pub async fn post_form_from(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Fetched {
        let body: Vec<String> = fields
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect();
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.join("&"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let response = self.with_cookie(request).send().await.expect("POST sent");
        self.fetched(response).await
    }

    /// A `multipart/form-data` POST with text fields and files `(field, name, bytes)`.
    pub async fn post_multipart(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
        files: &[(&str, &str, &[u8])],
    ) -> Fetched {
        let boundary = "kontor-test-boundary-7d1f";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
            );
        }
        for (name, filename, bytes) in files {
            body.extend_from_slice(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        let response = self.with_cookie(request).send().await.expect("POST sent");
        self.fetched(response).await
    }

    /// The session's token, as the page's forms carry it.
    pub async fn csrf(&mut self) -> String {
        let page = self.get("/portal").await;
        csrf_in(&page.body).unwrap_or_else(|| panic!("no csrf field: {}", page.body))
    }
}

pub fn csrf_in(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + "name=\"csrf\" value=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The ticket numbers a ticket list page shows.
pub fn numbers_listed(html: &str) -> BTreeSet<u64> {
    html.match_indices("href=\"/portal/tickets/")
        .filter_map(|(at, found)| {
            let rest = &html[at + found.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[tokio::test]
async fn the_login_form_answers_the_same_for_everyone_and_mails_at_most_five_links_an_hour() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let mut visitor = Visitor::new(&app);

    let form = visitor.get("/portal/login").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.content_type.starts_with("text/html"));
    assert!(
        form.body.contains("<label for=\"email\">E-Mail</label>"),
        "{}",
        form.body
    );
    assert!(form.body.contains(">Anmeldelink senden</button>"));

    // New contacts have the portal from the start; no link went out yet.
    let first = notices(&app, "login_link", "petra@schmidt.example").await;
    let known = visitor
        .post_form("/portal/login", &[("email", "petra@schmidt.example")])
        .await;
    let unknown = visitor
        .post_form("/portal/login", &[("email", "nobody@nowhere.example")])
        .await;
    assert_eq!(known.status, StatusCode::OK);
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(
        known.body.replace("petra@schmidt.example", "X"),
        unknown.body.replace("nobody@nowhere.example", "X"),
        "the same page whether or not the address is known"
    );
    // A contact without the portal gets nothing either.
    let without = app
        .create_contact(
            id(&cast.bakery),
            "Ohne Portal",
            "ohne@schmidt.example",
            "member",
        )
        .await;
    expect(
        StatusCode::OK,
        app.put(
            &format!("/api/v1/contacts/{}/permissions", id(&without)),
            &json!({"portal": false, "quotes": false, "orders": false, "invoices": false,
                    "subscriptions": false, "requested_by": id(&cast.petra)}),
        )
        .await,
    );
    visitor
        .post_form("/portal/login", &[("email", "ohne@schmidt.example")])
        .await;
    assert_eq!(notices(&app, "login_link", "ohne@schmidt.example").await, 0);
    assert_eq!(
        notices(&app, "login_link", "nobody@nowhere.example").await,
        0
    );

    for _ in 0..6 {
        let again = visitor
            .post_form("/portal/login", &[("email", "Petra@Schmidt.example")])
            .await;
        assert_eq!(again.status, StatusCode::OK);
    }
    assert_eq!(
        notices(&app, "login_link", "petra@schmidt.example").await,
        first + 5,
        "at most five links an hour from the form"
    );
    let empty = visitor.post_form("/portal/login", &[("email", "")]).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.body.contains("aria-invalid=\"true\""));
}

#[tokio::test]
async fn each_role_sees_exactly_its_own_records_and_nothing_of_another_company() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let t_maria = ticket_for(&app, &cast.maria, "Bondrucker Café").await;
    let t_jonas = ticket_for(&app, &cast.jonas, "Kartenleser Café").await;
    let t_petra = ticket_for(&app, &cast.petra, "Waage Bäckerei").await;
    let t_lena = ticket_for(&app, &cast.lena, "Kassenlade Bäckerei").await;
    let t_enzo = ticket_for(&app, &cast.enzo, "Eismaschine").await;
    let number = |ticket: &Value| ticket["number"].as_u64().unwrap();
    let expected: [(&str, Vec<u64>); 7] = [
        (
            "maria@cafe.example",
            vec![number(&t_maria), number(&t_jonas)],
        ),
        ("jonas@cafe.example", vec![number(&t_jonas)]),
        (
            "rita@kassenprofi.example",
            vec![number(&t_maria), number(&t_jonas)],
        ),
        (
            "rolf@kassenprofi.example",
            vec![number(&t_maria), number(&t_jonas)],
        ),
        (
            "petra@schmidt.example",
            vec![number(&t_petra), number(&t_lena)],
        ),
        ("lena@schmidt.example", vec![number(&t_lena)]),
        ("enzo@venezia.example", vec![number(&t_enzo)]),
    ];
    let all: BTreeSet<u64> = [&t_maria, &t_jonas, &t_petra, &t_lena, &t_enzo]
        .iter()
        .map(|t| number(t))
        .collect();

    // Enzo writes with an attachment from the portal; nobody else may fetch it.
    let mut enzo = Visitor::login(&app, "enzo@venezia.example").await;
    let token = enzo.csrf().await;
    let sent = enzo
        .post_multipart(
            &format!("/portal/tickets/{}/messages", number(&t_enzo)),
            &[("csrf", &token), ("message", "Foto anbei.")],
            &[("attachments", "eis.txt", b"Vanille, Schoko")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    let page = enzo
        .get(&format!("/portal/tickets/{}", number(&t_enzo)))
        .await;
    let start = page.body.find("/attachments/").expect("an attachment link");
    let href_start = page.body[..start].rfind('"').unwrap() + 1;
    let href_end = start + page.body[start..].find('"').unwrap();
    let attachment = page.body[href_start..href_end].to_string();
    let download = enzo.get(&attachment).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.bytes, b"Vanille, Schoko");

    // A quote and an invoice of Enzo's company, a document for his signature.
    let quote = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/quotes",
            &json!({"company_id": id(&cast.gelato), "contact_id": id(&cast.enzo), "title": "Eistheke",
                    "lines": [{"description": "Theke", "quantity": 1, "unit_price_cents": 500000}],
                    "currency": "EUR", "valid_until": "2099-01-01"}),
        )
        .await,
    );
    expect(
        StatusCode::OK,
        app.post(&format!("/api/v1/quotes/{}/send", id(&quote)), &json!({}))
            .await,
    );
    let invoice = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/invoices",
            &json!({"company_id": id(&cast.gelato), "contact_id": id(&cast.enzo), "number": "V-1",
                    "lines": [{"description": "Wartung", "quantity": 1, "unit_price_cents": 9900}],
                    "currency": "EUR", "due_date": "2099-01-01"}),
        )
        .await,
    );
    let foreign_pages = [
        format!("/portal/tickets/{}", number(&t_enzo)),
        attachment.clone(),
        format!("/portal/quotes/{}", id(&quote)),
        format!("/portal/invoices/{}", id(&invoice)),
    ];
    assert_eq!(enzo.get(&foreign_pages[2]).await.status, StatusCode::OK);

    for (email, own) in &expected {
        let mut visitor = Visitor::login(&app, email).await;
        let list = visitor.get("/portal/tickets").await;
        assert_eq!(list.status, StatusCode::OK);
        let own: BTreeSet<u64> = own.iter().copied().collect();
        assert_eq!(numbers_listed(&list.body), own, "{email}'s ticket list");
        for ticket in &all {
            let page = visitor.get(&format!("/portal/tickets/{ticket}")).await;
            let visible = own.contains(ticket);
            assert_eq!(
                page.status,
                if visible {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                },
                "{email} opens ticket {ticket}"
            );
            assert!(
                page.content_type.starts_with("text/html"),
                "HTML even for a 404"
            );
        }
        if *email != "enzo@venezia.example" {
            for path in &foreign_pages {
                let page = visitor.get(path).await;
                assert_eq!(page.status, StatusCode::NOT_FOUND, "{email} at {path}");
                assert!(!page.body.contains("Vanille"));
            }
            for list in ["/portal/quotes", "/portal/invoices", "/portal/documents"] {
                let page = visitor.get(list).await;
                assert!(
                    !page.body.contains("Eistheke") && !page.body.contains("V-1"),
                    "{email} {list}"
                );
            }
        }
    }
    // An id that does not exist answers exactly like one that is not yours.
    let mut lena = Visitor::login(&app, "lena@schmidt.example").await;
    let missing = lena.get("/portal/tickets/999999").await;
    let foreign = lena
        .get(&format!("/portal/tickets/{}", number(&t_enzo)))
        .await;
    assert_eq!(missing.status, foreign.status);
    assert_eq!(
        missing.body.replace(char::is_numeric, ""),
        foreign.body.replace(char::is_numeric, "")
    );
}

#[tokio::test]
async fn a_post_without_the_sessions_token_or_from_another_site_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let ticket = ticket_for(&app, &cast.petra, "Waage").await;
    let number = ticket["number"].as_u64().unwrap();
    let mut petra = Visitor::login(&app, "petra@schmidt.example").await;
    let token = petra.csrf().await;
    let path = format!("/portal/tickets/{number}/messages");
    let before = app.history(id(&ticket)).await.len();

    let without = petra
        .post_multipart(&path, &[("message", "ohne Token")], &[])
        .await;
    assert_eq!(without.status, StatusCode::FORBIDDEN);
    assert!(without.content_type.starts_with("text/html"));
    let wrong = petra
        .post_multipart(
            &path,
            &[("csrf", "falsch"), ("message", "falsches Token")],
            &[],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let cross_site = petra
        .post_form_from(
            &format!("/portal/tickets/{number}/reopen"),
            &[("csrf", &token)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    // Another person's token does not work in this session either.
    let mut lena = Visitor::login(&app, "lena@schmidt.example").await;
    let lenas = lena.csrf().await;
    let borrowed = petra
        .post_multipart(
            &path,
            &[("csrf", &lenas), ("message", "fremdes Token")],
            &[],
        )
        .await;
    assert_eq!(borrowed.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.history(id(&ticket)).await.len(),
        before,
        "nothing was stored"
    );
    let logout = Visitor::new(&app)
        .post_form("/portal/logout", &[("csrf", &token)])
        .await;
    assert_eq!(logout.status, StatusCode::SEE_OTHER);
    assert_eq!(
        petra.get("/portal").await.status,
        StatusCode::OK,
        "a logout without the cookie ends nothing"
    );

    let with = petra
        .post_multipart(&path, &[("csrf", &token), ("message", "mit Token")], &[])
        .await;
    assert_eq!(with.status, StatusCode::SEE_OTHER);
    let history = app.history(id(&ticket)).await;
    assert_eq!(history.len(), before + 1);
    let last = history.last().unwrap();
    assert_eq!(last["body_text"], "mit Token");
    assert_eq!(last["author"]["kind"], "contact");
    assert_eq!(last["author"]["id"], cast.petra["id"]);
}

#[tokio::test]
async fn opening_any_link_by_get_or_head_changes_nothing_and_uses_nothing_up() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let ticket = ticket_for(&app, &cast.petra, "Waage").await;
    let document = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/documents",
            &json!({"title": "AV-Vertrag", "company_id": id(&cast.bakery), "signer_contact_id": id(&cast.petra),
                    "body_html": "<p>Vertrag</p>",
                    "fields": [{"name": "signature", "label": "Unterschrift", "type": "signature", "required": true}]}),
        )
        .await,
    );
    expect(
        StatusCode::OK,
        app.post(
            &format!("/api/v1/documents/{}/send", id(&document)),
            &json!({}),
        )
        .await,
    );
    let quote = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/quotes",
            &json!({"company_id": id(&cast.bakery), "contact_id": id(&cast.petra), "title": "Ofen",
                    "lines": [{"description": "Ofen", "quantity": 1, "unit_price_cents": 100000}],
                    "currency": "EUR", "valid_until": "2099-01-01"}),
        )
        .await,
    );
    expect(
        StatusCode::OK,
        app.post(&format!("/api/v1/quotes/{}/send", id(&quote)), &json!({}))
            .await,
    );
    let link = |record: &str, record_id: &str, scope: &str| json!({"record": record, "id": record_id, "contact_id": id(&cast.petra), "scope": scope});
    let mut links = Vec::new();
    for body in [
        link("ticket", id(&ticket), "view"),
        link("document", id(&document), "sign"),
        link("quote", id(&quote), "sign"),
        link("quote", id(&quote), "view"),
    ] {
        let made = expect(StatusCode::CREATED, app.post("/api/v1/links", &body).await);
        links.push(made["url"].as_str().unwrap().to_string());
    }
    expect(
        StatusCode::ACCEPTED,
        app.post(
            &format!("/api/v1/contacts/{}/login-link", id(&cast.petra)),
            &json!({}),
        )
        .await,
    );
    links.push(
        link_in_mail(&app, "login_link", "petra@schmidt.example")
            .await
            .expect("login link"),
    );

    let paths = [
        format!("/api/v1/tickets/{}", id(&ticket)),
        format!("/api/v1/documents/{}", id(&document)),
        format!("/api/v1/quotes/{}", id(&quote)),
        format!("/api/v1/tickets/{}/history", id(&ticket)),
        format!("/api/v1/documents/{}/history", id(&document)),
        format!("/api/v1/quotes/{}/history", id(&quote)),
        "/api/v1/outbox?per_page=500".to_string(),
        "/api/v1/orders".to_string(),
    ];
    app.wait_until_outbox_drained().await;
    let before = state_of(&app, &paths).await;
    for url in &links {
        for _ in 0..3 {
            let mut scanner = Visitor::new(&app);
            assert_eq!(
                scanner.head(&path_of(url)).await,
                StatusCode::SEE_OTHER,
                "HEAD {url}"
            );
            let (mut scanner, opened) = Visitor::open_link(&app, url).await;
            assert_eq!(opened.status, StatusCode::SEE_OTHER, "GET {url}");
            // A scanner that follows the redirect and reads the page changes nothing.
            let location = opened.location.expect("a page");
            let page = scanner.get(&location).await;
            assert_eq!(page.status, StatusCode::OK, "{location}");
            // Even GETs of the actions' addresses change nothing.
            for action in ["/sign", "/accept", "/decline", "/reopen", "/messages"] {
                let attempt = scanner.get(&format!("{location}{action}")).await;
                assert_ne!(
                    attempt.status,
                    StatusCode::SEE_OTHER,
                    "GET {location}{action}"
                );
            }
        }
    }
    app.wait_until_outbox_drained().await;
    assert_eq!(
        state_of(&app, &paths).await,
        before,
        "nothing changed, nothing was sent"
    );
    // And every link still opens: nothing was used up.
    for url in &links {
        let (_, opened) = Visitor::open_link(&app, url).await;
        assert_eq!(opened.status, StatusCode::SEE_OTHER);
    }
}

async fn state_of(app: &TestApp, paths: &[String]) -> Vec<Value> {
    let mut all = Vec::new();
    for path in paths {
        all.push(expect(StatusCode::OK, app.get(path).await));
    }
    all
}

#[tokio::test]
async fn sessions_end_on_logout_and_when_the_contact_loses_portal_access() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let mut petra = Visitor::login(&app, "petra@schmidt.example").await;
    assert_eq!(petra.get("/portal").await.status, StatusCode::OK);
    let cookie = petra.cookie.clone();
    let token = petra.csrf().await;
    let out = petra.post_form("/portal/logout", &[("csrf", &token)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location.as_deref(), Some("/portal/login"));
    assert_eq!(petra.cookie, None, "the cookie is cleared");
    // The old cookie, replayed, opens nothing: the session is gone on the server.
    petra.cookie = cookie;
    let replay = petra.get("/portal/tickets").await;
    assert_eq!(replay.status, StatusCode::SEE_OTHER);
    assert_eq!(replay.location.as_deref(), Some("/portal/login"));

    let mut lena = Visitor::login(&app, "lena@schmidt.example").await;
    assert_eq!(lena.get("/portal/tickets").await.status, StatusCode::OK);
    expect(
        StatusCode::OK,
        app.put(
            &format!("/api/v1/contacts/{}/permissions", id(&cast.lena)),
            &json!({"portal": false, "quotes": false, "orders": false, "invoices": false,
                    "subscriptions": false, "requested_by": id(&cast.petra)}),
        )
        .await,
    );
    let after = lena.get("/portal/tickets").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "no portal, no session");
}

#[tokio::test]
async fn a_view_link_opens_only_its_record_and_offers_to_log_in_for_the_rest() {
    let app = TestApp::spawn().await;
    let cast = cast(&app).await;
    let mine = ticket_for(&app, &cast.petra, "Waage").await;
    let other = ticket_for(&app, &cast.petra, "Drucker").await;
    let made = expect(
        StatusCode::CREATED,
        app.post(
            "/api/v1/links",
            &json!({"record": "ticket", "id": id(&mine), "contact_id": id(&cast.petra), "scope": "view"}),
        )
        .await,
    );
    let (mut visitor, opened) = Visitor::open_link(&app, made["url"].as_str().unwrap()).await;
    let location = opened.location.expect("a page");
    assert_eq!(location, format!("/portal/tickets/{}", mine["number"]));
    let page = visitor.get(&location).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("href=\"/portal/login\""),
        "the offer to log in"
    );
    assert!(page.body.contains("Waage"));
    assert_eq!(
        visitor
            .get(&format!("/portal/tickets/{}", other["number"]))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let list = visitor.get("/portal/tickets").await;
    assert_eq!(
        numbers_listed(&list.body),
        [mine["number"].as_u64().unwrap()].into()
    );
    assert_eq!(
        visitor.get("/portal/tickets/new").await.status,
        StatusCode::SEE_OTHER
    );
    // The reply form works for the holder of the link.
    let token = csrf_in(&page.body).expect("a token in the reply form");
    let sent = visitor
        .post_multipart(
            &format!("{location}/messages"),
            &[("csrf", &token), ("message", "Danke!")],
            &[],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.history(id(&mine)).await.last().unwrap()["body_text"],
        "Danke!"
    );
}

#[tokio::test]
async fn every_address_under_the_portal_answers_an_html_page() {
    let app = TestApp::spawn().await;
    cast(&app).await;
    let mut nobody = Visitor::new(&app);
    for path in [
        "/portal",
        "/portal/tickets",
        "/portal/quotes",
        "/portal/documents/doc_1",
    ] {
        let page = nobody.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location.as_deref(), Some("/portal/login"));
    }
    let mut petra = Visitor::login(&app, "petra@schmidt.example").await;
    for path in [
        "/portal/nothing-here",
        "/portal/tickets/abc",
        "/portal/tickets/0",
        "/portal/quotes/qt_999999",
        "/portal/quotes/xyz",
        "/portal/invoices/inv_1/invoice.pdf",
        "/portal/assets/../Cargo.toml",
    ] {
        let page = petra.get(path).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.content_type.starts_with("text/html"),
            "{path}: {}",
            page.content_type
        );
        assert!(
            page.body.contains("href=\"/portal/login\""),
            "{path} offers the way back"
        );
    }
    let broken = petra
        .post_form("/portal/tickets", &[("subject", "x")])
        .await;
    assert!(
        broken.content_type.starts_with("text/html"),
        "a form that is not multipart"
    );
    assert!(broken.status.is_client_error());
    let page = petra.get("/portal").await;
    assert!(
        page.body.contains("<title>Übersicht – Support</title>"),
        "a title without internal tags"
    );
}
