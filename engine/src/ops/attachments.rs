//! Attachments: metadata per attachment, bytes once per content hash, as a blob
//! file (`store::blobs`) named in the `blobs` tree.

use crate::error::EngineError;
use crate::ids::AttachmentId;
use crate::model::Attachment;
use crate::store::blobs::{blob_id, read_named};
use crate::store::tables::ATTACHMENTS;
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

/// Stores each attachment in the transaction; identical bytes are kept once. The
/// bytes were written before it by [`Engine::stage_attachments`].
pub(crate) fn store_all(
    tx: &mut Tx<'_>,
    attachments: &[NewAttachment],
) -> Result<Vec<AttachmentId>, EngineError> {
    let mut ids = Vec::with_capacity(attachments.len());
    for attachment in attachments {
        let hash = blob_id(&attachment.bytes);
        tx.put_blob_reference(Tree::Blobs, &hash, attachment.bytes.len() as u64)?;
        let id = AttachmentId(tx.next_id()?);
        let meta = Attachment {
            id,
            filename: attachment.filename.clone(),
            content_type: attachment.content_type.clone(),
            size: attachment.bytes.len() as u64,
            sha256: hex::encode(hash),
        };
        ATTACHMENTS.put(tx, &id, &meta)?;
        ids.push(id);
    }
    Ok(ids)
}

impl Engine {
    /// Writes the attachments' bytes as blobs, before the transaction that stores
    /// them (`store_all`) runs: file writes stay out of the one-at-a-time section
    /// of the batched commit.
    pub(crate) fn stage_attachments(
        &self,
        attachments: &[NewAttachment],
    ) -> Result<(), EngineError> {
        for attachment in attachments {
            self.store
                .put_blob(&blob_id(&attachment.bytes), &attachment.bytes)?;
        }
        Ok(())
    }

    pub fn attachment(&self, id: AttachmentId) -> Result<Attachment, EngineError> {
        ATTACHMENTS
            .get(&mut self.reader(), &id)?
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
        let bytes = read_named(self.store.as_ref(), Tree::Blobs, &hash)?
            .ok_or_else(|| EngineError::not_found("attachment content", id))?;
        Ok((meta, bytes))
    }
}
