//! Staff API keys. The secret is shown once; only its SHA-256 is stored.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::EngineError;
use crate::ids::ApiKeyId;
use crate::model::ApiKey;
use crate::store::Tree;
use crate::{validate, Engine};

/// Why a bearer key was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejected {
    #[error("unknown API key")]
    Unknown,
    #[error("the API key was revoked")]
    Revoked,
}

const SECRET_PREFIX: &str = "kontor_";

impl Engine {
    /// Creates a key named `name` and returns it with its secret. Names are unique
    /// among the keys not revoked, so that `keys revoke --name` revokes what one
    /// meant (409 `name_taken` otherwise).
    pub fn create_api_key(&self, name: &str) -> Result<(ApiKey, String), EngineError> {
        let name = validate::line(name)
            .map_err(|error| EngineError::invalid_field("name", "invalid", error.to_string()))?;
        let mut secret_bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut secret_bytes);
        let secret = format!("{SECRET_PREFIX}{}", hex::encode(secret_bytes));
        let hash = Sha256::digest(secret.as_bytes());
        let key = self.write(|tx| {
            use crate::store::tables::Reader;
            for (_, value) in tx.scan_raw(Tree::ApiKeys, &[])? {
                let existing: ApiKey = crate::store::codec::decode(Tree::ApiKeys, &value)?;
                if existing.name == name && existing.revoked_at.is_none() {
                    return Err(EngineError::Taken {
                        code: "name_taken",
                        field: "name",
                        message: format!("an active key is named {name:?} already"),
                    });
                }
            }
            let key = ApiKey {
                id: ApiKeyId(tx.next_id()?),
                name: name.clone(),
                created_at: tx.now,
                revoked_at: None,
            };
            tx.put(Tree::ApiKeys, &hash, &key)?;
            Ok(key)
        })?;
        Ok((key, secret))
    }

    /// The key a bearer secret belongs to, if it is known and not revoked.
    pub fn authenticate(&self, secret: &str) -> Result<Result<ApiKey, KeyRejected>, EngineError> {
        let hash = Sha256::digest(secret.trim().as_bytes());
        Ok(match self.read::<ApiKey>(Tree::ApiKeys, &hash)? {
            None => Err(KeyRejected::Unknown),
            Some(key) if key.revoked_at.is_some() => Err(KeyRejected::Revoked),
            Some(key) => Ok(key),
        })
    }

    /// Revokes every key named `name`; returns how many were revoked.
    pub fn revoke_api_keys(&self, name: &str) -> Result<usize, EngineError> {
        let targets: Vec<(Vec<u8>, ApiKey)> = self
            .store
            .scan_prefix(Tree::ApiKeys, &[], false)
            .filter_map(|item| {
                let (hash, value) = item.ok()?;
                let key: ApiKey = crate::store::codec::decode(Tree::ApiKeys, &value).ok()?;
                (key.name == name && key.revoked_at.is_none()).then_some((hash, key))
            })
            .collect();
        self.write(|tx| {
            for (hash, key) in &targets {
                let mut key = key.clone();
                key.revoked_at = Some(tx.now);
                tx.put(Tree::ApiKeys, hash, &key)?;
            }
            Ok(targets.len())
        })
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKey>, EngineError> {
        self.store
            .scan_prefix(Tree::ApiKeys, &[], false)
            .map(|item| {
                let (_, value) = item?;
                Ok(crate::store::codec::decode(Tree::ApiKeys, &value)?)
            })
            .collect()
    }
}
