//! Documents to sign: a body, fields (text, date, checkbox, exactly one signature),
//! a signer. `draft` → `sent` → `signed` | `cancelled`; once signed nothing changes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Audience, RecordHead, RecordType};
use crate::error::{EngineError, FieldErrors};
use crate::ids::{CompanyId, ContactId, DocumentId, StaffId};
use crate::links::LinkScope;
use crate::model::*;
use crate::validate;
use crate::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentStatus {
    Draft,
    Sent,
    Signed,
    Cancelled,
}

impl DocumentStatus {
    pub const ALL: [DocumentStatus; 4] = [
        DocumentStatus::Draft,
        DocumentStatus::Sent,
        DocumentStatus::Signed,
        DocumentStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DocumentStatus::Draft => "draft",
            DocumentStatus::Sent => "sent",
            DocumentStatus::Signed => "signed",
            DocumentStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    pub fn display_name(self, locale: Locale) -> &'static str {
        match (locale, self) {
            (Locale::De, DocumentStatus::Draft) => "Entwurf",
            (Locale::De, DocumentStatus::Sent) => "Zur Signatur",
            (Locale::De, DocumentStatus::Signed) => "Signiert",
            (Locale::De, DocumentStatus::Cancelled) => "Storniert",
            (Locale::En, DocumentStatus::Draft) => "Draft",
            (Locale::En, DocumentStatus::Sent) => "Awaiting signature",
            (Locale::En, DocumentStatus::Signed) => "Signed",
            (Locale::En, DocumentStatus::Cancelled) => "Cancelled",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Date,
    Checkbox,
    Signature,
}

impl FieldType {
    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "text" => Some(FieldType::Text),
            "date" => Some(FieldType::Date),
            "checkbox" => Some(FieldType::Checkbox),
            "signature" => Some(FieldType::Signature),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Date => "date",
            FieldType::Checkbox => "checkbox",
            FieldType::Signature => "signature",
        }
    }
}

/// One field of a document's form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub required: bool,
}

/// Who signed, as the signing request showed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signer {
    pub name: String,
    pub email: String,
    pub ip: String,
    pub user_agent: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub id: DocumentId,
    pub title: String,
    pub company_id: CompanyId,
    /// The signer.
    pub contact_id: ContactId,
    /// Sanitised HTML.
    pub body_html: String,
    pub fields: Vec<FieldDef>,
    pub valid_until: Option<NaiveDate>,
    pub status: DocumentStatus,
    pub assignee_id: Option<StaffId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// Reminders sent by `remind_signatures` since the document was sent.
    #[serde(default)]
    pub reminders: u32,
    #[serde(default)]
    pub last_reminded_at: Option<DateTime<Utc>>,
    /// The signer's values: a draft while `sent` (kept as they type), final once signed.
    /// The signature field holds the image as a `data:image/png;base64,…` URL or the
    /// typed name.
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    #[serde(default)]
    pub signed_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub signer: Option<Signer>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub cancel_reason: Option<String>,
}

impl RecordType for Document {
    const KIND: RecordKind = RecordKind::Document;
    const LINK_SCOPES: &'static [LinkScope] = &[LinkScope::View, LinkScope::Sign];
    const AUDIENCE: Audience = Audience::SignerAndManagers;

    fn webhook_event(event: &crate::model::Event) -> Option<crate::webhooks::WebhookEvent> {
        matches!(event, crate::model::Event::Signed { .. })
            .then_some(crate::webhooks::WebhookEvent::DocumentSigned)
    }

