//! The fan-out: which connections joined which topic, and delivering each broadcast to them.
//!
//! The endpoint attaches one sink per topic to the bus. A broadcast is encoded at most once per
//! serializer and the same bytes are queued on every subscribed connection. A connection whose
//! queue is full is a slow consumer: it is disconnected (close code 1013, the client reconnects)
//! instead of letting its queue grow or holding up the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use fawkes_pubsub::{Broadcast, PubSub, Sink};

use crate::mailbox::{Mailbox, Refused};
use crate::message::{Kind, Outgoing, Payload};
use crate::serializer::{Frame, Serializer};

/// Counters an operator wants to see. Plain atomics, bumped where the work happens anyway, so
/// the app can export them at scrape time without the crate knowing about any metrics system.
#[derive(Debug, Default)]
pub struct Stats {
    /// Open WebSocket connections.
    pub connections: AtomicU64,
    /// Live LongPoll sessions.
    pub longpoll_sessions: AtomicU64,
    pub joined_channels: AtomicU64,
    pub slow_consumer_disconnects: AtomicU64,
    /// Client events refused with `rate_limited`.
    pub rate_limited_events: AtomicU64,
    pub rate_limited_disconnects: AtomicU64,
    pub frames_out: AtomicU64,
    pub frames_in: AtomicU64,
    /// Broadcasts that reached a topic with subscribers on this node.
    pub broadcasts: AtomicU64,
    /// Frames those broadcasts queued on subscribed connections (the fan-out).
    pub broadcast_deliveries: AtomicU64,
}

/// What the writer of a connection sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    Frame(Frame),
    /// Send a close frame with this code and reason, then stop.
    Close(u16, &'static str),
}

/// What the connection's own task must handle besides client frames.
#[derive(Debug)]
pub(crate) enum Inbox {
    /// Close the connection with this code (socket-id disconnect, slow consumer).
    Close(u16, &'static str),
    /// A broadcast the channel `channel_id` intercepts.
    Intercepted {
        channel_id: u64,
        message: Arc<Broadcast>,
    },
}

/// The parts of a connection that other tasks (the fan-out, async replies, the drain) reach.
#[derive(Debug)]
pub(crate) struct ConnectionHandle {
    pub serializer: Serializer,
    /// Frames for the transport's writer, control messages for the connection's task.
    pub mailbox: Mailbox,
    overflowed: AtomicBool,
    stats: Arc<Stats>,
}

impl ConnectionHandle {
    /// `queue`: most frames that may wait to be written (a slow consumer's limit).
    pub fn new(serializer: Serializer, queue: usize, stats: Arc<Stats>) -> Self {
        Self {
            serializer,
            mailbox: Mailbox::new(queue),
            overflowed: AtomicBool::new(false),
            stats,
        }
    }

    /// Queues a frame without waiting. A full queue marks the connection a slow consumer.
    pub fn send(&self, frame: Frame) {
        match self.mailbox.push_frame(Outbound::Frame(frame)) {
            Ok(()) => {
                self.stats.frames_out.fetch_add(1, Ordering::Relaxed);
            }
            Err(Refused::Full) => {
                if !self.overflowed.swap(true, Ordering::Relaxed) {
                    self.stats
                        .slow_consumer_disconnects
                        .fetch_add(1, Ordering::Relaxed);
                    self.notify(Inbox::Close(1013, "slow consumer"));
                }
            }
            Err(Refused::Closed) => {}
        }
    }

    /// Encodes and queues a message; one the serializer cannot carry is dropped with a log.
    pub fn send_message(&self, out: &Outgoing<'_>) {
        match self.serializer.encode(out) {
            Some(frame) => self.send(frame),
            None => tracing::debug!(
                topic = out.topic,
                event = out.event,
                "message not encodable for this serializer"
            ),
        }
    }

