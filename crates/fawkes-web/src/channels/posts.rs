//! `post:{id}` (one post's live events; `add_comment` from the client) and `posts` (the feed
//! of published posts, broadcasts only).

use async_trait::async_trait;
use fawkes_channels::{Channel, ChannelContext, HandleIn, HandleOut, Payload, Reply};
use fawkes_domain::posts::{NewPostComment, Posts};
use fawkes_domain::{Domain, DomainError};
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

use super::{SocketIdentity, join_refusal, respond, to_json};

pub(super) struct PostChannel {
    domain: Arc<Domain>,
    /// `None` when the topic does not name a post id: such a join is refused.
    post_id: Option<Uuid>,
}

impl PostChannel {
    pub(super) fn new(domain: Arc<Domain>, post_id: &str) -> Self {
        Self {
            domain,
            post_id: post_id.parse().ok(),
        }
    }
}

#[async_trait]
impl Channel<SocketIdentity> for PostChannel {
    /// Joins a post the socket's actor can read (guests: published posts, where the socket
    /// admits guests); the reply carries the post.
    async fn join(
        &mut self,
        _payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> Result<Value, Value> {
        let post_id = self
            .post_id
            .ok_or_else(|| join_refusal(DomainError::NotFound("post")))?;
        let post = self
            .domain
            .posts
            .watch(&ctx.assigns().actor, post_id)
            .await
            .map_err(join_refusal)?;
        Ok(json!({ "post": to_json(&post) }))
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> HandleIn {
        let (posts, actor) = (&self.domain.posts, &ctx.assigns().actor);
        match (event, self.post_id) {
            ("add_comment", Some(post_id)) => {
                respond(payload, |input: NewPostComment| {
                    posts.add_comment(actor, post_id, input)
                })
                .await
            }
            _ => HandleIn::Reply(Reply::error(json!({
                "reason": "unknown_event",
                "message": "post:{id} accepts only add_comment; use the REST API for the rest",
            }))),
        }
    }

    /// The events that can carry a post that went back to draft.
    fn intercepts(&self) -> &'static [&'static str] {
        &["post_updated", "post_unpublished"]
    }

    /// A subscriber who may no longer read the post (an admin unpublished it) learns that it
    /// was unpublished and nothing of the draft after that.
    async fn handle_out(
        &mut self,
        event: &str,
        payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> HandleOut {
        let Payload::Json(value) = &payload else {
            return HandleOut::Drop;
        };
        match Posts::event_for(&ctx.assigns().actor, event, value) {
            Some(visible) => HandleOut::Push(Payload::Json(visible)),
            None => HandleOut::Drop,
        }
    }
}

/// `posts`: everyone may listen (guests too, where the socket admits them); only published
/// posts are ever broadcast on it.
pub(super) struct FeedChannel;

#[async_trait]
impl Channel<SocketIdentity> for FeedChannel {
    async fn join(
        &mut self,
        _payload: Payload,
        _ctx: &mut ChannelContext<SocketIdentity>,
    ) -> Result<Value, Value> {
        Ok(json!({}))
    }

    async fn handle_in(
        &mut self,
        _event: &str,
        _payload: Payload,
        _ctx: &mut ChannelContext<SocketIdentity>,
    ) -> HandleIn {
        HandleIn::Reply(Reply::error(json!({
            "reason": "read_only",
            "message": "the posts feed only broadcasts; write through the REST API",
        })))
    }
}
