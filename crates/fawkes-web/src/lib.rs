//! The HTTP face of Fawkes: the REST API v1, its OpenAPI document and docs page, health and
//! readiness. Handlers are thin: each calls one domain action.

mod channels;
mod error;
mod extract;
mod health;
mod layers;
mod live;
pub mod metrics;
mod openapi;
pub mod ratelimit;
mod routes;

use std::time::Duration;

use axum::Router;
use fawkes_domain::Domain;
use sea_orm::DatabaseConnection;

pub use error::{ApiError, ErrorBody};
pub use metrics::Metrics;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Shared, not copied: the state is cloned for every request.
    pub domain: std::sync::Arc<Domain>,
    /// For the readiness probe only; everything else goes through the domain.
    pub db: DatabaseConnection,
    /// The channel endpoint behind `/socket`.
    pub endpoint: fawkes_channels::Endpoint,
    /// This server's metrics, served at `/metrics`.
    pub metrics: std::sync::Arc<Metrics>,
    /// The HTTP rate limits.
    pub limits: std::sync::Arc<ratelimit::RateLimits>,
}

/// The HTTP settings from configuration.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Origins allowed by CORS; `*` allows any (without credentials).
    pub cors_origins: Vec<String>,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Longest a request may take before it is answered with 408.
    pub request_timeout: Duration,
    /// Limits of the socket endpoint.
    pub socket: fawkes_channels::SocketConfig,
    /// Mark the pages' cookies `Secure` (browsers reach the server over HTTPS).
    pub secure_cookies: bool,
    /// Whether sockets without a token may connect (and read public rooms).
    pub allow_guests: bool,
    /// `presence_update` events one socket may send per second, and in a burst; `None` for no
    /// limit.
    pub presence_updates: Option<(u32, u32)>,
}

/// The whole HTTP application. `signer` signs what pages hand to browsers (sessions, CSRF).
pub fn app(state: AppState, settings: &HttpSettings, signer: fawkes_live::Signer) -> Router {
    let (api, openapi) = documented_routes().split_for_parts();
    let metrics = state.metrics.clone();
    let sockets = fawkes_channels::router(
        state.endpoint.clone(),
        std::sync::Arc::new(channels::AppSocket {
            domain: state.domain.clone(),
            allow_guests: settings.allow_guests,
            presence_updates: settings.presence_updates,
            metrics: state.metrics.clone(),
        }),
        settings.socket.clone(),
    );
    let state_for_pages = state.clone();
    let router = Router::new()
        .merge(api)
        .merge(openapi::docs(openapi))
        .with_state(state);
    // Sockets answer in their own protocol (LongPoll sets its own CORS headers and always
    // answers 200), so the API's CORS, timeout and envelope layers stay off them. So do the
    // pages and their assets: they answer HTML, and an asset miss is a plain 404.
    let live = live::runtime(
        &state_for_pages,
        signer,
        settings.socket.allowed_origins.clone(),
    );
    let pages = live::router(
        &state_for_pages,
        live,
        settings.socket.clone(),
        settings.secure_cookies,
    );
    layers::apply(router, settings, &metrics)
        .nest("/socket", layers::sockets(sockets, &metrics))
        .merge(layers::sockets(pages, &metrics))
}

/// The OpenAPI document, for `fawkes openapi`.
pub fn openapi_json() -> String {
    let (_, openapi) = documented_routes().split_for_parts();
    openapi.to_pretty_json().unwrap_or_default()
}

/// Every route that appears in the OpenAPI document.
fn documented_routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::with_openapi(openapi::document())
        .nest("/api/v1", routes::api_v1())
        .merge(health::routes())
        .routes(utoipa_axum::routes!(metrics::scrape))
}
