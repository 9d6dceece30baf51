use axum::extract::State;
use fawkes_domain::notifications::{AllRead, Notification, UnreadCount};
use fawkes_domain::{Page, PageRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{Path, Query, SignedIn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_notifications))
        .routes(routes!(unread_count))
        .routes(routes!(mark_read))
        .routes(routes!(mark_all_read))
}

/// The caller's notifications: unread first, then read, each newest first. New ones also arrive
/// live as `notification` on the channel `notification:{user_id}`.
#[utoipa::path(get, path = "/notifications", tag = "notifications", params(PageRequest),
    security(("bearer" = [])), responses((status = 200, body = Page<Notification>), ReadErrors))]
async fn list_notifications(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Query(page): Query<PageRequest>,
) -> ApiResult<axum::Json<Page<Notification>>> {
    Ok(axum::Json(
        state
            .domain
            .notifications
            .list_notifications(&actor, &page)
            .await?,
    ))
}

/// How many of the caller's notifications are unread.
#[utoipa::path(get, path = "/notifications/unread-count", tag = "notifications",
    security(("bearer" = [])), responses((status = 200, body = UnreadCount), ReadErrors))]
async fn unread_count(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> ApiResult<axum::Json<UnreadCount>> {
    let unread_count = state
        .domain
        .notifications
        .unread_notification_count(&actor)
        .await?;
    Ok(axum::Json(UnreadCount { unread_count }))
}

/// Mark one of the caller's notifications read (someone else's is 404). The caller's other
/// sockets hear `notifications_read` `{id, unread_count}` on `notification:{user_id}`.
#[utoipa::path(post, path = "/notifications/{id}/read", tag = "notifications",
    params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Notification), WriteErrors))]
async fn mark_read(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Notification>> {
    Ok(axum::Json(
        state
            .domain
            .notifications
            .mark_notification_read(&actor, id)
            .await?,
    ))
}

/// Mark every notification of the caller read. The caller's other sockets hear
/// `notifications_read` `{all: true, unread_count}` on `notification:{user_id}`.
#[utoipa::path(post, path = "/notifications/read-all", tag = "notifications",
    security(("bearer" = [])), responses((status = 200, body = AllRead), WriteErrors))]
async fn mark_all_read(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> ApiResult<axum::Json<AllRead>> {
    Ok(axum::Json(
        state
            .domain
            .notifications
            .mark_all_notifications_read(&actor)
            .await?,
    ))
}
