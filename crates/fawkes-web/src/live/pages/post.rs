//! One post with its comments, live: edits, comments and replies from any client appear at
//! once; the author edits or publishes, admins unpublish, and a post that is unpublished or
//! deleted under a reader sends them back to the list.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fawkes_domain::posts::{NewPostComment, PostComment, PostStatus, Posts, post_topic};
use fawkes_domain::{Domain, DomainError, PageRequest};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::posts::{ShownAuthor, ShownPost, payload_id};
use super::report;
use crate::live::header::Header;
use crate::live::layout::shell;
use crate::live::session::PageSession;

/// How many comments the page loads.
const COMMENTS: u64 = 100;

/// A comment as the page shows it; also what `comment_added` carries.
#[derive(Debug, Clone, Deserialize)]
struct ShownComment {
    id: Uuid,
    parent_id: Option<Uuid>,
    author: ShownAuthor,
    body: String,
    created_at: DateTime<Utc>,
}

impl From<PostComment> for ShownComment {
    fn from(c: PostComment) -> Self {
        Self {
            id: c.id,
            parent_id: c.parent_id,
            author: ShownAuthor {
                id: c.author.id,
                username: c.author.username,
            },
            body: c.body,
            created_at: c.created_at,
        }
    }
}

pub struct PostView {
    domain: Arc<Domain>,
    header: Header,
    session: Option<PageSession>,
    post: Option<ShownPost>,
    /// Oldest first.
    comments: Vec<ShownComment>,
    /// The thread the comment form replies to.
    replying_to: Option<Uuid>,
    comment_error: String,
}

impl PostView {
    pub fn new(domain: Arc<Domain>) -> Self {
        Self {
            domain,
            header: Header::default(),
            session: None,
            post: None,
            comments: Vec::new(),
            replying_to: None,
            comment_error: String::new(),
        }
    }

    fn post_id(&self) -> Option<Uuid> {
        self.post.as_ref().map(|p| p.id)
    }

    async fn handle(
        &mut self,
        s: &PageSession,
        event: Event,
        ctx: &mut LiveContext,
    ) -> Result<(), DomainError> {
        let posts = &self.domain.posts;
        let Some(post_id) = self.post_id() else {
            return Ok(());
        };
        let id = || {
            event
                .params
                .get("id")
                .and_then(|id| id.parse::<Uuid>().ok())
        };
        match event.name.as_str() {
            "comment" => {
                let input = NewPostComment {
                    body: event.params.text("body").to_owned(),
                    parent_id: self.replying_to,
                };
                match posts.add_comment(&s.actor, post_id, input).await {
                    Ok(_) => {
                        self.comment_error.clear();
                        self.replying_to = None;
                        ctx.push_event("clear-input", json!({"id": "comment-input"}));
                    }
                    Err(DomainError::Validation(fields)) => {
                        self.comment_error = fields
                            .values()
                            .flatten()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ");
                    }
                    Err(other) => self.comment_error = other.to_string(),
                }
            }
            "reply" => {
                self.replying_to = id()
                    .and_then(|id| self.comments.iter().find(|c| c.id == id))
                    .map(|c| c.parent_id.unwrap_or(c.id));
                ctx.push_event("focus", json!({"id": "comment-input"}));
            }
            "cancel_reply" => self.replying_to = None,
            "delete_comment" => {
                if let Some(id) = id() {
                    posts.delete_post_comment(&s.actor, id).await?;
                }
            }
            "publish" => {
                let post = posts.publish_post(&s.actor, post_id).await?;
                self.post = Some(ShownPost::from(post));
            }
            "unpublish" => {
                let post = posts.unpublish_post(&s.actor, post_id).await?;
                self.post = Some(ShownPost::from(post));
            }
            "delete_post" => {
                posts.delete_post(&s.actor, post_id).await?;
                ctx.put_flash("info", "Post deleted.");
                ctx.push_navigate("/posts");
            }
            _ => {}
        }
        Ok(())
    }
}

