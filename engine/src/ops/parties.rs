//! Companies, contacts and staff, and the permission rules between them.

use std::collections::BTreeMap;

use crate::access::{self, Action};
use crate::error::{EngineError, FieldErrors};
use crate::ids::{CompanyId, ContactId, StaffId};
use crate::model::*;
use crate::store::tables::{COMPANIES, CONTACTS, STAFF};
use crate::store::tables::{COMPANY_BY_INSTANCE, CONTACT_BY_EMAIL, STAFF_BY_EMAIL};
use crate::store::tables::{CONTACTS_OF_COMPANY, CUSTOMERS_OF_RESELLER};

use crate::store::Tree;
use crate::validate::{self, EmailAddress};
use crate::{Engine, Page};

use super::{paginate, PageRequest};

/// A company to create.
#[derive(Debug, Clone)]
pub struct NewCompany {
    pub name: String,
    pub kind: CompanyKind,
    pub reseller_id: Option<CompanyId>,
    pub onretail_instance_ids: Vec<String>,
}

/// A contact to create.
#[derive(Debug, Clone)]
pub struct NewContact {
    pub company_id: CompanyId,
    pub name: String,
    pub email: String,
    pub role: ContactRole,
    pub locale: Option<String>,
}

/// A staff member to create.
#[derive(Debug, Clone)]
pub struct NewStaff {
    pub name: String,
    pub email: String,
}

const MAX_INSTANCE_ID_CHARS: usize = 200;

