//! Posts (system E): an author writes a draft, publishes it for everyone to read, and readers
//! comment on it. Every change is broadcast on the post's topic, and changes to published posts
//! also on the public feed topic [`FEED_TOPIC`], which never carries a draft.

mod comments;
mod policy;
mod views;

use std::sync::Arc;

use fawkes_data::entity::post;
use fawkes_pubsub::PubSub;
use fawkes_sync::Event;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{Condition, Select};
use serde_json::{Value, json};

pub use views::{NewPost, NewPostComment, Post, PostChanges, PostComment, PostFilter, PostStatus};

use crate::authors::{Authors, author_of};
use crate::outbound::emit;
use crate::page::newest_first;
use crate::store::{begin_write, insert_row, update_row};
use crate::time::{now, to_datetime};
use crate::validation::validate;
use crate::{Actor, DomainError, Page, PageRequest};

/// The feed of published posts: `post_published` (the post), `post_updated` (the post, while
/// published), `post_unpublished` and `post_deleted` (`{id}`). Open to everyone, guests too.
pub const FEED_TOPIC: &str = "posts";

/// The topic of one post's live events: `post_updated`, `post_published`, `post_unpublished`
/// (the post), `post_deleted` (`{id}`), `comment_added` (the comment) and `comment_deleted`
/// (`{id, post_id}`; its replies go with it). A draft's events carry the draft: subscribers that
/// may not read it get them through [`Posts::event_for`] only.
pub fn post_topic(post_id: Uuid) -> String {
    format!("post:{post_id}")
}

/// The posts context.
#[derive(Clone, Debug)]
pub struct Posts {
    db: Arc<DatabaseConnection>,
    bus: PubSub,
    sinks: fawkes_sync::Router,
    authors: Authors,
}

impl Posts {
    pub(crate) fn new(
        db: Arc<DatabaseConnection>,
        bus: PubSub,
        sinks: fawkes_sync::Router,
        authors: Authors,
    ) -> Self {
        Self {
            db,
            bus,
            sinks,
            authors,
        }
    }

    /// The posts the actor can read, newest first: published ones, their own drafts, and every
    /// draft for admins; optionally of one author or in one status.
    pub async fn list_posts(
        &self,
        actor: &Actor,
        filter: &PostFilter,
        page: &PageRequest,
    ) -> Result<Page<Post>, DomainError> {
        let (cursor, limit) = page.parse()?;
        let mut query = visible_posts(actor);
        if let Some(author_id) = filter.author_id {
            query = query.filter(post::Column::AuthorId.eq(author_id));
        }
        if let Some(status) = filter.status {
            query = query.filter(post::Column::Status.eq(status.as_str()));
        }
        let rows = newest_first(query, post::Column::Id, (cursor, limit))
            .all(self.db.as_ref())
            .await?;
        let authors = self.authors.load(rows.iter().map(|r| r.author_id)).await?;
        Ok(Page::from_rows(
            rows,
            limit,
            |row| row.id,
            |row| {
                let author = author_of(&authors, row.author_id);
                Post::new(row, author)
            },
        ))
    }

    /// One post, if the actor can read it (a draft is `NotFound` to all but its author and
    /// admins).
    pub async fn get_post(&self, actor: &Actor, post_id: Uuid) -> Result<Post, DomainError> {
        let row = self.find_readable(actor, post_id).await?;
        self.with_author(row).await
    }

    /// A post as its author is about to edit it: `Forbidden` to anyone else who can read it (an
    /// editor page asks before it shows the form; `update_post` checks again).
    pub async fn post_to_edit(&self, actor: &Actor, post_id: Uuid) -> Result<Post, DomainError> {
        let row = self.find_readable(actor, post_id).await?;
        policy::update(actor, &row)?;
        self.with_author(row).await
    }

    /// `create_post`: a draft by the actor.
    pub async fn create_post(&self, actor: &Actor, input: NewPost) -> Result<Post, DomainError> {
        validate(&input)?;
        let author_id = policy::create(actor)?;
        let at = now();
        let row = insert_row(
            self.db.as_ref(),
            post::ActiveModel {
                id: Set(Uuid::now_v7()),
                author_id: Set(author_id),
                title: Set(input.title.trim().to_owned()),
                body: Set(input.body),
                status: Set(PostStatus::Draft.as_str().to_owned()),
                published_at: Set(None),
                created_at: Set(at),
                updated_at: Set(at),
            },
        )
        .await?;
        // No broadcast: nobody can have joined the topic of a post that did not exist, and a
        // draft never goes on the feed.
        self.with_author(row).await
    }

