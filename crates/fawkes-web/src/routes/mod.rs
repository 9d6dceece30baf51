//! The REST API v1. Handlers only translate: they extract, call one domain action and shape
//! the answer. Validation and permission checks live in the domain.

mod admin;
mod auth;
mod comments;
mod devices;
mod jobs;
mod notifications;
mod posts;
mod publishing;
mod rooms;
mod users;

use utoipa_axum::router::OpenApiRouter;

use crate::AppState;

/// Every `/api/v1` route, with its OpenAPI description.
pub fn api_v1() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::routes())
        .merge(users::routes())
        .merge(devices::routes())
        .merge(rooms::routes())
        .merge(comments::routes())
        .merge(posts::routes())
        .merge(notifications::routes())
        .merge(publishing::routes())
        .merge(admin::routes())
        .merge(jobs::routes())
}
