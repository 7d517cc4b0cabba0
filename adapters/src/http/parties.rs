//! `/companies`, `/contacts`, `/staff`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};

use kontor_engine::ids::{CompanyId, ContactId, StaffId};
use kontor_engine::model::{CompanyKind, ContactRole, RecordRef};
use kontor_engine::ops::parties::{NewCompany, NewContact, NewStaff};
use kontor_engine::ops::PageRequest;

use super::error::ApiError;
use super::extract::{parse_json, ApiJson, ApiQuery, RawBody};
use super::wire::*;
use super::{parse_id, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/companies", post(create_company).get(list_companies))
        .route("/companies/{id}", get(get_company))
        .route("/companies/{id}/history", get(company_history))
        .route("/contacts", post(create_contact).get(list_contacts))
        .route("/contacts/{id}", get(get_contact))
        .route("/contacts/{id}/permissions", put(set_permissions))
        .route("/contacts/{id}/login-link", post(send_login_link))
        .route("/staff", post(create_staff).get(list_staff))
        .route("/staff/{id}", get(get_staff))
}

#[utoipa::path(post, path = "/api/v1/companies", tag = "parties", request_body = NewCompanyJson,
    responses((status = 201, body = CompanyJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn create_company(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewCompanyJson>,
) -> Result<(StatusCode, Json<CompanyJson>), ApiError> {
    let reseller_id = body
        .reseller_id
        .as_deref()
        .map(|id| parse_id::<CompanyId>(id, "company", Some("reseller_id")))
        .transpose()?;
    let new = NewCompany {
        name: body.name,
        kind: match body.kind {
            CompanyKindJson::Customer => CompanyKind::Customer,
            CompanyKindJson::Reseller => CompanyKind::Reseller,
        },
        reseller_id,
        onretail_instance_ids: body.onretail_instance_ids,
    };
    let company = state.run(move |engine| engine.create_company(new)).await?;
    Ok((StatusCode::CREATED, Json(company.into())))
}

/// Companies, newest first; `kind` and `reseller_id` filter.
#[utoipa::path(get, path = "/api/v1/companies", tag = "parties", params(CompanyListQuery),
    responses((status = 200, body = ListJson<CompanyJson>), (status = 400, body = ErrorJson)))]
pub async fn list_companies(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<CompanyListQuery>,
) -> Result<Json<ListJson<CompanyJson>>, ApiError> {
    let kind = match query.kind.as_deref() {
        None => None,
        Some("customer") => Some(CompanyKind::Customer),
        Some("reseller") => Some(CompanyKind::Reseller),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid",
                "kind",
                "must be customer or reseller",
            ))
        }
    };
    // An id that cannot exist matches nothing, as an unknown one does.
    let reseller_id = query
        .reseller_id
        .as_deref()
        .map(|id| id.parse::<CompanyId>().unwrap_or(CompanyId(0)));
    let list = state
        .run(move |engine| {
            let page = engine.list_companies(
                kind,
                reseller_id,
                PageRequest::new(query.page, query.per_page)?,
            )?;
            ListJson::from_page(page, |company| Ok(company.into()))
        })
        .await?;
    Ok(Json(list))
}

/// Contacts, newest first; `company_id` filters.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "parties", params(ContactListQuery),
    responses((status = 200, body = ListJson<ContactJson>), (status = 400, body = ErrorJson)))]
pub async fn list_contacts(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ContactListQuery>,
) -> Result<Json<ListJson<ContactJson>>, ApiError> {
    let company_id = query
        .company_id
        .as_deref()
        .map(|id| id.parse::<CompanyId>().unwrap_or(CompanyId(0)));
    let list = state
        .run(move |engine| {
            let page =
                engine.list_contacts(company_id, PageRequest::new(query.page, query.per_page)?)?;
            ListJson::from_page(page, |contact| Ok(contact.into()))
        })
        .await?;
    Ok(Json(list))
}

/// Staff, newest first.
#[utoipa::path(get, path = "/api/v1/staff", tag = "parties", params(PageQuery),
    responses((status = 200, body = ListJson<StaffJson>), (status = 400, body = ErrorJson)))]
pub async fn list_staff(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListJson<StaffJson>>, ApiError> {
    let list = state
        .run(move |engine| {
            let page = engine.list_staff(PageRequest::new(query.page, query.per_page)?)?;
            ListJson::from_page(page, |staff| Ok(staff.into()))
        })
        .await?;
    Ok(Json(list))
}

#[utoipa::path(get, path = "/api/v1/companies/{id}", tag = "parties",
    responses((status = 200, body = CompanyJson), (status = 404, body = ErrorJson)))]
