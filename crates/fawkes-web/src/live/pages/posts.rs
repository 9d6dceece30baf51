//! The posts: the published feed, live (a post published anywhere appears at the top, an
//! unpublished or deleted one goes), and the signed-in user's own drafts.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fawkes_domain::posts::{FEED_TOPIC, Post, PostFilter, PostStatus};
use fawkes_domain::{Domain, DomainError, PageRequest};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::report;
use crate::live::header::Header;
use crate::live::layout::shell;
use crate::live::session::PageSession;

/// How many posts a list shows.
const SHOWN: u64 = 50;
/// How much of a body the feed shows.
const EXCERPT_CHARS: usize = 240;

/// A post as the pages show it; also what the post broadcasts carry.
#[derive(Debug, Clone, Deserialize)]
pub struct ShownPost {
    pub id: Uuid,
    pub author: ShownAuthor,
    pub title: String,
    pub body: String,
    pub status: PostStatus,
    pub published_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShownAuthor {
    pub id: Uuid,
    pub username: String,
}

impl From<Post> for ShownPost {
    fn from(p: Post) -> Self {
        Self {
            id: p.id,
            author: ShownAuthor {
                id: p.author.id,
                username: p.author.username,
            },
            title: p.title,
            body: p.body,
            status: p.status,
            published_at: p.published_at,
            updated_at: p.updated_at,
        }
    }
}

/// The `id` of a broadcast payload.
pub fn payload_id(payload: &Value) -> Option<Uuid> {
    payload
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| id.parse().ok())
}

pub struct PostsView {
    domain: Arc<Domain>,
    header: Header,
    session: Option<PageSession>,
    /// Published, newest first.
    posts: Vec<ShownPost>,
    /// The user's own drafts, newest first.
    drafts: Vec<ShownPost>,
}

impl PostsView {
    pub fn new(domain: Arc<Domain>) -> Self {
        Self {
            domain,
            header: Header::default(),
            session: None,
            posts: Vec::new(),
            drafts: Vec::new(),
        }
    }

    async fn list(
        &self,
        s: &PageSession,
        filter: PostFilter,
    ) -> Result<Vec<ShownPost>, DomainError> {
        let request = PageRequest {
            cursor: None,
            limit: Some(SHOWN),
        };
        let page = self
            .domain
            .posts
            .list_posts(&s.actor, &filter, &request)
            .await?;
        Ok(page.items.into_iter().map(ShownPost::from).collect())
    }

    async fn load_drafts(&mut self, s: &PageSession) -> Result<(), DomainError> {
        self.drafts = match s.actor.user_id() {
            Some(me) => {
                let mine = PostFilter {
                    author_id: Some(me),
                    status: Some(PostStatus::Draft),
                };
                self.list(s, mine).await?
            }
            None => Vec::new(),
        };
        Ok(())
    }

    async fn load(&mut self, s: &PageSession) -> Result<(), DomainError> {
        let published = PostFilter {
            author_id: None,
            status: Some(PostStatus::Published),
        };
        self.posts = self.list(s, published).await?;
        self.load_drafts(s).await
    }
}

#[async_trait]
impl LiveView<PageSession> for PostsView {
    async fn mount(
        &mut self,
        s: &PageSession,
        _: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        ctx.set_title("Posts");
        self.session = Some(s.clone());
        let loaded = self.load(s).await;
        report(ctx, loaded);
        ctx.subscribe(FEED_TOPIC);
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, _: &PageSession, _: Event, _: &mut LiveContext) {}

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, ctx: &mut LiveContext) {
        if self.header.handle_info(&self.domain, s, info).await {
            return;
        }
        let fawkes_pubsub::Payload::Json(payload) = &info.payload else {
            return;
        };
        let id = payload_id(payload);
        match &*info.event {
            "post_published" => {
                if let Ok(post) = serde_json::from_value::<ShownPost>(payload.clone()) {
                    self.posts.retain(|p| p.id != post.id);
                    self.drafts.retain(|p| p.id != post.id);
                    self.posts.insert(0, post);
                }
            }
            "post_updated" => {
                if let Ok(post) = serde_json::from_value::<ShownPost>(payload.clone())
                    && let Some(shown) = self.posts.iter_mut().find(|p| p.id == post.id)
                {
                    *shown = post;
                }
            }
            "post_unpublished" => {
                let mine = self
                    .posts
                    .iter()
                    .any(|p| Some(p.id) == id && s.actor.is(p.author.id));
                self.posts.retain(|p| Some(p.id) != id);
                if mine {
                    // Back among the author's drafts.
                    let loaded = self.load_drafts(s).await;
                    report(ctx, loaded);
                }
            }
            "post_deleted" => self.posts.retain(|p| Some(p.id) != id),
            _ => {}
        }
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let posts = List::keyed(self.posts.iter().map(|p| (p.id, feed_item(p))));
        let count = self.posts.len();
        let empty = self
            .posts
            .is_empty()
            .then(|| html!(r#"<p class="opacity-60" id="no-posts">Nothing published yet.</p>"#));
        let aside = session.user.as_ref().map(|_| {
            let drafts = List::keyed(self.drafts.iter().map(|d| {
                let (id, title) = (d.id, d.title.as_str());
                (
                    id,
                    html!(r#"<li><a href="/posts/{id}/edit" data-phx-link="redirect" data-phx-link-state="push" id="draft-{id}">{title}</a></li>"#),
                )
            }));
            let draft_count = self.drafts.len();
            html!(
                r#"<aside class="card bg-base-100 shadow">
                  <div class="card-body">
                    <a href="/posts/new" data-phx-link="redirect" data-phx-link-state="push" class="btn btn-primary" id="new-post">New post</a>
                    <h2 class="card-title text-base mt-2">My drafts <span class="badge" id="draft-count">{draft_count}</span></h2>
                    <ul class="menu w-full px-0" id="drafts">{drafts}</ul>
                  </div>
                </aside>"#
            )
        });
        let content = html!(
            r#"<div class="grid gap-4 md:grid-cols-3">
              <section class="card bg-base-100 shadow md:col-span-2">
                <div class="card-body">
                  <h1 class="card-title">Posts <span class="badge" id="post-count">{count}</span></h1>
                  {empty}
                  <ul class="flex flex-col divide-y divide-base-200" id="posts">{posts}</ul>
                </div>
              </section>
              {aside}
            </div>"#
        );
        shell(session, &self.header, flash, content)
    }
}

fn feed_item(post: &ShownPost) -> Rendered {
    let (id, title, author) = (post.id, post.title.as_str(), post.author.username.as_str());
    let when = post
        .published_at
        .map(|at| at.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let mut excerpt: String = post.body.chars().take(EXCERPT_CHARS).collect();
    if post.body.chars().nth(EXCERPT_CHARS).is_some() {
        excerpt.push('…');
    }
    html!(
        r#"<li class="py-3" id="post-{id}">
          <a href="/posts/{id}" data-phx-link="redirect" data-phx-link-state="push" class="link link-hover text-lg font-semibold" id="post-link-{id}">{title}</a>
          <div class="text-sm opacity-60">{author} · {when}</div>
          <p class="whitespace-pre-wrap break-words line-clamp-3">{excerpt}</p>
        </li>"#
    )
}
