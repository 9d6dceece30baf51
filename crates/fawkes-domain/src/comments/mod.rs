//! Comments on videos (system C): stored, then broadcast on `comments:{video_id}`; each
//! change also emits `comment.created|updated|deleted` to the outbound sinks in its transaction.

mod policy;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use fawkes_data::entity::comment;
use fawkes_pubsub::PubSub;
use fawkes_sync::Event;
use garde::Validate;
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use serde::{Deserialize, Serialize};

use crate::authors::{Authors, author_of};
use crate::notifications::{SourceKind, enqueue_notify, may_mention};
use crate::outbound::{MIRROR_COMMENTS, comment_data, emit};
use crate::page::newest_first;
use crate::store::begin_write;
use crate::time::{now, to_datetime};
use crate::validation::{not_blank, validate};
use crate::{Actor, Author, DomainError, Page, PageRequest};

/// A comment on a video.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Comment {
    pub id: Uuid,
    pub video_id: String,
    pub author: Author,
    pub content: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Comment {
    fn new(row: comment::Model, author: Author) -> Self {
        Self {
            id: row.id,
            video_id: row.video_id,
            author,
            content: row.content,
            created_at: to_datetime(row.created_at),
            updated_at: to_datetime(row.updated_at),
        }
    }
}

/// The text of a new or edited comment.
#[derive(Debug, Clone, Deserialize, Validate, utoipa::ToSchema)]
pub struct CommentContent {
    /// 1 to 2000 characters, not only white space.
    #[garde(
        length(chars, min = 1, max = 2000),
        custom(not_blank),
        custom(crate::validation::no_nul)
    )]
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    #[schema(example = "Great video!")]
    pub content: String,
}

/// A video id as it appears in a path or topic.
#[derive(Validate)]
struct VideoId<'a>(#[garde(length(min = 1, max = 64), pattern(r"^[A-Za-z0-9_-]+$"))] &'a str);

/// The topic of a video's live comment events (`new_comment`, `comment_updated`,
/// `comment_deleted`).
pub fn comments_topic(video_id: &str) -> String {
    format!("comments:{video_id}")
}

/// The comments context.
#[derive(Clone, Debug)]
pub struct Comments {
    db: Arc<DatabaseConnection>,
    bus: PubSub,
    sinks: fawkes_sync::Router,
    authors: Authors,
}

impl Comments {
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

    /// A video's comments, newest first.
    pub async fn list_comments(
        &self,
        actor: &Actor,
        video_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Comment>, DomainError> {
        check_video_id(video_id)?;
        let (cursor, limit) = page.parse()?;
        policy::read(actor)?;
        let on_video = comment::Entity::find().filter(comment::Column::VideoId.eq(video_id));
        let rows = newest_first(on_video, comment::Column::Id, (cursor, limit))
            .all(self.db.as_ref())
            .await?;
        let authors = self.authors.load(rows.iter().map(|r| r.author_id)).await?;
        Ok(Page::from_rows(
            rows,
            limit,
            |row| row.id,
            |row| {
                let author = author_of(&authors, row.author_id);
                Comment::new(row, author)
            },
        ))
    }

    /// Whether the actor may follow a video's comments live.
    pub fn watch(&self, actor: &Actor, video_id: &str) -> Result<(), DomainError> {
        check_video_id(video_id)?;
        policy::read(actor)
    }

    /// `add_comment`: stores the comment (with a `notify` job when it mentions `@someone`), then
    /// broadcasts `new_comment`.
    pub async fn add_comment(
        &self,
        actor: &Actor,
        video_id: &str,
        input: CommentContent,
    ) -> Result<Comment, DomainError> {
        check_video_id(video_id)?;
        validate(&input)?;
        let author_id = policy::write(actor)?;
        let at = now();
        let id = Uuid::now_v7();
        let txn = begin_write(self.db.as_ref()).await?;
        // Mentions are told by a `notify` job enqueued in the same transaction.
        if may_mention(&input.content) {
            enqueue_notify(&txn, SourceKind::Comment, id).await?;
        }
        let row = comment::ActiveModel {
            id: Set(id),
            video_id: Set(video_id.to_owned()),
            author_id: Set(author_id),
            content: Set(input.content),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await?;
        let event = Event::new("comment.created", comment_data(&row)).mirrored(MIRROR_COMMENTS);
        emit(&self.sinks, &txn, event).await?;
        txn.commit().await?;
        let comment = self.with_author(row).await?;
        self.publish(&comment.video_id, "new_comment", &comment);
        Ok(comment)
    }

    /// `edit_comment`: the author changes the content; broadcasts `comment_updated`.
    pub async fn edit_comment(
        &self,
        actor: &Actor,
        comment_id: Uuid,
        input: CommentContent,
    ) -> Result<Comment, DomainError> {
        validate(&input)?;
        let row = self.find(comment_id).await?;
        policy::edit(actor, &row)?;
        // The sinks' delivery is enqueued in the same transaction as the change.
        let txn = begin_write(self.db.as_ref()).await?;
        let updated = comment::ActiveModel {
            id: Set(row.id),
            content: Set(input.content),
            updated_at: Set(now()),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        let event = Event::new("comment.updated", comment_data(&updated)).mirrored(MIRROR_COMMENTS);
        emit(&self.sinks, &txn, event).await?;
        txn.commit().await?;
        let comment = self.with_author(updated).await?;
        self.publish(&comment.video_id, "comment_updated", &comment);
        Ok(comment)
    }

    /// `delete_comment`: the author or an admin removes a comment; broadcasts `comment_deleted`.
    pub async fn delete_comment(&self, actor: &Actor, comment_id: Uuid) -> Result<(), DomainError> {
        let row = self.find(comment_id).await?;
        policy::delete(actor, &row)?;
        let gone = serde_json::json!({ "id": row.id, "video_id": row.video_id });
        let txn = begin_write(self.db.as_ref()).await?;
        let deleted = comment::Entity::delete_by_id(row.id).exec(&txn).await?;
        if deleted.rows_affected == 0 {
            // Deleted meanwhile by someone else, who told the sinks.
            return Err(DomainError::NotFound("comment"));
        }
        let event = Event::new("comment.deleted", gone.clone()).mirrored(MIRROR_COMMENTS);
        emit(&self.sinks, &txn, event).await?;
        txn.commit().await?;
        self.publish(&row.video_id, "comment_deleted", &gone);
        Ok(())
    }

    async fn find(&self, comment_id: Uuid) -> Result<comment::Model, DomainError> {
        comment::Entity::find_by_id(comment_id)
            .one(self.db.as_ref())
            .await?
            .ok_or(DomainError::NotFound("comment"))
    }

    async fn with_author(&self, row: comment::Model) -> Result<Comment, DomainError> {
        let authors = self.authors.load([row.author_id]).await?;
        let author = author_of(&authors, row.author_id);
        Ok(Comment::new(row, author))
    }

    fn publish<T: Serialize>(&self, video_id: &str, event: &str, value: &T) {
        let payload = serde_json::to_value(value).unwrap_or_default();
        self.bus
            .broadcast(&comments_topic(video_id), event, payload);
    }
}

fn check_video_id(video_id: &str) -> Result<(), DomainError> {
    validate(&VideoId(video_id))
        .map_err(|_| DomainError::invalid("video_id", "1 to 64 letters, digits, `_` or `-`"))
}
