//! Signing keys kept in the data dir, and the tokens made with them.
//!
//! Keys live in `<data_dir>/keys/signing.json`, created on first start: one active key
//! that signs, older keys that still verify until removed (rotation). Today they sign
//! the plus-token of a ticket's reply address; magic links use the same ring.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};

use crate::ids::ContactId;
use crate::model::{RecordKind, RecordRef};

type HmacSha256 = Hmac<Sha256>;

/// The file format of the key ring.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyFile {
    active: String,
    /// key id -> hex secret
    keys: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    #[error("signing keys {path}: {reason}")]
    Io { path: String, reason: String },
    #[error("signing keys {path} are unreadable: {reason}")]
    Corrupt { path: String, reason: String },
}

/// The HMAC-SHA256 keys this installation signs with.
#[derive(Clone)]
pub struct KeyRing {
    active: String,
    keys: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("active", &self.active)
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("keys").join("signing.json")
    }

    /// Loads the ring, creating it with one fresh key when there is none.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyRingError> {
        let path = Self::path(data_dir);
        let io_error = |reason: String| KeyRingError::Io {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text).map_err(|reason| KeyRingError::Corrupt {
                path: path.display().to_string(),
                reason,
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let ring = Self::generate("k1");
                let file = ring.to_file();
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io_error(e.to_string()))?;
                }
                let text =
                    serde_json::to_string_pretty(&file).map_err(|e| io_error(e.to_string()))?;
                write_private(&path, text.as_bytes()).map_err(|e| io_error(e.to_string()))?;
                Ok(ring)
            }
            Err(error) => Err(io_error(error.to_string())),
        }
    }

    fn parse(text: &str) -> Result<Self, String> {
        let file: KeyFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut keys = BTreeMap::new();
        for (id, secret) in file.keys {
            let bytes = hex::decode(&secret).map_err(|e| format!("key {id}: {e}"))?;
            if bytes.len() < 32 {
                return Err(format!("key {id} is shorter than 32 bytes"));
            }
            keys.insert(id, bytes);
        }
        if !keys.contains_key(&file.active) {
            return Err(format!("the active key {} is not in the ring", file.active));
        }
        Ok(KeyRing {
            active: file.active,
            keys,
        })
    }

    /// A ring of one new random key.
    pub fn generate(key_id: &str) -> Self {
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let mut keys = BTreeMap::new();
        keys.insert(key_id.to_string(), secret);
        KeyRing {
            active: key_id.to_string(),
            keys,
        }
    }

    /// The ring as the JSON its file holds, for `export`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.to_file()).unwrap_or(serde_json::Value::Null)
    }

    /// Replaces the ring file of `data_dir` with `json` (from an export); the running
    /// engine keeps the ring it loaded, so this is for `import` into a fresh data dir.
    pub fn replace_file(data_dir: &Path, json: &serde_json::Value) -> Result<(), KeyRingError> {
        let path = Self::path(data_dir);
        let text = json.to_string();
        Self::parse(&text).map_err(|reason| KeyRingError::Corrupt {
            path: "the import".into(),
            reason,
        })?;
        let temporary = path.with_extension("json.new");
        let io_error = |error: std::io::Error| KeyRingError::Io {
            path: path.display().to_string(),
            reason: error.to_string(),
        };
        let _ = std::fs::remove_file(&temporary);
        write_private(&temporary, text.as_bytes()).map_err(io_error)?;
        std::fs::rename(&temporary, &path).map_err(io_error)
    }

    fn to_file(&self) -> KeyFile {
        KeyFile {
            active: self.active.clone(),
            keys: self
                .keys
                .iter()
                .map(|(id, secret)| (id.clone(), hex::encode(secret)))
                .collect(),
        }
    }

    /// HMAC-SHA256 of `message` under the key `key_id`.
    pub fn sign_with(&self, key_id: &str, message: &[u8]) -> Option<[u8; 32]> {
        let secret = self.keys.get(key_id)?;
        let mut mac = HmacSha256::new_from_slice(secret).ok()?;
        mac.update(message);
        Some(mac.finalize().into_bytes().into())
    }

    /// The token in a record's reply address: the record and a tag only we can make,
    /// so a guessed `+<number>` address threads nothing. A ticket's token is its
    /// number (`42-1a2b3c4d5e`, as before the other kinds existed); another kind's
    /// starts with its letter (`q17-…`).
    pub fn reply_token(&self, record: RecordRef) -> String {
        let tag = self
            .sign_with(&self.active, reply_message(record).as_bytes())
            .map(|mac| hex::encode(&mac[..5]))
            .unwrap_or_default();
        format!("{}{}-{tag}", reply_letter(record.kind), record.id)
    }

    /// The record a reply token names, if a key of the ring made the token.
    pub fn verify_reply_token(&self, token: &str) -> Option<RecordRef> {
        let (name, tag) = token.split_once('-')?;
        let digits_at = name.find(|c: char| c.is_ascii_digit())?;
        let (letter, digits) = name.split_at(digits_at);
        let letter = letter.to_ascii_lowercase();
        let kind = RecordKind::ALL
            .into_iter()
            .find(|kind| *kind != RecordKind::Company && reply_letter(*kind) == letter)?;
        let record = RecordRef {
            kind,
            id: digits.parse().ok()?,
        };
        let expected_tag = hex::decode(tag.to_ascii_lowercase()).ok()?;
        if expected_tag.len() != 5 {
            return None;
        }
        let message = reply_message(record);
        self.keys.keys().find_map(|key_id| {
            let mac = self.sign_with(key_id, message.as_bytes())?;
            (mac.get(..5) == Some(expected_tag.as_slice())).then_some(record)
        })
    }
}

