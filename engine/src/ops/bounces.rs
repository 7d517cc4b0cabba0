//! Addresses that bounce. Inbound DSNs mark them; the outbox does not mail them.

use crate::error::EngineError;
use crate::model::Bounce;
use crate::store::tables::BOUNCES;
use crate::tx::Tx;
use crate::validate::EmailAddress;
use crate::Engine;

/// Marks `address` as bouncing inside a running transaction.
pub(crate) fn mark_bouncing(
    tx: &mut Tx<'_>,
    address: &EmailAddress,
    reason: &str,
) -> Result<Bounce, EngineError> {
    let bounce = Bounce {
        address: address.clone(),
        at: tx.now,
        reason: reason.chars().take(500).collect(),
    };
    BOUNCES.put(tx, address, &bounce)?;
    Ok(bounce)
}

impl Engine {
    /// Marks `address` as bouncing: no notice is sent to it any more.
    pub fn mark_address_bouncing(
        &self,
        address: &EmailAddress,
        reason: &str,
    ) -> Result<Bounce, EngineError> {
        self.write(|tx| mark_bouncing(tx, address, reason))
    }

    /// The bounce recorded for `address`, if it bounces.
    pub fn bounce_of(&self, address: &EmailAddress) -> Result<Option<Bounce>, EngineError> {
        BOUNCES.get(&mut self.reader(), address)
    }

    /// Clears a bounce (the address works again); true when there was one.
    pub fn clear_bounce(&self, address: &EmailAddress) -> Result<bool, EngineError> {
        self.write(|tx| {
            let existed = BOUNCES.get(tx, address)?.is_some();
            BOUNCES.remove(tx, address)?;
            Ok(existed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounce_is_kept_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), crate::EngineConfig::default()).unwrap();
        let address = EmailAddress::parse("Gone@Example.org").unwrap();
        assert_eq!(engine.bounce_of(&address).unwrap(), None);
        engine
            .mark_address_bouncing(&address, "550 5.1.1 user unknown")
            .unwrap();
        assert_eq!(
            engine.bounce_of(&address).unwrap().unwrap().reason,
            "550 5.1.1 user unknown"
        );
        assert!(engine.clear_bounce(&address).unwrap());
        assert_eq!(engine.bounce_of(&address).unwrap(), None);
    }
}
