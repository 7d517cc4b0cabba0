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