    pub fn notify(&self, message: Inbox) {
        self.mailbox.push_inbox(message);
    }
}

/// One channel's place in a topic's fan-out.
struct Subscriber {
    connection: Arc<ConnectionHandle>,
    intercepts: &'static [&'static str],
    /// Broadcasts that arrived while the join was still being decided; they go out after the
    /// join reply, so the reply always comes first.
    held: Mutex<Option<Vec<Frame>>>,
}

/// The subscribers of one topic. Publishing takes only this topic's read lock, never the
/// endpoint's map, so joins elsewhere do not slow a fan-out down (and the locks cannot deadlock
/// with the bus's own).
#[derive(Default)]
struct Topic {
    attachment: AtomicU64,
    subscribers: RwLock<HashMap<u64, Arc<Subscriber>>>,
}

struct Inner {
    bus: PubSub,
    topics: Mutex<HashMap<Arc<str>, Arc<Topic>>>,
    stats: Arc<Stats>,
    /// Every live connection, for a drain to reach them all.
    live: Mutex<HashMap<u64, Arc<ConnectionHandle>>>,
    /// Set by [`Endpoint::drain`]: new connections are refused.
    draining: AtomicBool,
}

/// A connection's place in the live set; leaving it (dropping) removes the connection.
pub(crate) struct LiveGuard {
    endpoint: Endpoint,
    id: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.endpoint
            .inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// The registry of joined topics on this node. Cheap to clone.
#[derive(Clone)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").finish_non_exhaustive()
    }
}

impl Endpoint {
    pub fn new(bus: PubSub) -> Self {
        Self {
            inner: Arc::new(Inner {
                bus,
                topics: Mutex::default(),
                stats: Arc::default(),
                live: Mutex::default(),
                draining: AtomicBool::new(false),
            }),
        }
    }

    pub fn bus(&self) -> &PubSub {
        &self.inner.bus
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.inner.stats
    }

    /// Adds a connection to the live set that [`Endpoint::drain`] closes.
    pub(crate) fn register_live(&self, connection: Arc<ConnectionHandle>) -> LiveGuard {
        let id = self.inner.bus.next_id();
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, connection);
        LiveGuard {
            endpoint: self.clone(),
            id,
        }
    }

    /// Whether a drain has begun; new connections are then refused.
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::Relaxed)
    }

    /// Live connections: open WebSockets and LongPoll sessions.
    pub fn live_connections(&self) -> usize {
        self.inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Asks every live connection to go, for a node that is stopping: each is closed with 1012
    /// ("service restart"; clients reconnect, through the balancer to another node), the closes
    /// spread evenly over `window` so the other nodes are not hit by every client at once.
    /// New connections are refused from now on. Returns when no connection is left.
    pub async fn drain(&self, window: std::time::Duration) {
        self.inner.draining.store(true, Ordering::Relaxed);
        let live: Vec<Arc<ConnectionHandle>> = self
            .inner
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let count = live.len();
        tracing::info!(connections = count, ?window, "draining sockets");
        let started = tokio::time::Instant::now();
        for (i, connection) in live.into_iter().enumerate() {
            let at = window.mul_f64(i as f64 / count as f64);
            tokio::time::sleep_until(started + at).await;
            connection.notify(Inbox::Close(1012, "server restarting"));
        }
        while self.live_connections() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Subscribes a joining channel, holding its broadcasts until [`Endpoint::release`].
    pub(crate) fn subscribe_held(
        &self,
        topic: &str,
        channel_id: u64,
        connection: Arc<ConnectionHandle>,
        intercepts: &'static [&'static str],
    ) {
        let entry = {
            let mut topics = self
                .inner
                .topics
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = topics.get(topic) {
                entry.clone()
            } else {
                let entry = Arc::new(Topic::default());
                let sink = Arc::new(TopicSink {
                    topic: entry.clone(),
                    stats: self.inner.stats.clone(),
                });
                let attachment = self.inner.bus.attach(topic, sink);
                entry.attachment.store(attachment, Ordering::Relaxed);
                topics.insert(Arc::from(topic), entry.clone());
                entry
            }
        };
        let subscriber = Arc::new(Subscriber {
            connection,
            intercepts,
            held: Mutex::new(Some(Vec::new())),
        });
        entry
            .subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(channel_id, subscriber);
        self.inner
            .stats
            .joined_channels
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Sends what was held for a channel whose join reply has been queued, and lets later
    /// broadcasts through directly.
    pub(crate) fn release(&self, topic: &str, channel_id: u64) {
        let Some(subscriber) = self.subscriber(topic, channel_id) else {
            return;
        };
        let mut held = subscriber
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for frame in held.take().unwrap_or_default() {
            subscriber.connection.send(frame);
        }
    }

    pub(crate) fn unsubscribe(&self, topic: &str, channel_id: u64) {
        let mut topics = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = topics.get(topic).cloned() else {
            return;
        };
        let now_empty = {
            let mut subscribers = entry
                .subscribers
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            if subscribers.remove(&channel_id).is_some() {
                self.inner
                    .stats
                    .joined_channels
                    .fetch_sub(1, Ordering::Relaxed);
            }
            subscribers.is_empty()
        };
        if now_empty {
            topics.remove(topic);
            self.inner
                .bus
                .detach(topic, entry.attachment.load(Ordering::Relaxed));
        }
    }

    /// Joined channels per topic namespace (the part before the first `:`), counted now. For
    /// metrics: walks every topic, so it is for a scrape, not a hot path.
    pub fn joined_by_namespace(&self) -> HashMap<String, u64> {
        let topics: Vec<(Arc<str>, Arc<Topic>)> = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, topic)| (name.clone(), topic.clone()))
            .collect();
        let mut counts = HashMap::new();
        for (name, topic) in topics {
            let namespace = name.split_once(':').map_or(&*name, |(ns, _)| ns);
            let joined = topic
                .subscribers
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .len() as u64;
            *counts.entry(namespace.to_owned()).or_insert(0) += joined;
        }
        counts
    }

    fn subscriber(&self, topic: &str, channel_id: u64) -> Option<Arc<Subscriber>> {
        let entry = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .cloned()?;
        let subscribers = entry
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        subscribers.get(&channel_id).cloned()
    }
}

