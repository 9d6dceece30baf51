//! A Phoenix Channels server: the protocol that the official `phoenix` JavaScript client (and
//! the Swift, Kotlin and Rust ones) speaks, over WebSocket and LongPoll.
//!
//! The crate knows nothing of the application. The app implements [`SocketHandler`] (who may
//! connect, which topics exist) and one [`Channel`] per topic pattern; the crate runs the wire
//! protocol (spec: `shared/specs/phoenix-channels.md`), the per-connection ordering and the
//! fan-out of broadcasts from the bus.

mod connection;
mod context;
mod disconnect;
mod endpoint;
mod handler;

pub mod handshake;
pub mod longpoll;
mod mailbox;
mod message;
pub mod serializer;
mod websocket;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{any, get};

pub use context::{ChannelContext, PushHandle, ReplyHandle};
pub use endpoint::{Endpoint, Stats};
pub use handler::{
    Channel, ConnectRefusal, ConnectRequest, HandleIn, HandleOut, Reply, SocketHandler, StopReason,
};
pub use message::{Message, Payload};

/// A per-socket rate limiter (`per_second`, `burst`) on the process's one clock: making a
/// clock reads the CPU's features, which is slow (a VM exit on virtual machines), and each
/// socket would otherwise make its own when it connects.
pub fn socket_rate_limiter(
    per_second: std::num::NonZeroU32,
    burst: std::num::NonZeroU32,
) -> governor::DefaultDirectRateLimiter {
    static CLOCK: std::sync::OnceLock<governor::clock::DefaultClock> = std::sync::OnceLock::new();
    let clock = CLOCK.get_or_init(governor::clock::DefaultClock::default);
    governor::RateLimiter::direct_with_clock(
        governor::Quota::per_second(per_second).allow_burst(burst),
        clock.clone(),
    )
}

/// Limits and timeouts of a socket endpoint.
#[derive(Debug, Clone)]
pub struct SocketConfig {
    /// A connection that sends nothing for this long is closed (the client heartbeats every 30 s).
    pub idle_timeout: Duration,
    /// Channels one connection may join at once.
    pub max_channels: usize,
    /// Largest accepted frame; a larger one closes the connection with 1009.
    pub max_frame_bytes: usize,
    /// Frames queued for a connection before it counts as a slow consumer and is dropped.
    pub outbound_queue: usize,
    /// Origins allowed to connect; empty allows any. A request without Origin is always allowed.
    pub allowed_origins: Vec<String>,
    /// How long a LongPoll GET waits for frames; a session without GETs for 1.5 windows ends.
    pub longpoll_window: Duration,
    /// Client events (heartbeats aside) one connection may send per second, and in a burst;
    /// 0 means no limit. Beyond it events are refused with `rate_limited`.
    pub events_per_second: u32,
    pub event_burst: u32,
    /// Refusals in a row after which the connection is closed (1008): sustained abuse.
    pub max_refused_in_a_row: u32,
}

impl Default for SocketConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            max_channels: 100,
            max_frame_bytes: 1024 * 1024,
            outbound_queue: 1024,
            allowed_origins: Vec::new(),
            longpoll_window: Duration::from_secs(10),
            events_per_second: 50,
            event_burst: 100,
            max_refused_in_a_row: 200,
        }
    }
}

/// A fresh id for one connection, carried by the span of everything it logs. Random rather than
/// counted so ids stay distinct across the nodes of a cluster; never derived from a token.
pub(crate) fn new_socket_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

pub(crate) struct SocketState<H> {
    pub endpoint: Endpoint,
    pub handler: Arc<H>,
    pub config: SocketConfig,
    pub sessions: longpoll::Sessions,
}

/// The routes of one socket mount (nest it at e.g. `/socket`): `/websocket` and `/longpoll`.
pub fn router<H: SocketHandler>(
    endpoint: Endpoint,
    handler: Arc<H>,
    config: SocketConfig,
) -> Router {
    let state = Arc::new(SocketState {
        endpoint,
        handler,
        config,
        sessions: longpoll::Sessions::default(),
    });
    Router::new()
        .route("/websocket", get(websocket::upgrade::<H>))
        .route("/longpoll", any(longpoll::handle::<H>))
        .with_state(state)
}
