//! The plain HTTP side of the pages: the first render of a live page, and the form posts that
//! set or clear the sign-in cookie.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::header::{SET_COOKIE, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use fawkes_domain::accounts::{AuthTokens, LoginInput, RegisterInput};
use fawkes_domain::{Domain, DomainError};
use fawkes_live::{CSRF_COOKIE, Flash, Refusal, csrf_token, csrf_valid};
use rand::Rng;
use serde::Deserialize;

use super::PagesLive;
use super::layout::document;
use super::session::{self, DEVICE_COOKIE, SESSION_COOKIE, SignIn};

#[derive(Clone)]
pub struct PagesState {
    pub live: Arc<PagesLive>,
    pub domain: Arc<Domain>,
    /// Mark cookies `Secure`: browsers reach the server over HTTPS (perhaps through a proxy).
    pub secure_cookies: bool,
}

impl PagesState {
    /// A `Set-Cookie` value: HttpOnly and SameSite=Lax, so other sites' requests never carry it,
    /// and `Secure` when configured, so it never travels over plain HTTP.
    fn cookie(&self, name: &str, value: &str, max_age: Option<u64>) -> String {
        let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure_cookies {
            cookie.push_str("; Secure");
        }
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={age}"));
        }
        cookie
    }
}

/// The cookie the client sets to carry a flash across a redirect.
const FLASH_COOKIE: &str = "__phoenix_flash__";

