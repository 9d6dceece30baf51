//! Published topics: namespaces such as `transaction:*` that backend services publish to and
//! clients subscribe to, each with a rule for who may join.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use fawkes_pubsub::{Broadcast, Payload, PubSub};
use garde::Validate;
use serde::{Deserialize, Serialize};

use crate::validation::validate;
use crate::{Actor, AuthFailure, DomainError, Role, Scope};

/// Largest payload a publish may carry, serialized.
const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// Who may join the topics of a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinRule {
    Anyone,
    Authenticated,
    /// Signed-in users whose id is one of the topic's `:`-separated segments.
    Owner,
    /// Signed-in users with this role (admins always may).
    Role(Role),
}

impl JoinRule {
    /// `anyone`, `authenticated`, `owner` or `role:<name>`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "anyone" => Some(JoinRule::Anyone),
            "authenticated" => Some(JoinRule::Authenticated),
            "owner" => Some(JoinRule::Owner),
            _ => text
                .strip_prefix("role:")
                .and_then(Role::parse)
                .map(JoinRule::Role),
        }
    }
}

/// A namespace: topics starting with `prefix` (the pattern `transaction:*` has prefix
/// `transaction:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRule {
    pub prefix: String,
    pub join: JoinRule,
}

impl TopicRule {
    /// A rule from a pattern ending in `*` and a join rule name.
    pub fn new(pattern: &str, join: &str) -> Option<Self> {
        let prefix = pattern.strip_suffix('*')?;
        if prefix.is_empty() || !prefix.ends_with(':') {
            return None;
        }
        Some(Self {
            prefix: prefix.to_owned(),
            join: JoinRule::parse(join)?,
        })
    }
}

/// An event to publish.
#[derive(Debug, Clone, Deserialize, Validate, utoipa::ToSchema)]
pub struct PublishInput {
    /// A topic in a published namespace, e.g. `transaction:01a2…`.
    #[garde(length(min = 1, max = 200))]
    #[schema(min_length = 1)]
    #[schema(example = "transaction:42")]
    pub topic: String,
    /// The event name clients listen for; `phx_*` names are reserved.
    #[garde(length(min = 1, max = 64), pattern(r"^[A-Za-z0-9_.:-]+$"))]
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_.:-]+$")]
    #[schema(example = "status_changed")]
    pub event: String,
    /// A JSON object, at most 64 KiB. Give this or `payload_base64`.
    #[garde(skip)]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<serde_json::Value>,
    /// Raw bytes (standard base64, at most 64 KiB decoded), delivered to WebSocket clients as a
    /// binary frame (an `ArrayBuffer` in phoenix.js).
    #[garde(skip)]
    pub payload_base64: Option<String>,
}

/// What was published.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Published {
    pub topic: String,
    pub event: String,
}

/// The publishing context.
#[derive(Clone, Debug)]
pub struct Publishing {
    bus: PubSub,
    rules: Arc<[TopicRule]>,
}

impl Publishing {
    /// `notification:*` is always a namespace (owner only); `rules` add the configured ones.
    pub fn new(bus: PubSub, rules: Vec<TopicRule>) -> Self {
        let mut all = vec![TopicRule {
            prefix: "notification:".to_owned(),
            join: JoinRule::Owner,
        }];
        all.extend(rules.into_iter().filter(|r| r.prefix != "notification:"));
        Self {
            bus,
            rules: all.into(),
        }
    }

    /// The namespace of `topic`, if it is a published one.
    pub fn rule_for(&self, topic: &str) -> Option<&TopicRule> {
        self.rules
            .iter()
            .find(|rule| topic.starts_with(&rule.prefix) && topic.len() > rule.prefix.len())
    }

    /// Whether `actor` may subscribe to `topic`.
    pub fn authorize_join(&self, actor: &Actor, topic: &str) -> Result<(), DomainError> {
        let rule = self.rule_for(topic).ok_or(DomainError::NotFound("topic"))?;
        let signed_in = || {
            actor
                .identity()
                .ok_or(DomainError::from(AuthFailure::Missing))
        };
        match rule.join {
            JoinRule::Anyone => Ok(()),
            JoinRule::Authenticated => signed_in().map(|_| ()),
            JoinRule::Owner => {
                let identity = signed_in()?;
                let id = identity.user_id.to_string();
                if topic[rule.prefix.len()..]
                    .split(':')
                    .any(|segment| segment == id)
                {
                    Ok(())
                } else {
                    Err(DomainError::Forbidden("only the topic's owner may join"))
                }
            }
            JoinRule::Role(role) => {
                let identity = signed_in()?;
                if identity.role == role || actor.is_admin() {
                    Ok(())
                } else {
                    Err(DomainError::Forbidden("this topic is for another role"))
                }
            }
        }
    }

