//! Request extractors that answer the contract's error JSON instead of axum's plain
//! text, naming the field that was wrong.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// A JSON body. Unknown fields, missing fields and wrong types are 400 with `fields`
/// naming each; a body over the limit is 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(content_type) = request.headers().get(header::CONTENT_TYPE) {
            let content_type = content_type.to_str().unwrap_or("");
            if !content_type.starts_with("application/json") && !content_type.contains("+json") {
                return Err(ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    format!("expected application/json, got {content_type}"),
                ));
            }
        }
        let bytes = read_body(request, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The raw request body, for handlers that must see the exact bytes (signatures,
/// raw mail); a body over the server's limit is 413 in the contract's shape.
pub struct RawBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(request, state).await.map(RawBody)
    }
}

/// The body's bytes; over the router's limit is 413 in the contract's shape.
pub async fn read_body<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<axum::body::Bytes, ApiError> {
    axum::body::Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the request body is too large",
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    rejection.body_text(),
                )
            }
        })
}

/// Parses JSON, turning serde's error into one naming the field.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        describe_serde_error(
            &path,
            &inner.to_string(),
            inner.is_syntax() || inner.is_eof(),
        )
    })
}

/// Query parameters, with the same error shape as bodies.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        let deserializer = serde_urlencoded_deserializer(query);
        // The path names the parameter (`page=abc` is an error of `page`).
        serde_path_to_error::deserialize(deserializer)
            .map(ApiQuery)
            .map_err(|error| {
                let path = error.path().to_string();
                describe_serde_error(&path, &error.into_inner().to_string(), false)
            })
    }
}

fn serde_urlencoded_deserializer(
    query: &str,
) -> serde::de::value::MapDeserializer<
    'static,
    std::vec::IntoIter<(String, QueryValue)>,
    serde::de::value::Error,
> {
    let pairs: Vec<(String, QueryValue)> = form_pairs(query)
        .into_iter()
        .map(|(k, v)| (k, QueryValue(v)))
        .collect();
    serde::de::value::MapDeserializer::new(pairs.into_iter())
}

/// Splits `a=1&b=x%20y` into decoded pairs; empty values count as absent.
fn form_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            (!value.is_empty()).then(|| (percent_decode(key), value))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'+' => out.push(b' '),
            b'%' => match bytes.get(index + 1..index + 3) {
                Some(&[high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    let digit = |b: u8| (b as char).to_digit(16).unwrap_or(0) as u8;
                    out.push(digit(high) * 16 + digit(low));
                    index += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query value that deserialises into strings, numbers or booleans as the target asks.
struct QueryValue(String);

impl<'de> serde::de::IntoDeserializer<'de, serde::de::value::Error> for QueryValue {
    type Deserializer = QueryValueDeserializer;

    fn into_deserializer(self) -> Self::Deserializer {
        QueryValueDeserializer(self.0)
    }
}

struct QueryValueDeserializer(String);

impl<'de> serde::Deserializer<'de> for QueryValueDeserializer {
    type Error = serde::de::value::Error;

    fn deserialize_any<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_string(self.0)
    }

    fn deserialize_option<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_some(self)
    }

    fn deserialize_u32<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0.trim().parse::<u32>() {
            Ok(number) => visitor.visit_u32(number),
            Err(_) => Err(serde::de::Error::custom(format!(
                "{:?} is not a whole number",
                self.0
            ))),
        }
    }

    fn deserialize_u64<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0.trim().parse::<u64>() {
            Ok(number) => visitor.visit_u64(number),
            Err(_) => Err(serde::de::Error::custom(format!(
                "{:?} is not a whole number",
                self.0
            ))),
        }
    }

    fn deserialize_bool<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0.trim() {
            "true" | "1" => visitor.visit_bool(true),
            "false" | "0" => visitor.visit_bool(false),
            other => Err(serde::de::Error::custom(format!(
                "{other:?} is not true or false"
            ))),
        }
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Turns serde's message into the contract's error: which field, and what is wrong.
fn describe_serde_error(path: &str, message: &str, syntax: bool) -> ApiError {
    if syntax {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body is not valid JSON: {message}"),
        );
    }
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
    };
    let join = |field: &str| {
        if path == field || path.ends_with(&format!(".{field}")) {
            path.to_string()
        } else if path == "." || path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(field) = quoted("missing field `") {
        return ApiError::bad_request("missing", &join(&field), "is required");
    }
    if let Some(field) = quoted("unknown field `") {
        return ApiError::bad_request("unknown_field", &join(&field), "is not a known field");
    }
    let field = if path == "." || path.is_empty() {
        "body"
    } else {
        path
    };
    let message = message.split(" at line ").next().unwrap_or(message);
    ApiError::bad_request("invalid", field, message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        minutes: i64,
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        flag: bool,
    }

    fn field_of(json: &str) -> (String, Vec<String>) {
        let error = parse_json::<Body>(json.as_bytes()).unwrap_err();
        (error.code, error.fields.keys().cloned().collect())
    }

    #[test]
    fn serde_errors_name_the_field() {
        assert_eq!(
            field_of(r#"{"minutes": 1}"#),
            ("missing".into(), vec!["name".into()])
        );
        assert_eq!(
            field_of(r#"{"name": "a", "minutes": 1, "x": 2}"#),
            ("unknown_field".into(), vec!["x".into()])
        );
        assert_eq!(
            field_of(r#"{"name": "a", "minutes": "ten"}"#),
            ("invalid".into(), vec!["minutes".into()])
        );
        assert_eq!(
            field_of(r#"{"name": "a", "minutes": 1, "inner": {"flag": 3}}"#),
            ("invalid".into(), vec!["inner.flag".into()])
        );
        assert_eq!(field_of(r#"{"name": "a", "#).0, "invalid_json");
    }

    #[test]
    fn query_strings_decode() {
        assert_eq!(
            form_pairs("status=in_progress&q=Kasse+defekt%21&empty="),
            vec![
                ("status".into(), "in_progress".into()),
                ("q".into(), "Kasse defekt!".into())
            ]
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
