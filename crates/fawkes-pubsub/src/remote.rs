//! The bridge to the other nodes: one outbound queue drained by a publisher task, and a
//! subscriber task that hands every foreign message to the local topics. Both reconnect with
//! backoff on their own; local delivery never waits for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{Broadcast, Payload, PubSub};

mod nats;
mod postgres;
mod redis;

/// The channel / subject every node of a cluster publishes on and listens to.
fn channel_of(cluster: &str) -> Arc<str> {
    let cluster: String = cluster
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Arc::from(format!("fawkes_bus_{cluster}"))
}
/// Messages waiting for the remote before new ones are dropped (and counted).
const OUTBOUND_QUEUE: usize = 16_384;

/// Where the other nodes are.
#[derive(Clone)]
pub enum Backend {
    /// `redis://…`: Redis pub/sub.
    Redis(String),
    /// `nats://…`: NATS core subjects.
    Nats(String),
    /// LISTEN/NOTIFY on the app's PostgreSQL database; payloads over the NOTIFY limit travel
    /// through the `bus_messages` table.
    Postgres(sqlx::PgPool),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Redis(_) => "redis",
            Backend::Nats(_) => "nats",
            Backend::Postgres(_) => "postgres",
        }
    }
}

/// What `/ready` and the metrics report about the remote connection.
#[derive(Debug)]
pub struct RemoteStatus {
    pub backend: &'static str,
    /// The subscriber is connected and listening.
    pub connected: AtomicBool,
    pub reconnects: AtomicU64,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Messages lost because the remote was unreachable and the queue full, or a send failed.
    pub dropped: AtomicU64,
}

impl RemoteStatus {
    fn new(backend: &'static str) -> Self {
        Self {
            backend,
            connected: AtomicBool::new(false),
            reconnects: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn up(&self) {
        if !self.connected.swap(true, Ordering::Relaxed) {
            tracing::info!(backend = self.backend, "bus connected");
        }
    }

    fn down(&self, error: &dyn std::fmt::Display) {
        if self.connected.swap(false, Ordering::Relaxed) {
            tracing::warn!(backend = self.backend, %error, "bus connection lost; reconnecting");
        } else {
            tracing::debug!(backend = self.backend, %error, "bus still unreachable");
        }
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) struct Bridge {
    outbound: mpsc::Sender<Vec<u8>>,
    pub(crate) status: Arc<RemoteStatus>,
}

impl Bridge {
    pub(crate) fn send(&self, node: &str, message: &Broadcast) {
        if self.outbound.try_send(encode(node, message)).is_err() {
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages published here and not yet handed to the remote: how far the bus lags behind.
    pub(crate) fn backlog(&self) -> usize {
        self.outbound.max_capacity() - self.outbound.capacity()
    }
}

pub(crate) fn start(bus: PubSub, backend: Backend, cluster: &str) -> Bridge {
    let status = Arc::new(RemoteStatus::new(backend.name()));
    let (outbound, queue) = mpsc::channel(OUTBOUND_QUEUE);
    let channel = channel_of(cluster);
    match backend {
        Backend::Redis(url) => redis::start(bus, url, channel, queue, status.clone()),
        Backend::Nats(url) => nats::start(bus, url, channel, queue, status.clone()),
        Backend::Postgres(pool) => postgres::start(bus, pool, channel, queue, status.clone()),
    }
    Bridge { outbound, status }
}

/// The wait before reconnect attempt `attempt`: 100 ms doubling to 5 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((100u64 << attempt.min(6)).min(5_000))
}

fn encode(node: &str, message: &Broadcast) -> Vec<u8> {
    let mut envelope = json!({ "n": node, "t": &*message.topic, "e": &*message.event });
    match &message.payload {
        Payload::Json(value) => envelope["p"] = value.clone(),
        Payload::Binary(bytes) => envelope["b"] = Value::String(STANDARD.encode(bytes)),
    }
    envelope.to_string().into_bytes()
}

/// The sending node and the message. The origin of `broadcast_from` is not carried: it names a
/// subscriber of the sending node, so no subscriber elsewhere is the sender.
pub(crate) fn decode(bytes: &[u8]) -> Option<(String, Broadcast)> {
    let mut envelope: Value = serde_json::from_slice(bytes).ok()?;
    let node = envelope["n"].as_str()?.to_owned();
    let topic = envelope["t"].as_str()?.into();
    let event = envelope["e"].as_str()?.into();
    let payload = match envelope["b"].as_str() {
        Some(encoded) => Payload::Binary(STANDARD.decode(encoded).ok()?.into()),
        None => Payload::Json(
            envelope
                .get_mut("p")
                .map(Value::take)
                .unwrap_or(Value::Null),
        ),
    };
    Some((
        node,
        Broadcast {
            topic,
            event,
            payload,
            origin: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_json_and_binary() {
        for payload in [
            Payload::Json(json!({"a": [1, "x"]})),
            Payload::Binary(vec![0u8, 255, 7].into()),
        ] {
            let message = Broadcast {
                topic: "room:a".into(),
                event: "e".into(),
                payload,
                origin: Some(9),
            };
            let decoded = decode(&encode("n1", &message));
            let expected = Broadcast {
                origin: None,
                ..message
            };
            assert_eq!(decoded, Some(("n1".to_owned(), expected)));
        }
        assert_eq!(decode(b"not json"), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(800));
        assert_eq!(backoff(30), Duration::from_secs(5));
    }
}
