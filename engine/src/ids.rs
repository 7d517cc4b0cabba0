//! Record ids. Internally a `u64` from one store-wide sequence, so that keys sort in
//! creation order; outside, a string with a kind prefix (`tk_12`), so that an id of one
//! kind can never be mistaken for another's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The id could not be read as an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id: {input:?}")]
pub struct IdParseError {
    pub kind: &'static str,
    pub input: String,
}

macro_rules! record_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl $name {
            pub const PREFIX: &'static str = $prefix;
            pub const KIND: &'static str = $kind;

            /// The big-endian key bytes that keep store scans in id order.
            pub fn key(self) -> [u8; 8] {
                self.0.to_be_bytes()
            }

            pub fn from_key(bytes: &[u8]) -> Option<Self> {
                let array: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
                Some(Self(u64::from_be_bytes(array)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdParseError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                input
                    .strip_prefix($prefix)
                    .filter(|digits| !digits.starts_with('+'))
                    .and_then(|digits| digits.parse::<u64>().ok())
                    .map(Self)
                    .ok_or_else(|| IdParseError {
                        kind: $kind,
                        input: input.chars().take(64).collect(),
                    })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

record_id!(
    /// A customer or reseller company.
    CompanyId, "co_", "company"
);
record_id!(
    /// A person at a company who may use the portal.
    ContactId, "ct_", "contact"
);
record_id!(
    /// A member of the vendor's support staff.
    StaffId, "st_", "staff"
);
record_id!(
    /// A support ticket (distinct from its human-facing `number`).
    TicketId, "tk_", "ticket"
);
record_id!(
    /// A document to sign.
    DocumentId, "doc_", "document"
);
record_id!(
    /// A quote (offer) to a customer.
    QuoteId, "qt_", "quote"
);
record_id!(
    /// An order, made by accepting a quote.
    OrderId, "or_", "order"
);
record_id!(
    /// An invoice from the back office.
    InvoiceId, "inv_", "invoice"
);
record_id!(
    /// A subscription of modules.
    SubscriptionId, "sub_", "subscription"
);
record_id!(
    /// One entry of a record's history.
    HistoryId, "h_", "history entry"
);
record_id!(
    /// One stored attachment (name and type; the bytes live once per content hash).
    AttachmentId, "at_", "attachment"
);
record_id!(
    /// A received mail that could not be interpreted and waits in quarantine.
    QuarantineId, "qm_", "quarantined mail"
);
record_id!(
    /// A staff API key.
    ApiKeyId, "key_", "api key"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_prefixed_form() {
        let id = TicketId(42);
        assert_eq!(id.to_string(), "tk_42");
        assert_eq!("tk_42".parse::<TicketId>(), Ok(id));
        assert_eq!(TicketId::from_key(&id.key()), Some(id));
    }

    #[test]
    fn an_id_of_another_kind_is_refused() {
        assert!("co_42".parse::<TicketId>().is_err());
        assert!("tk_".parse::<TicketId>().is_err());
        assert!("tk_+4".parse::<TicketId>().is_err());
        assert!("tk_18446744073709551616".parse::<TicketId>().is_err());
    }
}
