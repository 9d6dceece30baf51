//! One client connection, whatever its transport: frames are handled one at a time, by the
//! rules R1–R13 of the protocol (docs: ../shared/specs/phoenix-channels.md §2).

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use fawkes_pubsub::Broadcast;
use futures_util::FutureExt;
use serde_json::json;

use crate::context::ChannelContext;
use crate::endpoint::{ConnectionHandle, Endpoint};
use crate::handler::{Channel, HandleIn, HandleOut, Reply, SocketHandler, StopReason};
use crate::message::{Kind, Message, Outgoing, Payload, events};

struct Joined<A: Send + Sync + 'static> {
    join_ref: Option<String>,
    channel: Box<dyn Channel<A>>,
    ctx: ChannelContext<A>,
}

/// What the transport does after a message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    /// Close the connection with this code and reason.
    Close(u16, &'static str),
}

type EventLimiter = governor::DefaultDirectRateLimiter;

pub(crate) struct Connection<H: SocketHandler> {
    handler: Arc<H>,
    endpoint: Endpoint,
    assigns: Arc<H::Assigns>,
    handle: Arc<ConnectionHandle>,
    /// Boxed: the table keeps a few empty slots, which should cost a pointer each, not a
    /// channel each (idle memory per connection).
    channels: HashMap<String, Box<Joined<H::Assigns>>>,
    max_channels: usize,
    limiter: Option<EventLimiter>,
    refused_in_a_row: u32,
    max_refused_in_a_row: u32,
}

impl<H: SocketHandler> Connection<H> {
    pub fn new(
        handler: Arc<H>,
        endpoint: Endpoint,
        assigns: Arc<H::Assigns>,
        handle: Arc<ConnectionHandle>,
        config: &crate::SocketConfig,
    ) -> Self {
        let limiter = std::num::NonZeroU32::new(config.events_per_second).map(|rate| {
            let burst = std::num::NonZeroU32::new(config.event_burst).unwrap_or(rate);
            crate::socket_rate_limiter(rate, burst)
        });
        Self {
            handler,
            endpoint,
            assigns,
            handle,
            channels: HashMap::new(),
            max_channels: config.max_channels,
            limiter,
            refused_in_a_row: 0,
            max_refused_in_a_row: config.max_refused_in_a_row.max(1),
        }
    }

    /// Handles one client message.
    pub async fn handle(&mut self, message: Message) -> Flow {
        // R1: heartbeats are answered before any channel lookup (and are never rate limited).
        if message.topic == events::PHOENIX && message.event == events::HEARTBEAT {
            self.reply(
                None,
                message.msg_ref.as_deref(),
                &message.topic,
                &Reply::ok(Payload::empty()),
            );
            return Flow::Continue;
        }
        if self
            .limiter
            .as_ref()
            .is_some_and(|limiter| limiter.check().is_err())
        {
            self.refused_in_a_row += 1;
            let stats = self.endpoint.stats();
            if self.refused_in_a_row >= self.max_refused_in_a_row {
                stats
                    .rate_limited_disconnects
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Flow::Close(1008, "rate limited");
            }
            stats
                .rate_limited_events
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let refusal = Reply::reason("rate_limited");
            let (join_ref, msg_ref) = (message.join_ref.as_deref(), message.msg_ref.as_deref());
            self.reply(join_ref, msg_ref, &message.topic, &refusal);
            return Flow::Continue;
        }
        self.refused_in_a_row = 0;
        match message.event.as_str() {
            events::JOIN => self.join(message).await,
            events::LEAVE => self.leave(message).await,
            _ => self.event(message).await,
        }
        Flow::Continue
    }

    /// A broadcast the channel `channel_id` intercepts.
    pub async fn intercepted(&mut self, channel_id: u64, message: Arc<Broadcast>) {
        let Some(joined) = self
            .channels
            .values_mut()
            .find(|j| j.ctx.channel_id == channel_id)
        else {
            return;
        };
        let payload = match &message.payload {
            fawkes_pubsub::Payload::Json(value) => Payload::Json(value.clone()),
            fawkes_pubsub::Payload::Binary(bytes) => Payload::Binary(bytes.clone()),
        };
        let outcome = AssertUnwindSafe(joined.channel.handle_out(
            &message.event,
            payload,
            &mut joined.ctx,
        ))
        .catch_unwind()
        .await;
        match outcome {
            Ok(HandleOut::Push(payload)) => joined.ctx.push(&message.event, payload),
            Ok(HandleOut::Drop) => {}
            Err(_) => {
                let topic = joined.ctx.topic.to_string();
                self.crash(&topic).await;
            }
        }
    }

