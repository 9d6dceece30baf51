//! Who a page is for: the signed cookie that carries a browser's sign-in, and the session each
//! live view gets from it (checked again on every socket join).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::HeaderMap;
use fawkes_domain::accounts::User;
use fawkes_domain::{Actor, Domain};
use fawkes_live::{LiveApp, Refusal, Signer};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

/// The cookie holding a browser's sign-in.
pub const SESSION_COOKIE: &str = "fawkes_session";
/// The cookie naming the browser as a device of the account (its sessions list shows it).
pub const DEVICE_COOKIE: &str = "fawkes_device";
/// A sign-in cookie lasts as long as a refresh token would.
pub const SESSION_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
const SESSION_PURPOSE: &str = "page-session";

/// The (user, login session) pair a sign-in cookie proves.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SignIn {
    pub uid: Uuid,
    pub sid: Uuid,
}

/// A page's session: the acting identity, the signed-in user, and the page's CSRF token for
/// forms that post over plain HTTP.
#[derive(Debug, Clone)]
pub struct PageSession {
    pub actor: Actor,
    pub user: Option<User>,
    pub csrf: String,
}

impl PageSession {
    pub fn username(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.username.as_str())
    }
}

pub fn sign_in_cookie(signer: &Signer, sign_in: SignIn) -> String {
    signer.sign(SESSION_PURPOSE, &sign_in)
}

pub fn sign_in_from_headers(signer: &Signer, headers: &HeaderMap) -> Option<SignIn> {
    let token = fawkes_live::cookie(headers, SESSION_COOKIE)?;
    signer.verify(SESSION_PURPOSE, &token, SESSION_MAX_AGE).ok()
}

/// What the live runtime asks of the app.
pub struct Pages {
    pub domain: Arc<Domain>,
}

impl Pages {
    /// The session for a sign-in, or a guest session when there is none or it no longer holds.
    pub async fn session_for(&self, sign_in: Option<SignIn>, csrf: String) -> PageSession {
        if let Some(sign_in) = sign_in {
            let accounts = &self.domain.accounts;
            if let Ok(actor) = accounts
                .authenticate_session(sign_in.uid, sign_in.sid)
                .await
                && let Ok(user) = accounts.me(&actor).await
            {
                return PageSession {
                    actor,
                    user: Some(user),
                    csrf,
                };
            }
        }
        PageSession {
            actor: Actor::Anonymous,
            user: None,
            csrf,
        }
    }
}

/// The claims a page's view token carries: the sign-in (if any) and the page's CSRF token.
pub fn claims(sign_in: Option<SignIn>, csrf: &str) -> Value {
    json!({ "sign_in": sign_in, "csrf": csrf })
}

#[async_trait]
impl LiveApp for Pages {
    type Session = PageSession;

    async fn session(&self, claims: &Value) -> Result<PageSession, Refusal> {
        let sign_in: Option<SignIn> = claims
            .get("sign_in")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        let csrf = claims
            .get("csrf")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let session = self.session_for(sign_in, csrf).await;
        if sign_in.is_some() && session.user.is_none() {
            // Signed out or deactivated since the page was rendered: reload to the login page.
            return Err(Refusal::Redirect("/login".into()));
        }
        Ok(session)
    }

    fn disconnect_topics(&self, claims: &Value) -> Vec<String> {
        claims
            .get("sign_in")
            .and_then(|s| serde_json::from_value::<SignIn>(s.clone()).ok())
            .map(|s| vec![fawkes_domain::accounts::session_socket_topic(s.sid)])
            .unwrap_or_default()
    }
}
