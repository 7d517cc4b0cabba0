//! The one codec for stored values: JSON. It tolerates fields added later (readers
//! ignore unknown fields; new fields carry `#[serde(default)]`), and `export` can show
//! values as they are.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{StoreError, Tree};

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising our own model types to a Vec cannot fail: they hold no maps with
    // non-string keys and no custom serialisers that error.
    serde_json::to_vec(value).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(tree: Tree, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|error| StoreError::Corrupt {
        tree: tree.name(),
        reason: error.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::StaffId;
    use crate::model::Staff;
    use crate::validate::EmailAddress;

    #[test]
    fn records_round_trip_and_tolerate_added_fields() {
        let staff = Staff {
            id: StaffId(7),
            name: "Sam Support".into(),
            email: EmailAddress::parse("sam@vendor.example").unwrap(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        };
        let bytes = encode(&staff);
        assert_eq!(decode::<Staff>(Tree::Staff, &bytes).unwrap(), staff);

        let mut newer: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        newer["phone"] = serde_json::json!("+49 30 1234");
        let newer_bytes = serde_json::to_vec(&newer).unwrap();
        assert_eq!(decode::<Staff>(Tree::Staff, &newer_bytes).unwrap(), staff);
    }
}
