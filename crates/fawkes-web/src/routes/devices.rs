use axum::extract::State;
use axum::http::StatusCode;
use fawkes_domain::accounts::Device;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors};
use crate::extract::{Path, SignedIn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_devices))
        .routes(routes!(revoke_device))
}

/// The devices the signed-in user has logged in from.
#[utoipa::path(get, path = "/devices", tag = "devices", security(("bearer" = [])),
    responses((status = 200, body = Vec<Device>), ReadErrors))]
async fn list_devices(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> ApiResult<axum::Json<Vec<Device>>> {
    Ok(axum::Json(
        state.domain.accounts.list_devices(&actor).await?,
    ))
}

/// Sign a device out: its sessions end and its sockets disconnect.
#[utoipa::path(delete, path = "/devices/{id}", tag = "devices", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 204, description = "Revoked"), ReadErrors))]
async fn revoke_device(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.domain.accounts.revoke_device(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
