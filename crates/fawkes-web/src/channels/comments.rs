//! `comments:{video_id}`: live comments on a video.

use async_trait::async_trait;
use fawkes_channels::{Channel, ChannelContext, HandleIn, Payload, Reply};
use fawkes_domain::Domain;
use fawkes_domain::comments::CommentContent;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{SocketIdentity, error_reply, join_refusal, parse, to_json};

pub(super) struct CommentsChannel {
    domain: Domain,
    video_id: String,
}

impl CommentsChannel {
    pub(super) fn new(domain: Domain, video_id: &str) -> Self {
        Self {
            domain,
            video_id: video_id.to_owned(),
        }
    }
}

#[derive(Deserialize)]
struct EditComment {
    id: Uuid,
    content: String,
}

#[derive(Deserialize)]
struct CommentRef {
    id: Uuid,
}

#[async_trait]
impl Channel<SocketIdentity> for CommentsChannel {
    async fn join(
        &mut self,
        _payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> Result<Value, Value> {
        self.domain
            .comments
            .watch(&ctx.assigns().actor, &self.video_id)
            .map_err(join_refusal)?;
        Ok(json!({}))
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> HandleIn {
        let comments = &self.domain.comments;
        let actor = &ctx.assigns().actor;
        let outcome = match event {
            "new_comment" => match parse::<CommentContent>(payload) {
                Ok(input) => comments
                    .add_comment(actor, &self.video_id, input)
                    .await
                    .map(|c| to_json(&c)),
                Err(reply) => return HandleIn::Reply(reply),
            },
            "edit_comment" => match parse::<EditComment>(payload) {
                Ok(edit) => comments
                    .edit_comment(
                        actor,
                        edit.id,
                        CommentContent {
                            content: edit.content,
                        },
                    )
                    .await
                    .map(|c| to_json(&c)),
                Err(reply) => return HandleIn::Reply(reply),
            },
            "delete_comment" => match parse::<CommentRef>(payload) {
                Ok(target) => comments
                    .delete_comment(actor, target.id)
                    .await
                    .map(|()| json!({})),
                Err(reply) => return HandleIn::Reply(reply),
            },
            _ => return HandleIn::Reply(Reply::reason("unknown_event")),
        };
        HandleIn::Reply(match outcome {
            Ok(response) => Reply::ok(response),
            Err(error) => error_reply(error),
        })
    }
}
