//! Attachments: metadata per attachment, bytes once per content hash.

use sha2::{Digest, Sha256};

use crate::error::EngineError;
use crate::ids::AttachmentId;
use crate::model::Attachment;
use crate::store::Tree;
use crate::tx::Tx;
use crate::Engine;

/// An attachment arriving with a message.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Stores each attachment in the transaction; identical bytes are kept once.
pub(crate) fn store_all(
    tx: &mut Tx<'_>,
    attachments: &[NewAttachment],
) -> Result<Vec<AttachmentId>, EngineError> {
    let mut ids = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        let hash = Sha256::digest(&attachment.bytes);
        if tx.get_raw(Tree::Blobs, &hash)?.is_none() {
            tx.put_raw(Tree::Blobs, &hash, &attachment.bytes)?;
        }
        let id = AttachmentId(tx.next_id()?);
        let meta = Attachment {
            id,
            filename: attachment.filename.clone(),
            content_type: attachment.content_type.clone(),
            size: attachment.bytes.len() as u64,
            sha256: hex::encode(hash),
        };
        tx.put(Tree::Attachments, &id.key(), &meta)?;
        ids.push(id);
    }
    Ok(ids)
}

impl Engine {
    pub fn attachment(&self, id: AttachmentId) -> Result<Attachment, EngineError> {
        self.read(Tree::Attachments, &id.key())?
            .ok_or_else(|| EngineError::not_found("attachment", id))
    }

    /// An attachment with its bytes.
    pub fn attachment_bytes(&self, id: AttachmentId) -> Result<(Attachment, Vec<u8>), EngineError> {
        let meta = self.attachment(id)?;
        let hash = hex::decode(&meta.sha256).map_err(|error| {
            EngineError::Store(crate::store::StoreError::Corrupt {
                tree: Tree::Attachments.name(),
                reason: error.to_string(),
            })
        })?;
        let bytes = self
            .store
            .get(Tree::Blobs, &hash)?
            .ok_or_else(|| EngineError::not_found("attachment content", id))?;
        Ok((meta, bytes))
    }
}