/// The letter a kind's reply tokens start with; tickets have none.
fn reply_letter(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Ticket => "",
        RecordKind::Document => "d",
        RecordKind::Quote => "q",
        RecordKind::Order => "o",
        RecordKind::Invoice => "i",
        RecordKind::Subscription => "s",
        RecordKind::Company => "c",
    }
}

/// What a reply token's tag signs. Tickets keep the message of their first tokens,
/// so addresses in mail already sent still thread.
fn reply_message(record: RecordRef) -> String {
    match record.kind {
        RecordKind::Ticket => format!("reply:{}", record.id),
        other => format!("reply:{}:{}", other.as_str(), record.id),
    }
}

/// The purpose magic links and their sessions are signed for; other tokens made
/// with the same keys (reply tokens) cannot pass as links.
pub const LINK_PURPOSE: &str = "link";

/// What a magic link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkScope {
    /// Read the record (a ticket, a quote, ...) and answer it.
    View,
    /// Sign a document or accept a quote.
    Sign,
    /// Log in to the portal as the contact.
    Login,
}

impl LinkScope {
    fn code(self) -> u8 {
        match self {
            LinkScope::View => 1,
            LinkScope::Sign => 2,
            LinkScope::Login => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(LinkScope::View),
            2 => Some(LinkScope::Sign),
            3 => Some(LinkScope::Login),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LinkScope::View => "view",
            LinkScope::Sign => "sign",
            LinkScope::Login => "login",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        [LinkScope::View, LinkScope::Sign, LinkScope::Login]
            .into_iter()
            .find(|scope| scope.as_str() == input)
    }
}

/// What a magic link (or the session cookie made from it) says: who may do what with
/// which record, until when, under which link epoch of the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkClaims {
    pub record: RecordRef,
    /// The contact the link was mailed to; `None` for a requester who is no contact.
    pub contact_id: Option<ContactId>,
    pub scope: LinkScope,
    /// Unix seconds, rounded down to the minute when encoded.
    pub expires_at: DateTime<Utc>,
    /// The record's link epoch when the link was made; bumping it revokes the link.
    pub epoch: u64,
}

