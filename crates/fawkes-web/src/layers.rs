//! The middleware every request passes through, outermost first: request id, tracing, header
//! size limit, panic catching, CORS, compression, timeout, body limit, and the error envelope for
//! answers that did not come from a handler.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::HttpSettings;
use crate::error::ApiError;
use crate::metrics::Metrics;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The most header bytes (names and values) a request may carry. hyper refuses more than 100
/// headers with a bare 431, but reads up to its buffer's size (about 400 KiB) of them, and every
/// layer and extractor would then scan them. 32 KiB is what nginx's defaults let through, and
/// far above what a client of ours sends (a token, a cookie, a CSRF token).
const MAX_HEADER_BYTES: usize = 32 * 1024;

pub(crate) fn apply(router: Router, settings: &HttpSettings, metrics: &Arc<Metrics>) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(span);
    let stack = ServiceBuilder::new()
        .layer(SetSensitiveHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn(limit_headers))
        .layer(middleware::from_fn_with_state(
            metrics.clone(),
            crate::metrics::track,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
        }))
        .layer(middleware::from_fn(envelope_bare_errors))
        .layer(cors(&settings.cors_origins))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(DefaultBodyLimit::max(settings.body_limit));
    router
        .fallback(|| async { ApiError::for_status(StatusCode::NOT_FOUND) })
        .layer(stack)
}

/// The socket mount gets request ids, tracing and request metrics only.
pub(crate) fn sockets(router: Router, metrics: &Arc<Metrics>) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetSensitiveHeadersLayer::new([
                header::AUTHORIZATION,
                header::COOKIE,
                header::SEC_WEBSOCKET_PROTOCOL,
            ]))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(span))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(middleware::from_fn(limit_headers))
            .layer(middleware::from_fn_with_state(
                metrics.clone(),
                crate::metrics::track,
            )),
    )
}

/// Refuses a request whose headers exceed [`MAX_HEADER_BYTES`] with 431 in the envelope.
async fn limit_headers(request: Request, next: Next) -> Response {
    let size: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if size > MAX_HEADER_BYTES {
        tracing::debug!(size, "request headers too large");
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("the request headers exceed {MAX_HEADER_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}

/// One span per request, carrying its request id so every log line of the request has it.
fn span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id)
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::PUT,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, REQUEST_ID])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600))
}

/// Errors produced below the handlers (405, 408 from the timeout, …) come with an empty or
/// plain-text body; they get the same JSON envelope as everything else.
async fn envelope_bare_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let enveloped = ApiError::for_status(status).into_response();
    let (envelope_parts, body) = enveloped.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in envelope_parts.headers.iter() {
        parts.headers.insert(name, value.clone());
    }
    Response::from_parts(parts, Body::new(body))
}
