//! `room:{slug}`: live messages of a room.

use async_trait::async_trait;
use fawkes_channels::{Channel, ChannelContext, HandleIn, Payload, Reply, StopReason};
use std::sync::Arc;

use fawkes_domain::Domain;
use fawkes_domain::messaging::MessageBody;
use fawkes_presence::STATE_EVENT as PRESENCE_STATE;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{SocketIdentity, join_refusal, parse, respond, to_json};

/// At most this many missed messages come with a rejoin; `truncated` says when there were more.
const CATCH_UP_LIMIT: u64 = 100;

pub(super) struct RoomChannel {
    domain: Arc<Domain>,
    slug: String,
}

impl RoomChannel {
    pub(super) fn new(domain: Arc<Domain>, slug: &str) -> Self {
        Self {
            domain,
            slug: slug.to_owned(),
        }
    }
}

#[derive(Deserialize, Default)]
struct JoinParams {
    /// The newest message the client has; the join reply carries what came after it.
    last_seen_id: Option<Uuid>,
}

#[derive(Deserialize)]
struct EditMessage {
    id: Uuid,
    body: String,
}

#[derive(Deserialize)]
struct PresenceUpdate {
    /// What others see next to the user: `online`, `away`, `busy`, …
    status: String,
}

#[derive(Deserialize)]
struct MessageRef {
    id: Uuid,
}

#[async_trait]
impl Channel<SocketIdentity> for RoomChannel {
    async fn join(
        &mut self,
        payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> Result<Value, Value> {
        let params: JoinParams = match payload {
            Payload::Json(Value::Object(map)) if !map.is_empty() => serde_json::from_value(Value::Object(map))
                .map_err(|e| json!({ "reason": "validation_failed", "details": { "last_seen_id": [e.to_string()] } }))?,
            _ => JoinParams::default(),
        };
        let messaging = &self.domain.messaging;
        let actor = &ctx.assigns().actor;
        let room = messaging
            .get_room(actor, &self.slug)
            .await
            .map_err(join_refusal)?;
        let mut reply = json!({ "room": to_json(&room) });
        if let Some(last_seen) = params.last_seen_id {
            let (messages, truncated) = messaging
                .messages_since(actor, &self.slug, last_seen, CATCH_UP_LIMIT)
                .await
                .map_err(join_refusal)?;
            reply["messages"] = to_json(&messages);
            reply["truncated"] = json!(truncated);
        }
        Ok(reply)
    }

    /// Tracks this connection in the room's presence, then sends the whole presence state:
    /// after every join and rejoin, as phoenix.js's `Presence` needs.
    async fn after_join(&mut self, ctx: &mut ChannelContext<SocketIdentity>) {
        let presence = &self.domain.presence;
        if let Some(identity) = ctx.assigns().actor.identity() {
            let meta = json!({
                "online_at": chrono::Utc::now().timestamp().to_string(),
                "username": ctx.assigns().username,
                "device_id": identity.device_id,
                "status": "online",
            });
            if let Value::Object(meta) = meta {
                presence.track(ctx.id(), ctx.topic(), &identity.user_id.to_string(), meta);
            }
        }
        ctx.push(PRESENCE_STATE, presence.list(ctx.topic()));
    }

    async fn terminate(&mut self, _reason: StopReason, ctx: &mut ChannelContext<SocketIdentity>) {
        self.domain.presence.untrack(ctx.id(), ctx.topic());
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> HandleIn {
        let messaging = &self.domain.messaging;
        let actor = &ctx.assigns().actor;
        match event {
            "new_msg" => {
                respond(payload, |input: MessageBody| {
                    messaging.post_message(actor, &self.slug, input)
                })
                .await
            }
            "edit_msg" => {
                respond(payload, |edit: EditMessage| {
                    messaging.edit_message(actor, edit.id, MessageBody { body: edit.body })
                })
                .await
            }
            "delete_msg" => {
                respond(payload, |target: MessageRef| async move {
                    messaging
                        .delete_message(actor, target.id)
                        .await
                        .map(|()| json!({}))
                })
                .await
            }
            "presence_update" => {
                let Some(user_id) = actor.user_id() else {
                    return HandleIn::Reply(Reply::reason("unauthorized"));
                };
                // Every update is a diff to every member of the room: limited per socket.
                if !ctx.assigns().may_update_presence() {
                    return HandleIn::Reply(Reply::reason("rate_limited"));
                }
                let update = match parse::<PresenceUpdate>(payload) {
                    Ok(update) if (1..=32).contains(&update.status.chars().count()) => update,
                    Ok(_) => {
                        let details = json!({ "status": ["1 to 32 characters"] });
                        return HandleIn::Reply(Reply::error(
                            json!({ "reason": "validation_failed", "details": details }),
                        ));
                    }
                    Err(reply) => return HandleIn::Reply(reply),
                };
                let mut changes = serde_json::Map::new();
                changes.insert("status".to_owned(), Value::String(update.status));
                self.domain
                    .presence
                    .update(ctx.id(), ctx.topic(), &user_id.to_string(), changes);
                HandleIn::Reply(Reply::ok(json!({})))
            }
            "typing" => {
                let Some(user_id) = actor.user_id() else {
                    return HandleIn::Reply(Reply::reason("unauthorized"));
                };
                let user = json!({ "id": user_id, "username": ctx.assigns().username });
                ctx.broadcast_from("typing", json!({ "user": user }));
                HandleIn::NoReply
            }
            _ => HandleIn::Reply(Reply::reason("unknown_event")),
        }
    }
}
