//! Extractors whose failures answer with the error envelope instead of axum's plain text.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use fawkes_domain::{Actor, AuthFailure};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// A JSON object as the body. Broken JSON is a 400, JSON of the wrong shape (an array too) a
/// 422, a missing or wrong content type a 415 and an oversized body a 413.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
            }
        })?;
        let axum::Json(value) = axum::Json::<T>::from_bytes(&bytes).map_err(json_rejection)?;
        // serde also reads a struct from an array of its fields in order; every body the API
        // documents is an object, and `[null, null]` passing as one only hides client bugs.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError {
                details: Some(serde_json::json!({ "body": ["expected a JSON object"] })),
                ..ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation_failed",
                    "the JSON body does not have the expected fields and types",
                )
            });
        }
        if contains_escaped_nul(&bytes) {
            return Err(nul_refused("body"));
        }
        Ok(Json(value))
    }
}

/// PostgreSQL cannot store U+0000 in text and fails the whole statement, where SQLite and MySQL
/// keep it: refusing it in every input keeps the databases alike and the answer a 4xx.
fn nul_refused(field: &str) -> ApiError {
    ApiError {
        details: Some(serde_json::json!({ field: ["must not contain the character U+0000"] })),
        ..ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "some fields are not valid",
        )
    }
}

/// Whether JSON text that parsed holds a `\u0000` escape, the only way a JSON string carries
/// U+0000 (a raw NUL byte is not valid JSON). Escapes are skipped whole, so `\\u0000` (a
/// backslash, then `u0000`) does not count.
fn contains_escaped_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') && json.get(i + 2..i + 6) == Some(b"0000".as_slice())
            {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// A percent-encoded NUL (`%00`) in a URI part: the only way one reaches a path or query
/// parameter, since hyper refuses raw control bytes in the request line.
fn has_encoded_nul(part: &str) -> bool {
    part.contains("%00")
}

/// `application/json` or `application/<anything>+json`, as axum's own `Json` accepts.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|subtype| subtype.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError {
            details: Some(serde_json::json!({ "body": [e.body_text()] })),
            ..ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "the JSON body does not have the expected fields and types",
            )
        },
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text())
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::for_status(StatusCode::PAYLOAD_TOO_LARGE)
        }
        other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
    }
}

/// Path parameters; an id that does not parse is a 400.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if has_encoded_nul(parts.uri.path()) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                "a path parameter contains the character U+0000",
            ));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e: PathRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text())
            })
    }
}

/// Query parameters; values of the wrong type are a 400.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.uri.query().is_some_and(has_encoded_nul) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "a query parameter contains the character U+0000",
            ));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|e: QueryRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
            })
    }
}

/// The signed-in user, from `Authorization: Bearer <access token>`. Without a valid token the
/// request is refused with 401 before the handler runs.
pub struct SignedIn(pub Actor);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token =
            bearer_token(parts).ok_or(fawkes_domain::DomainError::from(AuthFailure::Missing))?;
        let actor = state.domain.accounts.authenticate(token).await?;
        // Writes are counted per user here, where the user is known without a second lookup.
        let is_write = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if is_write && let Some(user_id) = actor.user_id() {
            state.limits.write(&user_id.to_string()).await?;
        }
        Ok(SignedIn(actor))
    }
}

/// The caller, signed in or not: without an `Authorization` header the actor is
/// [`Actor::Anonymous`] (for what guests may read); a token that is present must be valid (401
/// otherwise), so a client with an expired token is told, not silently served as a guest.
pub struct MaybeSignedIn(pub Actor);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Ok(MaybeSignedIn(Actor::Anonymous));
        }
        SignedIn::from_request_parts(parts, state)
            .await
            .map(|SignedIn(actor)| MaybeSignedIn(actor))
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::contains_escaped_nul;

    #[test]
    fn an_escaped_nul_is_found_and_an_escaped_backslash_is_not_one() {
        assert!(contains_escaped_nul(br#"{"a": "x\u0000y"}"#));
        assert!(contains_escaped_nul(br#"{"a\u0000": 1}"#));
        assert!(!contains_escaped_nul(br#"{"a": "x\\u0000y"}"#));
        assert!(contains_escaped_nul(br#"{"a": "\\\u0000"}"#));
        assert!(contains_escaped_nul(br#"{"a": "\u00001"}"#));
        assert!(!contains_escaped_nul(br#"{"a": "\u0001 \n \"0000"}"#));
    }
}
