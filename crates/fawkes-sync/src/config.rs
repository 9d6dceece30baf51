//! `[[sinks]]` entries.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Error;

/// What a sink talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKind {
    /// `POST url` with the event as JSON, signed (`X-Fawkes-Signature`).
    Webhook,
    /// A Firebase Realtime Database mirrored through its REST API
    /// (`PUT`/`DELETE {url}/{path}.json?auth=…`).
    Firebase,
}

/// One outbound sink (`[[sinks]]` in the configuration).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Unique among the sinks (1 to 64 letters, digits, `_` or `-`); it names the sink in
    /// jobs, logs and the missed-deliveries table.
    pub name: String,
    pub kind: SinkKind,
    /// Webhook: the URL posted to. Firebase: the database's base URL
    /// (`https://<db>.firebaseio.com`).
    pub url: String,
    /// Webhook: the HMAC-SHA256 signing secret (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Firebase: the `auth` query parameter (a database secret or an ID token; required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Webhook: the events it receives: names (`comment.created`), prefixes (`comment.*`) or
    /// `*` for all.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// Firebase: what it mirrors (`comments`, `presence`).
    #[serde(default = "everything_mirrored")]
    pub mirror: Vec<String>,
    /// Consecutive failed deliveries that open the circuit breaker.
    #[serde(default = "default_failure_threshold")]
    pub failure_threshold: u32,
    /// How long the breaker stays open before one probe is let through.
    #[serde(default = "default_cooldown_secs")]
    pub cooldown_secs: u64,
    /// A request slower than this is a failed delivery.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts of one delivery job (with the queue's backoff) before the delivery goes to the
    /// missed deliveries that reconciliation sends.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: i32,
}

impl std::fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("mirror", &self.mirror)
            .finish_non_exhaustive()
    }
}

fn all_events() -> Vec<String> {
    vec!["*".to_owned()]
}

fn everything_mirrored() -> Vec<String> {
    vec!["comments".to_owned(), "presence".to_owned()]
}

fn default_failure_threshold() -> u32 {
    5
}

fn default_cooldown_secs() -> u64 {
    30
}

fn default_timeout_secs() -> u64 {
    10
}

fn default_max_attempts() -> i32 {
    8
}

impl SinkConfig {
    pub fn cooldown(&self) -> Duration {
        Duration::from_secs(self.cooldown_secs)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }

    /// Whether this sink receives `event` (see [`crate::Event`]).
    pub fn wants(&self, event: &crate::Event) -> bool {
        match self.kind {
            SinkKind::Webhook => {
                event.webhook
                    && self.events.iter().any(|pattern| {
                        pattern == "*"
                            || pattern == &event.name
                            || pattern.strip_suffix('*').is_some_and(|prefix| {
                                prefix.ends_with('.') && event.name.starts_with(prefix)
                            })
                    })
            }
            SinkKind::Firebase => event
                .mirror
                .as_deref()
                .is_some_and(|group| self.mirror.iter().any(|m| m == group)),
        }
    }

    /// The same entry with its secrets replaced by `***` (for `fawkes config`).
    pub fn masked(&self) -> SinkConfig {
        let mask = |s: &Option<String>| s.as_ref().map(|_| "***".to_owned());
        SinkConfig {
            secret: mask(&self.secret),
            auth: mask(&self.auth),
            ..self.clone()
        }
    }
}

/// Checks the entries as configuration loading does: unique valid names, an http(s) URL, the
/// secret or token each kind needs, a threshold of at least 1.
pub fn check(sinks: &[SinkConfig]) -> Result<(), Error> {
    let mut names = std::collections::HashSet::new();
    for sink in sinks {
        let invalid = |message: &str| Error::Config {
            name: sink.name.clone(),
            message: message.to_owned(),
        };
        let name_ok = !sink.name.is_empty()
            && sink.name.len() <= 64
            && sink
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !name_ok {
            return Err(invalid(
                "the name must be 1 to 64 letters, digits, `_` or `-`",
            ));
        }
        if !names.insert(sink.name.as_str()) {
            return Err(invalid("two sinks have this name"));
        }
        match url::Url::parse(&sink.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => return Err(invalid("url must be an http:// or https:// URL")),
        }
        match sink.kind {
            SinkKind::Webhook if sink.secret.as_deref().is_none_or(str::is_empty) => {
                return Err(invalid("a webhook needs a `secret` to sign with"));
            }
            SinkKind::Firebase if sink.auth.as_deref().is_none_or(str::is_empty) => {
                return Err(invalid("a firebase sink needs an `auth` token"));
            }
            _ => {}
        }
        if sink.failure_threshold == 0 {
            return Err(invalid("failure_threshold must be at least 1"));
        }
        if sink.max_attempts < 1 {
            return Err(invalid("max_attempts must be at least 1"));
        }
    }
    Ok(())
}