    /// Ends every channel because the connection is gone; nothing more is sent.
    pub async fn close_all(&mut self) {
        let channels: Vec<_> = self.channels.drain().map(|(_, joined)| joined).collect();
        for joined in channels {
            self.stop(joined, StopReason::Closed).await;
        }
    }

    async fn join(&mut self, message: Message) {
        let Message {
            join_ref,
            msg_ref,
            topic,
            payload,
            ..
        } = message;
        // R7: a second join on a joined topic replaces the first.
        let replaced = match self.channels.remove(&topic) {
            Some(old) => {
                let old_ref = old.join_ref.clone();
                self.stop(old, StopReason::DuplicateJoin).await;
                Some(old_ref)
            }
            None => None,
        };
        self.join_new(join_ref, msg_ref, &topic, payload).await;
        if let Some(old_ref) = replaced {
            self.control(old_ref.as_deref(), &topic, events::CLOSE, json!({}));
        }
    }

    async fn join_new(
        &mut self,
        join_ref: Option<String>,
        msg_ref: Option<String>,
        topic: &str,
        payload: Payload,
    ) {
        // R2: no route.
        let Some(mut channel) = self.handler.channel(topic) else {
            self.reply(
                None,
                msg_ref.as_deref(),
                topic,
                &Reply::reason("unmatched topic"),
            );
            return;
        };
        // R3: too many channels on this connection.
        if self.channels.len() >= self.max_channels {
            self.reply(
                join_ref.as_deref(),
                msg_ref.as_deref(),
                topic,
                &Reply::reason("too many channels joined"),
            );
            return;
        }
        let channel_id = self.endpoint.bus().next_id();
        // Subscribed before the join runs, so nothing published meanwhile is missed; held until
        // the reply has been queued, so the reply always comes first.
        self.endpoint
            .subscribe_held(topic, channel_id, self.handle.clone(), channel.intercepts());
        let mut ctx = ChannelContext {
            assigns: self.assigns.clone(),
            topic: Arc::from(topic),
            join_ref: join_ref.as_deref().map(Arc::from),
            channel_id,
            connection: self.handle.clone(),
            endpoint: self.endpoint.clone(),
            current_ref: msg_ref.clone(),
        };
        let outcome = AssertUnwindSafe(channel.join(payload, &mut ctx))
            .catch_unwind()
            .await;
        match outcome {
            // R4
            Ok(Ok(response)) => {
                self.reply(
                    join_ref.as_deref(),
                    msg_ref.as_deref(),
                    topic,
                    &Reply::ok(response),
                );
                self.endpoint.release(topic, channel_id);
                let after = AssertUnwindSafe(channel.after_join(&mut ctx))
                    .catch_unwind()
                    .await;
                self.channels.insert(
                    topic.to_owned(),
                    Box::new(Joined {
                        join_ref,
                        channel,
                        ctx,
                    }),
                );
                tracing::debug!(topic, "channel joined");
                if after.is_err() {
                    tracing::error!(topic, "channel after_join panicked");
                    self.crash(topic).await;
                }
            }
            // R5
            Ok(Err(response)) => {
                tracing::debug!(topic, "join refused");
                self.endpoint.unsubscribe(topic, channel_id);
                self.reply(
                    join_ref.as_deref(),
                    msg_ref.as_deref(),
                    topic,
                    &Reply::error(response),
                );
            }
            // R6
            Err(_) => {
                tracing::error!(topic, "channel join panicked");
                self.endpoint.unsubscribe(topic, channel_id);
                self.reply(
                    join_ref.as_deref(),
                    msg_ref.as_deref(),
                    topic,
                    &Reply::reason("join crashed"),
                );
            }
        }
    }

