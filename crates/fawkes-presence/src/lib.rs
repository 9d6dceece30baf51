//! Presence, wire-compatible with Phoenix (spec §5): who is on a topic, as
//! `{key: {metas: [{phx_ref, …}]}}`, kept current with `presence_diff` broadcasts of
//! `{joins, leaves}` that phoenix.js's `Presence` class applies unchanged.
//!
//! Each tracked entry belongs to an owner (a joined channel). One key (a user) may have several
//! metas: one per connection, so two tabs show as two metas. An update gives the meta a fresh
//! `phx_ref` and records the old one as `phx_ref_prev`.
//!
//! Across nodes ([`Tracker::start_replication`]) every node owns its entries and replicates them
//! the way Phoenix's tracker does: numbered deltas, periodic heartbeats carrying the node's
//! clock, a full state transfer when a node sees a gap or a node it does not know, and the
//! entries of a node that stops heartbeating removed (with their leaves) after a timeout. This
//! crate knows nothing of the app.

mod replication;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fawkes_pubsub::PubSub;
use rand::RngCore;
use serde_json::{Map, Value, json};

pub use replication::ReplicationSettings;

/// The event that carries a joining client's full view.
pub const STATE_EVENT: &str = "presence_state";
/// The event broadcast on every change.
pub const DIFF_EVENT: &str = "presence_diff";

/// A meta: the app's fields plus `phx_ref` (and `phx_ref_prev` after an update).
type Meta = Map<String, Value>;

struct Entry {
    owner: u64,
    key: String,
    meta: Meta,
}

#[derive(Default)]
struct State {
    /// This node's entries: topic → entries, in tracking order.
    topics: HashMap<String, Vec<Entry>>,
    /// Counts this node's changes; deltas carry it so other nodes notice gaps.
    clock: u64,
    /// Other nodes' entries, as replicated.
    remote: HashMap<String, replication::RemoteNode>,
}

/// The presence tracker of this node. Cheap to clone.
#[derive(Clone)]
pub struct Tracker {
    state: Arc<Mutex<State>>,
    entries: Arc<AtomicUsize>,
    bus: PubSub,
    info: Arc<Mutex<Option<NodeInfo>>>,
    observer: Arc<Mutex<Option<Observer>>>,
}

/// Produces what a node says about itself.
type NodeInfo = Arc<dyn Fn() -> Value + Send + Sync>;

/// Told `(topic, key)` after a presence may have changed (see [`Tracker::observe`]).
type Observer = Arc<dyn Fn(&str, &str) + Send + Sync>;

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracker")
            .field("entries", &self.entry_count())
            .finish()
    }
}

impl Tracker {
    pub fn new(bus: PubSub) -> Self {
        Self {
            state: Arc::default(),
            entries: Arc::default(),
            bus,
            info: Arc::default(),
            observer: Arc::default(),
        }
    }

