//! Addresses that bounce. Inbound DSNs mark them; the outbox does not mail them.

use crate::error::EngineError;
use crate::model::Bounce;
use crate::store::Tree;
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
    tx.put(Tree::Bounces, address.as_str().as_bytes(), &bounce)?;
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
        self.read(Tree::Bounces, address.as_str().as_bytes())
    }

    /// Clears a bounce (the address works again); true when there was one.
    pub fn clear_bounce(&self, address: &EmailAddress) -> Result<bool, EngineError> {
        self.write(|tx| {
            let existed = tx
                .get_raw(Tree::Bounces, address.as_str().as_bytes())?
                .is_some();
            tx.remove(Tree::Bounces, address.as_str().as_bytes())?;
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
