//! Who may see and do what. Every access decision goes through [`decide`]
//! (DESIGN.md invariant 6); handlers and operations never decide on their own.

use crate::ids::{CompanyId, ContactId};
use crate::links::{LinkClaims, LinkScope};
use crate::model::{
    Company, CompanyKind, Contact, ContactRole, Permissions, RecordKind, RecordRef,
};
use crate::records::{Audience, RecordHead};

/// Something someone wants to do, with the records the rule needs to see.
#[derive(Debug)]
pub enum Action<'a> {
    /// `requested_by` asks to set `target`'s permissions to `to`.
    ChangePermissions {
        requested_by: &'a Contact,
        target: &'a Contact,
        target_company: &'a Company,
        to: &'a Permissions,
    },
    /// A contact looks at any record (portal, links, search), of any kind.
    ViewRecord {
        viewer: &'a Contact,
        viewer_company: &'a Company,
        record: &'a RecordHead,
        record_company: Option<&'a Company>,
    },
    /// The holder of a magic link's session looks at `record`: a view or sign link
    /// opens exactly the record it names.
    ViewByLink {
        claims: &'a LinkClaims,
        record: RecordRef,
    },
}

/// Why an action is refused; `code` is the contract's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub code: &'static str,
    pub message: String,
}

/// What a contact may see: its own records always; its company's with the portal as a
/// manager; and, for any contact of a reseller with the portal, the tickets of the
/// reseller's customers (CONTRACT.md section 3: "a reseller's contacts see their
/// customers' tickets").
/// The search index applies this same scope inside its queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactScope {
    pub contact_id: ContactId,
    pub company_id: CompanyId,
    pub sees_company: bool,
    pub sees_reseller_customers: bool,
}

/// The scope of `contact`, a person at `company`.
pub fn contact_scope(contact: &Contact, company: &Company) -> ContactScope {
    let sees_company = contact.permissions.portal && contact.role == ContactRole::Manager;
    ContactScope {
        contact_id: contact.id,
        company_id: contact.company_id,
        sees_company,
        sees_reseller_customers: contact.permissions.portal
            && company.kind == CompanyKind::Reseller,
    }
}

/// Who may see a record, as tokens: the search index stores them with the record
/// and matches them against a viewer's [`viewer_tokens`], and [`decide`] compares the
/// same two sets, so the portal, links and search apply one rule.
/// `more_contacts` are contacts on the record beyond its own (a ticket's CC'd).
pub fn audience_tokens(
    record: &RecordHead,
    company: Option<&Company>,
    more_contacts: &[ContactId],
) -> Vec<String> {
    let audience = crate::records::spec(record.record.kind).map(|spec| spec.audience());
    let mut tokens = Vec::new();
    match audience {
        Some(Audience::Requester) => {
            tokens.extend(record.contact_id.map(|id| format!("c:{id}")));
            tokens.extend(more_contacts.iter().map(|id| format!("c:{id}")));
            tokens.extend(record.company_id.map(|id| format!("m:{id}")));
            tokens.extend(
                company
                    .and_then(|c| c.reseller_id)
                    .map(|id| format!("r:{id}")),
            );
        }
        Some(Audience::SignerAndManagers) => {
            tokens.extend(record.contact_id.map(|id| format!("c:{id}")));
            tokens.extend(record.company_id.map(|id| format!("m:{id}")));
        }
        Some(Audience::Permission(_)) => {
            tokens.extend(
                record
                    .company_id
                    .map(|id| format!("p:{}:{id}", record.record.kind.as_str())),
            );
        }
        None => {}
    }
    tokens
}

/// What a contact may see, as the tokens [`audience_tokens`] gives records: its own
/// records; as a manager with the portal, its company's (documents and tickets);
/// as a reseller's contact, its customers' tickets; and each commercial kind it
/// holds the permission for, unless its company buys through a reseller.
pub fn viewer_tokens(contact: &Contact, company: &Company) -> Vec<String> {
    let scope = contact_scope(contact, company);
    let mut tokens = vec![format!("c:{}", contact.id)];
    if scope.sees_company {
        tokens.push(format!("m:{}", company.id));
    }
    if scope.sees_reseller_customers {
        tokens.push(format!("r:{}", company.id));
    }
    if company.reseller_id.is_none() && contact.permissions.portal {
        for kind in RecordKind::RECORDS {
            let granted = crate::records::spec(kind).is_some_and(|spec| match spec.audience() {
                Audience::Permission(holds) => holds(&contact.permissions),
                _ => false,
            });
            if granted {
                tokens.push(format!("p:{}:{}", kind.as_str(), company.id));
            }
        }
    }
    tokens
}