    /// Calls `observer(topic, key)` after every track and untrack on this node, and for each
    /// entry of another node that timed out (each surviving node reports those). It runs on the
    /// caller's thread with no lock held, so it must be quick (spawn anything slow). This is how
    /// an app mirrors presence elsewhere without every channel that tracks knowing about it.
    pub fn observe(&self, observer: impl Fn(&str, &str) + Send + Sync + 'static) {
        *self.observer.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(observer));
    }

    fn notify_observer(&self, topic: &str, key: &str) {
        let observer = self
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(observer) = observer {
            observer(topic, key);
        }
    }

    /// Tracks `key` on `topic` for `owner` with `meta`; broadcasts the join. Returns the meta's
    /// `phx_ref`.
    pub fn track(&self, owner: u64, topic: &str, key: &str, mut meta: Meta) -> String {
        let phx_ref = new_ref();
        meta.insert("phx_ref".to_owned(), Value::String(phx_ref.clone()));
        let joined = meta.clone();
        self.change(|state| {
            state
                .topics
                .entry(topic.to_owned())
                .or_default()
                .push(Entry {
                    owner,
                    key: key.to_owned(),
                    meta: meta.clone(),
                });
            Some(json!({ "op": "track", "topic": topic, "key": key, "meta": meta }))
        });
        self.entries.fetch_add(1, Ordering::Relaxed);
        self.broadcast_diff(topic, vec![(key.to_owned(), joined)], Vec::new());
        self.notify_observer(topic, key);
        phx_ref
    }

    /// Replaces the meta `owner` tracks for `key` on `topic`, merging `changes` into it; the
    /// diff carries the new meta as a join and the old one as a leave. `false` if not tracked.
    pub fn update(&self, owner: u64, topic: &str, key: &str, changes: Meta) -> bool {
        let mut replaced = None;
        self.change(|state| {
            let entry = state
                .topics
                .get_mut(topic)
                .and_then(|entries| entries.iter_mut().find(|e| e.owner == owner && e.key == key))?;
            let old = entry.meta.clone();
            let mut new = old.clone();
            for (field, value) in changes {
                if field != "phx_ref" && field != "phx_ref_prev" {
                    new.insert(field, value);
                }
            }
            new.insert("phx_ref_prev".to_owned(), old.get("phx_ref").cloned().unwrap_or(Value::Null));
            new.insert("phx_ref".to_owned(), Value::String(new_ref()));
            entry.meta = new.clone();
            let op = json!({ "op": "update", "topic": topic, "key": key, "old": old["phx_ref"], "meta": new });
            replaced = Some((old, new));
            Some(op)
        });
        let Some((old, new)) = replaced else {
            return false;
        };
        self.broadcast_diff(
            topic,
            vec![(key.to_owned(), new)],
            vec![(key.to_owned(), old)],
        );
        true
    }

    /// Removes everything `owner` tracks on `topic`; broadcasts the leaves.
    pub fn untrack(&self, owner: u64, topic: &str) {
        let mut left: Vec<(String, Meta)> = Vec::new();
        self.change(|state| {
            let entries = state.topics.get_mut(topic)?;
            let (gone, kept): (Vec<Entry>, Vec<Entry>) =
                entries.drain(..).partition(|e| e.owner == owner);
            *entries = kept;
            if entries.is_empty() {
                state.topics.remove(topic);
            }
            if gone.is_empty() {
                return None;
            }
            let refs: Vec<Value> = gone.iter().map(|e| e.meta["phx_ref"].clone()).collect();
            left = gone.into_iter().map(|e| (e.key, e.meta)).collect();
            Some(json!({ "op": "untrack", "topic": topic, "refs": refs }))
        });
        if left.is_empty() {
            return;
        }
        self.entries.fetch_sub(left.len(), Ordering::Relaxed);
        let keys: std::collections::BTreeSet<String> =
            left.iter().map(|(k, _)| k.clone()).collect();
        self.broadcast_diff(topic, Vec::new(), left);
        for key in keys {
            self.notify_observer(topic, &key);
        }
    }

    /// The topic's presences on every node: `{key: {metas: [...]}}`.
    pub fn list(&self, topic: &str) -> Value {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let local = state
            .topics
            .get(topic)
            .into_iter()
            .flatten()
            .map(|e| (e.key.clone(), e.meta.clone()));
        let remote = state
            .remote
            .values()
            .flat_map(|node| node.entries.get(topic).into_iter().flatten())
            .map(|(key, meta)| (key.clone(), meta.clone()));
        group(local.chain(remote).collect())
    }

    /// How many entries this node tracks.
    pub fn entry_count(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }

    /// Sets what this node says about itself in its heartbeats (and in [`Tracker::nodes`]).
    pub fn set_node_info(&self, info: impl Fn() -> Value + Send + Sync + 'static) {
        *self.info.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(info));
    }

    fn node_info(&self) -> Value {
        let info = self
            .info
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        info.map(|f| f()).unwrap_or(Value::Null)
    }

    /// This node and the others it hears from: `{id, this, info, presence_entries, last_seen_ms}`.
    pub fn nodes(&self) -> Vec<Value> {
        let this = json!({
            "id": self.bus.node_id(),
            "this": true,
            "info": self.node_info(),
            "presence_entries": self.entry_count(),
            "last_seen_ms": 0,
        });
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let others = state.remote.iter().map(|(id, node)| {
            json!({
                "id": id,
                "this": false,
                "info": node.info,
                "presence_entries": node.entries.values().map(Vec::len).sum::<usize>(),
                "last_seen_ms": u64::try_from(node.last_seen.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
        });
        std::iter::once(this).chain(others).collect()
    }

    /// Applies a local change and, when it returns an op, replicates it with the next clock.
    /// The delta goes out under the lock so deltas leave in clock order.
    fn change(&self, apply: impl FnOnce(&mut State) -> Option<Value>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(op) = apply(&mut state) {
            state.clock += 1;
            replication::publish_delta(&self.bus, state.clock, op);
        }
    }

    fn broadcast_diff(&self, topic: &str, joins: Vec<(String, Meta)>, leaves: Vec<(String, Meta)>) {
        let diff = json!({ "joins": group(joins), "leaves": group(leaves) });
        self.bus.broadcast(topic, DIFF_EVENT, diff);
    }
}

/// Groups metas by key in the wire shape.
fn group(metas: Vec<(String, Meta)>) -> Value {
    let mut grouped: Map<String, Value> = Map::new();
    for (key, meta) in metas {
        let slot = grouped.entry(key).or_insert_with(|| json!({ "metas": [] }));
        if let Some(list) = slot["metas"].as_array_mut() {
            list.push(Value::Object(meta));
        }
    }
    Value::Object(grouped)
}

/// An opaque, unique ref: 12 random bytes, base64url (16 characters, like Phoenix's).
fn new_ref() -> String {
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(status: &str) -> Meta {
        let Value::Object(map) = json!({ "status": status }) else {
            return Meta::new();
        };
        map
    }

    #[tokio::test]
    async fn track_update_untrack_broadcast_phoenix_diffs() {
        let bus = PubSub::new();
        let mut diffs = bus.subscribe("room:lobby", 16);
        let tracker = Tracker::new(bus);
        let first = tracker.track(1, "room:lobby", "u1", meta("online"));
        tracker.track(2, "room:lobby", "u1", meta("online"));
        let state = tracker.list("room:lobby");
        assert_eq!(
            state["u1"]["metas"].as_array().map(Vec::len),
            Some(2),
            "two tabs, two metas"
        );
        assert_eq!(first.len(), 16);

        let join = diffs.recv().await.map(|m| m.payload.clone());
        let Some(fawkes_pubsub::Payload::Json(join)) = join else {
            panic!("json diff")
        };
        assert_eq!(join["joins"]["u1"]["metas"][0]["phx_ref"], first.as_str());
        assert_eq!(join["leaves"], json!({}));
        let _second = diffs.recv().await;

        assert!(tracker.update(1, "room:lobby", "u1", meta("away")));
        let Some(fawkes_pubsub::Payload::Json(update)) =
            diffs.recv().await.map(|m| m.payload.clone())
        else {
            panic!()
        };
        assert_eq!(
            update["joins"]["u1"]["metas"][0]["phx_ref_prev"],
            first.as_str()
        );
        assert_eq!(update["joins"]["u1"]["metas"][0]["status"], "away");
        assert_eq!(
            update["leaves"]["u1"]["metas"][0]["phx_ref"],
            first.as_str()
        );

        tracker.untrack(1, "room:lobby");
        let Some(fawkes_pubsub::Payload::Json(leave)) =
            diffs.recv().await.map(|m| m.payload.clone())
        else {
            panic!()
        };
        assert_eq!(leave["leaves"]["u1"]["metas"][0]["status"], "away");
        assert_eq!(
            tracker.list("room:lobby")["u1"]["metas"]
                .as_array()
                .map(Vec::len),
            Some(1)
        );
        tracker.untrack(2, "room:lobby");
        assert_eq!(tracker.list("room:lobby"), json!({}));
        assert_eq!(tracker.entry_count(), 0);
        assert!(!tracker.update(1, "room:lobby", "u1", meta("x")));
    }
}
