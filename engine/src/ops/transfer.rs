//! `export` and `import`: the whole store as JSON lines, one stored pair a line.
//!
//! `{"tree": "tickets", "key": "<hex>", "value": <the stored JSON>}` for JSON trees and
//! `{"tree": "blobs", "key": "<hex>", "bytes": "<base64>"}` for the others. Values are
//! copied byte for byte, so export → import → export is identical. The trees that
//! name blobs (`raw_mail`, `blobs`) keep only hashes since schema 5; their lines
//! carry the blob's bytes as before, so dumps of every schema read alike, and
//! import writes the bytes back as blob files. The first line is
//! `{"signing_keys": {…}}`: reply addresses and links already mailed out must still
//! verify after a restore, so an export is as secret as the data dir.

use std::io::{BufRead, Write};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::EngineError;
use crate::store::blobs::{blob_id, holds_the_bytes, read_referenced, reference_value};
use crate::store::trees::ValueEncoding;
use crate::store::{StoreError, Tree};
use crate::Engine;

#[derive(Serialize)]
struct LineOut<'a> {
    tree: &'static str,
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysLine {
    signing_keys: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn<'a> {
    tree: String,
    key: String,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    bytes: Option<String>,
}

/// Why an import stopped. Nothing is imported into a store that is not empty.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the data dir is not empty; import only into an empty one")]
    NotEmpty,
    #[error("line {line}: {reason}")]
    BadLine { line: usize, reason: String },
    #[error("reading the input failed: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A history entry of the dump was changed after it was written.
    #[error("refused, nothing imported: {0}")]
    BrokenChain(#[from] crate::chain::ChainBreak),
}

/// Whether an export carries the signing keys (the first line). Without them a
/// restore mints new keys, so links and reply addresses mailed before stop working;
/// with them the dump is as secret as the data dir.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportSecrets {
    Included,
    LeftOut,
}