/// The one access decision.
pub fn decide(action: &Action<'_>) -> Result<(), Denied> {
    match action {
        Action::ViewRecord {
            viewer,
            viewer_company,
            record,
            record_company,
        } => {
            let audience = audience_tokens(record, *record_company, &[]);
            let sees = viewer_tokens(viewer, viewer_company)
                .iter()
                .any(|token| audience.contains(token));
            if sees {
                Ok(())
            } else {
                Err(Denied {
                    code: "forbidden",
                    message: format!(
                        "{} may not see {} {}",
                        viewer.id,
                        record.record.kind,
                        crate::records::display_id(record.record)
                    ),
                })
            }
        }
        Action::ChangePermissions {
            requested_by,
            target,
            target_company,
            to,
        } => {
            if requested_by.role != ContactRole::Manager
                || requested_by.company_id != target.company_id
            {
                return Err(Denied {
                    code: "not_a_manager",
                    message: format!(
                        "{} is not a manager of the contact's company",
                        requested_by.id
                    ),
                });
            }
            if target_company.reseller_id.is_some() && to.any_commercial() {
                return Err(Denied {
                    code: "reseller_customer",
                    message: "quotes, orders, invoices and subscriptions of a reseller's customer are handled by the reseller".into(),
                });
            }
            Ok(())
        }
        Action::ViewByLink { claims, record } => {
            let grants = matches!(claims.scope, LinkScope::View | LinkScope::Sign)
                && claims.record == *record;
            if grants {
                Ok(())
            } else {
                Err(Denied {
                    code: "forbidden",
                    message: "this link does not open that record".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Locale;
    use crate::validate::EmailAddress;

    fn company(id: u64, reseller: Option<u64>) -> Company {
        Company {
            id: CompanyId(id),
            name: format!("Company {id}"),
            kind: if reseller.is_some() {
                CompanyKind::Customer
            } else {
                CompanyKind::Reseller
            },
            reseller_id: reseller.map(CompanyId),
            onretail_instance_ids: vec![],
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    fn contact(id: u64, company: u64, role: ContactRole) -> Contact {
        Contact {
            id: ContactId(id),
            company_id: CompanyId(company),
            name: format!("Contact {id}"),
            email: EmailAddress::parse(&format!("c{id}@example.org")).unwrap(),
            role,
            locale: Locale::De,
            permissions: Permissions::initial(),
            created_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn only_a_manager_of_the_same_company_changes_permissions() {
        let own = company(1, None);
        let manager = contact(10, 1, ContactRole::Manager);
        let member = contact(11, 1, ContactRole::Member);
        let foreign_manager = contact(20, 2, ContactRole::Manager);
        let to = Permissions {
            quotes: true,
            ..Permissions::initial()
        };
        let ask = |by: &Contact| {
            decide(&Action::ChangePermissions {
                requested_by: by,
                target: &member,
                target_company: &own,
                to: &to,
            })
        };
        assert_eq!(ask(&manager), Ok(()));
        assert_eq!(ask(&member).unwrap_err().code, "not_a_manager");
        assert_eq!(ask(&foreign_manager).unwrap_err().code, "not_a_manager");
    }

    #[test]
    fn a_resellers_customer_gets_no_commercial_permissions() {
        let customer = company(2, Some(1));
        let manager = contact(10, 2, ContactRole::Manager);
        let member = contact(11, 2, ContactRole::Member);
        for to in [
            Permissions {
                quotes: true,
                ..Permissions::initial()
            },
            Permissions {
                orders: true,
                ..Permissions::initial()
            },
            Permissions {
                invoices: true,
                ..Permissions::initial()
            },
            Permissions {
                subscriptions: true,
                ..Permissions::initial()
            },
        ] {
            let denied = decide(&Action::ChangePermissions {
                requested_by: &manager,
                target: &member,
                target_company: &customer,
                to: &to,
            });
            assert_eq!(denied.unwrap_err().code, "reseller_customer");
        }
        let portal_only = Permissions::initial();
        assert!(decide(&Action::ChangePermissions {
            requested_by: &manager,
            target: &member,
            target_company: &customer,
            to: &portal_only,
        })
        .is_ok());
    }
}
