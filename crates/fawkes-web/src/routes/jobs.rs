use axum::extract::State;
use fawkes_domain::jobs::{Job, JobQuery};
use fawkes_domain::{Page, PageRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{Path, Query, SignedIn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(retry_job))
        .routes(routes!(cancel_job))
}

/// Background jobs, newest first, filtered by state, queue and kind (admins only).
#[utoipa::path(get, path = "/admin/jobs", tag = "operations", params(JobQuery, PageRequest),
    security(("bearer" = [])), responses((status = 200, body = Page<Job>), ReadErrors))]
async fn list_jobs(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Query(query): Query<JobQuery>,
    Query(page): Query<PageRequest>,
) -> ApiResult<axum::Json<Page<Job>>> {
    Ok(axum::Json(
        state.domain.jobs.list(&actor, &query, &page).await?,
    ))
}

/// Run a discarded, cancelled or waiting job now, with a fresh set of attempts (admins only).
/// A running or completed job answers 409.
#[utoipa::path(post, path = "/admin/jobs/{id}/retry", tag = "operations", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 200, body = Job), WriteErrors))]
async fn retry_job(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(state.domain.jobs.retry(&actor, id).await?))
}

/// Cancel a job that has not started (admins only); any other answers 409.
#[utoipa::path(post, path = "/admin/jobs/{id}/cancel", tag = "operations", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 200, body = Job), WriteErrors))]
async fn cancel_job(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Job>> {
    Ok(axum::Json(state.domain.jobs.cancel(&actor, id).await?))
}