pub async fn get_company(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CompanyJson>, ApiError> {
    let id: CompanyId = parse_id(&id, "company", None)?;
    let company = state.run(move |engine| engine.company(id)).await?;
    Ok(Json(company.into()))
}

/// The company's history: permission changes and other company events, oldest first.
#[utoipa::path(get, path = "/api/v1/companies/{id}/history", tag = "parties", params(PageQuery),
    responses((status = 200, body = ListJson<HistoryItemJson>), (status = 404, body = ErrorJson)))]
pub async fn company_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ListJson<HistoryItemJson>>, ApiError> {
    let id: CompanyId = parse_id(&id, "company", None)?;
    let list = state
        .run(move |engine| {
            engine.company(id)?;
            let request = PageRequest::new(query.page, query.per_page)?;
            let page = engine.history(RecordRef::company(id), request)?;
            ListJson::from_page(page, |entry| HistoryItemJson::new(engine, entry))
        })
        .await?;
    Ok(Json(list))
}

#[utoipa::path(post, path = "/api/v1/contacts", tag = "parties", request_body = NewContactJson,
    responses((status = 201, body = ContactJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn create_contact(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewContactJson>,
) -> Result<(StatusCode, Json<ContactJson>), ApiError> {
    let new = NewContact {
        company_id: parse_id(&body.company_id, "company", Some("company_id"))?,
        name: body.name,
        email: body.email,
        role: match body.role {
            RoleJson::Manager => ContactRole::Manager,
            RoleJson::Member => ContactRole::Member,
        },
        locale: body.locale,
    };
    let contact = state.run(move |engine| engine.create_contact(new)).await?;
    Ok((StatusCode::CREATED, Json(contact.into())))
}

#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "parties",
    responses((status = 200, body = ContactJson), (status = 404, body = ErrorJson)))]
pub async fn get_contact(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ContactJson>, ApiError> {
    let id: ContactId = parse_id(&id, "contact", None)?;
    let contact = state.run(move |engine| engine.contact(id)).await?;
    Ok(Json(contact.into()))
}

/// Only at the request of a manager of the same company (else 422 `not_a_manager`);
/// no commercial permissions for a reseller's customer (422 `reseller_customer`).
#[utoipa::path(put, path = "/api/v1/contacts/{id}/permissions", tag = "parties", request_body = SetPermissionsJson,
    responses((status = 200, body = ContactJson), (status = 400, body = ErrorJson), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn set_permissions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SetPermissionsJson>,
) -> Result<Json<ContactJson>, ApiError> {
    let id: ContactId = parse_id(&id, "contact", None)?;
    let requested_by: ContactId = parse_id(&body.requested_by, "contact", Some("requested_by"))?;
    let to = PermissionsJson {
        portal: body.portal,
        quotes: body.quotes,
        orders: body.orders,
        invoices: body.invoices,
        subscriptions: body.subscriptions,
    }
    .into();
    let contact = state
        .run(move |engine| engine.set_permissions(id, to, requested_by))
        .await?;
    Ok(Json(contact.into()))
}

/// Mails the contact a login link (support sending the access details again); 422
/// `no_portal_access` without the `portal` permission. The body is empty or `{}`.
#[utoipa::path(post, path = "/api/v1/contacts/{id}/login-link", tag = "parties",
    responses((status = 202, description = "the login link is queued"), (status = 404, body = ErrorJson), (status = 422, body = ErrorJson)))]
pub async fn send_login_link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawBody(bytes): RawBody,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let id: ContactId = parse_id(&id, "contact", None)?;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let _: EmptyJson = parse_json(&bytes)?;
    }
    state
        .run(move |engine| engine.send_login_link_to(id))
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "queued"})),
    ))
}

/// `{}`: an action without fields.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyJson {}

#[utoipa::path(post, path = "/api/v1/staff", tag = "parties", request_body = NewStaffJson,
    responses((status = 201, body = StaffJson), (status = 400, body = ErrorJson), (status = 409, body = ErrorJson)))]
pub async fn create_staff(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<NewStaffJson>,
) -> Result<(StatusCode, Json<StaffJson>), ApiError> {
    let new = NewStaff {
        name: body.name,
        email: body.email,
    };
    let staff = state.run(move |engine| engine.create_staff(new)).await?;
    Ok((StatusCode::CREATED, Json(staff.into())))
}

#[utoipa::path(get, path = "/api/v1/staff/{id}", tag = "parties",
    responses((status = 200, body = StaffJson), (status = 404, body = ErrorJson)))]
pub async fn get_staff(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StaffJson>, ApiError> {
    let id: StaffId = parse_id(&id, "staff", None)?;
    let staff = state.run(move |engine| engine.staff(id)).await?;
    Ok(Json(staff.into()))
}