    /// `update_post`: the author changes the title and/or body, of a draft or a published post
    /// (whose body cannot become empty); broadcasts `post_updated`.
    pub async fn update_post(
        &self,
        actor: &Actor,
        post_id: Uuid,
        input: PostChanges,
    ) -> Result<Post, DomainError> {
        validate(&input)?;
        let row = self.find_readable(actor, post_id).await?;
        policy::update(actor, &row)?;
        let published = PostStatus::parse(&row.status) == PostStatus::Published;
        if published && input.body.as_deref().is_some_and(|b| b.trim().is_empty()) {
            return Err(empty_body());
        }
        let mut changes = post::ActiveModel {
            id: Set(row.id),
            updated_at: Set(now()),
            ..Default::default()
        };
        if let Some(title) = input.title {
            changes.title = Set(title.trim().to_owned());
        }
        if let Some(body) = input.body {
            changes.body = Set(body);
        }
        let updated = update_row(self.db.as_ref(), changes).await?;
        let post = self.with_author(updated).await?;
        self.publish_event(&post, "post_updated");
        Ok(post)
    }

    /// `publish_post`: the author or an admin makes the post public. The body must not be
    /// empty. `published_at` is set by the first publish only; publishing a published post
    /// changes nothing. Broadcasts `post_published` on the post and the feed.
    pub async fn publish_post(&self, actor: &Actor, post_id: Uuid) -> Result<Post, DomainError> {
        let row = self.find_readable(actor, post_id).await?;
        policy::publish(actor, &row)?;
        if row.body.trim().is_empty() {
            return Err(empty_body());
        }
        let at = now();
        // Conditional on the status, so of two concurrent publishes one broadcasts (and tells
        // the sinks, in the same transaction); COALESCE keeps the first `published_at`.
        let txn = begin_write(self.db.as_ref()).await?;
        let changed = post::Entity::update_many()
            .col_expr(
                post::Column::Status,
                Expr::value(PostStatus::Published.as_str()),
            )
            .col_expr(
                post::Column::PublishedAt,
                Func::coalesce([Expr::col(post::Column::PublishedAt), Expr::value(at)]).into(),
            )
            .col_expr(post::Column::UpdatedAt, Expr::value(at))
            .filter(post::Column::Id.eq(row.id))
            .filter(post::Column::Status.eq(PostStatus::Draft.as_str()))
            .exec(&txn)
            .await?;
        if changed.rows_affected > 0 {
            let published = post::Entity::find_by_id(row.id)
                .one(&txn)
                .await?
                .ok_or(DomainError::NotFound("post"))?;
            let data = json!({
                "id": published.id,
                "author_id": published.author_id,
                "title": published.title,
                "published_at": published.published_at.map(to_datetime),
            });
            emit(&self.sinks, &txn, Event::new("post.published", data)).await?;
        }
        txn.commit().await?;
        let post = self.get_post(actor, post_id).await?;
        if changed.rows_affected > 0 {
            self.publish_event(&post, "post_published");
        }
        Ok(post)
    }

    /// `unpublish_post`: an admin takes a published post back to draft (its `published_at`
    /// stays); unpublishing a draft changes nothing. Broadcasts `post_unpublished` on the post
    /// and the feed.
    pub async fn unpublish_post(&self, actor: &Actor, post_id: Uuid) -> Result<Post, DomainError> {
        let row = self.find_readable(actor, post_id).await?;
        policy::unpublish(actor)?;
        let changed = post::Entity::update_many()
            .col_expr(
                post::Column::Status,
                Expr::value(PostStatus::Draft.as_str()),
            )
            .col_expr(post::Column::UpdatedAt, Expr::value(now()))
            .filter(post::Column::Id.eq(row.id))
            .filter(post::Column::Status.eq(PostStatus::Published.as_str()))
            .exec(self.db.as_ref())
            .await?;
        let post = self.get_post(actor, post_id).await?;
        if changed.rows_affected > 0 {
            self.bus
                .broadcast(&post_topic(post.id), "post_unpublished", to_json(&post));
            self.bus
                .broadcast(FEED_TOPIC, "post_unpublished", json!({ "id": post.id }));
        }
        Ok(post)
    }

