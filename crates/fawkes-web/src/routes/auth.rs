use axum::extract::State;
use axum::http::StatusCode;
use fawkes_domain::accounts::{AuthTokens, LoginInput, RefreshInput, RegisterInput, User};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiResult, ReadErrors, WriteErrors};
use crate::extract::{Json, SignedIn};
use crate::ratelimit::AuthAttempt;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Create an account and sign in.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterInput,
    responses((status = 201, body = AuthTokens), WriteErrors))]
async fn register(
    _: AuthAttempt,
    State(state): State<AppState>,
    Json(input): Json<RegisterInput>,
) -> ApiResult<(StatusCode, axum::Json<AuthTokens>)> {
    let tokens = state.domain.accounts.register(input).await?;
    Ok((StatusCode::CREATED, axum::Json(tokens)))
}

/// Sign in with email or username; naming a device registers it.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginInput,
    responses((status = 200, body = AuthTokens), WriteErrors))]
async fn login(
    _: AuthAttempt,
    State(state): State<AppState>,
    Json(input): Json<LoginInput>,
) -> ApiResult<axum::Json<AuthTokens>> {
    Ok(axum::Json(state.domain.accounts.login(input).await?))
}

/// Exchange a refresh token for a new pair. Each refresh token works once; reusing one
/// revokes the session.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshInput,
    responses((status = 200, body = AuthTokens), WriteErrors))]
async fn refresh(
    _: AuthAttempt,
    State(state): State<AppState>,
    Json(input): Json<RefreshInput>,
) -> ApiResult<axum::Json<AuthTokens>> {
    Ok(axum::Json(state.domain.accounts.refresh(input).await?))
}

/// End the current session.
#[utoipa::path(post, path = "/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Signed out"), ReadErrors))]
async fn logout(State(state): State<AppState>, SignedIn(actor): SignedIn) -> ApiResult<StatusCode> {
    state.domain.accounts.logout(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The signed-in user's account.
#[utoipa::path(get, path = "/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), ReadErrors))]
async fn me(
    State(state): State<AppState>,
    SignedIn(actor): SignedIn,
) -> ApiResult<axum::Json<User>> {
    Ok(axum::Json(state.domain.accounts.me(&actor).await?))
}
