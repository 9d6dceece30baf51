use axum::extract::State;
use axum::http::StatusCode;
use fawkes_domain::accounts::{CreateUser, PublicUser, UpdateUser, User};
use fawkes_domain::{Page, PageRequest};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{Json, Path, Query, SignedIn};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
}

/// Every account, oldest first (admins only).
#[utoipa::path(get, path = "/users", tag = "users", params(PageRequest), security(("bearer" = [])),
    responses((status = 200, body = Page<User>), ReadErrors))]
async fn list_users(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Query(page): Query<PageRequest>,
) -> ApiResult<axum::Json<Page<User>>> {
    Ok(axum::Json(
        state.domain.accounts.list_users(&actor, &page).await?,
    ))
}

/// Create an account with a chosen role (admins only).
#[utoipa::path(post, path = "/users", tag = "users", request_body = CreateUser, security(("bearer" = [])),
    responses((status = 201, body = User), WriteErrors))]
async fn create_user(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Json(input): Json<CreateUser>,
) -> ApiResult<(StatusCode, axum::Json<User>)> {
    let user = state.domain.accounts.create_user(&actor, input).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// A user's public profile.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = PublicUser), ReadErrors))]
async fn get_user(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<PublicUser>> {
    Ok(axum::Json(state.domain.accounts.profile(&actor, id).await?))
}

/// Change a user's role or deactivate them (admins only). Deactivation signs them out everywhere.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)), request_body = UpdateUser,
    security(("bearer" = [])), responses((status = 200, body = User), WriteErrors))]
async fn update_user(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
    Path(id): Path<Uuid>,
    Json(change): Json<UpdateUser>,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(
        state
            .domain
            .accounts
            .update_user(&actor, id, change)
            .await?,
    ))
}