impl Engine {
    pub fn create_company(&self, new: NewCompany) -> Result<Company, EngineError> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", validate::line(&new.name));
        for (index, instance) in new.onretail_instance_ids.iter().enumerate() {
            let field = format!("onretail_instance_ids[{index}]");
            if instance.trim().is_empty() {
                errors.add(&field, "missing", "must not be empty");
            } else if instance.chars().count() > MAX_INSTANCE_ID_CHARS {
                errors.add(
                    &field,
                    "too_long",
                    format!("is longer than {MAX_INSTANCE_ID_CHARS} characters"),
                );
            }
        }
        if new.kind == CompanyKind::Reseller && new.reseller_id.is_some() {
            errors.add(
                "reseller_id",
                "invalid",
                "a reseller cannot have a reseller",
            );
        }
        errors.finish()?;
        let name = name.unwrap_or_default();
        if let Some(reseller_id) = new.reseller_id {
            let reseller = self.company(reseller_id).map_err(|_| {
                EngineError::not_found_in_field("company", reseller_id, "reseller_id")
            })?;
            if reseller.kind != CompanyKind::Reseller {
                return Err(EngineError::Rule {
                    code: "not_a_reseller",
                    message: format!("{reseller_id} is a customer, not a reseller"),
                });
            }
        }
        self.write(|tx| {
            let id = CompanyId(tx.next_id()?);
            let company = Company {
                id,
                name: name.clone(),
                kind: new.kind,
                reseller_id: new.reseller_id,
                onretail_instance_ids: new.onretail_instance_ids.clone(),
                created_at: tx.now,
            };
            for instance in &company.onretail_instance_ids {
                if COMPANY_BY_INSTANCE.get(tx, instance)?.is_some() {
                    return Err(EngineError::Taken {
                        code: "instance_taken",
                        field: "onretail_instance_ids",
                        message: format!(
                            "the onRetail instance {instance} belongs to another company"
                        ),
                    });
                }
                COMPANY_BY_INSTANCE.put(tx, instance, &id)?;
            }
            COMPANIES.put(tx, &id, &company)?;
            if let Some(reseller_id) = company.reseller_id {
                CUSTOMERS_OF_RESELLER.insert(tx, &reseller_id, &id)?;
            }
            tx.log(RecordRef::company(id), ChangeOp::Created)?;
            Ok(company)
        })
    }

    /// The customers of a reseller, oldest first.
    pub fn reseller_customers(
        &self,
        reseller_id: CompanyId,
    ) -> Result<Vec<CompanyId>, EngineError> {
        CUSTOMERS_OF_RESELLER
            .children(self.store.as_ref(), &reseller_id, false)
            .collect()
    }

    /// Schema 3 → 4: the reseller index, from the companies of an older store.
    pub(crate) fn migrate_reseller_index(&self) -> Result<u64, EngineError> {
        let pairs: Vec<(CompanyId, CompanyId)> = COMPANIES
            .values(self.store.as_ref(), false)
            .filter_map(|company| match company {
                Ok(company) => company.reseller_id.map(|r| Ok((r, company.id))),
                Err(error) => Some(Err(error)),
            })
            .collect::<Result<_, _>>()?;
        let count = pairs.len() as u64;
        self.write(|tx| {
            for (reseller, customer) in &pairs {
                CUSTOMERS_OF_RESELLER.insert(tx, reseller, customer)?;
            }
            Ok(())
        })?;
        Ok(count)
    }

    /// The company that owns an onRetail instance.
    pub fn company_by_instance(&self, instance_id: &str) -> Result<Option<Company>, EngineError> {
        match COMPANY_BY_INSTANCE.get(&mut self.reader(), instance_id)? {
            Some(id) => self.company(id).map(Some),
            None => Ok(None),
        }
    }

    pub fn company(&self, id: CompanyId) -> Result<Company, EngineError> {
        COMPANIES
            .get(&mut self.reader(), &id)?
            .ok_or_else(|| EngineError::not_found("company", id))
    }

    pub fn create_contact(&self, new: NewContact) -> Result<Contact, EngineError> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", validate::line(&new.name));
        let email = errors.check("email", EmailAddress::parse(&new.email));
        let locale = match new.locale.as_deref() {
            None => Some(self.config().default_locale),
            Some(text) => {
                let parsed = Locale::parse(text);
                if parsed.is_none() {
                    errors.add("locale", "invalid", "must be \"de\" or \"en\"");
                }
                parsed
            }
        };
        errors.finish()?;
        let (Some(name), Some(email), Some(locale)) = (name, email, locale) else {
            return Err(EngineError::invalid_field("email", "invalid", "is invalid"));
        };
        self.company(new.company_id).map_err(|_| {
            EngineError::not_found_in_field("company", new.company_id, "company_id")
        })?;
        self.write(|tx| {
            if CONTACT_BY_EMAIL.get(tx, &email)?.is_some() {
                return Err(EngineError::Taken {
                    code: "email_taken",
                    field: "email",
                    message: format!("a contact with the address {email} exists"),
                });
            }
            let id = ContactId(tx.next_id()?);
            let contact = Contact {
                id,
                company_id: new.company_id,
                name: name.clone(),
                email: email.clone(),
                role: new.role,
                locale,
                permissions: Permissions::initial(),
                created_at: tx.now,
            };
            CONTACTS.put(tx, &id, &contact)?;
            CONTACT_BY_EMAIL.put(tx, &email, &id)?;
            CONTACTS_OF_COMPANY.insert(tx, &new.company_id, &id)?;
            tx.log(RecordRef::company(new.company_id), ChangeOp::Updated)?;
            Ok(contact)
        })
    }

    pub fn contact(&self, id: ContactId) -> Result<Contact, EngineError> {
        CONTACTS
            .get(&mut self.reader(), &id)?
            .ok_or_else(|| EngineError::not_found("contact", id))
    }

    /// The contact with this address, compared case-insensitively.
    pub fn contact_by_email(&self, email: &EmailAddress) -> Result<Option<Contact>, EngineError> {
        match CONTACT_BY_EMAIL.get(&mut self.reader(), email)? {
            Some(id) => self.contact(id).map(Some),
            None => Ok(None),
        }
    }

    /// Sets a contact's permissions at the request of a manager of its company; the
    /// change is an event in the company's history.
    pub fn set_permissions(
        &self,
        contact_id: ContactId,
        to: Permissions,
        requested_by: ContactId,
    ) -> Result<Contact, EngineError> {
        let target = self.contact(contact_id)?;
        let requester = self.contact(requested_by).map_err(|_| {
            EngineError::not_found_in_field("contact", requested_by, "requested_by")
        })?;
        let company = self.company(target.company_id)?;
        access::decide(&Action::ChangePermissions {
            requested_by: &requester,
            target: &target,
            target_company: &company,
            to: &to,
        })
        .map_err(|denied| EngineError::Rule {
            code: denied.code,
            message: denied.message,
        })?;
        self.write(|tx| {
            let mut contact: Contact = CONTACTS
                .get(tx, &contact_id)?
                .ok_or_else(|| EngineError::not_found("contact", contact_id))?;
            let from = contact.permissions;
            if from == to {
                return Ok(contact);
            }
            contact.permissions = to;
            CONTACTS.put(tx, &contact_id, &contact)?;
            tx.append_history(
                RecordRef::company(contact.company_id),
                Author::Contact {
                    id: Some(requester.id),
                    name: requester.name.clone(),
                    email: Some(requester.email.clone()),
                },
                Visibility::Public,
                EntryBody::Event(Event::PermissionsChanged {
                    contact_id,
                    requested_by,
                    from,
                    to,
                }),
            )?;
            // Granting the portal is when a contact first needs to get in.
            if to.portal && !from.portal {
                self.queue_login_link(tx, &contact)?;
            }
            Ok(contact)
        })
    }

    pub fn create_staff(&self, new: NewStaff) -> Result<Staff, EngineError> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", validate::line(&new.name));
        let email = errors.check("email", EmailAddress::parse(&new.email));
        errors.finish()?;
        let (Some(name), Some(email)) = (name, email) else {
            return Err(EngineError::invalid_field("email", "invalid", "is invalid"));
        };
        self.write(|tx| {
            if STAFF_BY_EMAIL.get(tx, &email)?.is_some() {
                return Err(EngineError::Taken {
                    code: "email_taken",
                    field: "email",
                    message: format!("a staff member with the address {email} exists"),
                });
            }
            let id = StaffId(tx.next_id()?);
            let staff = Staff {
                id,
                name: name.clone(),
                email: email.clone(),
                created_at: tx.now,
            };
            STAFF.put(tx, &id, &staff)?;
            STAFF_BY_EMAIL.put(tx, &email, &id)?;
            Ok(staff)
        })
    }

    pub fn staff(&self, id: StaffId) -> Result<Staff, EngineError> {
        STAFF
            .get(&mut self.reader(), &id)?
            .ok_or_else(|| EngineError::not_found("staff", id))
    }

    /// Companies, newest first, optionally only one kind or one reseller's customers.
    pub fn list_companies(
        &self,
        kind: Option<CompanyKind>,
        reseller_id: Option<CompanyId>,
        request: PageRequest,
    ) -> Result<Page<Company>, EngineError> {
        let companies = COMPANIES
            .values(self.store.as_ref(), true)
            .filter(move |company| {
                company.as_ref().map_or(true, |company| {
                    kind.is_none_or(|k| company.kind == k)
                        && reseller_id.is_none_or(|r| company.reseller_id == Some(r))
                })
            });
        paginate(companies, request, |company| Ok(Some(company)))
    }

    /// Contacts, newest first; of one company when `company_id` is given.
    pub fn list_contacts(
        &self,
        company_id: Option<CompanyId>,
        request: PageRequest,
    ) -> Result<Page<Contact>, EngineError> {
        let store = self.store.as_ref();
        let ids: Box<dyn Iterator<Item = Result<ContactId, EngineError>>> = match company_id {
            Some(company) => Box::new(CONTACTS_OF_COMPANY.children(store, &company, true)),
            None => Box::new(CONTACTS.keys(store, true).map(|key| {
                key.and_then(|key| {
                    ContactId::from_key(&key)
                        .ok_or_else(|| crate::store::tables::short_key(Tree::Contacts))
                })
            })),
        };
        paginate(ids, request, |id| CONTACTS.get(&mut self.reader(), &id))
    }

    /// Staff, newest first.
    pub fn list_staff(&self, request: PageRequest) -> Result<Page<Staff>, EngineError> {
        paginate(STAFF.values(self.store.as_ref(), true), request, |staff| {
            Ok(Some(staff))
        })
    }

    /// A record's history, oldest first.
    pub fn history(
        &self,
        record: RecordRef,
        request: PageRequest,
    ) -> Result<Page<HistoryEntry>, EngineError> {
        let prefix = record.key_prefix();
        let entries = self
            .store
            .scan_prefix(Tree::History, &prefix, false)
            .map(|item| item.map_err(EngineError::from));
        paginate(entries, request, |(_, value)| {
            crate::store::codec::decode(Tree::History, &value)
                .map(Some)
                .map_err(EngineError::from)
        })
    }

    /// Names and addresses of contacts and staff, for rendering history authors and
    /// events without a lookup per entry at the edge.
    pub fn staff_names(&self, ids: &[StaffId]) -> Result<BTreeMap<StaffId, String>, EngineError> {
        let mut names = BTreeMap::new();
        for id in ids {
            if let Some(staff) = STAFF.get(&mut self.reader(), id)? {
                names.insert(*id, staff.name);
            }
        }
        Ok(names)
    }
}
