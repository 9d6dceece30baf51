//! The JSON error envelope: `{"error": {"code", "message", "details"}}` for every failure.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fawkes_domain::{AuthFailure, DomainError, FieldErrors};
use serde::Serialize;

/// An HTTP error, rendered as the envelope.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<serde_json::Value>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable, stable: `validation_failed`, `invalid_credentials`, `not_found`, …
    #[schema(example = "validation_failed")]
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
    /// For `validation_failed` and `conflict`: messages per field.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// The envelope for a bare status, used where something outside a handler answered.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, message) = match status {
            StatusCode::NOT_FOUND => ("not_found", "no such route"),
            StatusCode::METHOD_NOT_ALLOWED => {
                ("method_not_allowed", "method not allowed on this route")
            }
            StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "the request body is too large"),
            StatusCode::REQUEST_TIMEOUT => ("timeout", "the request took too long"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => (
                "unsupported_media_type",
                "expected Content-Type: application/json",
            ),
            StatusCode::SERVICE_UNAVAILABLE => {
                ("service_unavailable", "the service is unavailable")
            }
            StatusCode::INSUFFICIENT_STORAGE => (
                "storage_full",
                "the database has no room left; try again later",
            ),
            s if s.is_client_error() => ("bad_request", "the request could not be understood"),
            _ => ("internal_error", "something went wrong on our side"),
        };
        Self::new(status, code, message)
    }

    fn validation(fields: FieldErrors) -> Self {
        Self {
            details: serde_json::to_value(fields).ok(),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "some fields are not valid",
            )
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Validation(fields) => Self::validation(fields),
            DomainError::Unauthenticated(AuthFailure::AccountDisabled) => Self::new(
                StatusCode::FORBIDDEN,
                AuthFailure::AccountDisabled.code(),
                AuthFailure::AccountDisabled.to_string(),
            ),
            DomainError::Unauthenticated(failure) => Self::new(
                StatusCode::UNAUTHORIZED,
                failure.code(),
                failure.to_string(),
            ),
            DomainError::Forbidden(message) => {
                Self::new(StatusCode::FORBIDDEN, "forbidden", message)
            }
            DomainError::NotFound(what) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            DomainError::Conflict { field, message } => {
                let details =
                    (!field.is_empty()).then(|| serde_json::json!({ field: [message.clone()] }));
                Self {
                    details,
                    ..Self::new(StatusCode::CONFLICT, "conflict", message)
                }
            }
            DomainError::Unavailable(source) => {
                tracing::warn!(error = %source, "database unavailable");
                Self::for_status(StatusCode::SERVICE_UNAVAILABLE)
            }
            DomainError::StorageFull(source) => {
                tracing::error!(error = %source, "database storage is full");
                Self::for_status(StatusCode::INSUFFICIENT_STORAGE)
            }
            DomainError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                Self::for_status(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                details: self.details,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// What every handler returns.
pub type ApiResult<T> = Result<T, ApiError>;

/// The error answers of an endpoint that reads, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its schema is used.
pub enum ReadErrors {
    /// A path or query parameter is malformed.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No valid access token.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The policy refuses this actor.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such record, or not visible to this actor.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// A query parameter has an invalid value.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// The database is unavailable.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// The error answers of an endpoint that changes state, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // Only its schema is used.
pub enum WriteErrors {
    /// The body is not JSON, or a path parameter is malformed.
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// No valid access token (or credentials).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// The policy refuses this actor.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// No such record, or not visible to this actor.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// It would duplicate a unique value; `details` names the field.
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// The body is larger than the configured limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// The body is not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorBody),
    /// Fields failed validation; `details` has messages per field.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// Too many requests: over a rate limit; `Retry-After` says when to try again.
    #[response(status = 429)]
    TooMany(ErrorBody),
    /// The database is unavailable.
    #[response(status = 503)]
    Unavailable(ErrorBody),
    /// The database has no room left for the write.
    #[response(status = 507)]
    StorageFull(ErrorBody),
}