    async fn leave(&mut self, message: Message) {
        let topic = message.topic.as_str();
        let current = self
            .channels
            .get(topic)
            .map(|joined| joined.join_ref.clone());
        match current {
            // R8
            Some(join_ref) if message.join_ref.is_none() || message.join_ref == join_ref => {
                if let Some(joined) = self.channels.remove(topic) {
                    self.stop(joined, StopReason::Left).await;
                }
                self.reply(
                    join_ref.as_deref(),
                    message.msg_ref.as_deref(),
                    topic,
                    &Reply::ok(Payload::empty()),
                );
                self.control(join_ref.as_deref(), topic, events::CLOSE, json!({}));
            }
            // R9: a leave for an earlier join of this topic.
            Some(_) => {}
            // R12: the client already considers the channel closed; say ok.
            None => self.reply(
                message.join_ref.as_deref(),
                message.msg_ref.as_deref(),
                topic,
                &Reply::ok(Payload::empty()),
            ),
        }
    }

    async fn event(&mut self, message: Message) {
        let Message {
            join_ref,
            msg_ref,
            topic,
            event,
            payload,
        } = message;
        let Some(joined) = self.channels.get_mut(&topic) else {
            // R13
            self.reply(
                None,
                msg_ref.as_deref(),
                &topic,
                &Reply::reason("unmatched topic"),
            );
            return;
        };
        // R11: traffic for an earlier join is dropped.
        if join_ref.is_some() && join_ref != joined.join_ref {
            return;
        }
        // R10
        joined.ctx.current_ref = msg_ref.clone();
        let outcome = AssertUnwindSafe(joined.channel.handle_in(&event, payload, &mut joined.ctx))
            .catch_unwind()
            .await;
        let channel_join_ref = joined.join_ref.clone();
        match outcome {
            Ok(HandleIn::Reply(reply)) => {
                self.reply(
                    channel_join_ref.as_deref(),
                    msg_ref.as_deref(),
                    &topic,
                    &reply,
                );
            }
            Ok(HandleIn::NoReply) => {}
            Ok(HandleIn::Stop(reply)) => {
                if let Some(reply) = reply {
                    self.reply(
                        channel_join_ref.as_deref(),
                        msg_ref.as_deref(),
                        &topic,
                        &reply,
                    );
                }
                if let Some(joined) = self.channels.remove(&topic) {
                    self.stop(joined, StopReason::Normal).await;
                }
                self.control(
                    channel_join_ref.as_deref(),
                    &topic,
                    events::CLOSE,
                    json!({}),
                );
            }
            Err(_) => {
                tracing::error!(topic, event, "channel handler panicked");
                self.crash(&topic).await;
            }
        }
    }

    /// A channel callback panicked: the client gets `phx_error` and will rejoin.
    async fn crash(&mut self, topic: &str) {
        let Some(joined) = self.channels.remove(topic) else {
            return;
        };
        let join_ref = joined.join_ref.clone();
        self.endpoint.unsubscribe(topic, joined.ctx.channel_id);
        self.control(
            join_ref.as_deref(),
            topic,
            events::ERROR,
            json!({ "reason": "channel_crash" }),
        );
    }

    /// Unsubscribes a channel and lets it clean up.
    async fn stop(&mut self, mut joined: Box<Joined<H::Assigns>>, reason: StopReason) {
        self.endpoint
            .unsubscribe(&joined.ctx.topic, joined.ctx.channel_id);
        let terminated = AssertUnwindSafe(joined.channel.terminate(reason, &mut joined.ctx))
            .catch_unwind()
            .await;
        if terminated.is_err() {
            tracing::error!(topic = %joined.ctx.topic, "channel terminate panicked");
        }
    }

    fn reply(&self, join_ref: Option<&str>, msg_ref: Option<&str>, topic: &str, reply: &Reply) {
        self.handle.send_message(&Outgoing {
            kind: Kind::Reply,
            join_ref,
            msg_ref,
            topic,
            event: &reply.status,
            payload: &reply.payload,
        });
    }

    fn control(
        &self,
        join_ref: Option<&str>,
        topic: &str,
        event: &str,
        payload: serde_json::Value,
    ) {
        self.handle.send_message(&Outgoing {
            kind: Kind::Control,
            join_ref,
            msg_ref: join_ref,
            topic,
            event,
            payload: &Payload::Json(payload),
        });
    }
}
