//! Topic-based publish/subscribe for one node.
//!
//! Every state change in Fawkes ends in a broadcast on a topic such as `room:lobby`. A
//! subscriber attaches a [`Sink`] to a topic; a publish hands the same reference-counted
//! [`Broadcast`] to every sink of the topic, synchronously and without copying the payload.
//! Sinks must not block: the channel endpoint's sink, for one, only enqueues.
//!
//! With a remote backend ([`PubSub::connect_remote`]: Redis, NATS or PostgreSQL), every
//! publish also goes to the other nodes, and what they publish is delivered here; a node never
//! delivers its own broadcast twice. Delivery across nodes is at most once: the database stays
//! the source of truth. This crate knows nothing of the app.

mod remote;

pub use remote::{Backend, RemoteStatus};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use bytes::Bytes;
use tokio::sync::mpsc;

/// What a broadcast carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(serde_json::Value),
    Binary(Bytes),
}

/// One published message.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub topic: Arc<str>,
    pub event: Arc<str>,
    pub payload: Payload,
    /// The subscriber that published it with `broadcast_from`; it does not receive it back.
    pub origin: Option<u64>,
}

/// Receives the broadcasts of the topics it is attached to. Called on the publisher's task.
pub trait Sink: Send + Sync + 'static {
    fn deliver(&self, message: &Arc<Broadcast>);
}

/// The bus. Cheap to clone; all clones share the same topics.
#[derive(Clone, Default)]
pub struct PubSub {
    inner: Arc<Inner>,
}

/// The sinks of one topic, with the ids that detach them.
type Sinks = Vec<(u64, Arc<dyn Sink>)>;

struct Inner {
    topics: RwLock<HashMap<Arc<str>, Sinks>>,
    next_id: AtomicU64,
    /// Tells this node's messages apart when the backend echoes them back.
    node_id: String,
    remote: std::sync::OnceLock<remote::Bridge>,
}

impl Default for Inner {
    fn default() -> Self {
        let mut bytes = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        Self {
            topics: RwLock::default(),
            next_id: AtomicU64::new(0),
            node_id: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            remote: std::sync::OnceLock::new(),
        }
    }
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

    /// This node's id on the bus (random per process).
    pub fn node_id(&self) -> &str {
        &self.inner.node_id
    }

    /// A fresh id, unique on this bus, for attachments and `broadcast_from` origins.
    pub fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Attaches `sink` to `topic`; returns the id that detaches it.
    pub fn attach(&self, topic: &str, sink: Arc<dyn Sink>) -> u64 {
        let id = self.next_id();
        let mut topics = self
            .inner
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        topics.entry(Arc::from(topic)).or_default().push((id, sink));
        id
    }

    /// Detaches the sink attached as `id`; idle topics are forgotten.
    pub fn detach(&self, topic: &str, id: u64) {
        let mut topics = self
            .inner
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(sinks) = topics.get_mut(topic) {
            sinks.retain(|(sink_id, _)| *sink_id != id);
            if sinks.is_empty() {
                topics.remove(topic);
            }
        }
    }

    /// A queue of the topic's broadcasts, for consumers that want to await them. It holds up to
    /// `capacity` messages; beyond that new ones are dropped (and logged) rather than growing memory.
    pub fn subscribe(&self, topic: &str, capacity: usize) -> Subscription {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let id = self.attach(topic, Arc::new(QueueSink { sender }));
        Subscription {
            receiver,
            bus: self.clone(),
            topic: Arc::from(topic),
            id,
        }
    }

    /// Publishes `event` with a JSON `payload` on `topic`; returns how many sinks got it.
    pub fn broadcast(&self, topic: &str, event: &str, payload: serde_json::Value) -> usize {
        self.publish(Broadcast {
            topic: Arc::from(topic),
            event: Arc::from(event),
            payload: Payload::Json(payload),
            origin: None,
        })
    }

    /// Publishes a message to every sink of its topic, on this node and, with a remote
    /// backend, on every other node.
    pub fn publish(&self, message: Broadcast) -> usize {
        if let Some(bridge) = self.inner.remote.get() {
            bridge.send(&self.inner.node_id, &message);
        }
        self.deliver_local(message)
    }

    /// Delivers to this node's sinks only, never to other nodes: for what every node computes
    /// for itself (such as the leaves of a node that died).
    pub fn broadcast_local(&self, topic: &str, event: &str, payload: serde_json::Value) -> usize {
        self.deliver_local(Broadcast {
            topic: Arc::from(topic),
            event: Arc::from(event),
            payload: Payload::Json(payload),
            origin: None,
        })
    }

