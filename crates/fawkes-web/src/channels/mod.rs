//! The app's channels on the socket endpoint (`/socket`). Like the REST handlers they only
//! translate: each client event calls one domain action, whose broadcast reaches every
//! subscriber of the topic however the change was made.

mod comments;
mod posts;
mod published;
mod room;

use async_trait::async_trait;
use fawkes_channels::{
    Channel, ConnectRefusal, ConnectRequest, HandleIn, Payload, Reply, SocketHandler,
};
use fawkes_domain::accounts::{session_socket_topic, user_socket_topic};
use fawkes_domain::{Actor, Domain, DomainError};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::num::NonZeroU32;
use std::sync::Arc;

use crate::metrics::{Limit, Metrics};

/// Who is on the other end of a socket.
#[derive(Debug, Clone)]
pub struct SocketIdentity {
    pub actor: Actor,
    /// Shown with `typing` events; `None` for guests.
    pub username: Option<String>,
    /// This socket's allowance of presence updates, shared by every room it joined.
    presence_limit: Option<Arc<PresenceLimit>>,
}

impl SocketIdentity {
    /// Whether this socket may update its presence now; a refusal is counted.
    fn may_update_presence(&self) -> bool {
        let Some(limit) = &self.presence_limit else {
            return true;
        };
        let allowed = limit.limiter.check().is_ok();
        if !allowed {
            limit.metrics.rate_limited(Limit::Presence);
        }
        allowed
    }
}

struct PresenceLimit {
    limiter: governor::DefaultDirectRateLimiter,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for PresenceLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceLimit").finish_non_exhaustive()
    }
}

/// Accepts sockets whose `token` param (or `authToken`) is a valid access token; guests only
/// when configured.
pub struct AppSocket {
    /// Shared with every channel the sockets join: one pointer per channel, not a copy.
    pub domain: Arc<Domain>,
    pub allow_guests: bool,
    /// Presence updates per second and burst, per socket.
    pub presence_updates: Option<(u32, u32)>,
    pub metrics: Arc<Metrics>,
}

impl AppSocket {
    fn presence_limit(&self) -> Option<Arc<PresenceLimit>> {
        let (rate, burst) = self.presence_updates?;
        let rate = NonZeroU32::new(rate)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        Some(Arc::new(PresenceLimit {
            limiter: fawkes_channels::socket_rate_limiter(rate, burst),
            metrics: self.metrics.clone(),
        }))
    }
}

#[async_trait]
impl SocketHandler for AppSocket {
    type Assigns = SocketIdentity;

    async fn connect(&self, request: &ConnectRequest) -> Result<SocketIdentity, ConnectRefusal> {
        let token = request
            .auth_token
            .as_deref()
            .or(request.params.get("token").map(String::as_str));
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return self
                .allow_guests
                .then_some(SocketIdentity {
                    actor: Actor::Anonymous,
                    username: None,
                    presence_limit: None,
                })
                .ok_or(ConnectRefusal::Forbidden);
        };
        let actor =
            self.domain
                .accounts
                .authenticate(token)
                .await
                .map_err(|error| match error {
                    DomainError::Unavailable(_) | DomainError::StorageFull(_) => {
                        ConnectRefusal::Unavailable
                    }
                    _ => ConnectRefusal::Forbidden,
                })?;
        let username = self
            .domain
            .accounts
            .me(&actor)
            .await
            .ok()
            .map(|user| user.username);
        Ok(SocketIdentity {
            actor,
            username,
            presence_limit: self.presence_limit(),
        })
    }

    fn socket_ids(&self, identity: &SocketIdentity) -> Vec<String> {
        match identity.actor.identity() {
            Some(user) => vec![
                user_socket_topic(user.user_id),
                session_socket_topic(user.session_id),
            ],
            None => Vec::new(),
        }
    }

    fn channel(&self, topic: &str) -> Option<Box<dyn Channel<SocketIdentity>>> {
        if topic == fawkes_domain::posts::FEED_TOPIC {
            return Some(Box::new(posts::FeedChannel));
        }
        let (namespace, rest) = topic.split_once(':')?;
        let domain = self.domain.clone();
        match namespace {
            "room" => Some(Box::new(room::RoomChannel::new(domain, rest))),
            "comments" => Some(Box::new(comments::CommentsChannel::new(domain, rest))),
            "post" => Some(Box::new(posts::PostChannel::new(domain, rest))),
            _ if domain.publishing.rule_for(topic).is_some() => {
                Some(Box::new(published::PublishedChannel::new(domain)))
            }
            _ => None,
        }
    }
}

/// The error reply for a refused action: `{"reason": …}` plus details where there are some.
fn error_reply(error: DomainError) -> Reply {
    let payload = match error {
        DomainError::Validation(fields) => {
            json!({ "reason": "validation_failed", "details": fields })
        }
        DomainError::Unauthenticated(_) | DomainError::Forbidden(_) => {
            json!({ "reason": "unauthorized" })
        }
        DomainError::NotFound(what) => {
            json!({ "reason": "not_found", "message": format!("{what} not found") })
        }
        DomainError::Conflict { field, message } => {
            json!({ "reason": "conflict", "details": { field: [message] } })
        }
        DomainError::Unavailable(_) => json!({ "reason": "unavailable" }),
        DomainError::StorageFull(source) => {
            tracing::error!(error = %source, "database storage is full");
            json!({ "reason": "unavailable" })
        }
        DomainError::Internal(detail) => {
            tracing::error!(error = %detail, "internal error in a channel");
            json!({ "reason": "internal_error" })
        }
    };
    Reply::error(payload)
}

/// A join is refused with `unauthorized` whether the topic is forbidden or does not exist, so
/// joins reveal nothing about private rooms.
fn join_refusal(error: DomainError) -> serde_json::Value {
    match error {
        DomainError::Validation(fields) => {
            json!({ "reason": "validation_failed", "details": fields })
        }
        DomainError::Unavailable(_) | DomainError::StorageFull(_) => {
            json!({ "reason": "unavailable" })
        }
        _ => json!({ "reason": "unauthorized" }),
    }
}

/// Answers a client event: parses its payload as `T`, runs the domain action with it and turns
/// the outcome into the `ok` or `error` reply.
async fn respond<T, R, F>(payload: Payload, action: impl FnOnce(T) -> F) -> HandleIn
where
    T: DeserializeOwned,
    R: serde::Serialize,
    F: std::future::Future<Output = Result<R, DomainError>>,
{
    let reply = match parse::<T>(payload) {
        Ok(input) => match action(input).await {
            Ok(response) => Reply::ok(to_json(&response)),
            Err(error) => error_reply(error),
        },
        Err(reply) => reply,
    };
    HandleIn::Reply(reply)
}

/// A client event's JSON payload as `T`, or the `validation_failed` reply.
fn parse<T: DeserializeOwned>(payload: Payload) -> Result<T, Reply> {
    let Payload::Json(value) = payload else {
        return Err(Reply::reason("invalid_payload"));
    };
    serde_json::from_value(value).map_err(|e| {
        Reply::error(
            json!({ "reason": "validation_failed", "details": { "payload": [e.to_string()] } }),
        )
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}