impl Engine {
    /// Writes every stored pair, tree by tree in key order, after the signing keys;
    /// returns the line count.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, EngineError> {
        self.export_with(out, ExportSecrets::Included)
    }

    /// [`Engine::export`], with or without the signing keys.
    pub fn export_with(
        &self,
        out: &mut dyn Write,
        secrets: ExportSecrets,
    ) -> Result<u64, EngineError> {
        let io_error = |error: std::io::Error| {
            EngineError::Store(StoreError::Backend(format!(
                "writing the export failed: {error}"
            )))
        };
        let mut lines = 0u64;
        if secrets == ExportSecrets::Included {
            let keys = serde_json::to_string(&KeysLine {
                signing_keys: self.keys.to_json(),
            })
            .map_err(|error| EngineError::Store(StoreError::Backend(error.to_string())))?;
            out.write_all(keys.as_bytes()).map_err(io_error)?;
            out.write_all(b"\n").map_err(io_error)?;
            lines += 1;
        }
        for tree in Tree::ALL.into_iter().filter(|tree| tree.is_exported()) {
            for item in self.store.scan_prefix(tree, &[], false) {
                let (key, mut value) = item?;
                if tree.names_blobs() {
                    value = read_referenced(self.store.as_ref(), tree, &key, &value)?;
                }
                let line = match tree.value_encoding() {
                    ValueEncoding::Json => {
                        let text = std::str::from_utf8(&value)
                            .map_err(|error| corrupt(tree, error.to_string()))?;
                        let raw: &RawValue = serde_json::from_str(text)
                            .map_err(|error| corrupt(tree, error.to_string()))?;
                        serde_json::to_string(&LineOut {
                            tree: tree.name(),
                            key: hex::encode(&key),
                            value: Some(raw),
                            bytes: None,
                        })
                    }
                    ValueEncoding::Bytes => serde_json::to_string(&LineOut {
                        tree: tree.name(),
                        key: hex::encode(&key),
                        value: None,
                        bytes: Some(BASE64.encode(&value)),
                    }),
                }
                .map_err(|error| corrupt(tree, error.to_string()))?;
                out.write_all(line.as_bytes()).map_err(io_error)?;
                out.write_all(b"\n").map_err(io_error)?;
                lines += 1;
            }
        }
        out.flush().map_err(io_error)?;
        Ok(lines)
    }

    /// [`Engine::export`] of one consistent state while other writers run (a backup
    /// from a running server): commits wait until the export is written, so write
    /// it somewhere fast (a local file), not to a slow reader.
    pub fn export_consistent(
        &self,
        out: &mut dyn Write,
        secrets: ExportSecrets,
    ) -> Result<u64, EngineError> {
        let mut exported = None;
        self.store
            .exclusive(&mut || exported = Some(self.export_with(&mut *out, secrets)))?;
        exported.unwrap_or_else(|| {
            Err(EngineError::Store(StoreError::Backend(
                "the export did not run".into(),
            )))
        })
    }

    /// Reads an export into this store, which must be empty. Every line is checked
    /// before anything is written, so a bad file imports nothing.
    pub fn import(&self, input: &mut dyn BufRead) -> Result<u64, ImportError> {
        if !self.store.is_empty().map_err(EngineError::from)? {
            return Err(ImportError::NotEmpty);
        }
        let mut pairs = Vec::new();
        let mut signing_keys = None;
        for (index, line) in input.lines().enumerate() {
            let line_number = index + 1;
            let line = line.map_err(ImportError::Read)?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: String| ImportError::BadLine {
                line: line_number,
                reason,
            };
            if line.starts_with("{\"signing_keys\"") {
                let keys: KeysLine = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
                signing_keys = Some(keys.signing_keys);
                continue;
            }
            let parsed: LineIn<'_> = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            let tree = Tree::from_name(&parsed.tree)
                .ok_or_else(|| bad(format!("unknown tree {:?}", parsed.tree)))?;
            let key = hex::decode(&parsed.key).map_err(|e| bad(format!("key: {e}")))?;
            let value = match (tree.value_encoding(), parsed.value, parsed.bytes) {
                (ValueEncoding::Json, Some(raw), None) => raw.get().as_bytes().to_vec(),
                (ValueEncoding::Bytes, None, Some(encoded)) => BASE64
                    .decode(encoded)
                    .map_err(|e| bad(format!("bytes: {e}")))?,
                _ => {
                    return Err(bad(format!(
                        "tree {} takes {}",
                        tree.name(),
                        match tree.value_encoding() {
                            ValueEncoding::Json => "\"value\"",
                            ValueEncoding::Bytes => "\"bytes\"",
                        }
                    )))
                }
            };
            if tree.names_blobs() && !holds_the_bytes(&key, &value) {
                return Err(bad(format!(
                    "the bytes of {} {} do not hash to their key",
                    tree.name(),
                    parsed.key
                )));
            }
            pairs.push((tree, key, value));
        }
        check_chains(&pairs)?;
        if let (Some(keys), Some(data_dir)) = (&signing_keys, &self.data_dir) {
            crate::links::KeyRing::replace_file(data_dir, keys).map_err(EngineError::from)?;
        }
        // The blobs first, durable before any pair that names them is written.
        let mut blobs = Vec::new();
        for (_, key, value) in pairs.iter().filter(|(tree, _, _)| tree.names_blobs()) {
            let id = blob_id(value);
            debug_assert_eq!(id.as_slice(), key.as_slice());
            self.store.put_blob(&id, value).map_err(EngineError::from)?;
            blobs.push(id);
        }
        self.store.blobs().sync(&blobs).map_err(EngineError::from)?;
        for (tree, key, value) in &pairs {
            let reference;
            let stored: &[u8] = if tree.names_blobs() {
                reference = reference_value(value.len() as u64);
                &reference
            } else {
                value
            };
            self.store
                .insert_raw(*tree, key, stored)
                .map_err(EngineError::from)?;
        }
        self.store.durable().map_err(EngineError::from)?;
        Ok(pairs.len() as u64 + u64::from(signing_keys.is_some()))
    }
}

/// Follows every history chain of a dump before anything is written, so a changed
/// entry is refused with its name. Dumps of schema 2 have no chains yet (the next
/// open builds them).
fn check_chains(pairs: &[(Tree, Vec<u8>, Vec<u8>)]) -> Result<(), ImportError> {
    let schema = pairs
        .iter()
        .find(|(tree, key, _)| *tree == Tree::Meta && key == b"schema_version")
        .and_then(|(_, _, value)| crate::store::trees::trailing_u64(value))
        .unwrap_or(crate::store::SCHEMA_VERSION);
    if schema < 3 {
        return Ok(());
    }
    let mut walker = crate::chain::ChainWalker::default();
    let mut history: Vec<&(Tree, Vec<u8>, Vec<u8>)> = pairs
        .iter()
        .filter(|(tree, _, _)| *tree == Tree::History)
        .collect();
    history.sort_by(|a, b| a.1.cmp(&b.1));
    for (_, _, value) in history {
        let entry: crate::model::HistoryEntry =
            crate::store::codec::decode(Tree::History, value).map_err(EngineError::from)?;
        walker.check(&entry)?;
    }
    Ok(())
}

fn corrupt(tree: Tree, reason: String) -> EngineError {
    EngineError::Store(StoreError::Corrupt {
        tree: tree.name(),
        reason,
    })
}
