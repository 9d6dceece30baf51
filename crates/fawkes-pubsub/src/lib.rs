//! Topic-based publish/subscribe.
//!
//! Every state change in Fawkes ends in a broadcast on a topic such as `room:lobby`. Subscribers
//! (channel sockets, live views) receive each message as one shared [`Broadcast`]; its payload is
//! reference-counted so that one publish never copies the payload per subscriber.
//!
//! This crate knows nothing of the app. Today it delivers within one node; the scale-out backends
//! (PostgreSQL, Redis, NATS) plug in behind [`PubSub`] without changing its callers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::broadcast;

/// How many messages a slow subscriber may fall behind before it starts losing the oldest.
const TOPIC_BUFFER: usize = 1024;

/// One published message.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub topic: Arc<str>,
    pub event: Arc<str>,
    pub payload: Arc<serde_json::Value>,
}

/// A receiver of every message published on one topic from the moment it subscribed.
pub type Subscription = broadcast::Receiver<Broadcast>;

/// The bus. Cheap to clone; all clones share the same topics.
#[derive(Clone, Default)]
pub struct PubSub {
    topics: Arc<Mutex<HashMap<Arc<str>, broadcast::Sender<Broadcast>>>>,
}

impl std::fmt::Debug for PubSub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PubSub")
            .field("topics", &self.topic_count())
            .finish()
    }
}

impl PubSub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes to `topic`.
    pub fn subscribe(&self, topic: &str) -> Subscription {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sender) = topics.get(topic) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(TOPIC_BUFFER);
        topics.insert(Arc::from(topic), sender);
        receiver
    }

    /// Publishes `event` with `payload` on `topic`; returns how many local subscribers got it.
    pub fn broadcast(&self, topic: &str, event: &str, payload: serde_json::Value) -> usize {
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = topics.get(topic) else {
            return 0;
        };
        let message = Broadcast {
            topic: Arc::from(topic),
            event: Arc::from(event),
            payload: Arc::new(payload),
        };
        match sender.send(message) {
            Ok(delivered) => delivered,
            Err(_) => {
                // Every subscriber is gone: forget the topic so idle topics cost nothing.
                topics.remove(topic);
                0
            }
        }
    }

    /// How many topics have at least one subscriber (or had one since the last publish).
    pub fn topic_count(&self) -> usize {
        self.topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_of_a_topic_receive_its_broadcasts_only() {
        let bus = PubSub::new();
        let mut lobby = bus.subscribe("room:lobby");
        let mut other = bus.subscribe("room:other");
        assert_eq!(
            bus.broadcast("room:lobby", "new_msg", serde_json::json!({"body": "hi"})),
            1
        );
        let got = lobby.recv().await.ok();
        assert_eq!(got.map(|m| m.payload["body"].clone()), Some("hi".into()));
        assert!(other.try_recv().is_err());
    }

    #[test]
    fn a_topic_without_subscribers_is_dropped() {
        let bus = PubSub::new();
        drop(bus.subscribe("room:gone"));
        assert_eq!(bus.broadcast("room:gone", "e", serde_json::Value::Null), 0);
        assert_eq!(bus.topic_count(), 0);
    }
}
