//! `room:{slug}`: live messages of a room.

use async_trait::async_trait;
use fawkes_channels::{Channel, ChannelContext, HandleIn, Payload, Reply};
use fawkes_domain::Domain;
use fawkes_domain::messaging::MessageBody;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{SocketIdentity, error_reply, join_refusal, parse, to_json};

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
        let outcome = match event {
            "new_msg" => match parse::<MessageBody>(payload) {
                Ok(input) => messaging
                    .post_message(actor, &self.slug, input)
                    .await
                    .map(|m| to_json(&m)),
                Err(reply) => return HandleIn::Reply(reply),
            },
            "edit_msg" => match parse::<EditMessage>(payload) {
                Ok(edit) => messaging
                    .edit_message(actor, edit.id, MessageBody { body: edit.body })
                    .await
                    .map(|m| to_json(&m)),
                Err(reply) => return HandleIn::Reply(reply),
            },
            "delete_msg" => match parse::<MessageRef>(payload) {
                Ok(target) => messaging
                    .delete_message(actor, target.id)
                    .await
                    .map(|()| json!({})),
                Err(reply) => return HandleIn::Reply(reply),
            },
            "typing" => {
                let Some(user_id) = actor.user_id() else {
                    return HandleIn::Reply(Reply::reason("unauthorized"));
                };
                let user = json!({ "id": user_id, "username": ctx.assigns().username });
                ctx.broadcast_from("typing", json!({ "user": user }));
                return HandleIn::NoReply;
            }
            _ => return HandleIn::Reply(Reply::reason("unknown_event")),
        };
        HandleIn::Reply(match outcome {
            Ok(response) => Reply::ok(response),
            Err(error) => error_reply(error),
        })
    }
}