/// Why a token was refused, checked in this order: its form and MAC first, so that
/// nothing a forger controls decides between the later answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRejected {
    /// Not made by any key of the ring (tampered, truncated, or its key removed).
    Forged,
    /// Authentic, but past its expiry: the holder may ask for a fresh one.
    Expired(LinkClaims),
}

/// The MAC is cut to 128 bits: forging still needs 2^128 tries, and the link stays
/// short enough for mail clients that wrap lines.
const LINK_MAC_BYTES: usize = 16;
const LINK_VERSION: u8 = 1;

impl KeyRing {
    /// The id of the key that signs now.
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// The ids of every key that still verifies.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.keys().cloned().collect()
    }

    /// A URL-safe token `<key id>.<base64url(claims ++ mac)>`, about 40 characters.
    /// `purpose` separates magic links from session cookies made of the same claims.
    pub fn sign_claims(&self, purpose: &str, claims: &LinkClaims) -> String {
        let payload = encode_claims(claims);
        let mac = self
            .sign_with(&self.active, &link_message(purpose, &self.active, &payload))
            .unwrap_or([0; 32]);
        let mut bytes = payload;
        bytes.extend_from_slice(&mac[..LINK_MAC_BYTES]);
        format!("{}.{}", self.active, URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Checks a token's MAC with the key it names (any key of the ring) and its expiry
    /// against `now`. Scope and revocation are the caller's to check: they need the
    /// record.
    pub fn verify_claims(
        &self,
        purpose: &str,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<LinkClaims, LinkRejected> {
        let (key_id, encoded) = token.split_once('.').ok_or(LinkRejected::Forged)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| LinkRejected::Forged)?;
        let split = bytes
            .len()
            .checked_sub(LINK_MAC_BYTES)
            .ok_or(LinkRejected::Forged)?;
        let (payload, mac) = bytes.split_at(split);
        let secret = self.keys.get(key_id).ok_or(LinkRejected::Forged)?;
        let mut verifier = HmacSha256::new_from_slice(secret).map_err(|_| LinkRejected::Forged)?;
        verifier.update(&link_message(purpose, key_id, payload));
        // verify_truncated_left compares in constant time.
        verifier
            .verify_truncated_left(mac)
            .map_err(|_| LinkRejected::Forged)?;
        let claims = decode_claims(payload).ok_or(LinkRejected::Forged)?;
        if claims.expires_at <= now {
            return Err(LinkRejected::Expired(claims));
        }
        Ok(claims)
    }

    /// A ring with one more key, which becomes the active one; the old keys still
    /// verify. Returns the new key's id.
    pub fn rotate(&mut self) -> String {
        let mut number = self.keys.len() + 1;
        while self.keys.contains_key(&format!("k{number}")) {
            number += 1;
        }
        let id = format!("k{number}");
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        self.keys.insert(id.clone(), secret);
        self.active = id.clone();
        id
    }

    /// Removes an old key: what it signed no longer verifies. The active key stays.
    pub fn remove(&mut self, key_id: &str) -> Result<(), String> {
        if key_id == self.active {
            return Err(format!("{key_id} is the active key; rotate first"));
        }
        self.keys
            .remove(key_id)
            .map(|_| ())
            .ok_or_else(|| format!("there is no key {key_id}"))
    }

    /// Writes the ring to `<data_dir>/keys/signing.json` (atomically, mode 0600).
    pub fn save(&self, data_dir: &Path) -> Result<(), KeyRingError> {
        let path = Self::path(data_dir);
        let io_error = |error: std::io::Error| KeyRingError::Io {
            path: path.display().to_string(),
            reason: error.to_string(),
        };
        let text =
            serde_json::to_string_pretty(&self.to_file()).map_err(|error| KeyRingError::Io {
                path: path.display().to_string(),
                reason: error.to_string(),
            })?;
        let temporary = path.with_extension("json.new");
        let _ = std::fs::remove_file(&temporary);
        write_private(&temporary, text.as_bytes()).map_err(io_error)?;
        std::fs::rename(&temporary, &path).map_err(io_error)
    }
}

fn link_message(purpose: &str, key_id: &str, payload: &[u8]) -> Vec<u8> {
    let mut message = format!("{purpose}:{key_id}:").into_bytes();
    message.extend_from_slice(payload);
    message
}

/// version, record kind, record id, contact id (0 = none), scope, expiry in unix
/// minutes, epoch: small numbers as LEB128 varints, so a link is short.
fn encode_claims(claims: &LinkClaims) -> Vec<u8> {
    let mut out = vec![LINK_VERSION, claims.record.kind.code()];
    put_varint(&mut out, claims.record.id);
    put_varint(&mut out, claims.contact_id.map_or(0, |id| id.0));
    out.push(claims.scope.code());
    put_varint(&mut out, (claims.expires_at.timestamp().max(0) as u64) / 60);
    put_varint(&mut out, claims.epoch);
    out
}

fn decode_claims(bytes: &[u8]) -> Option<LinkClaims> {
    let mut rest = bytes;
    let mut byte = || -> Option<u8> {
        let (first, tail) = rest.split_first()?;
        rest = tail;
        Some(*first)
    };
    if byte()? != LINK_VERSION {
        return None;
    }
    let kind = RecordKind::from_code(byte()?)?;
    let mut varint = || -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let next = byte()?;
            value |= u64::from(next & 0x7f) << shift;
            if next & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    };
    let id = varint()?;
    let contact = varint()?;
    let scope = LinkScope::from_code(varint()? as u8)?;
    let minutes = varint()?;
    let epoch = varint()?;
    let expires_at = DateTime::from_timestamp(i64::try_from(minutes.checked_mul(60)?).ok()?, 0)?;
    Some(LinkClaims {
        record: RecordRef { kind, id },
        contact_id: (contact != 0).then_some(ContactId(contact)),
        scope,
        expires_at,
        epoch,
    })
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// The hidden marker our notices carry in their body (`[ref:42-1a2b3c4d5e]`): it
/// survives providers that rewrite Message-IDs and clients that drop References, and
/// is kept in quoted text, so a reply can be threaded by it.
pub fn marker(reply_token: &str) -> String {
    format!("[ref:{reply_token}]")
}

/// The reply tokens of every marker in `text`, in order; the caller verifies them.
pub fn find_markers(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("[ref:") {
        let after = &rest[start + 5..];
        match after.find(']') {
            Some(end) if end <= 40 => {
                let token = &after[..end];
                if token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    found.push(token);
                }
                rest = &after[end..];
            }
            _ => rest = after,
        }
    }
    found
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_in_quoted_text() {
        let text = format!(
            "Danke!\n\n> Ihre Anfrage {}\n> [ref:broken",
            marker("42-0a1b2c3d4e")
        );
        assert_eq!(find_markers(&text), vec!["42-0a1b2c3d4e"]);
        assert!(find_markers("[ref:<script>]").is_empty());
    }

    #[test]
    fn reply_tokens_verify_and_refuse_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_create(dir.path()).unwrap();
        let ticket = RecordRef {
            kind: RecordKind::Ticket,
            id: 42,
        };
        let token = ring.reply_token(ticket);
        assert!(token.starts_with("42-"));
        assert_eq!(ring.verify_reply_token(&token), Some(ticket));
        let quote = RecordRef {
            kind: RecordKind::Quote,
            id: 42,
        };
        let quote_token = ring.reply_token(quote);
        assert!(quote_token.starts_with("q42-"), "{quote_token}");
        assert_eq!(ring.verify_reply_token(&quote_token), Some(quote));
        // The tag of one record does not open another.
        let swapped = format!("42-{}", quote_token.split_once('-').unwrap().1);
        assert_eq!(ring.verify_reply_token(&swapped), None);
        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(ring.verify_reply_token(&tampered), None);
        // The same ring comes back from disk.
        let again = KeyRing::load_or_create(dir.path()).unwrap();
        assert_eq!(again.verify_reply_token(&token), Some(ticket));
    }
}
