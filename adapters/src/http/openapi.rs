//! `GET /api/v1/openapi.json`: the API's description, generated from the handlers'
//! annotations and the wire types, so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{deliveries, inbound, links, parties, search, tickets, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(title = "Kontor staff API", description = "Tickets, parties, their histories and inbound mail. Every call needs `Authorization: Bearer <key>` (create one with `kontor keys create --name NAME`)."),
    paths(
        parties::create_company, parties::list_companies, parties::list_contacts, parties::list_staff, parties::get_company, parties::company_history,
        parties::create_contact, parties::get_contact, parties::set_permissions,
        parties::create_staff, parties::get_staff,
        tickets::create_ticket, tickets::list_tickets, tickets::get_ticket,
        tickets::post_message, tickets::set_status, tickets::assign,
        tickets::add_time_entry, tickets::history, tickets::attachment,
        search::search,
        webhooks::onretail,
        links::create_link, links::revoke_links, links::list_outbox,
        inbound::receive_email, inbound::list_quarantine, inbound::reprocess,
        deliveries::list_deliveries, deliveries::replay,
    ),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
