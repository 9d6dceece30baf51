//! Messages in rooms.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use fawkes_data::entity::{message, room};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;

use super::newest::Newest;
use super::rooms::to_json;
use super::{Message, MessageBody, Messaging, policy, room_topic};
use crate::authors::author_of;
use crate::page::{MAX_LIMIT, newest_first, oldest_first};
use crate::store::update_row;
use crate::time::now;
use crate::validation::validate;
use crate::{Actor, Cursor, DomainError, Page, PageRequest};

impl Messaging {
    /// A room's messages, newest first; deleted ones are left out.
    pub async fn list_messages(
        &self,
        actor: &Actor,
        slug: &str,
        page: &PageRequest,
    ) -> Result<Page<Message>, DomainError> {
        let (cursor, limit) = page.parse()?;
        let room = self.enter_room(actor, slug).await?;
        let rows = match cursor {
            None => self.newest_messages(room.id).await?.first_rows(limit),
            Some(_) => {
                newest_first(live_in(room.id), message::Column::Id, (cursor, limit))
                    .all(self.db.as_ref())
                    .await?
            }
        };
        self.page_of(rows, limit).await
    }

    /// [`Messaging::list_messages`] as its JSON. A room's first pages are serialized once,
    /// then served as they are until the room's messages or a name in them change.
    pub async fn list_messages_json(
        &self,
        actor: &Actor,
        slug: &str,
        page: &PageRequest,
    ) -> Result<Bytes, DomainError> {
        let (cursor, limit) = page.parse()?;
        if cursor.is_some() {
            return json_bytes(&self.list_messages(actor, slug, page).await?);
        }
        let room = self.enter_room(actor, slug).await?;
        let newest = self.newest_messages(room.id).await?;
        let names_now = self.authors.names_now();
        if let Some(json) = newest.page_json(limit, names_now) {
            return Ok(json);
        }
        let json = json_bytes(&self.page_of(newest.first_rows(limit), limit).await?)?;
        newest.keep_page_json(limit, names_now, json.clone());
        Ok(json)
    }

    /// A page of `limit` from `limit + 1` rows, with their authors.
    async fn page_of(
        &self,
        rows: Vec<message::Model>,
        limit: u64,
    ) -> Result<Page<Message>, DomainError> {
        let authors = self.authors.load(rows.iter().map(|r| r.author_id)).await?;
        Ok(Page::from_rows(
            rows,
            limit,
            |row| row.id,
            |row| {
                let author = author_of(&authors, row.author_id);
                Message::new(row, author)
            },
        ))
    }

    /// The messages stored after `last_seen` (oldest first, at most `limit`), for a client that
    /// reconnects; the flag says whether more were left out.
    pub async fn messages_since(
        &self,
        actor: &Actor,
        slug: &str,
        last_seen: Uuid,
        limit: u64,
    ) -> Result<(Vec<Message>, bool), DomainError> {
        let room = self.enter_room(actor, slug).await?;
        let live = live_in(room.id);
        let rows = oldest_first(live, message::Column::Id, (Some(Cursor(last_seen)), limit))
            .all(self.db.as_ref())
            .await?;
        let authors = self.authors.load(rows.iter().map(|r| r.author_id)).await?;
        let page = Page::from_rows(
            rows,
            limit,
            |row| row.id,
            |row| {
                let author = author_of(&authors, row.author_id);
                Message::new(row, author)
            },
        );
        Ok((page.items, page.next_cursor.is_some()))
    }

    /// `post_message`: stores the message (with a `notify` job when it mentions `@someone`),
    /// then broadcasts `new_msg` to the room.
    pub async fn post_message(
        &self,
        actor: &Actor,
        slug: &str,
        input: MessageBody,
    ) -> Result<Message, DomainError> {
        validate(&input)?;
        let author_id = policy::post_message(actor)?;
        let room = self.enter_room(actor, slug).await?;
        let authors = self.authors.load([author_id]).await?;
        let row = message::Model {
            id: Uuid::now_v7(),
            room_id: room.id,
            author_id,
            body: input.body,
            created_at: now(),
            edited_at: None,
            deleted_at: None,
        };
        // Stored in the writer's next transaction, then broadcast (`writer.rs`).
        self.writer
            .post(row, room.slug, author_of(&authors, author_id))
            .await
    }

    /// `edit_message`: the author changes the body; broadcasts `msg_edited`.
    pub async fn edit_message(
        &self,
        actor: &Actor,
        message_id: Uuid,
        input: MessageBody,
    ) -> Result<Message, DomainError> {
        validate(&input)?;
        let (row, room) = self.find_message(actor, message_id).await?;
        policy::edit_message(actor, &row)?;
        let edit = message::ActiveModel {
            id: Set(row.id),
            body: Set(input.body),
            edited_at: Set(Some(now())),
            ..Default::default()
        };
        let updated = update_row(self.db.as_ref(), edit).await?;
        self.newest.invalidate(&[room.id]);
        let message = self.with_author(updated).await?;
        self.bus
            .broadcast(&room_topic(&room.slug), "msg_edited", to_json(&message));
        Ok(message)
    }