    /// `delete_post`: the author or an admin removes a post and its comments; broadcasts
    /// `post_deleted` on the post, and on the feed if it was published.
    pub async fn delete_post(&self, actor: &Actor, post_id: Uuid) -> Result<(), DomainError> {
        let row = self.find_readable(actor, post_id).await?;
        policy::delete(actor, &row)?;
        post::Entity::delete_by_id(row.id)
            .exec(self.db.as_ref())
            .await?;
        let gone = json!({ "id": row.id });
        self.bus
            .broadcast(&post_topic(row.id), "post_deleted", gone.clone());
        if PostStatus::parse(&row.status) == PostStatus::Published {
            self.bus.broadcast(FEED_TOPIC, "post_deleted", gone);
        }
        Ok(())
    }

    /// Whether the actor may follow a post live (`post:{id}`): they can read it.
    pub async fn watch(&self, actor: &Actor, post_id: Uuid) -> Result<Post, DomainError> {
        self.get_post(actor, post_id).await
    }

    /// What a subscriber of `post:{id}` may receive of a broadcast there: the payload, or for
    /// an actor who may not read the post any more (it went back to draft) `post_unpublished`
    /// as `{id, status}` and nothing of its later draft updates. Channels and pages that stay
    /// subscribed after a post is unpublished pass every event through this.
    pub fn event_for(actor: &Actor, event: &str, payload: &Value) -> Option<Value> {
        if !matches!(
            event,
            "post_updated" | "post_unpublished" | "post_published"
        ) {
            return Some(payload.clone());
        }
        let status = match payload.get("status").and_then(Value::as_str) {
            Some("published") => PostStatus::Published,
            _ => PostStatus::Draft,
        };
        let author = payload
            .pointer("/author/id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse::<Uuid>().ok());
        let readable = author.is_some_and(|author| policy::may_read(actor, author, status));
        match (readable, event) {
            (true, _) => Some(payload.clone()),
            (false, "post_unpublished") => {
                Some(json!({ "id": payload.get("id"), "status": PostStatus::Draft }))
            }
            (false, _) => None,
        }
    }

    /// The post, if it exists and the actor can read it.
    async fn find_readable(
        &self,
        actor: &Actor,
        post_id: Uuid,
    ) -> Result<post::Model, DomainError> {
        let row = post::Entity::find_by_id(post_id)
            .one(self.db.as_ref())
            .await?
            .ok_or(DomainError::NotFound("post"))?;
        policy::read(actor, &row)?;
        Ok(row)
    }

    async fn with_author(&self, row: post::Model) -> Result<Post, DomainError> {
        let authors = self.authors.load([row.author_id]).await?;
        let author = author_of(&authors, row.author_id);
        Ok(Post::new(row, author))
    }

    /// Broadcasts `event` with the post on its topic, and on the feed if it is published.
    fn publish_event(&self, post: &Post, event: &str) {
        let payload = to_json(post);
        if post.status == PostStatus::Published {
            self.bus.broadcast(FEED_TOPIC, event, payload.clone());
        }
        self.bus.broadcast(&post_topic(post.id), event, payload);
    }
}

/// Whether `actor` may read `post`, for readers other than the acting user (who is notified of
/// a comment).
pub(crate) fn may_read(actor: &Actor, post: &post::Model) -> bool {
    policy::read(actor, post).is_ok()
}

/// The posts `actor` can read, as a query: all for admins, else the published ones and the
/// actor's own. One definition, so every list agrees with [`policy::read`].
fn visible_posts(actor: &Actor) -> Select<post::Entity> {
    let query = post::Entity::find();
    if actor.is_admin() {
        return query;
    }
    let published = post::Column::Status.eq(PostStatus::Published.as_str());
    match actor.user_id() {
        Some(me) => query.filter(
            Condition::any()
                .add(published)
                .add(post::Column::AuthorId.eq(me)),
        ),
        None => query.filter(published),
    }
}

fn empty_body() -> DomainError {
    DomainError::invalid("body", "a published post needs a body")
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_default()
}
