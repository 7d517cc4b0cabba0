//! Magic links: made for staff (`POST /api/v1/links`) and for notices, revoked by
//! bumping the record's link epoch. Opening one into a portal session is
//! `portal::open_portal_link`.

use chrono::{DateTime, Duration, Utc};

use crate::error::EngineError;
use crate::ids::ContactId;
use crate::links::{LinkClaims, LinkRejected, LinkScope};
use crate::model::{Contact, NoticeKind, RecordKind, RecordRef, Ticket};
use crate::notify::{link_epoch_in, HistoryExcerpt, Notice, Recipient};
use crate::store::tables::CONTACTS;
use crate::store::Tree;
use crate::validate::EmailAddress;
use crate::Engine;

use crate::links::LINK_PURPOSE;

/// A link made for staff.
#[derive(Debug, Clone, PartialEq)]
pub struct MadeLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Why a link does not open. `Forged` and `Revoked` answer 403, `Expired` 410 with a
/// form for a fresh link; `WrongScope` 403.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkRefused {
    /// Tampered with, cut short, or signed by a key that was removed.
    Forged,
    /// Authentic but out of date: a fresh link may be mailed to its contact.
    Expired(LinkClaims),
    /// Its record's link epoch was bumped after it was made.
    Revoked,
    /// A scope the record does not have (a `sign` link to a ticket).
    WrongScope,
    /// Authentic, but the session could not be stored (a full disk): try again.
    Unavailable,
}

impl Engine {
    /// A link to `record` for `contact_id` with `scope`, valid for the configured days.
    pub fn create_link(
        &self,
        record: RecordRef,
        contact_id: Option<ContactId>,
        scope: LinkScope,
    ) -> Result<MadeLink, EngineError> {
        if !scope_fits(record.kind, scope) {
            return Err(EngineError::Rule {
                code: "scope_not_allowed",
                message: format!("a {} has no {} links", record.kind.as_str(), scope.as_str()),
            });
        }
        crate::records::spec_of(record.kind)?
            .head(&mut self.reader(), record.id)?
            .ok_or_else(|| {
                EngineError::not_found_in_field(
                    record.kind.as_str(),
                    crate::records::display_id(record),
                    "id",
                )
            })?;
        if let Some(contact) = contact_id {
            self.contact(contact)
                .map_err(|_| EngineError::not_found_in_field("contact", contact, "contact_id"))?;
        }
        let claims = LinkClaims {
            record,
            contact_id,
            scope,
            expires_at: self.clock().now()
                + Duration::days(i64::from(match scope {
                    LinkScope::Sign => self.config.notify.sign_link_days,
                    _ => self.config.notify.view_link_days,
                })),
            epoch: self.link_epoch(record)?,
        };
        Ok(MadeLink {
            url: self.link_url(&claims),
            expires_at: claims.expires_at,
        })
    }

    /// The view link the ticket's confirmation carried: made from the ticket's creation
    /// time, so asking again (an idempotent replay) gives the same URL.
    pub fn ticket_view_url(&self, ticket: &Ticket) -> Result<String, EngineError> {
        let record = RecordRef::ticket(ticket.id);
        let claims = LinkClaims {
            record,
            contact_id: ticket.requester.contact_id,
            scope: LinkScope::View,
            expires_at: ticket.created_at
                + Duration::days(i64::from(self.config.notify.view_link_days)),
            epoch: self.link_epoch(record)?,
        };
        Ok(self.link_url(&claims))
    }

    /// Revokes every link to `record` made so far; returns the new epoch.
    pub fn revoke_links(&self, record: RecordRef) -> Result<u64, EngineError> {
        // A record that does not exist has no links to revoke: 404, of every kind.
        crate::records::head_of(&mut self.reader(), record)?;
        self.write(|tx| {
            let next = link_epoch_in(tx, record)? + 1;
            tx.put_raw(Tree::LinkEpochs, &record.key_prefix(), &next.to_be_bytes())?;
            Ok(next)
        })
    }

    /// The current link epoch of `record` (0 until first revoked).
    pub fn link_epoch(&self, record: RecordRef) -> Result<u64, EngineError> {
        Ok(self
            .store
            .get(Tree::LinkEpochs, &record.key_prefix())?
            .and_then(|bytes| crate::store::trees::trailing_u64(&bytes))
            .unwrap_or(0))
    }

