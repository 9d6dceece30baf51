//! The protocol's message, independent of how it is encoded on the wire.

use bytes::Bytes;
use serde_json::Value;

/// A payload: a JSON value (the protocol requires an object) or raw bytes (V2 binary frames).
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Json(Value),
    Binary(Bytes),
}

impl Payload {
    /// The empty object `{}`.
    pub fn empty() -> Self {
        Payload::Json(Value::Object(serde_json::Map::new()))
    }

    /// The JSON value, if this is JSON.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Payload::Json(value) => Some(value),
            Payload::Binary(_) => None,
        }
    }
}

impl From<Value> for Payload {
    fn from(value: Value) -> Self {
        Payload::Json(value)
    }
}

/// One protocol message in either direction: `[join_ref, ref, topic, event, payload]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub join_ref: Option<String>,
    pub msg_ref: Option<String>,
    pub topic: String,
    pub event: String,
    pub payload: Payload,
}

/// The reserved events of the protocol.
pub mod events {
    pub const JOIN: &str = "phx_join";
    pub const LEAVE: &str = "phx_leave";
    pub const CLOSE: &str = "phx_close";
    pub const ERROR: &str = "phx_error";
    pub const HEARTBEAT: &str = "heartbeat";
    /// The topic of heartbeats.
    pub const PHOENIX: &str = "phoenix";
}

/// What a server-to-client frame is, which decides its binary encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A push from a channel (`ref` is null).
    Push,
    /// A reply to the message whose `ref` it carries.
    Reply,
    /// A broadcast (`join_ref` and `ref` are null).
    Broadcast,
    /// `phx_close` / `phx_error` for a channel: `ref` carries the join_ref.
    Control,
}

/// A server-to-client message before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing<'a> {
    pub kind: Kind,
    pub join_ref: Option<&'a str>,
    pub msg_ref: Option<&'a str>,
    pub topic: &'a str,
    /// The event, or for a reply its status.
    pub event: &'a str,
    pub payload: &'a Payload,
}
