//! `kontor serve --demo`: a reseller, its customer with a manager and a member, a staff
//! member and tickets in several states, seeded into an empty data dir through the
//! same engine operations the API uses.

use kontor_engine::model::{CompanyKind, ContactRole, Permissions, TicketStatus, Visibility};
use kontor_engine::ops::parties::{NewCompany, NewContact, NewStaff};
use kontor_engine::ops::tickets::{NewTicket, RequesterInput};
use kontor_engine::{Engine, EngineError};

use crate::config::Config;

/// Seeds the demo when the store is empty; returns what to print, or `None` when the
/// data dir already holds records (the demo never writes into real data).
pub fn seed(engine: &Engine, config: &Config) -> Result<Option<String>, EngineError> {
    if !engine.is_empty()? {
        return Ok(None);
    }
    let reseller = engine.create_company(NewCompany {
        name: "Kassenprofi Nord GmbH".into(),
        kind: CompanyKind::Reseller,
        reseller_id: None,
        onretail_instance_ids: vec![],
    })?;
    let customer = engine.create_company(NewCompany {
        name: "Café Müller".into(),
        kind: CompanyKind::Customer,
        reseller_id: Some(reseller.id),
        onretail_instance_ids: vec!["onr-cafe-mueller-1".into()],
    })?;
    let manager = engine.create_contact(NewContact {
        company_id: customer.id,
        name: "Maria Müller".into(),
        email: "maria@cafe-mueller.example".into(),
        role: ContactRole::Manager,
        locale: Some("de".into()),
    })?;
    let member = engine.create_contact(NewContact {
        company_id: customer.id,
        name: "Jonas Weber".into(),
        email: "jonas@cafe-mueller.example".into(),
        role: ContactRole::Member,
        locale: Some("en".into()),
    })?;
    engine.set_permissions(member.id, Permissions::initial(), manager.id)?;
    let staff = engine.create_staff(NewStaff {
        name: "Sam Support".into(),
        email: "sam@vendor.example".into(),
    })?;

    let ticket = |subject: &str, body: &str, contact| {
        engine.create_ticket(NewTicket {
            subject: subject.into(),
            body: body.into(),
            requester: RequesterInput::Contact(contact),
            assignee_id: None,
            channel: kontor_engine::model::Channel::Email,
            attachments: vec![],
            company_id: None,
            origin: None,
            notify: true,
        })
    };
    let printer = ticket(
        "Bondrucker druckt nicht mehr",
        "Seit heute früh druckt der Bondrucker an Kasse 2 keine Belege mehr.",
        manager.id,
    )?;
    engine.assign_ticket(printer.id, staff.id)?;
    engine.set_ticket_status(printer.id, TicketStatus::InProgress, staff.id)?;
    engine.post_staff_message(
        printer.id,
        staff.id,
        "Bitte prüfen Sie, ob das Papier richtig eingelegt ist, und starten Sie den Drucker neu.",
        Visibility::Public,
    )?;
    engine.post_staff_message(
        printer.id,
        staff.id,
        "Treiber 4.2 hat bekannte Probleme.",
        Visibility::Internal,
    )?;
    engine.add_time_entry(printer.id, staff.id, 15, "Fernwartung", None)?;

    let export = ticket(
        "DATEV export missing in October",
        "The DATEV export for October is empty. Can you help?",
        member.id,
    )?;
    engine.assign_ticket(export.id, staff.id)?;
    engine.set_ticket_status(export.id, TicketStatus::WaitingOnCustomer, staff.id)?;
    engine.post_staff_message(
        export.id,
        staff.id,
        "Which cash register version are you running?",
        Visibility::Public,
    )?;

    let done = ticket(
        "Neue Artikelgruppe anlegen",
        "Wie lege ich eine neue Artikelgruppe an?",
        manager.id,
    )?;
    engine.set_ticket_status(done.id, TicketStatus::Done, staff.id)?;
    let new = ticket(
        "Kartenterminal verbindet nicht",
        "Das Kartenterminal zeigt Fehler 42.",
        manager.id,
    )?;

    let printer_link = engine.create_link(
        kontor_engine::model::RecordRef::ticket(printer.id),
        Some(manager.id),
        kontor_engine::links::LinkScope::View,
    )?;
    let commercial = seed_commercial(engine, &staff)?;
    let (_key, secret) = engine.create_api_key("demo")?;
    let base = format!("http://{}", config.http.listen);
    Ok(Some(format!(
        "kontor: demo data seeded\n\
         \n  API key (staff):   {secret}\n\
         \n  reseller           {reseller_id}  {reseller_name}\
         \n  customer           {customer_id}  {customer_name}\
         \n  manager            {manager_id}  {manager_email}\
         \n  member             {member_id}  {member_email}\
         \n  staff              {staff_id}  {staff_email}\
         \n  tickets            #{n1} in_progress, #{n2} waiting_on_customer, #{n3} done, #{n4} new\
         \n  magic link #{n1}    {printer_link}\
         \n{commercial}\
         \n\n  try: curl -H 'Authorization: Bearer {secret}' {base}/api/v1/tickets\
         \n       curl -H 'Authorization: Bearer {secret}' {base}/api/v1/tickets/{printer_id}/history\
         \n       {base}/api/v1/openapi.json\n",
        reseller_id = reseller.id,
        reseller_name = reseller.name,
        customer_id = customer.id,
        customer_name = customer.name,
        manager_id = manager.id,
        manager_email = manager.email,
        member_id = member.id,
        member_email = member.email,
        staff_id = staff.id,
        staff_email = staff.email,
        n1 = printer.number,
        n2 = export.number,
        n3 = done.number,
        n4 = new.number,
        printer_id = printer.id,
        printer_link = printer_link.url,
    )))
}

