//! Messages in rooms.

use fawkes_data::entity::{message, room};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;

use super::rooms::to_json;
use super::{Message, MessageBody, Messaging, policy, room_topic};
use crate::authors::{author_of, load_authors};
use crate::page::{newest_first, oldest_first};
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
        let live = message::Entity::find()
            .filter(message::Column::RoomId.eq(room.id))
            .filter(message::Column::DeletedAt.is_null());
        let rows = newest_first(live, message::Column::Id, (cursor, limit))
            .all(self.db.as_ref())
            .await?;
        let authors = load_authors(self.db.as_ref(), rows.iter().map(|r| r.author_id)).await?;
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
        let live = message::Entity::find()
            .filter(message::Column::RoomId.eq(room.id))
            .filter(message::Column::DeletedAt.is_null());
        let rows = oldest_first(live, message::Column::Id, (Some(Cursor(last_seen)), limit))
            .all(self.db.as_ref())
            .await?;
        let authors = load_authors(self.db.as_ref(), rows.iter().map(|r| r.author_id)).await?;
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

    /// `post_message`: stores the message, then broadcasts `new_msg` to the room.
    pub async fn post_message(
        &self,
        actor: &Actor,
        slug: &str,
        input: MessageBody,
    ) -> Result<Message, DomainError> {
        validate(&input)?;
        let author_id = policy::post_message(actor)?;
        let room = self.enter_room(actor, slug).await?;
        let row = message::ActiveModel {
            id: Set(Uuid::now_v7()),
            room_id: Set(room.id),
            author_id: Set(author_id),
            body: Set(input.body),
            created_at: Set(now()),
            edited_at: Set(None),
            deleted_at: Set(None),
        }
        .insert(self.db.as_ref())
        .await?;
        let message = self.with_author(row).await?;
        self.bus
            .broadcast(&room_topic(&room.slug), "new_msg", to_json(&message));
        Ok(message)
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
        let updated = message::ActiveModel {
            id: Set(row.id),
            body: Set(input.body),
            edited_at: Set(Some(now())),
            ..Default::default()
        }
        .update(self.db.as_ref())
        .await?;
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
        message::ActiveModel {
            id: Set(row.id),
            deleted_at: Set(Some(now())),
            ..Default::default()
        }
        .update(self.db.as_ref())
        .await?;
        self.bus.broadcast(
            &room_topic(&room.slug),
            "msg_deleted",
            serde_json::json!({ "id": row.id, "room_id": room.id }),
        );
        Ok(())
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

    async fn with_author(&self, row: message::Model) -> Result<Message, DomainError> {
        let authors = load_authors(self.db.as_ref(), [row.author_id]).await?;
        let author = author_of(&authors, row.author_id);
        Ok(Message::new(row, author))
    }
}
