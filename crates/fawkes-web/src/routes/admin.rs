use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors};
use crate::extract::SignedIn;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_nodes))
}

/// The live nodes of the cluster (admins only): `[{id, this, info: {name, connections,
/// joined_channels}, presence_entries, last_seen_ms}]`, this node first.
#[utoipa::path(get, path = "/admin/nodes", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = Vec<Object>), ReadErrors))]
async fn list_nodes(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> ApiResult<axum::Json<Vec<serde_json::Value>>> {
    Ok(axum::Json(state.domain.list_nodes(&actor)?))
}
