use garde::Validate;

use crate::{DomainError, FieldErrors};

/// Runs the input's declared rules; every failing field is reported, not just the first.
pub(crate) fn validate<T: Validate<Context = ()>>(input: &T) -> Result<(), DomainError> {
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

/// A rule for text that must say something: not empty once surrounding white space is gone.
pub(crate) fn not_blank(value: &str, _: &()) -> garde::Result {
    if value.trim().is_empty() {
        return Err(garde::Error::new("must not be blank"));
    }
    Ok(())
}
