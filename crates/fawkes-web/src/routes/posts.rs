use axum::extract::State;
use axum::http::StatusCode;
use fawkes_domain::posts::{NewPost, NewPostComment, Post, PostChanges, PostComment, PostFilter};
use fawkes_domain::{Page, PageRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{Json, MaybeSignedIn, Path, Query, SignedIn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_posts, create_post))
        .routes(routes!(get_post, update_post, delete_post))
        .routes(routes!(publish_post))
        .routes(routes!(unpublish_post))
        .routes(routes!(list_post_comments, add_comment))
        .routes(routes!(delete_post_comment))
}

/// Posts, newest first: published ones (to everyone, without a token too), the caller's own
/// drafts, and every draft for admins.
#[utoipa::path(get, path = "/posts", tag = "posts", params(PostFilter, PageRequest),
    security((), ("bearer" = [])), responses((status = 200, body = Page<Post>), ReadErrors))]
async fn list_posts(
    State(state): State<AppState>,
    MaybeSignedIn(actor): MaybeSignedIn,
    Query(filter): Query<PostFilter>,
    Query(page): Query<PageRequest>,
) -> ApiResult<axum::Json<Page<Post>>> {
    Ok(axum::Json(
        state
            .domain
            .posts
            .list_posts(&actor, &filter, &page)
            .await?,
    ))
}

/// Write a post; it starts as a draft that only its author (and admins) can see.
#[utoipa::path(post, path = "/posts", tag = "posts", request_body = NewPost,
    security(("bearer" = [])), responses((status = 201, body = Post), WriteErrors))]
async fn create_post(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Json(input): Json<NewPost>,
) -> ApiResult<(StatusCode, axum::Json<Post>)> {
    let post = state.domain.posts.create_post(&actor, input).await?;
    Ok((StatusCode::CREATED, axum::Json(post)))
}

/// One post. A draft is 404 to everyone but its author and admins.
#[utoipa::path(get, path = "/posts/{id}", tag = "posts", params(("id" = Uuid, Path)),
    security((), ("bearer" = [])), responses((status = 200, body = Post), ReadErrors))]
async fn get_post(
    State(state): State<AppState>,
    MaybeSignedIn(actor): MaybeSignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Post>> {
    Ok(axum::Json(state.domain.posts.get_post(&actor, id).await?))
}

/// Change a post's title and/or body (author only); subscribers of `post:{id}` receive
/// `post_updated`, and of `posts` too while it is published.
#[utoipa::path(patch, path = "/posts/{id}", tag = "posts", params(("id" = Uuid, Path)),
    request_body = PostChanges, security(("bearer" = [])),
    responses((status = 200, body = Post), WriteErrors))]
async fn update_post(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
    Json(input): Json<PostChanges>,
) -> ApiResult<axum::Json<Post>> {
    Ok(axum::Json(
        state.domain.posts.update_post(&actor, id, input).await?,
    ))
}

/// Delete a post and its comments (author or admin).
#[utoipa::path(delete, path = "/posts/{id}", tag = "posts", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), ReadErrors))]
async fn delete_post(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.domain.posts.delete_post(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publish a post (author or admin). Its body must not be empty (422 on `body`);
/// `published_at` is set the first time only; publishing a published post changes nothing.
#[utoipa::path(post, path = "/posts/{id}/publish", tag = "posts", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 200, body = Post), WriteErrors))]
async fn publish_post(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Post>> {
    Ok(axum::Json(
        state.domain.posts.publish_post(&actor, id).await?,
    ))
}

/// Take a published post back to draft (admins only); `published_at` stays.
#[utoipa::path(post, path = "/posts/{id}/unpublish", tag = "posts", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 200, body = Post), WriteErrors))]
async fn unpublish_post(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Post>> {
    Ok(axum::Json(
        state.domain.posts.unpublish_post(&actor, id).await?,
    ))
}

/// A post's comments, oldest first; replies carry their thread's first comment as `parent_id`.
#[utoipa::path(get, path = "/posts/{id}/comments", tag = "posts",
    params(("id" = Uuid, Path), PageRequest), security((), ("bearer" = [])),
    responses((status = 200, body = Page<PostComment>), ReadErrors))]
async fn list_post_comments(
    State(state): State<AppState>,
    MaybeSignedIn(actor): MaybeSignedIn,
    Path(id): Path<Uuid>,
    Query(page): Query<PageRequest>,
) -> ApiResult<axum::Json<Page<PostComment>>> {
    Ok(axum::Json(
        state
            .domain
            .posts
            .list_post_comments(&actor, id, &page)
            .await?,
    ))
}

/// Comment on a published post (403 on a draft), optionally replying to one of its comments;
/// subscribers of `post:{id}` receive `comment_added`.
#[utoipa::path(post, path = "/posts/{id}/comments", tag = "posts", params(("id" = Uuid, Path)),
    request_body = NewPostComment, security(("bearer" = [])),
    responses((status = 201, body = PostComment), WriteErrors))]
async fn add_comment(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
    Json(input): Json<NewPostComment>,
) -> ApiResult<(StatusCode, axum::Json<PostComment>)> {
    let comment = state.domain.posts.add_comment(&actor, id, input).await?;
    Ok((StatusCode::CREATED, axum::Json(comment)))
}

/// Delete a comment on a post, with its replies (the comment's author or an admin).
#[utoipa::path(delete, path = "/post-comments/{id}", tag = "posts", params(("id" = Uuid, Path)),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), ReadErrors))]
async fn delete_post_comment(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.domain.posts.delete_post_comment(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
