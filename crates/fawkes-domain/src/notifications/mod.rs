//! Notifications: a user hears when someone mentions them (`@username`) in a room message or a
//! comment, comments on their post, or replies in a post thread they commented in.
//!
//! Notifications are made by a job, never inline: the action that causes one (`post_message`,
//! `add_comment` on a video, `add_comment` on a post) enqueues a `notify` job in its own
//! transaction ([`enqueue_notify`]), so the job exists exactly when the action committed. The
//! job ([`Notifications`] is its [`fawkes_jobs::JobHandler`]) works out who to tell, writes one
//! row per recipient per event (a unique `(user_id, event_key)`, so a job that runs twice tells
//! nobody twice) and pushes each new row as `notification` on `notification:{user_id}`.
//! Marking read pushes `notifications_read` with the new unread count there, so every open tab
//! of the user follows.

mod job;
mod mentions;
mod policy;
mod views;

use std::sync::Arc;

use fawkes_data::entity::notification;
use fawkes_pubsub::PubSub;
use sea_orm::prelude::*;
use sea_orm::sea_query::Expr;
use sea_orm::{QueryOrder, QuerySelect};
use serde_json::json;

pub(crate) use job::enqueue_notify;
pub use job::{JOB_KIND, QUEUE};
pub(crate) use mentions::may_mention;
pub use views::{
    AllRead, Notification, NotificationKind, NotificationSource, SourceKind, UnreadCount,
};

use crate::authors::{Authors, author_of};
use crate::time::now;
use crate::{Actor, Cursor, DomainError, Page, PageRequest};

/// A user's own topic: `notification` (a new [`Notification`]) and `notifications_read`
/// (`{id}` or `{all: true}`, with `unread_count`). Only that user may join it.
pub fn notification_topic(user_id: Uuid) -> String {
    format!("notification:{user_id}")
}

/// The notifications context, and the handler of `notify` jobs.
#[derive(Clone, Debug)]
pub struct Notifications {
    db: Arc<DatabaseConnection>,
    bus: PubSub,
    authors: Authors,
}

/// Where a page of the list starts: among the unread (newest first) or, once they are done,
/// among the read ones (newest first). Encoded as `u` or `r` and the last id shown, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListCursor {
    Unread(Option<Uuid>),
    Read(Option<Uuid>),
}

impl ListCursor {
    fn encode(self) -> String {
        let (tag, id) = match self {
            ListCursor::Unread(id) => ('u', id),
            ListCursor::Read(id) => ('r', id),
        };
        let mut text = tag.to_string();
        if let Some(id) = id {
            text.push_str(&Cursor(id).encode());
        }
        text
    }

    fn decode(text: Option<&str>) -> Result<Self, DomainError> {
        let Some(text) = text else {
            return Ok(ListCursor::Unread(None));
        };
        let id = |rest: &str| {
            if rest.is_empty() {
                Ok(None)
            } else {
                Cursor::decode(rest).map(|c| Some(c.0))
            }
        };
        match text.split_at_checked(1) {
            Some(("u", rest)) => Ok(ListCursor::Unread(id(rest)?)),
            Some(("r", rest)) => Ok(ListCursor::Read(id(rest)?)),
            _ => Err(DomainError::invalid(
                "cursor",
                "not a cursor returned by this API",
            )),
        }
    }
}

impl Notifications {
    pub(crate) fn new(db: Arc<DatabaseConnection>, bus: PubSub, authors: Authors) -> Self {
        Self { db, bus, authors }
    }

