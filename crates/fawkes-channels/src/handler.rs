//! What an application implements: a socket handler (who connects, which topics exist) and one
//! channel per topic pattern.

use std::borrow::Cow;
use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use crate::context::ChannelContext;
use crate::message::Payload;

/// What a client presented when it connected.
#[derive(Debug, Clone, Default)]
pub struct ConnectRequest {
    /// The query parameters, `vsn` included. Nested keys stay flat (`user[id]`).
    pub params: HashMap<String, String>,
    /// The token from the `authToken` option (WebSocket subprotocol or LongPoll header).
    pub auth_token: Option<String>,
    /// The request's headers: cookies and Origin, for handlers that check them.
    pub headers: axum::http::HeaderMap,
}

/// The application side of a socket endpoint.
#[async_trait]
pub trait SocketHandler: Send + Sync + 'static {
    /// What the connection knows about its client once connected (the identity), shared with
    /// every channel it joins.
    type Assigns: Send + Sync + 'static;

    /// Accepts the connection with its assigns, or says why not.
    async fn connect(&self, request: &ConnectRequest) -> Result<Self::Assigns, ConnectRefusal>;

    /// Topics on which a `disconnect` broadcast closes this connection with code 1001: how one
    /// call signs out every socket of a user or a session.
    fn socket_ids(&self, assigns: &Self::Assigns) -> Vec<String>;

    /// A new channel for `topic`, or `None` when no route matches ("unmatched topic").
    fn channel(&self, topic: &str) -> Option<Box<dyn Channel<Self::Assigns>>>;
}

/// Why a connection was not accepted: the client is told apart a refusal from an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectRefusal {
    /// Missing or wrong credentials, a foreign origin: HTTP 403.
    Forbidden,
    /// What the check needs (the database) did not answer: HTTP 503, so the client retries
    /// instead of concluding that its token is bad.
    Unavailable,
}

impl ConnectRefusal {
    pub fn status(self) -> axum::http::StatusCode {
        match self {
            ConnectRefusal::Forbidden => axum::http::StatusCode::FORBIDDEN,
            ConnectRefusal::Unavailable => axum::http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The status and payload of a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: Cow<'static, str>,
    pub payload: Payload,
}

impl Reply {
    pub fn ok(payload: impl Into<Payload>) -> Self {
        Self {
            status: Cow::Borrowed("ok"),
            payload: payload.into(),
        }
    }

    pub fn error(payload: impl Into<Payload>) -> Self {
        Self {
            status: Cow::Borrowed("error"),
            payload: payload.into(),
        }
    }

    /// An error reply `{"reason": reason}`.
    pub fn reason(reason: &str) -> Self {
        Self::error(serde_json::json!({ "reason": reason }))
    }
}

/// Why a channel ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The client left (`phx_leave`).
    Left,
    /// The channel chose to stop; the client gets `phx_close` and does not rejoin.
    Normal,
    /// A second join replaced it.
    DuplicateJoin,
    /// The connection closed.
    Closed,
    /// A callback panicked; the client gets `phx_error` and rejoins.
    Crashed,
}

/// What `handle_in` answers.
#[derive(Debug)]
pub enum HandleIn {
    Reply(Reply),
    NoReply,
    /// Stop the channel, after an optional reply.
    Stop(Option<Reply>),
}

/// What `handle_out` does with an intercepted broadcast.
#[derive(Debug)]
pub enum HandleOut {
    /// Push this payload to the client (with the channel's join_ref).
    Push(Payload),
    Drop,
}

/// One joined topic of one connection.
#[async_trait]
pub trait Channel<A: Send + Sync + 'static>: Send + 'static {
    /// Decides the join: `Ok(reply)` joins and answers `ok` with it, `Err(reply)` refuses.
    async fn join(&mut self, payload: Payload, ctx: &mut ChannelContext<A>)
    -> Result<Value, Value>;

    /// Runs once the join reply has been queued: the place to push initial state (such as
    /// `presence_state`) that must reach the client after the join's `ok`.
    async fn after_join(&mut self, _ctx: &mut ChannelContext<A>) {}

    /// A client event on the joined topic.
    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        ctx: &mut ChannelContext<A>,
    ) -> HandleIn;

    /// Broadcast events this channel wants to see (in `handle_out`) before they reach its client.
    fn intercepts(&self) -> &'static [&'static str] {
        &[]
    }

    /// An intercepted broadcast.
    async fn handle_out(
        &mut self,
        _event: &str,
        payload: Payload,
        _ctx: &mut ChannelContext<A>,
    ) -> HandleOut {
        HandleOut::Push(payload)
    }

    /// The channel ends; its subscriptions are already gone.
    async fn terminate(&mut self, _reason: StopReason, _ctx: &mut ChannelContext<A>) {}
}
