use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
}

/// Liveness.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
}

/// Readiness, with one entry per dependency.
#[derive(Serialize, utoipa::ToSchema)]
struct Readiness {
    /// `ready` or `unavailable`.
    status: &'static str,
    checks: Checks,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Checks {
    /// `ok` or `unavailable`.
    database: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Readiness: every dependency answers; 503 names the ones that do not.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn ready(State(state): State<AppState>) -> (StatusCode, axum::Json<Readiness>) {
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(Readiness {
                status: "ready",
                checks: Checks { database: "ok" },
            }),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(Readiness {
                    status: "unavailable",
                    checks: Checks {
                        database: "unavailable",
                    },
                }),
            )
        }
    }
}
