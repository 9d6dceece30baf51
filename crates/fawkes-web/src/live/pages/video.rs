//! A video's comment thread, live: comments from any client (REST, channels, pages) appear at
//! once.

use std::sync::Arc;

use async_trait::async_trait;
use fawkes_domain::comments::{Comment, CommentContent, comments_topic};
use fawkes_domain::{Author, Domain, PageRequest};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::report;
use crate::live::header::Header;
use crate::live::layout::shell;
use crate::live::session::PageSession;

#[derive(Debug, Clone, Deserialize)]
struct Shown {
    id: Uuid,
    author: Author,
    content: String,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl From<Comment> for Shown {
    fn from(c: Comment) -> Self {
        Self {
            id: c.id,
            author: c.author,
            content: c.content,
            created_at: c.created_at,
        }
    }
}

pub struct VideoView {
    domain: Arc<Domain>,
    header: Header,
    session: Option<PageSession>,
    video_id: String,
    /// Newest first.
    comments: Vec<Shown>,
    error: String,
}

impl VideoView {
    pub fn new(domain: Arc<Domain>) -> Self {
        Self {
            domain,
            header: Header::default(),
            session: None,
            video_id: String::new(),
            comments: Vec::new(),
            error: String::new(),
        }
    }
}

#[async_trait]
impl LiveView<PageSession> for VideoView {
    async fn mount(
        &mut self,
        s: &PageSession,
        params: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        self.video_id = params.text("video_id").to_owned();
        if self
            .domain
            .comments
            .watch(&s.actor, &self.video_id)
            .is_err()
        {
            return Err(Refusal::Redirect("/rooms".into()));
        }
        ctx.set_title(format!("Video {}", self.video_id));
        self.session = Some(s.clone());
        let request = PageRequest {
            cursor: None,
            limit: Some(100),
        };
        match self
            .domain
            .comments
            .list_comments(&s.actor, &self.video_id, &request)
            .await
        {
            Ok(page) => self.comments = page.items.into_iter().map(Shown::from).collect(),
            Err(error) => report(ctx, Err(error)),
        }
        if ctx.connected() {
            ctx.subscribe(comments_topic(&self.video_id));
        }
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, s: &PageSession, event: Event, ctx: &mut LiveContext) {
        let comments = &self.domain.comments;
        match event.name.as_str() {
            "comment" => {
                let input = CommentContent {
                    content: event.params.text("content").to_owned(),
                };
                match comments.add_comment(&s.actor, &self.video_id, input).await {
                    Ok(_) => {
                        self.error.clear();
                        ctx.push_event("clear-input", json!({"id": "comment-input"}));
                    }
                    Err(error) => self.error = error.to_string(),
                }
            }
            "delete" => {
                if let Some(id) = event
                    .params
                    .get("id")
                    .and_then(|id| id.parse::<Uuid>().ok())
                {
                    report(ctx, comments.delete_comment(&s.actor, id).await);
                }
            }
            _ => {}
        }
    }

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, _: &mut LiveContext) {
        if self.header.handle_info(&self.domain, s, info).await {
            return;
        }
        let fawkes_pubsub::Payload::Json(payload) = &info.payload else {
            return;
        };
        let parsed = || serde_json::from_value::<Shown>(payload.clone()).ok();
        match &*info.event {
            "new_comment" => {
                if let Some(comment) = parsed() {
                    self.comments.insert(0, comment);
                }
            }
            "comment_updated" => {
                if let Some(updated) = parsed()
                    && let Some(shown) = self.comments.iter_mut().find(|c| c.id == updated.id)
                {
                    *shown = updated;
                }
            }
            "comment_deleted" => {
                let id = payload
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse::<Uuid>().ok());
                self.comments.retain(|c| Some(c.id) != id);
            }
            _ => {}
        }
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let me = session.actor.user_id();
        let admin = session.actor.is_admin();
        let comments = List::keyed(self.comments.iter().map(|c| {
            let (id, author, content) = (c.id, c.author.username.as_str(), c.content.as_str());
            let when = c.created_at.format("%Y-%m-%d %H:%M").to_string();
            let delete = (me == Some(c.author.id) || admin).then(|| {
                html!(r#"<button class="link text-xs" phx-click="delete" phx-value-id="{id}" id="delete-comment-{id}">delete</button>"#)
            });
            (
                id,
                html!(
                    r#"<li class="py-2 border-b border-base-200" id="comment-{id}">
                      <div class="text-sm"><span class="font-semibold">{author}</span> <span class="opacity-50">{when}</span> {delete}</div>
                      <p class="whitespace-pre-wrap break-words" id="comment-body-{id}">{content}</p>
                    </li>"#
                ),
            )
        }));
        let count = self.comments.len();
        let form = match &session.user {
            Some(_) => {
                let error = self.error.as_str();
                html!(
                    r#"<form id="comment-form" phx-submit="comment" class="flex flex-col gap-2">
                      <textarea id="comment-input" name="content" class="textarea w-full" rows="2" placeholder="Add a comment (Enter posts)" phx-hook="EnterSubmit"></textarea>
                      <p class="text-error text-sm" id="comment-error">{error}</p>
                      <button class="btn btn-primary self-end" type="submit" id="comment-submit">Comment</button>
                    </form>"#
                )
            }
            None => html!(r#"<p><a class="link" href="/login">Log in</a> to comment.</p>"#),
        };
        let video_id = self.video_id.as_str();
        let content = html!(
            r#"<section class="card bg-base-100 shadow">
              <div class="card-body">
                <h1 class="card-title">Comments on video {video_id} <span class="badge" id="comment-count">{count}</span></h1>
                {form}
                <ul id="comments">{comments}</ul>
              </div>
            </section>"#
        );
        shell(session, &self.header, flash, content)
    }
}