    /// Connects this bus to the other nodes through `backend`, in the background, reconnecting
    /// with backoff whenever the connection drops. Only the first call has an effect.
    pub fn connect_remote(&self, backend: Backend) -> Arc<RemoteStatus> {
        self.connect_remote_as(backend, "fawkes")
    }

    /// Like [`PubSub::connect_remote`], for the cluster named `cluster`: clusters sharing one
    /// Redis, NATS or PostgreSQL server never hear each other.
    pub fn connect_remote_as(&self, backend: Backend, cluster: &str) -> Arc<RemoteStatus> {
        if let Some(bridge) = self.inner.remote.get() {
            return bridge.status.clone();
        }
        let bridge = remote::start(self.clone(), backend, cluster);
        let status = bridge.status.clone();
        let _ = self.inner.remote.set(bridge);
        status
    }

    /// Messages waiting to go out to the other nodes (0 without a remote backend). It grows
    /// while the remote is slow or unreachable; past its bound, messages are dropped and counted.
    pub fn remote_backlog(&self) -> usize {
        self.inner.remote.get().map_or(0, remote::Bridge::backlog)
    }

    /// The remote connection's state, if there is a remote backend.
    pub fn remote_status(&self) -> Option<Arc<RemoteStatus>> {
        self.inner.remote.get().map(|bridge| bridge.status.clone())
    }

    /// A message from another node.
    pub(crate) fn receive_remote(&self, bytes: &[u8]) {
        match remote::decode(bytes) {
            Some((node, message)) if node != self.inner.node_id => {
                self.deliver_local(message);
            }
            Some(_) => {}
            None => tracing::warn!("undecodable message on the bus"),
        }
    }

    fn deliver_local(&self, message: Broadcast) -> usize {
        let message = Arc::new(message);
        let topics = self
            .inner
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(sinks) = topics.get(&*message.topic) else {
            return 0;
        };
        for (_, sink) in sinks {
            sink.deliver(&message);
        }
        sinks.len()
    }

    /// How many topics have at least one sink.
    pub fn topic_count(&self) -> usize {
        self.inner
            .topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

struct QueueSink {
    sender: mpsc::Sender<Arc<Broadcast>>,
}

impl Sink for QueueSink {
    fn deliver(&self, message: &Arc<Broadcast>) {
        if self.sender.try_send(message.clone()).is_err() {
            tracing::warn!(topic = %message.topic, "subscriber queue full or closed; broadcast dropped");
        }
    }
}

/// The receiving end of [`PubSub::subscribe`]; detaches when dropped.
pub struct Subscription {
    receiver: mpsc::Receiver<Arc<Broadcast>>,
    bus: PubSub,
    topic: Arc<str>,
    id: u64,
}

impl Subscription {
    /// The next broadcast; `None` only if the bus is gone.
    pub async fn recv(&mut self) -> Option<Arc<Broadcast>> {
        self.receiver.recv().await
    }

    /// A broadcast that has already arrived, if any.
    pub fn try_recv(&mut self) -> Option<Arc<Broadcast>> {
        self.receiver.try_recv().ok()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.bus.detach(&self.topic, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_of_a_topic_receive_its_broadcasts_only() {
        let bus = PubSub::new();
        let mut lobby = bus.subscribe("room:lobby", 8);
        let mut other = bus.subscribe("room:other", 8);
        assert_eq!(
            bus.broadcast("room:lobby", "new_msg", serde_json::json!({"body": "hi"})),
            1
        );
        let got = lobby.recv().await.map(|m| m.payload.clone());
        assert_eq!(got, Some(Payload::Json(serde_json::json!({"body": "hi"}))));
        assert!(other.try_recv().is_none());
    }

    #[test]
    fn dropping_the_last_subscription_forgets_the_topic() {
        let bus = PubSub::new();
        drop(bus.subscribe("room:gone", 1));
        assert_eq!(bus.broadcast("room:gone", "e", serde_json::Value::Null), 0);
        assert_eq!(bus.topic_count(), 0);
    }

    #[test]
    fn a_full_subscriber_loses_new_messages_instead_of_growing() {
        let bus = PubSub::new();
        let mut slow = bus.subscribe("t", 2);
        for n in 0..5 {
            bus.broadcast("t", "e", serde_json::json!(n));
        }
        let first = slow.try_recv().map(|m| m.payload.clone());
        assert_eq!(first, Some(Payload::Json(serde_json::json!(0))));
        assert!(slow.try_recv().is_some());
        assert!(slow.try_recv().is_none());
    }
}
