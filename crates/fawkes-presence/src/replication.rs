//! Replication between nodes, over the bus topic `phx_presence`.
//!
//! Every change to this node's entries goes out as a delta numbered by the node's clock. Every
//! `heartbeat` the node also sends its clock. A receiver applies a delta only if it is the next
//! one it expects from that node; on a gap, or on hearing from a node it does not know (one that
//! just started, or that it started after), it asks that node for its whole state. A node
//! unheard of for `node_timeout` is gone: its entries are removed and each node tells its own
//! subscribers they left.

use std::collections::HashMap;
use std::sync::PoisonError;
use std::time::{Duration, Instant};

use fawkes_pubsub::{Broadcast, Payload, PubSub};
use serde_json::{Value, json};

use crate::{DIFF_EVENT, Meta, Tracker, group};

const TOPIC: &str = "phx_presence";
/// How long to wait for a requested state before asking again.
const TRANSFER_RETRY: Duration = Duration::from_secs(1);

/// How often nodes announce themselves and how long before a silent node counts as gone.
#[derive(Debug, Clone, Copy)]
pub struct ReplicationSettings {
    pub heartbeat: Duration,
    pub node_timeout: Duration,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_secs(1),
            node_timeout: Duration::from_secs(15),
        }
    }
}

/// What this node knows of another.
pub(crate) struct RemoteNode {
    pub clock: u64,
    /// topic → (key, meta)
    pub entries: HashMap<String, Vec<(String, Meta)>>,
    pub last_seen: Instant,
    transfer_requested: Option<Instant>,
    /// What the node says about itself in its heartbeats (name, connection counts).
    pub info: Value,
}

impl RemoteNode {
    fn unknown() -> Self {
        Self {
            clock: 0,
            entries: HashMap::new(),
            last_seen: Instant::now(),
            transfer_requested: None,
            info: Value::Null,
        }
    }
}

/// Sends a local change to the other nodes (nothing to do on a single node).
pub(crate) fn publish_delta(bus: &PubSub, clock: u64, op: Value) {
    if bus.remote_status().is_none() {
        return;
    }
    bus.broadcast(
        TOPIC,
        "delta",
        json!({ "node": bus.node_id(), "clock": clock, "ops": [op] }),
    );
}

