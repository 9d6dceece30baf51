use garde::Validate;

use crate::{DomainError, FieldErrors};

/// Runs the input's declared rules; every failing field is reported, not just the first.
///
/// Public so that a live page can check a form as it is typed with exactly the rules the action
/// will apply on submit (the action validates again; this is never a substitute). Fails with
/// [`DomainError::Validation`], field path to messages.
pub fn validate<T: Validate<Context = ()>>(input: &T) -> Result<(), DomainError> {
    input.validate().map_err(|report| {
        let mut fields = FieldErrors::new();
        for (path, error) in report.iter() {
            fields
                .entry(path.to_string())
                .or_default()
                .push(error.message().to_owned());
        }
        DomainError::Validation(fields)
    })
}

/// A rule for text that is stored or looked up: PostgreSQL cannot hold U+0000 in text and fails
/// the whole statement, where SQLite and MySQL keep it. Refusing it here keeps the backends alike
/// whichever way the text came in (REST, a channel, a page form).
pub(crate) fn no_nul(value: &str, _: &()) -> garde::Result {
    if value.contains('\0') {
        return Err(garde::Error::new("must not contain the character U+0000"));
    }
    Ok(())
}

/// [`no_nul`] for an optional field.
pub(crate) fn no_nul_if_given(value: &Option<String>, context: &()) -> garde::Result {
    value
        .as_deref()
        .map_or(Ok(()), |text| no_nul(text, context))
}

/// A rule for text that must say something: not empty once surrounding white space is gone.
pub(crate) fn not_blank(value: &str, _: &()) -> garde::Result {
    if value.trim().is_empty() {
        return Err(garde::Error::new("must not be blank"));
    }
    Ok(())
}