    fn head(&self) -> RecordHead {
        RecordHead {
            record: RecordRef {
                kind: RecordKind::Document,
                id: self.id.0,
            },
            number: None,
            title: self.title.clone(),
            status: self.status.as_str(),
            company_id: Some(self.company_id),
            contact_id: Some(self.contact_id),
            email: None,
            name: None,
            participants: vec![],
            assignee_id: self.assignee_id,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    super::status_and_touch!(DocumentStatus);

    fn search_text(&self) -> Vec<String> {
        let mut text = vec![crate::intake::text::html_to_text(&self.body_html)];
        text.extend(self.fields.iter().map(|field| field.label.clone()));
        text
    }

    fn notice_data(&self, locale: Locale) -> Value {
        json!({
            "title": self.title,
            "status": self.status.display_name(locale),
            "valid_until": self.valid_until.map(|d| d.to_string()),
        })
    }
}

/// A document to create, checked by [`Engine::create_document`].
#[derive(Debug, Clone)]
pub struct NewDocument {
    pub title: String,
    pub company_id: CompanyId,
    pub signer_contact_id: ContactId,
    pub body_html: String,
    pub fields: Vec<FieldInput>,
    pub valid_until: Option<String>,
    pub staff_id: Option<StaffId>,
}

#[derive(Debug, Clone)]
pub struct FieldInput {
    pub name: String,
    pub label: String,
    pub field_type: String,
    pub required: bool,
}

/// The person's signing request, from the sign page.
#[derive(Debug, Clone)]
pub struct SignInput {
    pub values: BTreeMap<String, String>,
    /// The `signing::document_content_sha256` the signer's page showed; signing is
    /// refused (409 `document_changed`) when the document no longer has it.
    pub content_sha256: Option<String>,
    pub ip: String,
    pub user_agent: String,
}

/// The most fields one document may carry.
pub const MAX_FIELDS: usize = 100;

impl Engine {
    pub fn create_document(&self, new: NewDocument) -> Result<Document, EngineError> {
        let mut errors = FieldErrors::new();
        let title = errors.check("title", validate::line(&new.title));
        let body = self.check_body(&mut errors, "body_html", &new.body_html)?;
        let fields = check_fields(&mut errors, &new.fields);
        let valid_until = new
            .valid_until
            .as_deref()
            .and_then(|text| super::commercial::check_date(&mut errors, "valid_until", text));
        errors.finish()?;
        let signer =
            self.party_in_company(new.company_id, new.signer_contact_id, "signer_contact_id")?;
        self.staff_exists(new.staff_id, "staff_id")?;
        // The same whitelist as inbound mail: nothing that runs or loads from elsewhere.
        let body_html = crate::intake::text::sanitize_html(&body.unwrap_or_default());
        self.write(|tx| {
            let id = DocumentId(tx.next_id()?);
            let document = Document {
                id,
                title: title.clone().unwrap_or_default(),
                company_id: new.company_id,
                contact_id: signer.id,
                body_html: body_html.clone(),
                fields: fields.clone(),
                valid_until,
                status: DocumentStatus::Draft,
                assignee_id: new.staff_id,
                created_at: tx.now,
                updated_at: tx.now,
                sent_at: None,
                reminders: 0,
                last_reminded_at: None,
                values: BTreeMap::new(),
                signed_at: None,
                signer: None,
                sha256: None,
                cancel_reason: None,
            };
            self.insert_record(tx, &document)?;
            Ok(document)
        })
    }

    pub fn document(&self, id: DocumentId) -> Result<Document, EngineError> {
        super::require(&mut self.reader(), id.0)
    }

    /// Mails the signer a sign link: `draft` → `sent`; a sent document is sent again
    /// with a fresh link.
    pub fn send_document(
        &self,
        id: DocumentId,
        staff_id: Option<StaffId>,
    ) -> Result<Document, EngineError> {
        let author = self.staff_author_of(staff_id)?;
        self.write(|tx| {
            let old: Document = super::require(tx, id.0)?;
            match old.status {
                DocumentStatus::Signed => return Err(already_signed()),
                DocumentStatus::Cancelled => {
                    return Err(illegal("a cancelled document cannot be sent"))
                }
                DocumentStatus::Draft | DocumentStatus::Sent => {}
            }
            let mut document = old.clone();
            document.status = DocumentStatus::Sent;
            document.sent_at = Some(tx.now);
            document.updated_at = tx.now;
            self.update_record(tx, &old, &document)?;
            self.record_event(tx, &document, author.clone(), Event::Sent)?;
            self.notify_record_contact(
                tx,
                NoticeKind::SignRequest,
                &document,
                LinkScope::Sign,
                json!({}),
            )?;
            Ok(document)
        })
    }

    pub fn cancel_document(
        &self,
        id: DocumentId,
        reason: &str,
        staff_id: StaffId,
    ) -> Result<Document, EngineError> {
        let reason = check_reason(reason)?;
        let author = self.staff_author_of(Some(staff_id))?;
        self.write(|tx| {
            let old: Document = super::require(tx, id.0)?;
            match old.status {
                DocumentStatus::Signed => return Err(already_signed()),
                DocumentStatus::Cancelled => {
                    return Err(illegal("the document is cancelled already"))
                }
                DocumentStatus::Draft | DocumentStatus::Sent => {}
            }
            let mut document = old.clone();
            document.status = DocumentStatus::Cancelled;
            document.cancel_reason = Some(reason.clone());
            document.updated_at = tx.now;
            self.update_record(tx, &old, &document)?;
            self.record_event(
                tx,
                &document,
                author.clone(),
                Event::Cancelled {
                    reason: Some(reason.clone()),
                },
            )?;
            Ok(document)
        })
    }

    /// Keeps what the signer typed so far (the sign page saves each field), so a
    /// closed page loses nothing. Only while the document waits for a signature.
    pub fn save_document_draft(
        &self,
        id: DocumentId,
        values: BTreeMap<String, String>,
    ) -> Result<Document, EngineError> {
        self.write(|tx| {
            let old: Document = super::require(tx, id.0)?;
            check_signable(&old)?;
            let mut document = old.clone();
            for (name, value) in &values {
                if document.fields.iter().any(|field| &field.name == name) {
                    document.values.insert(name.clone(), value.clone());
                }
            }
            super::save(tx, Some(&old), &document)?;
            Ok(document)
        })
    }

    /// The signer signs: every required field is checked again (422 naming the
    /// missing ones, nothing stored), the canonical content is hashed
    /// (`signing::document_sha256`), and the document is `signed` for good.
    pub fn sign_document(&self, id: DocumentId, input: SignInput) -> Result<Document, EngineError> {
        self.write(|tx| {
            let old: Document = super::require(tx, id.0)?;
            check_signable(&old)?;
            if let Some(shown) = &input.content_sha256 {
                if *shown != crate::signing::document_content_sha256(&old) {
                    return Err(EngineError::Conflict {
                        code: "document_changed",
                        message: "the document changed after the page showed it; reload it".into(),
                    });
                }
            }
            let contact = crate::store::tables::CONTACTS
                .get(tx, &old.contact_id)?
                .ok_or_else(|| EngineError::not_found("contact", old.contact_id))?;
            let values = check_values(&old.fields, &input.values)?;
            let mut document = old.clone();
            document.values = values;
            document.status = DocumentStatus::Signed;
            document.signed_at = Some(tx.now);
            document.updated_at = tx.now;
            document.signer = Some(Signer {
                name: contact.name.clone(),
                email: contact.email.to_string(),
                ip: input.ip.clone(),
                user_agent: input.user_agent.clone(),
            });
            let sha256 = crate::signing::document_sha256(&document);
            document.sha256 = Some(sha256.clone());
            self.update_record(tx, &old, &document)?;
            self.record_event(
                tx,
                &document,
                Author::Contact {
                    id: Some(contact.id),
                    name: contact.name.clone(),
                    email: Some(contact.email.clone()),
                },
                Event::Signed { sha256 },
            )?;
            Ok(document)
        })
    }
}

impl Engine {
    /// `remind_signatures`: a document sent `after_days` ago (and again every
    /// `after_days`) and not signed gets a reminder with a fresh sign link, at most
    /// `max_reminders` times and never past its `valid_until`. The count and time
    /// are kept on the document in the reminder's transaction, so a reminder is
    /// never sent twice for the same interval. Returns (examined, reminded).
    pub fn remind_signatures(
        &self,
        settings: crate::ops::jobs::RemindSignatures,
    ) -> Result<(u64, u64), EngineError> {
        let waiting = super::IndexEntry::Status(DocumentStatus::Sent as u8 + 1);
        let ids: Vec<u64> =
            super::ids_in_index(self.store.as_ref(), RecordKind::Document, Some(&waiting))
                .collect::<Result<_, _>>()?;
        let examined = ids.len() as u64;
        let mut reminded = 0;
        for id in ids {
            let sent = self.write(|tx| {
                let old: Document = super::require(tx, id)?;
                if !reminder_due(&old, settings, tx.now) {
                    return Ok(false);
                }
                let mut document = old.clone();
                document.reminders += 1;
                document.last_reminded_at = Some(tx.now);
                super::save(tx, Some(&old), &document)?;
                self.record_event(tx, &document, Author::System, Event::Reminded)?;
                self.notify_record_contact(
                    tx,
                    NoticeKind::SignReminder,
                    &document,
                    LinkScope::Sign,
                    json!({"reminder": document.reminders}),
                )?;
                Ok(true)
            })?;
            reminded += u64::from(sent);
        }
        Ok((examined, reminded))
    }
}

/// Whether `document` is due a signing reminder at `now`.
fn reminder_due(
    document: &Document,
    settings: crate::ops::jobs::RemindSignatures,
    now: DateTime<Utc>,
) -> bool {
    let Some(sent_at) = document.sent_at else {
        return false;
    };
    if document.status != DocumentStatus::Sent || document.reminders >= settings.max_reminders {
        return false;
    }
    if document
        .valid_until
        .is_some_and(|until| now.date_naive() > until)
    {
        return false;
    }
    let interval = chrono::Duration::days(i64::from(settings.after_days.max(1)));
    now >= sent_at + interval * (document.reminders as i32 + 1)
}

/// What a signed document's hash is computed from, and its history chain: enough
/// for a third party to recompute both.
#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    pub sha256: String,
    pub inputs: Value,
    /// Every history entry as stored, with `prev_hash` and `hash`.
    pub history: Vec<Value>,
}

impl Engine {
    /// The evidence of a signed document; 409 `not_signed` before it is signed.
    pub fn document_evidence(&self, id: DocumentId) -> Result<Evidence, EngineError> {
        let document = self.document(id)?;
        let Some(sha256) = document.sha256.clone() else {
            return Err(EngineError::Conflict {
                code: "not_signed",
                message: format!("{id} is not signed yet"),
            });
        };
        let record = document.head().record;
        let history = crate::store::tables::HISTORY
            .scan(&mut self.reader(), &record.key_prefix())?
            .into_iter()
            .map(|entry| serde_json::to_value(entry).unwrap_or(Value::Null))
            .collect();
        Ok(Evidence {
            sha256,
            inputs: crate::signing::document_inputs(&document),
            history,
        })
    }
}

fn check_signable(document: &Document) -> Result<(), EngineError> {
    match document.status {
        DocumentStatus::Sent => Ok(()),
        DocumentStatus::Signed => Err(already_signed()),
        DocumentStatus::Draft => Err(illegal("the document has not been sent for signing")),
        DocumentStatus::Cancelled => Err(illegal("the document was cancelled")),
    }
}

/// The values to sign with: every required field filled (a checkbox ticked), no
/// unknown field.
fn check_values(
    fields: &[FieldDef],
    given: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EngineError> {
    let mut errors = FieldErrors::new();
    let mut values = BTreeMap::new();
    for field in fields {
        let value = given.get(&field.name).map(|v| v.trim()).unwrap_or("");
        let filled = match field.field_type {
            FieldType::Checkbox => matches!(value, "true" | "on" | "yes" | "1"),
            _ => !value.is_empty(),
        };
        if field.required && !filled {
            errors.add(
                &field.name,
                "required",
                format!("{} is required", field.label),
            );
            continue;
        }
        if field.field_type == FieldType::Date
            && filled
            && NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err()
        {
            errors.add(&field.name, "invalid", "must be a date YYYY-MM-DD");
            continue;
        }
        if field.field_type == FieldType::Signature && value.len() > 2 * 1024 * 1024 {
            errors.add(&field.name, "too_long", "the signature image is too large");
            continue;
        }
        let value = match field.field_type {
            FieldType::Checkbox => if filled { "true" } else { "false" }.to_string(),
            _ => value.to_string(),
        };
        values.insert(field.name.clone(), value);
    }
    for name in given.keys() {
        if !fields.iter().any(|field| &field.name == name) {
            errors.add(name, "unknown_field", "the document has no such field");
        }
    }
    errors.finish()?;
    Ok(values)
}

fn check_fields(errors: &mut FieldErrors, fields: &[FieldInput]) -> Vec<FieldDef> {
    if fields.len() > MAX_FIELDS {
        errors.add("fields", "too_long", format!("at most {MAX_FIELDS} fields"));
    }
    let mut checked: Vec<FieldDef> = Vec::new();
    for (position, field) in fields.iter().enumerate() {
        let at = |name: &str| format!("fields[{position}].{name}");
        let name = field.name.trim();
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            errors.add(&at("name"), "invalid", "letters, digits, _ and -, up to 64");
        } else if checked.iter().any(|other| other.name == name) {
            errors.add(&at("name"), "duplicate", "another field has this name");
        }
        let label = errors.check(&at("label"), validate::line(&field.label));
        let field_type = FieldType::parse(&field.field_type);
        if field_type.is_none() {
            errors.add(
                &at("type"),
                "invalid",
                "must be text, date, checkbox or signature",
            );
        }
        if let (true, Some(label), Some(field_type)) = (name_ok, label, field_type) {
            checked.push(FieldDef {
                name: name.to_string(),
                label,
                field_type,
                required: field.required,
            });
        }
    }
    let signatures: Vec<&FieldInput> = fields
        .iter()
        .filter(|field| field.field_type == "signature")
        .collect();
    match signatures.as_slice() {
        [one] if one.required => {}
        [_] => errors.add("fields", "invalid", "the signature field must be required"),
        [] => errors.add(
            "fields",
            "invalid",
            "needs exactly one field of type signature",
        ),
        _ => errors.add(
            "fields",
            "invalid",
            "needs exactly one field of type signature, not several",
        ),
    }
    checked
}

pub(crate) fn already_signed() -> EngineError {
    EngineError::Conflict {
        code: "already_signed",
        message: "the record is signed and can no longer change".into(),
    }
}

pub(crate) fn illegal(message: &str) -> EngineError {
    EngineError::Conflict {
        code: "illegal_transition",
        message: message.into(),
    }
}

/// A reason (of a cancel or a decline): one to 2,000 characters.
pub(crate) fn check_reason(reason: &str) -> Result<String, EngineError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(EngineError::invalid_field(
            "reason",
            "missing",
            "a reason is required",
        ));
    }
    if reason.chars().count() > 2000 {
        return Err(EngineError::invalid_field(
            "reason",
            "too_long",
            "is longer than 2000 characters",
        ));
    }
    Ok(reason.to_string())
}