    /// Mails a fresh link for an expired one, to the contact it was made out to (or the
    /// ticket's requester). Forged or revoked tokens mail nothing; the caller answers
    /// the same words either way, so the form reveals nothing.
    pub fn send_fresh_link(&self, token: &str) -> Result<(), EngineError> {
        let now = self.clock().now();
        let claims = match self.keys.verify_claims(LINK_PURPOSE, token, now) {
            Ok(claims) | Err(LinkRejected::Expired(claims)) => claims,
            Err(LinkRejected::Forged) => return Ok(()),
        };
        if !scope_fits(claims.record.kind, claims.scope)
            || self.link_epoch(claims.record)? != claims.epoch
        {
            return Ok(());
        }
        let Some(spec) = crate::records::spec(claims.record.kind) else {
            return Ok(());
        };
        let history = HistoryExcerpt::default();
        self.write(|tx| {
            let Some(head) = spec.head(tx, claims.record.id)? else {
                return Ok(());
            };
            let data = spec.notice_data(tx, claims.record.id, self.config.default_locale)?;
            let recipient = match claims.contact_id.or(head.contact_id) {
                Some(contact_id) => CONTACTS.get(tx, &contact_id)?.map(|contact| Recipient {
                    address: contact.email.clone(),
                    name: Some(contact.name.clone()),
                    locale: contact.locale,
                    contact_id: Some(contact.id),
                }),
                None => head.email.clone().map(|address| Recipient {
                    address,
                    name: head.name.clone(),
                    locale: self.config.default_locale,
                    contact_id: None,
                }),
            };
            let Some(to) = recipient else {
                return Ok(());
            };
            let days = match claims.scope {
                LinkScope::Sign => self.config.notify.sign_link_days,
                _ => self.config.notify.view_link_days,
            };
            let lifetime = Duration::days(i64::from(days));
            self.enqueue_notice(
                tx,
                Notice {
                    kind: NoticeKind::FreshLink,
                    to,
                    about: Some((head, data)),
                    link: Some((claims.scope, lifetime)),
                    link_record: None,
                    history: &history,
                    extra: serde_json::json!({}),
                },
            )?;
            Ok(())
        })
    }

    /// Mails `email` a login link if it is a contact with portal access; does nothing
    /// otherwise, and the caller answers the same words either way.
    pub fn send_login_link(&self, email: &str) -> Result<(), EngineError> {
        let Ok(address) = EmailAddress::parse(email) else {
            return Ok(());
        };
        let Some(contact) = self.contact_by_email(&address)? else {
            return Ok(());
        };
        if !contact.permissions.portal {
            return Ok(());
        }
        self.write(|tx| self.queue_login_link(tx, &contact).map(|_| ()))
    }

    /// Staff send a contact its portal access again (`POST /contacts/{id}/login-link`);
    /// 422 `no_portal_access` without the `portal` permission.
    pub fn send_login_link_to(&self, contact_id: ContactId) -> Result<(), EngineError> {
        let contact = self.contact(contact_id)?;
        if !contact.permissions.portal {
            return Err(EngineError::Rule {
                code: "no_portal_access",
                message: format!("{contact_id} has no portal access"),
            });
        }
        self.write(|tx| self.queue_login_link(tx, &contact).map(|_| ()))
    }

    /// Queues a login link to `contact` in a running transaction.
    pub(crate) fn queue_login_link(
        &self,
        tx: &mut crate::tx::Tx<'_>,
        contact: &Contact,
    ) -> Result<Option<u64>, EngineError> {
        let lifetime = Duration::minutes(i64::from(self.config.notify.login_link_minutes));
        self.enqueue_notice(
            tx,
            Notice {
                kind: NoticeKind::LoginLink,
                to: Recipient {
                    address: contact.email.clone(),
                    name: Some(contact.name.clone()),
                    locale: contact.locale,
                    contact_id: Some(contact.id),
                },
                about: None,
                link: Some((LinkScope::Login, lifetime)),
                link_record: Some(RecordRef::company(contact.company_id)),
                history: &HistoryExcerpt::default(),
                extra: serde_json::json!({}),
            },
        )
    }

    /// Makes a signing key the active one; the old ones still verify. Works on the
    /// key file while no server holds the data dir; returns the new key id.
    pub fn rotate_signing_key(&self) -> Result<String, EngineError> {
        let data_dir = self.data_dir.as_ref().ok_or_else(no_data_dir)?;
        let mut ring = crate::links::KeyRing::load_or_create(data_dir)?;
        let id = ring.rotate();
        ring.save(data_dir)?;
        Ok(id)
    }

    /// Removes an old signing key: links and reply addresses it signed stop working.
    pub fn remove_signing_key(&self, key_id: &str) -> Result<(), EngineError> {
        let data_dir = self.data_dir.as_ref().ok_or_else(no_data_dir)?;
        let mut ring = crate::links::KeyRing::load_or_create(data_dir)?;
        ring.remove(key_id).map_err(|message| EngineError::Rule {
            code: "key_not_removable",
            message,
        })?;
        ring.save(data_dir)?;
        Ok(())
    }
}

/// Which scopes a record's links may have: what its kind declares; a login link
/// names the contact's company.
pub fn scope_fits(kind: RecordKind, scope: LinkScope) -> bool {
    match crate::records::spec(kind) {
        Some(spec) => spec.link_scopes().contains(&scope),
        None => scope == LinkScope::Login,
    }
}

fn no_data_dir() -> EngineError {
    EngineError::Store(crate::store::StoreError::Backend(
        "this engine has no data dir for its keys".into(),
    ))
}
