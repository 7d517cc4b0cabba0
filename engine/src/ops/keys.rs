//! Staff API keys. The secret is shown once; only its SHA-256 is stored.

use rand::RngCore;

use crate::error::EngineError;
use crate::ids::ApiKeyId;
use crate::model::ApiKey;
use crate::store::tables::{SecretHash, API_KEYS};
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
        let hash = SecretHash::of(&secret);
        let key = self.write(|tx| {
            for existing in API_KEYS.scan(tx, &[])? {
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
            API_KEYS.put(tx, &hash, &key)?;
            Ok(key)
        })?;
        Ok((key, secret))
    }

    /// The key a bearer secret belongs to, if it is known and not revoked.
    pub fn authenticate(&self, secret: &str) -> Result<Result<ApiKey, KeyRejected>, EngineError> {
        let hash = SecretHash::of(secret.trim());
        Ok(match API_KEYS.get(&mut self.reader(), &hash)? {
            None => Err(KeyRejected::Unknown),
            Some(key) if key.revoked_at.is_some() => Err(KeyRejected::Revoked),
            Some(key) => Ok(key),
        })
    }

    /// Revokes every key named `name`; returns how many were revoked.
    pub fn revoke_api_keys(&self, name: &str) -> Result<usize, EngineError> {
        self.write(|tx| {
            let mut revoked = 0;
            for (stored, mut key) in API_KEYS.entries(tx)? {
                let Some(hash) = SecretHash::from_stored(&stored) else {
                    continue;
                };
                if key.name == name && key.revoked_at.is_none() {
                    key.revoked_at = Some(tx.now);
                    API_KEYS.put(tx, &hash, &key)?;
                    revoked += 1;
                }
            }
            Ok(revoked)
        })
    }

    pub fn api_keys(&self) -> Result<Vec<ApiKey>, EngineError> {
        API_KEYS.values(self.store.as_ref(), false).collect()
    }
}
