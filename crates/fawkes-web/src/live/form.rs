//! Form state shared by the pages: the values as typed, and per-field errors from the domain's
//! own validation, shown for the fields the user has touched.

use std::collections::{BTreeMap, BTreeSet};

use fawkes_domain::{DomainError, FieldErrors};
use fawkes_live::Event;

#[derive(Debug, Default, Clone)]
pub struct FormState {
    pub values: BTreeMap<String, String>,
    errors: FieldErrors,
    touched: BTreeSet<String>,
}

impl FormState {
    /// Takes the fields of a change or submit event; a submit touches every field.
    pub fn update(&mut self, event: &Event, fields: &[&str]) {
        for field in fields {
            self.values
                .insert((*field).to_owned(), event.params.text(field).to_owned());
            if event.name != "validate" || event.touched(field) {
                self.touched.insert((*field).to_owned());
            }
        }
    }

    pub fn value(&self, field: &str) -> &str {
        self.values.get(field).map_or("", String::as_str)
    }

    /// Records the outcome of validating (or of the action): field errors are kept, anything
    /// else becomes an error on the form as a whole (`_form`).
    pub fn set_result(&mut self, result: Result<(), DomainError>) {
        self.errors = match result {
            Ok(()) => FieldErrors::new(),
            Err(DomainError::Validation(fields)) => fields,
            Err(DomainError::Conflict { field, message }) => {
                FieldErrors::from([(field.to_owned(), vec![message.to_owned()])])
            }
            Err(other) => FieldErrors::from([("_form".to_owned(), vec![other.to_string()])]),
        };
    }

    /// Errors of a field, once the user has touched it.
    pub fn errors(&self, field: &str) -> &[String] {
        if !self.touched.contains(field) && field != "_form" {
            return &[];
        }
        self.errors.get(field).map_or(&[], Vec::as_slice)
    }

    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }
}