/// The bus sink of one topic.
struct TopicSink {
    topic: Arc<Topic>,
    stats: Arc<Stats>,
}

impl Sink for TopicSink {
    fn deliver(&self, message: &Arc<Broadcast>) {
        let entry = &self.topic;
        let payload = match &message.payload {
            fawkes_pubsub::Payload::Json(value) => Payload::Json(value.clone()),
            fawkes_pubsub::Payload::Binary(bytes) => Payload::Binary(bytes.clone()),
        };
        let outgoing = Outgoing {
            kind: Kind::Broadcast,
            join_ref: None,
            msg_ref: None,
            topic: &message.topic,
            event: &message.event,
            payload: &payload,
        };
        // Encoded at most once per serializer, whatever the number of subscribers.
        let mut encoded: [Option<Option<Frame>>; 2] = [None, None];
        let subscribers = entry
            .subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut delivered = 0;
        for (channel_id, subscriber) in subscribers.iter() {
            if message.origin == Some(*channel_id) {
                continue;
            }
            delivered += 1;
            if subscriber.intercepts.contains(&&*message.event) {
                subscriber.connection.notify(Inbox::Intercepted {
                    channel_id: *channel_id,
                    message: message.clone(),
                });
                continue;
            }
            let serializer = subscriber.connection.serializer;
            let slot = &mut encoded[serializer as usize];
            let Some(frame) = slot
                .get_or_insert_with(|| serializer.encode(&outgoing))
                .clone()
            else {
                continue;
            };
            let mut held = subscriber
                .held
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match held.as_mut() {
                Some(waiting) => waiting.push(frame),
                None => subscriber.connection.send(frame),
            }
        }
        // Two relaxed adds per broadcast, not per subscriber.
        self.stats.broadcasts.fetch_add(1, Ordering::Relaxed);
        self.stats
            .broadcast_deliveries
            .fetch_add(delivered, Ordering::Relaxed);
    }
}
