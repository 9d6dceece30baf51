use axum::extract::State;
use axum::http::StatusCode;
use fawkes_domain::accounts::{ApiKey, CreatedApiKey, NewApiKey};
use fawkes_domain::publishing::{PublishInput, Published};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{Json, Path, SignedIn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(broadcast))
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(revoke_api_key))
}

/// Publish an event to a topic in a published namespace (`notification:*`, `transaction:*`, …).
/// For admins, and for API keys with the `publish` scope (`Authorization: Bearer fk_…`).
#[utoipa::path(post, path = "/broadcast", tag = "publishing", request_body = PublishInput,
    security(("bearer" = [])), responses((status = 202, body = Published), WriteErrors))]
async fn broadcast(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Json(input): Json<PublishInput>,
) -> ApiResult<(StatusCode, axum::Json<Published>)> {
    let published = state.domain.publishing.publish(&actor, input)?;
    Ok((StatusCode::ACCEPTED, axum::Json(published)))
}

/// Every API key (admins only); the keys themselves are never shown again.
#[utoipa::path(get, path = "/api-keys", tag = "publishing", security(("bearer" = [])),
    responses((status = 200, body = Vec<ApiKey>), ReadErrors))]
async fn list_api_keys(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> ApiResult<axum::Json<Vec<ApiKey>>> {
    Ok(axum::Json(
        state.domain.accounts.list_api_keys(&actor).await?,
    ))
}

/// Create an API key for a backend service (admins only). The answer is the only time the key is shown.
#[utoipa::path(post, path = "/api-keys", tag = "publishing", request_body = NewApiKey, security(("bearer" = [])),
    responses((status = 201, body = CreatedApiKey), WriteErrors))]
async fn create_api_key(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Json(input): Json<NewApiKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedApiKey>)> {
    let created = state.domain.accounts.create_api_key(&actor, input).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Revoke an API key (admins only); it stops working at once.
#[utoipa::path(delete, path = "/api-keys/{id}", tag = "publishing", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 204, description = "Revoked"), ReadErrors))]
async fn revoke_api_key(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.domain.accounts.revoke_api_key(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
