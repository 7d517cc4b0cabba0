//! The engine's typed errors. Adapters turn them into the contract's error JSON
//! (`adapters::http::error`) or into one line on stderr (`adapters::main`).

use std::collections::BTreeMap;

use crate::store::StoreError;

/// Why an engine operation refused or failed. Each variant maps onto one HTTP status
/// class at the edge: `Invalid` 400, `NotFound` 404, `Conflict` and `Taken` 409, `TooLarge` 413,
/// `Rule` 422, `Store` 500.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Input failed validation; `fields` names each bad field and why.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        fields: BTreeMap<String, String>,
    },
    /// A referenced record does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        what: &'static str,
        id: String,
        /// The request field that named the missing record, when it came from a body.
        field: Option<&'static str>,
    },
    /// The record's state forbids the action (e.g. an illegal status transition).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A value that must be unique is taken (409 naming `field`).
    #[error("{message}")]
    Taken {
        code: &'static str,
        field: &'static str,
        message: String,
    },
    /// A domain rule says no (e.g. only managers may change permissions).
    #[error("{message}")]
    Rule { code: &'static str, message: String },
    /// Input is larger than a configured limit.
    #[error("{message}")]
    TooLarge { field: String, message: String },
    /// The store failed; the request changed nothing.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The signing keys could not be read or created.
    #[error(transparent)]
    Keys(#[from] crate::links::KeyRingError),
}

/// Why the engine could not do its work, as the edges need to tell it, without
/// knowing the store behind it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The data dir's disk is full; nothing was stored; try later (507, SMTP 452).
    DiskFull,
    /// A commit did not finish in time; the write may or may not be stored (503).
    Stalled,
    /// Storage or keys failed otherwise (500, SMTP 451).
    Failed,
}

impl EngineError {
    /// `Some` when the failure is the engine's own (storage, keys), not the request's.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            EngineError::Store(StoreError::Full { .. }) => Some(Unavailable::DiskFull),
            EngineError::Store(StoreError::Stalled { .. }) => Some(Unavailable::Stalled),
            EngineError::Store(_) | EngineError::Keys(_) => Some(Unavailable::Failed),
            _ => None,
        }
    }

    /// One invalid field, the most common case.
    pub fn invalid_field(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut fields = BTreeMap::new();
        fields.insert(field.to_string(), message.clone());
        EngineError::Invalid {
            code,
            message: format!("{field}: {message}"),
            fields,
        }
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        EngineError::NotFound {
            what,
            id: id.to_string(),
            field: None,
        }
    }

    /// A record named in a request body that does not exist.
    pub fn not_found_in_field(what: &'static str, id: impl ToString, field: &'static str) -> Self {
        EngineError::NotFound {
            what,
            id: id.to_string(),
            field: Some(field),
        }
    }
}

/// Collects field errors so that one response names every bad field at once.
#[derive(Debug, Default)]
pub struct FieldErrors {
    fields: BTreeMap<String, String>,
    code: Option<&'static str>,
}

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.code.get_or_insert(code);
        self.fields
            .entry(field.to_string())
            .or_insert_with(|| message.into());
    }

    /// Records the outcome of a validating constructor, returning its value if valid.
    pub fn check<T, E: std::fmt::Display + ErrorCode>(
        &mut self,
        field: &str,
        result: Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.code(), error.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// `Ok(())` when nothing was added, else the collected `Invalid` error.
    pub fn finish(self) -> Result<(), EngineError> {
        if self.fields.is_empty() {
            return Ok(());
        }
        let message = self
            .fields
            .iter()
            .map(|(field, why)| format!("{field}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(EngineError::Invalid {
            code: self.code.unwrap_or("invalid"),
            message,
            fields: self.fields,
        })
    }
}

/// A stable snake_case code for validation errors, as the contract's error JSON carries.
pub trait ErrorCode {
    fn code(&self) -> &'static str;
}