    /// `publish`: admins and services with the `publish` scope push an event to every
    /// subscriber of a published topic, on every node.
    pub fn publish(&self, actor: &Actor, input: PublishInput) -> Result<Published, DomainError> {
        validate(&input)?;
        match actor {
            Actor::Anonymous => return Err(AuthFailure::Missing.into()),
            _ if !actor.may(Scope::Publish) => {
                return Err(DomainError::Forbidden(
                    "publishing needs an admin or an API key with the publish scope",
                ));
            }
            _ => {}
        }
        if self.rule_for(&input.topic).is_none() {
            return Err(DomainError::invalid(
                "topic",
                "not in a published namespace",
            ));
        }
        if input.event.starts_with("phx_") || input.event == "disconnect" {
            return Err(DomainError::invalid("event", "reserved by the protocol"));
        }
        let payload = match (input.payload, input.payload_base64) {
            (Some(value), None) if !value.is_object() => {
                return Err(DomainError::invalid("payload", "must be a JSON object"));
            }
            (Some(value), None) if value.to_string().len() > MAX_PAYLOAD_BYTES => {
                return Err(DomainError::invalid("payload", "must be at most 64 KiB"));
            }
            (Some(value), None) => Payload::Json(value),
            (None, Some(encoded)) => {
                let bytes = STANDARD.decode(encoded.trim()).map_err(|_| {
                    DomainError::invalid("payload_base64", "must be standard base64")
                })?;
                if bytes.len() > MAX_PAYLOAD_BYTES {
                    return Err(DomainError::invalid(
                        "payload_base64",
                        "must be at most 64 KiB",
                    ));
                }
                Payload::Binary(bytes.into())
            }
            _ => {
                return Err(DomainError::invalid(
                    "payload",
                    "give either payload or payload_base64",
                ));
            }
        };
        self.bus.publish(Broadcast {
            topic: Arc::from(input.topic.as_str()),
            event: Arc::from(input.event.as_str()),
            payload,
            origin: None,
        });
        Ok(Published {
            topic: input.topic,
            event: input.event,
        })
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::Identity;

    fn user(role: Role) -> (Actor, Uuid) {
        let id = Uuid::now_v7();
        let identity = Identity {
            user_id: id,
            role,
            session_id: Uuid::now_v7(),
            device_id: None,
        };
        (Actor::User(identity), id)
    }

    fn publishing() -> Publishing {
        let rules = [
            "transaction:*=owner",
            "ops:*=role:admin",
            "news:*=anyone",
            "team:*=authenticated",
        ]
        .iter()
        .filter_map(|r| r.split_once('=').and_then(|(p, j)| TopicRule::new(p, j)))
        .collect();
        Publishing::new(PubSub::new(), rules)
    }

    #[test]
    fn join_rules_decide_who_subscribes() {
        let p = publishing();
        let (alice, alice_id) = user(Role::User);
        let (admin, _) = user(Role::Admin);
        assert!(
            p.authorize_join(&alice, &format!("transaction:{alice_id}"))
                .is_ok()
        );
        assert!(
            p.authorize_join(&alice, &format!("transaction:{alice_id}:tx-9"))
                .is_ok()
        );
        assert!(
            p.authorize_join(&alice, &format!("transaction:{}", Uuid::now_v7()))
                .is_err()
        );
        assert!(
            p.authorize_join(&alice, &format!("notification:{alice_id}"))
                .is_ok()
        );
        assert!(
            p.authorize_join(&admin, &format!("notification:{alice_id}"))
                .is_err(),
            "notifications are the user's own"
        );
        assert!(p.authorize_join(&alice, "ops:alerts").is_err());
        assert!(p.authorize_join(&admin, "ops:alerts").is_ok());
        assert!(p.authorize_join(&Actor::Anonymous, "news:today").is_ok());
        assert!(p.authorize_join(&Actor::Anonymous, "team:x").is_err());
        assert!(p.authorize_join(&alice, "unknown:x").is_err());
        assert!(p.authorize_join(&alice, "transaction:").is_err());
    }

    #[test]
    fn patterns_must_end_in_a_namespace_wildcard() {
        assert!(TopicRule::new("transaction:*", "owner").is_some());
        assert!(TopicRule::new("transaction", "owner").is_none());
        assert!(TopicRule::new("*", "anyone").is_none());
        assert!(TopicRule::new("x:*", "role:emperor").is_none());
    }
}
