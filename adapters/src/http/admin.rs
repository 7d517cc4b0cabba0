//! `/admin/…`: what `kontor export`, `kontor keys …` and `kontor reindex` do while a
//! server holds the data dir, so backups and new keys need no downtime. Not part of
//! the staff API: the bearer is the server's admin secret, which `serve` writes to
//! `<data_dir>/admin.json` readable by its own user only (see `crate::admin`), so
//! whoever may read the data dir may administer, and nobody else.

use std::io::{Seek, Write};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use kontor_engine::model::ApiKey;
use kontor_engine::ops::transfer::ExportSecrets;
use kontor_engine::EngineError;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::AppState;

/// The header that tells how many lines an export carries.
pub const EXPORT_LINES_HEADER: &str = "x-kontor-export-lines";

pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/keys", post(create_key).get(list_keys))
        .route("/admin/keys/revoke", post(revoke_keys))
        .route("/admin/export", get(export))
        .route("/admin/reindex", post(reindex))
        .route_layer(middleware::from_fn_with_state(state, require_admin_secret))
}

/// A key as the admin routes show it; the secret only in the answer that made it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AdminKeyJson {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret: Option<String>,
}

impl AdminKeyJson {
    fn of(key: &ApiKey, secret: Option<String>) -> Self {
        AdminKeyJson {
            id: key.id.to_string(),
            name: key.name.clone(),
            created_at: key.created_at.to_rfc3339(),
            revoked_at: key.revoked_at.map(|at| at.to_rfc3339()),
            secret,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyNameBody {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportQuery {
    #[serde(default)]
    without_secrets: bool,
}

async fn create_key(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<KeyNameBody>,
) -> Result<(StatusCode, Json<AdminKeyJson>), ApiError> {
    let (key, secret) = state
        .run(move |engine| engine.create_api_key(&body.name))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AdminKeyJson::of(&key, Some(secret))),
    ))
}

async fn list_keys(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let keys = state.run(|engine| engine.api_keys()).await?;
    let items: Vec<AdminKeyJson> = keys.iter().map(|key| AdminKeyJson::of(key, None)).collect();
    Ok(Json(
        serde_json::json!({ "items": items, "total": items.len() }),
    ))
}

async fn revoke_keys(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<KeyNameBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let name = body.name.clone();
    let revoked = state
        .run(move |engine| engine.revoke_api_keys(&body.name))
        .await?;
    if revoked == 0 {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no active key is named {name:?}"),
        )
        .with_field("name", "no active key has this name"));
    }
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}

async fn reindex(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let records = state.run(|engine| engine.reindex(&mut |_, _| {})).await?;
    Ok(Json(serde_json::json!({ "records": records })))
}

/// The whole store as JSON lines, one consistent state. Written first to an
/// unlinked file in the data dir (writers wait only for the local write, never
/// for the client's reading), then streamed from it.
async fn export(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let secrets = if query.without_secrets {
        ExportSecrets::LeftOut
    } else {
        ExportSecrets::Included
    };
    let (file, lines) = state
        .run(move |engine| {
            let io = |error: std::io::Error| {
                EngineError::Store(kontor_engine::store::StoreError::Backend(format!(
                    "export: {error}"
                )))
            };
            let dir = engine
                .data_dir()
                .map(std::path::Path::to_path_buf)
                .unwrap_or_else(std::env::temp_dir);
            let path = dir.join(format!("export-{}.tmp", std::process::id()));
            let mut file = std::fs::File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io)?;
            // Gone from the directory at once: nothing is left behind if we stop.
            std::fs::remove_file(&path).map_err(io)?;
            let lines = {
                let mut out = std::io::BufWriter::new(&mut file);
                let lines = engine.export_consistent(&mut out, secrets)?;
                out.flush().map_err(io)?;
                lines
            };
            file.rewind().map_err(io)?;
            Ok((file, lines))
        })
        .await?;
    let file = tokio::fs::File::from_std(file);
    let stream = futures_util::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut chunk = vec![0u8; 64 * 1024];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(read) => {
                chunk.truncate(read);
                Some((Ok::<_, std::io::Error>(chunk), file))
            }
            Err(error) => Some((Err(error), file)),
        }
    });
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    headers.insert(EXPORT_LINES_HEADER, HeaderValue::from(lines));
    Ok(response)
}

/// `Authorization: Bearer <admin secret>`, compared in constant time.
async fn require_admin_secret(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let expected = state.settings.admin_secret.as_bytes();
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .unwrap_or("")
        .as_bytes();
    if expected.is_empty() || !same_bytes(expected, given) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the admin routes need the server's admin secret (from <data_dir>/admin.json)",
        )
        .into_response();
    }
    next.run(request).await
}

fn same_bytes(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len()
        && expected
            .iter()
            .zip(given)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}
