//! The HTTP face of Fawkes: the REST API v1, its OpenAPI document and docs page, health and
//! readiness. Handlers are thin: each calls one domain action.

mod channels;
mod error;
mod extract;
mod health;
mod layers;
mod openapi;
mod routes;

use std::time::Duration;

use axum::Router;
use fawkes_domain::Domain;
use sea_orm::DatabaseConnection;

pub use error::{ApiError, ErrorBody};

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub domain: Domain,
    /// For the readiness probe only; everything else goes through the domain.
    pub db: DatabaseConnection,
    /// The channel endpoint behind `/socket`.
    pub endpoint: fawkes_channels::Endpoint,
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
    /// Whether sockets without a token may connect (and read public rooms).
    pub allow_guests: bool,
}

/// The whole HTTP application.
pub fn app(state: AppState, settings: &HttpSettings) -> Router {
    let (api, openapi) = documented_routes().split_for_parts();
    let sockets = fawkes_channels::router(
        state.endpoint.clone(),
        std::sync::Arc::new(channels::AppSocket {
            domain: state.domain.clone(),
            allow_guests: settings.allow_guests,
        }),
        settings.socket.clone(),
    );
    let router = Router::new()
        .merge(api)
        .merge(openapi::docs(openapi))
        .with_state(state);
    // Sockets answer in their own protocol (LongPoll sets its own CORS headers and always
    // answers 200), so the API's CORS, timeout and envelope layers stay off them. So do the
    // assets: they are gzipped at build time and a miss is a plain 404, not the JSON envelope.
    layers::apply(router, settings)
        .nest("/socket", layers::sockets(sockets))
        .merge(fawkes_assets::router())
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
}
