//! What a signature binds: the canonical inputs of a signed document or accepted
//! quote, and their SHA-256. Anyone recomputes it from the evidence:
//! `sha256(canonical_json(inputs))`, hex, with `chain::canonical_json`'s rules
//! (sorted keys, no whitespace), e.g. in Python
//! `hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":"),
//! ensure_ascii=False).encode()).hexdigest()`.

use serde_json::{json, Value};

use crate::chain::{canonical_json, sha256_hex};
use crate::records::document::Document;
use crate::records::quote::Quote;

/// The inputs a document's signature binds: its content, field definitions, the
/// values (with the signature image), the signer and the time.
pub fn document_inputs(document: &Document) -> Value {
    json!({
        "record": format!("{}", document.id),
        "title": document.title,
        "body_html": document.body_html,
        "fields": document.fields,
        "content_sha256": document_content_sha256(document),
        "values": document.values,
        "signer": document.signer,
        "signed_at": document.signed_at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    })
}

/// What the signer reads before signing: the document's content and its fields,
/// without values. The sign page shows its SHA-256, and the signature's inputs carry
/// it, so the signer can tell they signed exactly what they saw.
pub fn document_content(document: &Document) -> Value {
    json!({
        "record": format!("{}", document.id),
        "title": document.title,
        "body_html": document.body_html,
        "fields": document.fields,
    })
}

pub fn document_content_sha256(document: &Document) -> String {
    sha256_hex(canonical_json(&document_content(document)).as_bytes())
}

pub fn document_sha256(document: &Document) -> String {
    sha256_hex(canonical_json(&document_inputs(document)).as_bytes())
}

/// The inputs an accepted quote's signature binds: its lines and total, the
/// signature, the signer and the time.
pub fn quote_inputs(quote: &Quote) -> Value {
    json!({
        "record": format!("{}", quote.id),
        "title": quote.title,
        "lines": quote.lines,
        "currency": quote.currency,
        "total_cents": quote.total_cents,
        "valid_until": quote.valid_until.to_string(),
        "signature": quote.signature,
        "signer": quote.signer,
        "signed_at": quote.signed_at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    })
}

pub fn quote_sha256(quote: &Quote) -> String {
    sha256_hex(canonical_json(&quote_inputs(quote)).as_bytes())
}