#[async_trait]
impl LiveView<PageSession> for PostView {
    async fn mount(
        &mut self,
        s: &PageSession,
        params: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        let id: Uuid = params.text("id").parse().map_err(|_| Refusal::NotFound)?;
        let posts = &self.domain.posts;
        let post = match posts.get_post(&s.actor, id).await {
            Ok(post) => post,
            Err(DomainError::NotFound(_)) => return Err(Refusal::NotFound),
            Err(_) => return Err(Refusal::Redirect("/posts".into())),
        };
        ctx.set_title(post.title.clone());
        let request = PageRequest {
            cursor: None,
            limit: Some(COMMENTS),
        };
        match posts.list_post_comments(&s.actor, id, &request).await {
            Ok(page) => self.comments = page.items.into_iter().map(ShownComment::from).collect(),
            Err(error) => report(ctx, Err(error)),
        }
        self.post = Some(ShownPost::from(post));
        self.session = Some(s.clone());
        ctx.subscribe(post_topic(id));
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, s: &PageSession, event: Event, ctx: &mut LiveContext) {
        let result = self.handle(s, event, ctx).await;
        report(ctx, result);
    }

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, ctx: &mut LiveContext) {
        if self.header.handle_info(&self.domain, s, info).await {
            return;
        }
        let fawkes_pubsub::Payload::Json(payload) = &info.payload else {
            return;
        };
        // What this reader may see of it: nothing of a post that went back to draft unless
        // they are its author or an admin.
        let Some(payload) = Posts::event_for(&s.actor, &info.event, payload) else {
            return;
        };
        match &*info.event {
            "post_updated" | "post_published" | "post_unpublished" => {
                match serde_json::from_value::<ShownPost>(payload.clone()) {
                    Ok(post) => self.post = Some(post),
                    Err(_) => {
                        ctx.put_flash("info", "This post was unpublished.");
                        ctx.push_navigate("/posts");
                    }
                }
            }
            "post_deleted" => {
                ctx.put_flash("info", "This post was deleted.");
                ctx.push_navigate("/posts");
            }
            "comment_added" => {
                if let Ok(comment) = serde_json::from_value::<ShownComment>(payload)
                    && !self.comments.iter().any(|c| c.id == comment.id)
                {
                    self.comments.push(comment);
                }
            }
            "comment_deleted" => {
                let id = payload_id(&payload);
                self.comments
                    .retain(|c| Some(c.id) != id && (c.parent_id.is_none() || c.parent_id != id));
                if self.replying_to.is_some() && self.replying_to == id {
                    self.replying_to = None;
                }
            }
            _ => {}
        }
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let (Some(session), Some(post)) = (&self.session, &self.post) else {
            return Rendered::empty();
        };
        let me = session.actor.user_id();
        let admin = session.actor.is_admin();
        let mine = me == Some(post.author.id);
        let published = post.status == PostStatus::Published;
        let (id, title, body, author) = (
            post.id,
            post.title.as_str(),
            post.body.as_str(),
            post.author.username.as_str(),
        );
        let status = post.status.as_str();
        let when = post
            .published_at
            .unwrap_or(post.updated_at)
            .format("%Y-%m-%d %H:%M")
            .to_string();
        let edit = mine.then(|| {
            html!(r#"<a href="/posts/{id}/edit" data-phx-link="redirect" data-phx-link-state="push" class="btn btn-sm" id="edit-post">Edit</a>"#)
        });
        let publish = ((mine || admin) && !published).then(|| {
            html!(r#"<button class="btn btn-sm btn-primary" phx-click="publish" id="publish-post">Publish</button>"#)
        });
        let unpublish = (admin && published).then(|| {
            html!(r#"<button class="btn btn-sm btn-warning" phx-click="unpublish" id="unpublish-post" data-confirm="Take this post back to draft?">Unpublish</button>"#)
        });
        let delete = (mine || admin).then(|| {
            html!(r#"<button class="btn btn-sm btn-error btn-outline" phx-click="delete_post" id="delete-post" data-confirm="Delete this post and its comments?">Delete</button>"#)
        });
        let comments = List::keyed(
            threaded(&self.comments)
                .into_iter()
                .map(|c| (c.id, self.comment(c, me, admin, published))),
        );
        let count = self.comments.len();
        let form = self.comment_form(session, published);
        let content = html!(
            r#"<article class="card bg-base-100 shadow">
              <div class="card-body">
                <div class="flex flex-wrap items-center gap-2">
                  <h1 class="card-title text-2xl flex-1" id="post-title">{title}</h1>
                  <span class="badge badge-outline" id="post-status">{status}</span>
                </div>
                <div class="text-sm opacity-60" id="post-meta">{author} · {when}</div>
                <div class="whitespace-pre-wrap break-words" id="post-body">{body}</div>
                <div class="card-actions justify-end">{edit}{publish}{unpublish}{delete}</div>
              </div>
            </article>
            <section class="card bg-base-100 shadow">
              <div class="card-body">
                <h2 class="card-title text-base">Comments <span class="badge" id="comment-count">{count}</span></h2>
                <ul id="comments" class="flex flex-col">{comments}</ul>
                {form}
              </div>
            </section>"#
        );
        shell(session, &self.header, flash, content)
    }
}

impl PostView {
    fn comment(
        &self,
        c: &ShownComment,
        me: Option<Uuid>,
        admin: bool,
        published: bool,
    ) -> Rendered {
        let (id, author, body) = (c.id, c.author.username.as_str(), c.body.as_str());
        let when = c.created_at.format("%Y-%m-%d %H:%M").to_string();
        let ts = c.created_at.timestamp_millis();
        let indent = if c.parent_id.is_some() {
            "ml-6 sm:ml-10 border-l-2 border-base-300 pl-3"
        } else {
            ""
        };
        let reply = (published && me.is_some()).then(|| {
            html!(r#"<button class="link text-xs" phx-click="reply" phx-value-id="{id}" id="reply-{id}">reply</button>"#)
        });
        let delete = (me == Some(c.author.id) || admin).then(|| {
            html!(r#"<button class="link text-xs" phx-click="delete_comment" phx-value-id="{id}" id="delete-comment-{id}" data-confirm="Delete this comment?">delete</button>"#)
        });
        html!(
            r#"<li class="py-2 {indent}" id="comment-{id}">
              <div class="text-sm"><span class="font-semibold">{author}</span> <time class="opacity-50" phx-hook="LocalTime" id="comment-time-{id}" data-ts="{ts}">{when}</time> {reply} {delete}</div>
              <p class="whitespace-pre-wrap break-words" id="comment-body-{id}">{body}</p>
            </li>"#
        )
    }

    fn comment_form(&self, session: &PageSession, published: bool) -> Rendered {
        if !published {
            return html!(
                r#"<p class="opacity-60" id="comments-closed">Comments open once the post is published.</p>"#
            );
        }
        if session.user.is_none() {
            return html!(
                r#"<p><a class="link" href="/login" id="login-to-comment">Log in</a> to comment.</p>"#
            );
        }
        let replying = self.replying_to.and_then(|thread| {
            self.comments.iter().find(|c| c.id == thread).map(|c| {
                let name = c.author.username.as_str();
                html!(
                    r#"<div class="text-sm" id="replying-to">Replying to {name} · <button type="button" class="link" phx-click="cancel_reply" id="cancel-reply">cancel</button></div>"#
                )
            })
        });
        let error = self.comment_error.as_str();
        html!(
            r#"<form id="comment-form" phx-submit="comment" class="flex flex-col gap-2">
              {replying}
              <textarea id="comment-input" name="body" class="textarea w-full" rows="2" placeholder="Add a comment (Enter posts)" phx-hook="EnterSubmit"></textarea>
              <p class="text-error text-sm" id="comment-error">{error}</p>
              <button class="btn btn-primary self-end" type="submit" id="comment-submit">Comment</button>
            </form>"#
        )
    }
}

/// Comments in thread order: each thread's first comment, then its replies, oldest first.
fn threaded(comments: &[ShownComment]) -> Vec<&ShownComment> {
    let mut ordered = Vec::with_capacity(comments.len());
    for root in comments.iter().filter(|c| c.parent_id.is_none()) {
        ordered.push(root);
        ordered.extend(comments.iter().filter(|c| c.parent_id == Some(root.id)));
    }
    ordered
}
