//! Subscriptions: a plan and its modules, each with components. `active` → `ended`.
//! Replacing the modules records what was added and removed.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::commercial;
use super::document::illegal;
use super::{Audience, RecordHead, RecordType};
use crate::error::{EngineError, FieldErrors};
use crate::ids::{CompanyId, ContactId, StaffId, SubscriptionId};
use crate::links::LinkScope;
use crate::model::*;
use crate::validate;
use crate::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    Active,
    Ended,
}

impl SubscriptionStatus {
    pub const ALL: [SubscriptionStatus; 2] =
        [SubscriptionStatus::Active, SubscriptionStatus::Ended];

    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Ended => "ended",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == input)
    }

    pub fn display_name(self, locale: Locale) -> &'static str {
        match (locale, self) {
            (Locale::De, SubscriptionStatus::Active) => "Aktiv",
            (Locale::De, SubscriptionStatus::Ended) => "Beendet",
            (Locale::En, SubscriptionStatus::Active) => "Active",
            (Locale::En, SubscriptionStatus::Ended) => "Ended",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Module {
    pub code: String,
    pub name: String,
    pub components: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: SubscriptionId,
    pub company_id: CompanyId,
    pub contact_id: ContactId,
    pub plan: String,
    pub modules: Vec<Module>,
    pub started_on: NaiveDate,
    pub renews_on: NaiveDate,
    pub status: SubscriptionStatus,
    pub assignee_id: Option<StaffId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl RecordType for Subscription {
    const KIND: RecordKind = RecordKind::Subscription;
    const LINK_SCOPES: &'static [LinkScope] = &[LinkScope::View];
    const AUDIENCE: Audience = Audience::Permission(|p| p.subscriptions);

    fn head(&self) -> RecordHead {
        RecordHead {
            record: RecordRef {
                kind: RecordKind::Subscription,
                id: self.id.0,
            },
            number: None,
            title: self.plan.clone(),
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

    super::status_and_touch!(SubscriptionStatus);

    /// A subscription is found by its modules' codes, names and components.
    fn search_text(&self) -> Vec<String> {
        self.modules
            .iter()
            .flat_map(|module| {
                [module.code.clone(), module.name.clone()]
                    .into_iter()
                    .chain(module.components.iter().cloned())
            })
            .collect()
    }

    fn notice_data(&self, locale: Locale) -> Value {
        json!({
            "title": self.plan,
            "plan": self.plan,
            "status": self.status.display_name(locale),
            "started_on": self.started_on.to_string(),
            "renews_on": self.renews_on.to_string(),
            "modules": self.modules,
        })
    }
}

#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub company_id: CompanyId,
    pub contact_id: ContactId,
    pub plan: String,
    pub modules: Vec<Module>,
    pub started_on: String,
    pub renews_on: String,
    pub staff_id: Option<StaffId>,
}

/// The most modules a subscription may hold, and components a module.
pub const MAX_MODULES: usize = 500;

impl Engine {
    pub fn create_subscription(&self, new: NewSubscription) -> Result<Subscription, EngineError> {
        let mut errors = FieldErrors::new();
        let plan = errors.check("plan", validate::line(&new.plan));
        let modules = check_modules(&mut errors, &new.modules);
        let started_on = commercial::check_date(&mut errors, "started_on", &new.started_on);
        let renews_on = commercial::check_date(&mut errors, "renews_on", &new.renews_on);
        if let (Some(start), Some(renew)) = (started_on, renews_on) {
            if renew < start {
                errors.add("renews_on", "invalid", "must not be before started_on");
            }
        }
        errors.finish()?;
        let contact = self.party_in_company(new.company_id, new.contact_id, "contact_id")?;
        self.staff_exists(new.staff_id, "staff_id")?;
        self.write(|tx| {
            let subscription = Subscription {
                id: SubscriptionId(tx.next_id()?),
                company_id: new.company_id,
                contact_id: contact.id,
                plan: plan.clone().unwrap_or_default(),
                modules: modules.clone(),
                started_on: started_on.unwrap_or_default(),
                renews_on: renews_on.unwrap_or_default(),
                status: SubscriptionStatus::Active,
                assignee_id: new.staff_id,
                created_at: tx.now,
                updated_at: tx.now,
            };
            self.insert_record(tx, &subscription)?;
            Ok(subscription)
        })
    }

    pub fn subscription(&self, id: SubscriptionId) -> Result<Subscription, EngineError> {
        super::require(&mut self.reader(), id.0)
    }

    /// Replaces the modules; the history event lists what came and what went.
    pub fn replace_subscription_modules(
        &self,
        id: SubscriptionId,
        modules: Vec<Module>,
        staff_id: StaffId,
    ) -> Result<Subscription, EngineError> {
        let mut errors = FieldErrors::new();
        let modules = check_modules(&mut errors, &modules);
        errors.finish()?;
        let author = self.staff_author_of(Some(staff_id))?;
        self.write(|tx| {
            let old: Subscription = super::require(tx, id.0)?;
            if old.status == SubscriptionStatus::Ended {
                return Err(illegal("the subscription has ended"));
            }
            let before = parts(&old.modules);
            let after = parts(&modules);
            let added: Vec<String> = after
                .iter()
                .filter(|p| !before.contains(p))
                .cloned()
                .collect();
            let removed: Vec<String> = before
                .iter()
                .filter(|p| !after.contains(p))
                .cloned()
                .collect();
            let mut subscription = old.clone();
            subscription.modules = modules.clone();
            subscription.updated_at = tx.now;
            self.update_record(tx, &old, &subscription)?;
            if !added.is_empty() || !removed.is_empty() {
                self.record_event(
                    tx,
                    &subscription,
                    author.clone(),
                    Event::ModulesChanged { added, removed },
                )?;
            }
            Ok(subscription)
        })
    }

    /// Ends a subscription (`active` → `ended`).
    pub fn end_subscription(
        &self,
        id: SubscriptionId,
        staff_id: StaffId,
    ) -> Result<Subscription, EngineError> {
        let author = self.staff_author_of(Some(staff_id))?;
        self.write(|tx| {
            let old: Subscription = super::require(tx, id.0)?;
            if old.status == SubscriptionStatus::Ended {
                return Err(illegal("the subscription has ended already"));
            }
            let mut subscription = old.clone();
            subscription.status = SubscriptionStatus::Ended;
            subscription.updated_at = tx.now;
            self.update_record(tx, &old, &subscription)?;
            self.record_event(
                tx,
                &subscription,
                author.clone(),
                Event::Cancelled { reason: None },
            )?;
            Ok(subscription)
        })
    }
}

/// `CODE` for each module and `CODE/component` for each component.
fn parts(modules: &[Module]) -> Vec<String> {
    modules
        .iter()
        .flat_map(|module| {
            std::iter::once(module.code.clone()).chain(
                module
                    .components
                    .iter()
                    .map(move |component| format!("{}/{component}", module.code)),
            )
        })
        .collect()
}

fn check_modules(errors: &mut FieldErrors, modules: &[Module]) -> Vec<Module> {
    if modules.len() > MAX_MODULES {
        errors.add(
            "modules",
            "too_long",
            format!("at most {MAX_MODULES} modules"),
        );
    }
    let mut checked: Vec<Module> = Vec::new();
    for (position, module) in modules.iter().enumerate() {
        let at = |name: &str| format!("modules[{position}].{name}");
        let code = errors.check(&at("code"), validate::line(&module.code));
        let name = errors.check(&at("name"), validate::line(&module.name));
        if let Some(code) = &code {
            if checked.iter().any(|other| &other.code == code) {
                errors.add(&at("code"), "duplicate", "another module has this code");
            }
        }
        if module.components.len() > MAX_MODULES {
            errors.add(
                &at("components"),
                "too_long",
                format!("at most {MAX_MODULES} components"),
            );
        }
        let mut components = Vec::new();
        for (index, component) in module.components.iter().enumerate() {
            if let Some(component) = errors.check(
                &format!("{}[{index}]", at("components")),
                validate::line(component),
            ) {
                components.push(component);
            }
        }
        if let (Some(code), Some(name)) = (code, name) {
            checked.push(Module {
                code,
                name,
                components,
            });
        }
    }
    checked
}
