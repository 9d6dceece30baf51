//! `room:{slug}`: live messages of a room.

use async_trait::async_trait;
use fawkes_channels::{Channel, ChannelContext, HandleIn, Payload, Reply};
use fawkes_domain::Domain;
use fawkes_domain::messaging::MessageBody;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{SocketIdentity, join_refusal, respond, to_json};

/// At most this many missed messages come with a rejoin; `truncated` says when there were more.
const CATCH_UP_LIMIT: u64 = 100;

pub(super) struct RoomChannel {
    domain: Domain,
    slug: String,
}

impl RoomChannel {
    pub(super) fn new(domain: Domain, slug: &str) -> Self {
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
