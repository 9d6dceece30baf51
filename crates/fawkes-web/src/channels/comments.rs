//! `comments:{video_id}`: live comments on a video.

use async_trait::async_trait;
use fawkes_channels::{Channel, ChannelContext, HandleIn, Payload, Reply};
use std::sync::Arc;

use fawkes_domain::Domain;
use fawkes_domain::comments::CommentContent;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{SocketIdentity, join_refusal, respond};

pub(super) struct CommentsChannel {
    domain: Arc<Domain>,
    video_id: String,
}

impl CommentsChannel {
    pub(super) fn new(domain: Arc<Domain>, video_id: &str) -> Self {
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
        match event {
            "new_comment" => {
                respond(payload, |input: CommentContent| {
                    comments.add_comment(actor, &self.video_id, input)
                })
                .await
            }
            "edit_comment" => {
                respond(payload, |edit: EditComment| {
                    let content = CommentContent {
                        content: edit.content,
                    };
                    comments.edit_comment(actor, edit.id, content)
                })
                .await
            }
            "delete_comment" => {
                respond(payload, |target: CommentRef| async move {
                    comments
                        .delete_comment(actor, target.id)
                        .await
                        .map(|()| json!({}))
                })
                .await
            }
            _ => HandleIn::Reply(Reply::reason("unknown_event")),
        }
    }
}
