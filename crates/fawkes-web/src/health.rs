use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
}

/// Liveness: the process answers.
async fn health() -> axum::Json<Value> {
    axum::Json(json!({ "status": "ok" }))
}

/// Readiness: every dependency answers. 503 with the failing ones otherwise.
async fn ready(State(state): State<AppState>) -> (StatusCode, axum::Json<Value>) {
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({ "status": "ready", "checks": { "database": "ok" } })),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database down");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({
                    "status": "unavailable",
                    "checks": { "database": "unavailable" },
                    "error": { "code": "service_unavailable", "message": "the database does not answer" }
                })),
            )
        }
    }
}
