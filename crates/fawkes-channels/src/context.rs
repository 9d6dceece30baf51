//! What a channel callback can do: read the connection's assigns, push to its client, reply
//! later, and broadcast to the topic.

use std::sync::Arc;

use fawkes_pubsub::{Broadcast, PubSub};

use crate::endpoint::{ConnectionHandle, Endpoint};
use crate::handler::Reply;
use crate::message::{Kind, Outgoing, Payload};

/// The context of one joined channel.
pub struct ChannelContext<A> {
    pub(crate) assigns: Arc<A>,
    pub(crate) topic: Arc<str>,
    pub(crate) join_ref: Option<Arc<str>>,
    pub(crate) channel_id: u64,
    pub(crate) connection: Arc<ConnectionHandle>,
    pub(crate) endpoint: Endpoint,
    /// The `ref` of the client message being handled, for [`ChannelContext::reply_later`].
    pub(crate) current_ref: Option<String>,
}

impl<A> ChannelContext<A> {
    /// What the socket handler's `connect` established.
    pub fn assigns(&self) -> &A {
        &self.assigns
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// This joined channel's id, unique on the bus: what presence entries belong to.
    pub fn id(&self) -> u64 {
        self.channel_id
    }

    /// The bus, for subscriptions of the channel's own.
    pub fn bus(&self) -> &PubSub {
        self.endpoint.bus()
    }

    /// Sends `event` to this channel's client only.
    pub fn push(&self, event: &str, payload: impl Into<Payload>) {
        let payload = payload.into();
        self.connection.send_message(&Outgoing {
            kind: Kind::Push,
            join_ref: self.join_ref.as_deref(),
            msg_ref: None,
            topic: &self.topic,
            event,
            payload: &payload,
        });
    }

    /// Sends `event` to every subscriber of the topic, this client included.
    pub fn broadcast(&self, event: &str, payload: impl Into<Payload>) {
        self.publish(event, payload.into(), None);
    }

    /// Sends `event` to every subscriber of the topic except this channel.
    pub fn broadcast_from(&self, event: &str, payload: impl Into<Payload>) {
        self.publish(event, payload.into(), Some(self.channel_id));
    }

    /// A handle that answers the message being handled at a later time (return
    /// `HandleIn::NoReply` now).
    pub fn reply_later(&self) -> ReplyHandle {
        ReplyHandle {
            connection: self.connection.clone(),
            topic: self.topic.clone(),
            join_ref: self.join_ref.clone(),
            msg_ref: self.current_ref.clone(),
        }
    }

    /// A handle that pushes to this channel's client from another task (such as a live
    /// view's own task), with this join's `join_ref`.
    pub fn pusher(&self) -> PushHandle {
        PushHandle {
            connection: self.connection.clone(),
            topic: self.topic.clone(),
            join_ref: self.join_ref.clone(),
        }
    }

    fn publish(&self, event: &str, payload: Payload, origin: Option<u64>) {
        let payload = match payload {
            Payload::Json(value) => fawkes_pubsub::Payload::Json(value),
            Payload::Binary(bytes) => fawkes_pubsub::Payload::Binary(bytes),
        };
        self.endpoint.bus().publish(Broadcast {
            topic: self.topic.clone(),
            event: Arc::from(event),
            payload,
            origin,
        });
    }
}

/// Pushes to one joined channel's client; see [`ChannelContext::pusher`].
#[derive(Debug, Clone)]
pub struct PushHandle {
    connection: Arc<ConnectionHandle>,
    topic: Arc<str>,
    join_ref: Option<Arc<str>>,
}

impl PushHandle {
    pub fn push(&self, event: &str, payload: impl Into<Payload>) {
        self.connection.send_message(&Outgoing {
            kind: Kind::Push,
            join_ref: self.join_ref.as_deref(),
            msg_ref: None,
            topic: &self.topic,
            event,
            payload: &payload.into(),
        });
    }
}

/// An answer owed to one client message.
#[derive(Debug)]
pub struct ReplyHandle {
    connection: Arc<ConnectionHandle>,
    topic: Arc<str>,
    join_ref: Option<Arc<str>>,
    msg_ref: Option<String>,
}

impl ReplyHandle {
    pub fn send(self, reply: Reply) {
        self.connection.send_message(&Outgoing {
            kind: Kind::Reply,
            join_ref: self.join_ref.as_deref(),
            msg_ref: self.msg_ref.as_deref(),
            topic: &self.topic,
            event: &reply.status,
            payload: &reply.payload,
        });
    }
}