    /// `list_notifications`: the actor's own, unread first, each part newest first.
    pub async fn list_notifications(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<Notification>, DomainError> {
        let user_id = policy::own(actor)?;
        // The cursor is this list's own (see `ListCursor`); the limit is checked as everywhere.
        let limit = PageRequest {
            cursor: None,
            limit: page.limit,
        }
        .parse()?
        .1;
        let mut cursor = ListCursor::decode(page.cursor.as_deref())?;
        let mut rows = Vec::new();
        let mut next = None;
        if let ListCursor::Unread(after) = cursor {
            let unread = self.segment(user_id, false, after, limit + 1).await?;
            rows = unread;
            if rows.len() as u64 > limit {
                rows.truncate(limit as usize);
                next = rows.last().map(|r| ListCursor::Unread(Some(r.id)));
            } else {
                cursor = ListCursor::Read(None);
            }
        }
        if let (ListCursor::Read(after), None) = (cursor, next) {
            let room = limit - rows.len() as u64;
            let read = self.segment(user_id, true, after, room + 1).await?;
            if read.len() as u64 > room {
                // More read ones follow: from after the last shown (none shown: from the top).
                let shown = &read[..room as usize];
                next = Some(ListCursor::Read(shown.last().map(|r| r.id).or(after)));
                rows.extend(read.into_iter().take(room as usize));
            } else {
                rows.extend(read);
            }
        }
        let authors = self.authors.load(rows.iter().map(|r| r.actor_id)).await?;
        Ok(Page {
            items: rows
                .into_iter()
                .map(|row| {
                    let actor = author_of(&authors, row.actor_id);
                    Notification::new(row, actor)
                })
                .collect(),
            next_cursor: next.map(ListCursor::encode),
        })
    }

    /// `unread_notification_count`: how many of the actor's notifications are unread.
    pub async fn unread_notification_count(&self, actor: &Actor) -> Result<u64, DomainError> {
        let user_id = policy::own(actor)?;
        self.unread(user_id).await
    }

    /// `mark_notification_read`: the actor marks one of their own notifications read (another
    /// user's is `NotFound`). Marking a read one again changes nothing. Pushes
    /// `notifications_read` `{id, unread_count}` to the actor's other tabs.
    pub async fn mark_notification_read(
        &self,
        actor: &Actor,
        id: Uuid,
    ) -> Result<Notification, DomainError> {
        let user_id = policy::own(actor)?;
        let row = self.find_own(user_id, id).await?;
        if row.read_at.is_none() {
            // Conditional, so of two concurrent marks one announces it.
            let changed = notification::Entity::update_many()
                .col_expr(notification::Column::ReadAt, Expr::value(now()))
                .filter(notification::Column::Id.eq(row.id))
                .filter(notification::Column::ReadAt.is_null())
                .exec(self.db.as_ref())
                .await?;
            if changed.rows_affected > 0 {
                let unread = self.unread(user_id).await?;
                self.bus.broadcast(
                    &notification_topic(user_id),
                    "notifications_read",
                    json!({ "id": row.id, "unread_count": unread }),
                );
            }
        }
        let row = self.find_own(user_id, id).await?;
        let authors = self.authors.load([row.actor_id]).await?;
        let actor = author_of(&authors, row.actor_id);
        Ok(Notification::new(row, actor))
    }

    /// `mark_all_notifications_read`: every unread notification of the actor becomes read.
    /// Pushes `notifications_read` `{all: true, unread_count}` when any was unread.
    pub async fn mark_all_notifications_read(&self, actor: &Actor) -> Result<AllRead, DomainError> {
        let user_id = policy::own(actor)?;
        let changed = notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(now()))
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::ReadAt.is_null())
            .exec(self.db.as_ref())
            .await?;
        let unread = self.unread(user_id).await?;
        if changed.rows_affected > 0 {
            self.bus.broadcast(
                &notification_topic(user_id),
                "notifications_read",
                json!({ "all": true, "unread_count": unread }),
            );
        }
        Ok(AllRead {
            marked: changed.rows_affected,
            unread_count: unread,
        })
    }

    async fn unread(&self, user_id: Uuid) -> Result<u64, DomainError> {
        Ok(notification::Entity::find()
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::ReadAt.is_null())
            .count(self.db.as_ref())
            .await?)
    }

    async fn find_own(&self, user_id: Uuid, id: Uuid) -> Result<notification::Model, DomainError> {
        notification::Entity::find_by_id(id)
            .filter(notification::Column::UserId.eq(user_id))
            .one(self.db.as_ref())
            .await?
            .ok_or(DomainError::NotFound("notification"))
    }

    /// One part of a user's list (unread or read), newest first, after `after`.
    async fn segment(
        &self,
        user_id: Uuid,
        read: bool,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<notification::Model>, DomainError> {
        let mut query = notification::Entity::find()
            .filter(notification::Column::UserId.eq(user_id))
            .filter(if read {
                notification::Column::ReadAt.is_not_null()
            } else {
                notification::Column::ReadAt.is_null()
            })
            .order_by_desc(notification::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            query = query.filter(notification::Column::Id.lt(after));
        }
        Ok(query.all(self.db.as_ref()).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::ListCursor;
    use uuid::Uuid;

    #[test]
    fn list_cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        for cursor in [
            ListCursor::Unread(Some(id)),
            ListCursor::Read(Some(id)),
            ListCursor::Read(None),
        ] {
            let text = cursor.encode();
            assert_eq!(ListCursor::decode(Some(&text)).ok(), Some(cursor));
        }
        assert_eq!(
            ListCursor::decode(None).ok(),
            Some(ListCursor::Unread(None))
        );
        assert!(ListCursor::decode(Some("x")).is_err());
        assert!(ListCursor::decode(Some("")).is_err());
        assert!(ListCursor::decode(Some("r!!")).is_err());
        assert!(ListCursor::decode(Some("é")).is_err());
    }
}