impl Tracker {
    /// Starts replicating with the other nodes on the bus. Runs until the returned task is
    /// aborted (or the process ends).
    pub fn start_replication(&self, settings: ReplicationSettings) -> tokio::task::JoinHandle<()> {
        let mut inbox = self.bus.subscribe(TOPIC, 4096);
        let tracker = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(settings.heartbeat);
            loop {
                tokio::select! {
                    message = inbox.recv() => match message {
                        Some(message) => tracker.on_message(&message),
                        None => break,
                    },
                    _ = tick.tick() => tracker.on_tick(settings.node_timeout),
                }
            }
        })
    }

    fn on_tick(&self, node_timeout: Duration) {
        let (clock, gone) = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let dead: Vec<String> = state
                .remote
                .iter()
                .filter(|(_, node)| node.last_seen.elapsed() > node_timeout)
                .map(|(id, _)| id.clone())
                .collect();
            let gone: Vec<(String, RemoteNode)> = dead
                .into_iter()
                .filter_map(|id| state.remote.remove(&id).map(|node| (id, node)))
                .collect();
            (state.clock, gone)
        };
        for (id, node) in gone {
            tracing::warn!(node = %id, "presence: node stopped heartbeating; its entries leave");
            for (topic, entries) in node.entries {
                // Every surviving node reports these: the dead one cannot.
                for (key, _) in &entries {
                    self.notify_observer(&topic, key);
                }
                let leaves = json!({ "joins": {}, "leaves": group(entries) });
                self.bus.broadcast_local(&topic, DIFF_EVENT, leaves);
            }
        }
        let info = self.node_info();
        self.bus.broadcast(
            TOPIC,
            "heartbeat",
            json!({ "node": self.bus.node_id(), "clock": clock, "info": info }),
        );
    }

    fn on_message(&self, message: &Broadcast) {
        let Payload::Json(payload) = &message.payload else {
            return;
        };
        let Some(node) = payload["node"].as_str() else {
            return;
        };
        if node == self.bus.node_id() {
            return;
        }
        let clock = payload["clock"].as_u64().unwrap_or(0);
        match &*message.event {
            "heartbeat" => self.on_heartbeat(node, clock, &payload["info"]),
            "delta" => self.on_delta(
                node,
                clock,
                payload["ops"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
            ),
            "transfer_request" if payload["target"] == self.bus.node_id() => self.send_state(node),
            "state" if payload["to"] == self.bus.node_id() => {
                self.on_state(node, clock, &payload["topics"])
            }
            _ => {}
        }
    }

    fn on_heartbeat(&self, node: &str, clock: u64, info: &Value) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let remote = state
            .remote
            .entry(node.to_owned())
            .or_insert_with(RemoteNode::unknown);
        remote.last_seen = Instant::now();
        remote.info = info.clone();
        if remote.clock != clock {
            self.request_transfer(node, remote);
        }
    }

    fn on_delta(&self, node: &str, clock: u64, ops: &[Value]) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let remote = state
            .remote
            .entry(node.to_owned())
            .or_insert_with(RemoteNode::unknown);
        remote.last_seen = Instant::now();
        if clock != remote.clock + 1 {
            self.request_transfer(node, remote);
            return;
        }
        for op in ops {
            apply(&mut remote.entries, op);
        }
        remote.clock = clock;
    }

    fn on_state(&self, node: &str, clock: u64, topics: &Value) {
        let mut entries: HashMap<String, Vec<(String, Meta)>> = HashMap::new();
        for (topic, list) in topics.as_object().into_iter().flatten() {
            for item in list.as_array().into_iter().flatten() {
                if let (Some(key), Some(meta)) = (item[0].as_str(), item[1].as_object()) {
                    entries
                        .entry(topic.clone())
                        .or_default()
                        .push((key.to_owned(), meta.clone()));
                }
            }
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.remote.insert(
            node.to_owned(),
            RemoteNode {
                clock,
                entries,
                last_seen: Instant::now(),
                transfer_requested: None,
                info: Value::Null,
            },
        );
    }

    /// Asks `node` for its whole state, at most once per retry period.
    fn request_transfer(&self, node: &str, remote: &mut RemoteNode) {
        if remote
            .transfer_requested
            .is_some_and(|at| at.elapsed() < TRANSFER_RETRY)
        {
            return;
        }
        remote.transfer_requested = Some(Instant::now());
        let request = json!({ "node": self.bus.node_id(), "target": node });
        self.bus.broadcast(TOPIC, "transfer_request", request);
    }

    fn send_state(&self, to: &str) {
        let snapshot = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let topics: serde_json::Map<String, Value> = state
                .topics
                .iter()
                .map(|(topic, entries)| {
                    let list = entries.iter().map(|e| json!([e.key, e.meta])).collect();
                    (topic.clone(), Value::Array(list))
                })
                .collect();
            json!({ "node": self.bus.node_id(), "clock": state.clock, "to": to, "topics": topics })
        };
        self.bus.broadcast(TOPIC, "state", snapshot);
    }
}

/// Applies one replicated op to a remote node's entries.
fn apply(entries: &mut HashMap<String, Vec<(String, Meta)>>, op: &Value) {
    let Some(topic) = op["topic"].as_str() else {
        return;
    };
    match op["op"].as_str() {
        Some("track") => {
            if let (Some(key), Some(meta)) = (op["key"].as_str(), op["meta"].as_object()) {
                entries
                    .entry(topic.to_owned())
                    .or_default()
                    .push((key.to_owned(), meta.clone()));
            }
        }
        Some("update") => {
            let Some(list) = entries.get_mut(topic) else {
                return;
            };
            if let (Some(slot), Some(meta)) = (
                list.iter_mut().find(|(_, m)| m["phx_ref"] == op["old"]),
                op["meta"].as_object(),
            ) {
                slot.1 = meta.clone();
            }
        }
        Some("untrack") => {
            let refs = op["refs"].as_array().cloned().unwrap_or_default();
            if let Some(list) = entries.get_mut(topic) {
                list.retain(|(_, meta)| !refs.contains(&meta["phx_ref"]));
                if list.is_empty() {
                    entries.remove(topic);
                }
            }
        }
        _ => {}
    }
}