    /// `delete_message`: the author, the room owner or an admin removes a message; broadcasts
    /// `msg_deleted`.
    pub async fn delete_message(&self, actor: &Actor, message_id: Uuid) -> Result<(), DomainError> {
        let (row, room) = self.find_message(actor, message_id).await?;
        policy::delete_message(actor, &row, &room)?;
        let deletion = message::ActiveModel {
            id: Set(row.id),
            deleted_at: Set(Some(now())),
            ..Default::default()
        };
        update_row(self.db.as_ref(), deletion).await?;
        self.newest.invalidate(&[room.id]);
        self.bus.broadcast(
            &room_topic(&room.slug),
            "msg_deleted",
            serde_json::json!({ "id": row.id, "room_id": room.id }),
        );
        Ok(())
    }

    /// How many messages were posted in the last `within`, in every room (deleted ones too: they
    /// were posted); admins only.
    pub async fn recent_message_count(
        &self,
        actor: &Actor,
        within: Duration,
    ) -> Result<u64, DomainError> {
        policy::view_activity(actor)?;
        let window = i64::try_from(within.as_millis()).unwrap_or(i64::MAX);
        let since = now().saturating_sub(window);
        // `created_at` has no index, but the id does and says the same: a UUIDv7 begins with its
        // creation time, taken a moment before `created_at`. The id bound (with a second of
        // slack for that moment) lets the primary key find the window; `created_at` decides.
        let first_possible_id = v7_floor(since.saturating_sub(1_000));
        let count = message::Entity::find()
            .filter(message::Column::Id.gte(first_possible_id))
            .filter(message::Column::CreatedAt.gte(since))
            .count(self.db.as_ref())
            .await?;
        Ok(count)
    }

    /// A live message and its room, if the actor can enter the room.
    async fn find_message(
        &self,
        actor: &Actor,
        message_id: Uuid,
    ) -> Result<(message::Model, room::Model), DomainError> {
        let db = self.db.as_ref();
        let row = message::Entity::find_by_id(message_id)
            .filter(message::Column::DeletedAt.is_null())
            .one(db)
            .await?
            .ok_or(DomainError::NotFound("message"))?;
        let room = room::Entity::find_by_id(row.room_id)
            .one(db)
            .await?
            .ok_or(DomainError::NotFound("message"))?;
        self.check_entry(actor, &room).await.map_err(|e| match e {
            DomainError::NotFound(_) => DomainError::NotFound("message"),
            other => other,
        })?;
        Ok((row, room))
    }

    /// A room's newest live messages, newest first: one more than the largest page, so any first
    /// page can tell whether another follows. Cached until the room's messages change.
    async fn newest_messages(&self, room_id: Uuid) -> Result<Arc<Newest>, DomainError> {
        self.newest
            .get_or_load(&room_id, || async {
                let rows = newest_first(live_in(room_id), message::Column::Id, (None, MAX_LIMIT))
                    .all(self.db.as_ref())
                    .await?;
                Ok::<_, DomainError>(Arc::new(Newest::new(rows)))
            })
            .await
    }

    async fn with_author(&self, row: message::Model) -> Result<Message, DomainError> {
        let authors = self.authors.load([row.author_id]).await?;
        let author = author_of(&authors, row.author_id);
        Ok(Message::new(row, author))
    }
}

fn json_bytes<T: serde::Serialize>(value: &T) -> Result<Bytes, DomainError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| DomainError::Internal(format!("encoding JSON: {e}")))
}

/// A room's messages that are not deleted.
fn live_in(room_id: Uuid) -> sea_orm::Select<message::Entity> {
    message::Entity::find()
        .filter(message::Column::RoomId.eq(room_id))
        .filter(message::Column::DeletedAt.is_null())
}

/// The smallest UUIDv7 of the millisecond `ms` (Unix): its 48-bit time and zeros after. Every
/// v7 id made at or after `ms` compares greater, bytewise as all three backends compare ids.
fn v7_floor(ms: i64) -> Uuid {
    let ms = u128::try_from(ms.max(0)).unwrap_or(0) & ((1 << 48) - 1);
    Uuid::from_u128(ms << 80)
}

#[cfg(test)]
mod tests {
    use super::v7_floor;
    use uuid::Uuid;

    #[test]
    fn the_v7_floor_precedes_ids_of_its_millisecond_and_follows_older_ones() {
        let id = Uuid::now_v7();
        let ms = id
            .get_timestamp()
            .map(|t| t.to_unix())
            .map(|(s, n)| s as i64 * 1000 + i64::from(n / 1_000_000))
            .unwrap_or_default();
        assert!(v7_floor(ms) <= id);
        assert!(v7_floor(ms + 1) > id);
        assert_eq!(v7_floor(-5), Uuid::nil());
    }
}
