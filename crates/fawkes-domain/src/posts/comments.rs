//! Comments on posts, with one level of replies.

use fawkes_data::entity::{post, post_comment};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use serde_json::json;

use super::{NewPostComment, PostComment, Posts, policy, post_topic, to_json};
use crate::authors::author_of;
use crate::notifications::{SourceKind, enqueue_notify, may_mention};
use crate::page::oldest_first;
use crate::store::begin_write;
use crate::time::now;
use crate::validation::validate;
use crate::{Actor, DomainError, Page, PageRequest};

impl Posts {
    /// A post's comments, oldest first, if the actor can read the post.
    pub async fn list_post_comments(
        &self,
        actor: &Actor,
        post_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<PostComment>, DomainError> {
        let (cursor, limit) = page.parse()?;
        let post = self.find_readable(actor, post_id).await?;
        let on_post = post_comment::Entity::find().filter(post_comment::Column::PostId.eq(post.id));
        let rows = oldest_first(on_post, post_comment::Column::Id, (cursor, limit))
            .all(self.db.as_ref())
            .await?;
        let authors = self.authors.load(rows.iter().map(|r| r.author_id)).await?;
        Ok(Page::from_rows(
            rows,
            limit,
            |row| row.id,
            |row| {
                let author = author_of(&authors, row.author_id);
                PostComment::new(row, author)
            },
        ))
    }

    /// `add_comment`: any signed-in user comments on a published post, optionally replying to
    /// a comment of the same post (a reply to a reply joins that thread). Stored with a
    /// `notify` job for the post's author, the thread's earlier commenters and those mentioned;
    /// broadcasts `comment_added` on the post.
    pub async fn add_comment(
        &self,
        actor: &Actor,
        post_id: Uuid,
        input: NewPostComment,
    ) -> Result<PostComment, DomainError> {
        validate(&input)?;
        let post = self.find_readable(actor, post_id).await?;
        let author_id = policy::comment(actor, &post)?;
        let parent_id = match input.parent_id {
            Some(parent_id) => Some(self.thread_of(&post, parent_id).await?),
            None => None,
        };
        let at = now();
        let id = Uuid::now_v7();
        let txn = begin_write(self.db.as_ref()).await?;
        // The post's author, the thread's earlier commenters and anyone mentioned are told by
        // a `notify` job enqueued in the same transaction (nobody to tell: no job).
        if !actor.is(post.author_id) || parent_id.is_some() || may_mention(&input.body) {
            enqueue_notify(&txn, SourceKind::PostComment, id).await?;
        }
        let row = post_comment::ActiveModel {
            id: Set(id),
            post_id: Set(post.id),
            author_id: Set(author_id),
            parent_id: Set(parent_id),
            body: Set(input.body),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        let authors = self.authors.load([row.author_id]).await?;
        let comment = PostComment::new(row, author_of(&authors, author_id));
        self.bus
            .broadcast(&post_topic(post.id), "comment_added", to_json(&comment));
        Ok(comment)
    }

    /// `delete_post_comment`: the comment's author or an admin removes it, with its replies;
    /// broadcasts `comment_deleted` on the post.
    pub async fn delete_post_comment(
        &self,
        actor: &Actor,
        comment_id: Uuid,
    ) -> Result<(), DomainError> {
        let row = post_comment::Entity::find_by_id(comment_id)
            .one(self.db.as_ref())
            .await?
            .ok_or(DomainError::NotFound("comment"))?;
        // A comment on a post the actor cannot read does not exist for them.
        self.find_readable(actor, row.post_id)
            .await
            .map_err(|e| match e {
                DomainError::NotFound(_) => DomainError::NotFound("comment"),
                other => other,
            })?;
        policy::delete_comment(actor, &row)?;
        // Replies first: not every backend runs a self-referencing cascade the same way.
        post_comment::Entity::delete_many()
            .filter(post_comment::Column::ParentId.eq(row.id))
            .exec(self.db.as_ref())
            .await?;
        post_comment::Entity::delete_by_id(row.id)
            .exec(self.db.as_ref())
            .await?;
        self.bus.broadcast(
            &post_topic(row.post_id),
            "comment_deleted",
            json!({ "id": row.id, "post_id": row.post_id }),
        );
        Ok(())
    }

    /// The thread a reply to `parent_id` belongs to: the parent's own thread, or the parent
    /// when it starts one. The parent must be a comment of `post`.
    async fn thread_of(&self, post: &post::Model, parent_id: Uuid) -> Result<Uuid, DomainError> {
        let parent = post_comment::Entity::find_by_id(parent_id)
            .one(self.db.as_ref())
            .await?
            .filter(|parent| parent.post_id == post.id)
            .ok_or_else(|| DomainError::invalid("parent_id", "not a comment of this post"))?;
        Ok(parent.parent_id.unwrap_or(parent.id))
    }
}