/// A customer that buys directly, with every record kind: a document waiting for
/// its signature, a sent quote, an order (an accepted quote), an invoice and a
/// subscription. Returns the lines `serve --demo` prints about them.
fn seed_commercial(
    engine: &Engine,
    staff: &kontor_engine::model::Staff,
) -> Result<String, EngineError> {
    use kontor_engine::links::LinkScope;
    use kontor_engine::records::commercial::LineInput;
    use kontor_engine::records::document::{FieldInput, NewDocument};
    use kontor_engine::records::invoice::NewInvoice;
    use kontor_engine::records::quote::{AcceptInput, NewQuote};
    use kontor_engine::records::subscription::{Module, NewSubscription};
    use kontor_engine::records::RecordType;

    let today = engine.clock().now().date_naive();
    let in_days = |days: i64| (today + chrono::Duration::days(days)).to_string();
    let bakery = engine.create_company(NewCompany {
        name: "Bäckerei Schmidt".into(),
        kind: CompanyKind::Customer,
        reseller_id: None,
        onretail_instance_ids: vec![],
    })?;
    let owner = engine.create_contact(NewContact {
        company_id: bakery.id,
        name: "Petra Schmidt".into(),
        email: "petra@baeckerei-schmidt.example".into(),
        role: ContactRole::Manager,
        locale: Some("de".into()),
    })?;
    engine.set_permissions(
        owner.id,
        Permissions {
            portal: true,
            quotes: true,
            orders: true,
            invoices: true,
            subscriptions: true,
        },
        owner.id,
    )?;
    let field = |name: &str, label: &str, field_type: &str, required: bool| FieldInput {
        name: name.into(),
        label: label.into(),
        field_type: field_type.into(),
        required,
    };
    let document = engine.create_document(NewDocument {
        title: "Auftragsverarbeitungsvertrag".into(),
        company_id: bakery.id,
        signer_contact_id: owner.id,
        body_html: "<h2>Vertrag zur Auftragsverarbeitung</h2><p>Zwischen der Bäckerei Schmidt und dem Anbieter der Kassensoftware …</p>".into(),
        fields: vec![
            field("position", "Funktion im Unternehmen", "text", true),
            field("start", "Gültig ab", "date", true),
            field("newsletter", "Produktneuigkeiten per E-Mail", "checkbox", false),
            field("signature", "Unterschrift", "signature", true),
        ],
        valid_until: Some(in_days(30)),
        staff_id: Some(staff.id),
    })?;
    let document = engine.send_document(document.id, Some(staff.id))?;
    let line = |description: &str, quantity: i64, cents: i64| LineInput {
        description: description.into(),
        quantity,
        unit_price_cents: cents,
    };
    let quote = engine.create_quote(NewQuote {
        company_id: bakery.id,
        contact_id: owner.id,
        title: "Zweite Kasse für die Filiale".into(),
        lines: vec![
            line("Kassenterminal onRetail T2", 1, 129_900),
            line("Bondrucker", 1, 24_900),
            line("Einrichtung vor Ort (Stunden)", 3, 9_500),
        ],
        currency: "EUR".into(),
        valid_until: in_days(21),
        staff_id: Some(staff.id),
    })?;
    let quote = engine.send_quote(quote.id, Some(staff.id))?;
    let signed = engine.create_quote(NewQuote {
        company_id: bakery.id,
        contact_id: owner.id,
        title: "Kartenterminal".into(),
        lines: vec![line("Kartenterminal mit Halterung", 1, 34_900)],
        currency: "EUR".into(),
        valid_until: in_days(14),
        staff_id: Some(staff.id),
    })?;
    engine.send_quote(signed.id, Some(staff.id))?;
    let (_, order) = engine.accept_quote(
        signed.id,
        AcceptInput {
            contact_id: owner.id,
            signature: "Petra Schmidt".into(),
            ip: "127.0.0.1".into(),
            user_agent: "kontor demo".into(),
        },
    )?;
    let invoice = engine.create_invoice(NewInvoice {
        company_id: bakery.id,
        contact_id: owner.id,
        number: format!("RE-{}-0001", today.format("%Y")),
        order_id: Some(order.id),
        lines: vec![line("Kartenterminal mit Halterung", 1, 34_900)],
        currency: "EUR".into(),
        due_date: in_days(14),
        staff_id: Some(staff.id),
    })?;
    let module = |code: &str, name: &str, components: &[&str]| Module {
        code: code.into(),
        name: name.into(),
        components: components.iter().map(|c| c.to_string()).collect(),
    };
    let subscription = engine.create_subscription(NewSubscription {
        company_id: bakery.id,
        contact_id: owner.id,
        plan: "onRetail Business".into(),
        modules: vec![
            module("POS", "Kasse", &["Bonierung", "Tagesabschluss", "TSE"]),
            module("STOCK", "Warenwirtschaft", &["Lager", "Inventur"]),
            module("DATEV", "DATEV-Export", &["Buchungsstapel"]),
        ],
        started_on: today.to_string(),
        renews_on: in_days(365),
        staff_id: Some(staff.id),
    })?;
    let sign_link = engine.create_link(document.head().record, Some(owner.id), LinkScope::Sign)?;
    let quote_link = engine.create_link(quote.head().record, Some(owner.id), LinkScope::View)?;
    Ok(format!(
        "\n  direct customer    {bakery_id}  {bakery_name}, manager {owner_id} {owner_email} (every permission)\
         \n  document to sign   {document_id}  sign link: {sign_link}\
         \n  quote (sent)       {quote_id}  view link: {quote_link}\
         \n  order              {order_id}  (from quote {signed_id})\
         \n  invoice            {invoice_id}  {invoice_number}\
         \n  subscription       {subscription_id}  {plan}\n",
        bakery_id = bakery.id,
        bakery_name = bakery.name,
        owner_id = owner.id,
        owner_email = owner.email,
        document_id = document.id,
        sign_link = sign_link.url,
        quote_id = quote.id,
        quote_link = quote_link.url,
        order_id = order.id,
        signed_id = signed.id,
        invoice_id = invoice.id,
        invoice_number = invoice.number,
        subscription_id = subscription.id,
        plan = subscription.plan,
    ))
}
