//! `GET /api/v1/openapi.json`: the API's description, generated from the handlers'
//! annotations and the wire types, so it cannot drift from the code.

use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use kontor_engine::model::RecordKind;

use super::{deliveries, inbound, links, parties, records, search, tickets, webhooks};

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
        records::create_document, records::list_documents, records::get_document,
        records::send_document, records::cancel_document, records::document_evidence,
        records::create_quote, records::list_quotes, records::get_quote, records::send_quote,
        records::accept_quote, records::decline_quote,
        records::list_orders, records::get_order, records::cancel_order,
        records::create_invoice, records::list_invoices, records::get_invoice,
        records::set_invoice_status,
        records::create_subscription, records::list_subscriptions, records::get_subscription,
        records::replace_modules, records::set_subscription_status,
    ),
    modifiers(&BearerAuth, &SharedVerbs),
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

/// The verbs every record kind shares (`history`, `messages`, `assign`,
/// `time-entries`) are registered by one loop over the kinds (`records::routes`);
/// they are described once, for tickets, and copied here for each other kind, so
/// the description follows the same loop.
struct SharedVerbs;

impl Modify for SharedVerbs {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for verb in ["history", "messages", "assign", "time-entries"] {
            let Some(ticket_item) = openapi
                .paths
                .paths
                .get(&format!("/api/v1/tickets/{{id}}/{verb}"))
                .cloned()
            else {
                continue;
            };
            for kind in RecordKind::RECORDS
                .into_iter()
                .filter(|kind| *kind != RecordKind::Ticket)
            {
                let plural = format!("{}s", kind.as_str());
                let mut item = ticket_item.clone();
                for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                    operation.tags = Some(vec![plural.clone()]);
                    operation.operation_id = operation
                        .operation_id
                        .as_ref()
                        .map(|id| format!("{id}_{}", kind.as_str()));
                }
                openapi
                    .paths
                    .paths
                    .insert(format!("/api/v1/{plural}/{{id}}/{verb}"), item);
            }
        }
    }
}

pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(value: &serde_json::Value, found: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, inner) in map {
                    match (key.as_str(), inner.as_str()) {
                        ("$ref", Some(target)) => found.push(target.to_string()),
                        _ => refs(inner, found),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
            _ => {}
        }
    }

    #[test]
    fn every_record_kind_is_described_with_its_own_routes_and_the_shared_verbs() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("openapi as JSON");
        let paths = &document["paths"];
        for path in [
            "/api/v1/documents",
            "/api/v1/documents/{id}/evidence",
            "/api/v1/quotes/{id}/decline",
            "/api/v1/orders/{id}/cancel",
            "/api/v1/invoices/{id}/status",
            "/api/v1/subscriptions/{id}/modules",
        ] {
            assert!(paths.get(path).is_some(), "{path} is not described");
        }
        for kind in RecordKind::RECORDS {
            for verb in ["history", "messages", "assign", "time-entries"] {
                let path = format!("/api/v1/{}s/{{id}}/{verb}", kind.as_str());
                assert!(paths.get(&path).is_some(), "{path} is not described");
            }
        }
        // Operation ids stay unique once the verbs are copied per kind.
        let mut ids: Vec<&str> = paths
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.values())
            .flat_map(|item| item.as_object().into_iter().flat_map(|ops| ops.values()))
            .filter_map(|operation| operation["operationId"].as_str())
            .collect();
        let total = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), total, "operation ids repeat");
    }

    #[test]
    fn every_schema_a_route_names_is_defined() {
        let document = serde_json::to_value(ApiDoc::openapi()).expect("openapi as JSON");
        let mut found = Vec::new();
        refs(&document["paths"], &mut found);
        refs(&document["components"], &mut found);
        assert!(!found.is_empty());
        for target in found {
            let name = target
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{target} is not a schema reference"));
            assert!(
                document["components"]["schemas"].get(name).is_some(),
                "{name} is referenced but not defined"
            );
        }
    }
}
