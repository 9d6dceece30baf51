use axum::extract::State;
use axum::http::StatusCode;
use fawkes_domain::comments::{Comment, CommentContent};
use fawkes_domain::{Page, PageRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{Json, Path, Query, SignedIn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_comments, add_comment))
        .routes(routes!(edit_comment, delete_comment))
}

/// A video's comments, newest first.
#[utoipa::path(get, path = "/videos/{video_id}/comments", tag = "comments",
    params(("video_id" = String, Path), PageRequest), security(("bearer" = [])),
    responses((status = 200, body = Page<Comment>), ReadErrors))]
async fn list_comments(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(video_id): Path<String>,
    Query(page): Query<PageRequest>,
) -> ApiResult<axum::Json<Page<Comment>>> {
    Ok(axum::Json(
        state
            .domain
            .comments
            .list_comments(&actor, &video_id, &page)
            .await?,
    ))
}

/// Comment on a video; subscribers of `comments:{video_id}` receive it as `new_comment`.
#[utoipa::path(post, path = "/videos/{video_id}/comments", tag = "comments",
    params(("video_id" = String, Path)), request_body = CommentContent, security(("bearer" = [])),
    responses((status = 201, body = Comment), WriteErrors))]
async fn add_comment(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(video_id): Path<String>,
    Json(input): Json<CommentContent>,
) -> ApiResult<(StatusCode, axum::Json<Comment>)> {
    let comment = state
        .domain
        .comments
        .add_comment(&actor, &video_id, input)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(comment)))
}

/// Edit a comment (author only).
#[utoipa::path(patch, path = "/comments/{id}", tag = "comments", params(("id" = Uuid, Path)),
    request_body = CommentContent, security(("bearer" = [])),
    responses((status = 200, body = Comment), WriteErrors))]
async fn edit_comment(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
    Json(input): Json<CommentContent>,
) -> ApiResult<axum::Json<Comment>> {
    Ok(axum::Json(
        state
            .domain
            .comments
            .edit_comment(&actor, id, input)
            .await?,
    ))
}

/// Delete a comment (author or admin).
#[utoipa::path(delete, path = "/comments/{id}", tag = "comments", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), ReadErrors))]
async fn delete_comment(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.domain.comments.delete_comment(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
