use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use fawkes_domain::messaging::{AddMember, Member, Message, MessageBody, NewRoom, Room};
use fawkes_domain::{Page, PageRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{Json, Path, Query, SignedIn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rooms, create_room))
        .routes(routes!(get_room))
        .routes(routes!(list_members, add_member))
        .routes(routes!(remove_member))
        .routes(routes!(room_presence))
        .routes(routes!(list_messages, post_message))
        .routes(routes!(edit_message, delete_message))
}

/// The rooms the signed-in user can enter.
#[utoipa::path(get, path = "/rooms", tag = "rooms", params(PageRequest), security(("bearer" = [])),
    responses((status = 200, body = Page<Room>), ReadErrors))]
async fn list_rooms(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Query(page): Query<PageRequest>,
) -> ApiResult<axum::Json<Page<Room>>> {
    Ok(axum::Json(
        state.domain.messaging.list_rooms(&actor, &page).await?,
    ))
}

/// Create a room; the creator owns it.
#[utoipa::path(post, path = "/rooms", tag = "rooms", request_body = NewRoom, security(("bearer" = [])),
    responses((status = 201, body = Room), WriteErrors))]
async fn create_room(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Json(input): Json<NewRoom>,
) -> ApiResult<(StatusCode, axum::Json<Room>)> {
    let room = state.domain.messaging.create_room(&actor, input).await?;
    Ok((StatusCode::CREATED, axum::Json(room)))
}

/// One room.
#[utoipa::path(get, path = "/rooms/{slug}", tag = "rooms", params(("slug" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Room), ReadErrors))]
async fn get_room(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<Room>> {
    Ok(axum::Json(
        state.domain.messaging.get_room(&actor, &slug).await?,
    ))
}

/// A room's members.
#[utoipa::path(get, path = "/rooms/{slug}/members", tag = "rooms", params(("slug" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Vec<Member>), ReadErrors))]
async fn list_members(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<Vec<Member>>> {
    Ok(axum::Json(
        state.domain.messaging.list_members(&actor, &slug).await?,
    ))
}

/// Add a member (room owner or admin). 201 when added, 200 when they already were a member.
#[utoipa::path(post, path = "/rooms/{slug}/members", tag = "rooms", params(("slug" = String, Path)),
    request_body = AddMember, security(("bearer" = [])),
    responses((status = 201, body = Member), (status = 200, body = Member), WriteErrors))]
async fn add_member(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(slug): Path<String>,
    Json(input): Json<AddMember>,
) -> ApiResult<(StatusCode, axum::Json<Member>)> {
    let (member, added) = state
        .domain
        .messaging
        .add_member(&actor, &slug, input)
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(member)))
}

/// Remove a member, or leave the room.
#[utoipa::path(delete, path = "/rooms/{slug}/members/{user_id}", tag = "rooms",
    params(("slug" = String, Path), ("user_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204, description = "Removed"), ReadErrors))]
async fn remove_member(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path((slug, user_id)): Path<(String, Uuid)>,
) -> ApiResult<StatusCode> {
    state
        .domain
        .messaging
        .remove_member(&actor, &slug, user_id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is in the room now, as the `presence_state` channel event shows it:
/// `{user_id: {metas: [{phx_ref, username, status, online_at, device_id}]}}`, a meta per connection.
#[utoipa::path(get, path = "/rooms/{slug}/presence", tag = "rooms", params(("slug" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Object), ReadErrors))]
async fn room_presence(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(slug): Path<String>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    Ok(axum::Json(
        state.domain.messaging.room_presence(&actor, &slug).await?,
    ))
}

/// A room's messages, newest first. Follow `next_cursor` for older ones.
#[utoipa::path(get, path = "/rooms/{slug}/messages", tag = "messages",
    params(("slug" = String, Path), PageRequest), security(("bearer" = [])),
    responses((status = 200, body = Page<Message>), ReadErrors))]
async fn list_messages(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(slug): Path<String>,
    Query(page): Query<PageRequest>,
) -> ApiResult<impl IntoResponse> {
    // Already JSON: a room's first page is served as it was serialized (the domain's cache).
    let json = state
        .domain
        .messaging
        .list_messages_json(&actor, &slug, &page)
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json))
}

/// Post a message; everyone in the room receives it as `new_msg`.
#[utoipa::path(post, path = "/rooms/{slug}/messages", tag = "messages", params(("slug" = String, Path)),
    request_body = MessageBody, security(("bearer" = [])),
    responses((status = 201, body = Message), WriteErrors))]
async fn post_message(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(slug): Path<String>,
    Json(input): Json<MessageBody>,
) -> ApiResult<(StatusCode, axum::Json<Message>)> {
    let message = state
        .domain
        .messaging
        .post_message(&actor, &slug, input)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(message)))
}

/// Edit a message (author only).
#[utoipa::path(patch, path = "/messages/{id}", tag = "messages", params(("id" = Uuid, Path)),
    request_body = MessageBody, security(("bearer" = [])),
    responses((status = 200, body = Message), WriteErrors))]
async fn edit_message(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
    Json(input): Json<MessageBody>,
) -> ApiResult<axum::Json<Message>> {
    Ok(axum::Json(
        state
            .domain
            .messaging
            .edit_message(&actor, id, input)
            .await?,
    ))
}

/// Delete a message (author, room owner or admin).
#[utoipa::path(delete, path = "/messages/{id}", tag = "messages", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), ReadErrors))]
async fn delete_message(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.domain.messaging.delete_message(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