/// `GET` of a live page: rendered whole, with a session token the socket joins with.
pub async fn page(State(state): State<PagesState>, headers: HeaderMap, uri: Uri) -> Response {
    let live = &state.live;
    let mut cookies = Vec::new();
    let browser_secret = fawkes_live::cookie(&headers, CSRF_COOKIE).unwrap_or_else(|| {
        let secret = random_token();
        cookies.push(state.cookie(CSRF_COOKIE, &secret, Some(400 * 24 * 3600)));
        secret
    });
    let csrf = csrf_token(live.signer(), &browser_secret);
    let sign_in = session::sign_in_from_headers(live.signer(), &headers);
    let pages = session::Pages {
        domain: state.domain.clone(),
    };
    let session = pages.session_for(sign_in, csrf.clone()).await;
    let sign_in = sign_in.filter(|_| session.user.is_some());
    let flash: Flash = match fawkes_live::cookie(&headers, FLASH_COOKIE) {
        Some(token) => {
            cookies.push(state.cookie(FLASH_COOKIE, "", Some(0)));
            live.flash_from_token(&token)
        }
        None => Flash::new(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let response = match live
        .render_page(path, &session, session::claims(sign_in, &csrf), flash)
        .await
    {
        Ok(page) => Html(document(&page, &csrf)).into_response(),
        Err(Refusal::Redirect(to)) => Redirect::to(&to).into_response(),
        Err(Refusal::NotFound) => {
            (StatusCode::NOT_FOUND, Html("<h1>Not found</h1>")).into_response()
        }
    };
    with_cookies(response, cookies)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    _csrf_token: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

/// `POST /login`: the log-in form, posted once it validated live.
pub async fn login(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    if !csrf_valid(state.live.signer(), &form._csrf_token, &headers) {
        return forbidden();
    }
    let (device_id, device_cookie) = device(&state, &headers);
    let input = LoginInput {
        login: form.login.trim().to_owned(),
        password: form.password,
        device_id: Some(device_id),
        device_name: Some(device_name(&headers)),
        device_info: None,
    };
    let outcome = state.domain.accounts.login(input).await;
    signed_in(&state, outcome, "/login", device_cookie)
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    _csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

/// `POST /signup`: the sign-up form, posted once it validated live.
pub async fn signup(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Form(form): Form<SignupForm>,
) -> Response {
    if !csrf_valid(state.live.signer(), &form._csrf_token, &headers) {
        return forbidden();
    }
    let (device_id, device_cookie) = device(&state, &headers);
    let input = RegisterInput {
        email: form.email.trim().to_owned(),
        username: form.username.trim().to_owned(),
        password: form.password,
        device_id: Some(device_id),
        device_name: Some(device_name(&headers)),
    };
    let outcome = state.domain.accounts.register(input).await;
    signed_in(&state, outcome, "/signup", device_cookie)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    _csrf_token: String,
}

/// `POST /logout`: ends the login session (its live views are told to leave), clears the cookie.
pub async fn logout(
    State(state): State<PagesState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if !csrf_valid(state.live.signer(), &form._csrf_token, &headers) {
        return forbidden();
    }
    if let Some(sign_in) = session::sign_in_from_headers(state.live.signer(), &headers)
        && let Ok(actor) = state
            .domain
            .accounts
            .authenticate_session(sign_in.uid, sign_in.sid)
            .await
        && let Err(error) = state.domain.accounts.logout(&actor).await
    {
        tracing::warn!(%error, "logout failed");
    }
    with_cookies(
        Redirect::to("/login").into_response(),
        vec![state.cookie(SESSION_COOKIE, "", Some(0))],
    )
}

/// After a log-in or sign-up: the cookie and the rooms, or back to the form with the reason.
fn signed_in(
    state: &PagesState,
    outcome: Result<AuthTokens, DomainError>,
    back_to: &str,
    device_cookie: Option<String>,
) -> Response {
    let mut cookies: Vec<String> = device_cookie.into_iter().collect();
    match outcome {
        Ok(tokens) => {
            let Ok(claims) = state.domain.accounts.tokens().verify(&tokens.access_token) else {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            };
            let sign_in = SignIn {
                uid: claims.sub,
                sid: claims.sid,
            };
            let value = session::sign_in_cookie(state.live.signer(), sign_in);
            let max_age = session::SESSION_MAX_AGE.as_secs();
            cookies.push(state.cookie(SESSION_COOKIE, &value, Some(max_age)));
            with_cookies(Redirect::to("/rooms").into_response(), cookies)
        }
        Err(error) => {
            let message = match &error {
                DomainError::Validation(fields) => fields
                    .iter()
                    .map(|(field, errors)| format!("{field}: {}", errors.join(", ")))
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            let flash = Flash::from([("error".to_owned(), message)]);
            if let Some(token) = state.live.flash_token(&flash) {
                cookies.push(state.cookie(FLASH_COOKIE, &token, Some(60)));
            }
            with_cookies(Redirect::to(back_to).into_response(), cookies)
        }
    }
}

fn forbidden() -> Response {
    (StatusCode::FORBIDDEN, Html("<h1>Forbidden</h1><p>The form expired or came from another site. Reload the page and try again.</p>")).into_response()
}

/// The browser's device id, made on its first log-in.
fn device(state: &PagesState, headers: &HeaderMap) -> (String, Option<String>) {
    match fawkes_live::cookie(headers, DEVICE_COOKIE) {
        Some(id) if !id.is_empty() && id.len() <= 64 => (id, None),
        _ => {
            let id = format!("browser-{}", random_token());
            let set = state.cookie(DEVICE_COOKIE, &id, Some(5 * 365 * 24 * 3600));
            (id, Some(set))
        }
    }
}

fn device_name(headers: &HeaderMap) -> String {
    let agent = headers
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("Browser");
    let family = ["Firefox", "Edg", "Chrome", "Safari"]
        .into_iter()
        .find(|name| agent.contains(name))
        .map_or("Browser", |name| if name == "Edg" { "Edge" } else { name });
    let platform = ["Android", "iPhone", "Windows", "Mac OS", "Linux"]
        .into_iter()
        .find(|name| agent.contains(name));
    match platform {
        Some(platform) => format!("{family} on {platform}"),
        None => family.to_owned(),
    }
}

fn random_token() -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

fn with_cookies(mut response: Response, cookies: Vec<String>) -> Response {
    for value in cookies {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}
