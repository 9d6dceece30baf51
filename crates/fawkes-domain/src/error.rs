use std::collections::BTreeMap;

use fawkes_data::Fault;
use sea_orm::{DbErr, SqlErr};

/// Messages per input field, e.g. `{"email": ["not a valid email address"]}`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Why an identity could not be established or a credential was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("authentication required")]
    Missing,
    #[error("invalid login or password")]
    InvalidCredentials,
    #[error("the token is invalid")]
    InvalidToken,
    #[error("the token has expired")]
    TokenExpired,
    #[error("the session has ended; log in again")]
    SessionRevoked,
    #[error("the refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("the account is deactivated")]
    AccountDisabled,
}

impl AuthFailure {
    /// A stable, machine-readable code for clients.
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::Missing => "unauthenticated",
            AuthFailure::InvalidCredentials => "invalid_credentials",
            AuthFailure::InvalidToken => "invalid_token",
            AuthFailure::TokenExpired => "token_expired",
            AuthFailure::SessionRevoked => "session_revoked",
            AuthFailure::RefreshTokenReused => "refresh_token_reused",
            AuthFailure::AccountDisabled => "account_disabled",
        }
    }
}

/// What an action can fail with. Transports map each variant to their own error shape.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DomainError {
    #[error("the input is not valid")]
    Validation(FieldErrors),
    #[error(transparent)]
    Unauthenticated(#[from] AuthFailure),
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    #[error("the database has no room left")]
    StorageFull(#[source] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl DomainError {
    /// One message for one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        DomainError::Validation(BTreeMap::from([(field.to_owned(), vec![message.into()])]))
    }
}

impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        match fawkes_data::fault(&err) {
            Some(Fault::Unavailable) => DomainError::Unavailable(err),
            Some(Fault::StorageFull) => DomainError::StorageFull(err),
            None if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                DomainError::Conflict {
                    field: "",
                    message: "already exists".to_owned(),
                }
            }
            None => DomainError::Internal(err.to_string()),
        }
    }
}
