//! Tamper-evident histories (CONTRACT.md section 3): each history entry carries
//! `prev_hash` and `hash = SHA-256(prev_hash ++ canonical JSON of the entry without
//! both hashes)`, hex. The canonical JSON is the stored entry with object keys sorted
//! by their UTF-8 bytes and no insignificant whitespace, so any language recomputes it
//! with its standard JSON library (`json.dumps(entry, sort_keys=True,
//! separators=(",", ":"), ensure_ascii=False)` in Python).

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::HistoryEntry;

/// The `prev_hash` of a record's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `value` as canonical JSON: sorted keys, no whitespace, strings escaped as
/// serde_json escapes them (only `"`, `\\` and control characters).
pub fn canonical_json(value: &impl Serialize) -> String {
    canonical_json_of(&serde_json::to_value(value).unwrap_or(Value::Null))
}

/// [`canonical_json`] of a value already in JSON form (no second conversion).
pub fn canonical_json_of(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (position, key) in keys.into_iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(inner) = map.get(key) {
                    write_canonical(inner, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hash `entry` must carry after `prev_hash`.
pub fn entry_hash(prev_hash: &str, entry: &HistoryEntry) -> String {
    let mut unhashed = serde_json::to_value(entry).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut unhashed {
        map.remove("hash");
        map.remove("prev_hash");
    }
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(canonical_json_of(&unhashed).as_bytes());
    hex::encode(hasher.finalize())
}

/// Links `entry` after `prev_hash`: sets both hashes.
pub fn seal(prev_hash: &str, entry: &mut HistoryEntry) {
    entry.prev_hash = prev_hash.to_string();
    entry.hash = entry_hash(prev_hash, entry);
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("{record} history entry {entry}: prev_hash does not name the entry before it")]
    Unlinked { record: String, entry: String },
    #[error("{record} history entry {entry}: hash does not match its content (changed after it was written)")]
    Altered { record: String, entry: String },
    #[error("{record}: the chain's head names {expected}, the last entry is {found}")]
    Truncated {
        record: String,
        expected: String,
        found: String,
    },
}

/// Follows one record's chain; entries in history order.
#[derive(Debug)]
pub struct ChainWalker {
    record: Option<crate::model::RecordRef>,
    last_hash: String,
}

impl Default for ChainWalker {
    fn default() -> Self {
        ChainWalker {
            record: None,
            last_hash: GENESIS.to_string(),
        }
    }
}

impl ChainWalker {
    /// Checks the next entry of the store (history keys are in record, then entry
    /// order, so one walker follows every chain in one pass).
    pub fn check(&mut self, entry: &HistoryEntry) -> Result<(), ChainBreak> {
        if self.record != Some(entry.record) {
            self.record = Some(entry.record);
            self.last_hash = GENESIS.to_string();
        }
        let record = record_name(entry.record);
        if entry.prev_hash != self.last_hash {
            return Err(ChainBreak::Unlinked {
                record,
                entry: entry.id.to_string(),
            });
        }
        if entry_hash(&entry.prev_hash, entry) != entry.hash {
            return Err(ChainBreak::Altered {
                record,
                entry: entry.id.to_string(),
            });
        }
        self.last_hash = entry.hash.clone();
        Ok(())
    }
}

/// `quote qt_12`: how the CLI names a record.
pub fn record_name(record: crate::model::RecordRef) -> String {
    format!(
        "{} {}",
        record.kind.as_str(),
        crate::records::display_id(record)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_has_no_spaces() {
        let value =
            serde_json::json!({"b": 1, "a": {"d": [1, {"z": true, "y": null}], "c": "ü\n"}});
        assert_eq!(
            canonical_json(&value),
            r#"{"a":{"c":"ü\n","d":[1,{"y":null,"z":true}]},"b":1}"#
        );
    }
}
