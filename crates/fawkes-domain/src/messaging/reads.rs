//! Read marks and unread counts.
//!
//! A user's mark in a room is the id of the newest message the room had when they last read it.
//! Message ids are UUIDv7, so the unread messages are the ones with a greater id (all of them
//! when there is no mark), not written by the user and not deleted.

use std::collections::HashMap;

use fawkes_data::entity::{message, room, room_read};
use sea_orm::ActiveValue::Set;
use sea_orm::prelude::*;
use sea_orm::sea_query::{Alias, Asterisk, Func, OnConflict, Query, SelectStatement};
use sea_orm::{Order, QueryOrder, QuerySelect};

use super::rooms::visible_rooms;
use super::{Messaging, Room, RoomUnread, policy, reads_topic};
use crate::time::now;
use crate::{Actor, DomainError};

/// Where unread counting stops in each room: enough for a badge ("99+"), and it bounds what one
/// listing reads however long a room's history is.
pub const UNREAD_CAP: u64 = 100;

/// The most rooms [`Messaging::rooms_with_unread`] lists. A side bar, not a directory: the
/// paged `list_rooms` is the way through every room.
const MAX_ROOMS: u64 = 500;

/// Rooms counted per statement. Each room is one sub-select of the statement; this keeps a
/// statement well below the backends' limits on its size and bound parameters.
const ROOMS_PER_COUNT: usize = 100;

impl Messaging {
    /// The rooms the actor can enter (those `list_rooms` shows them, at most 500) ordered by
    /// name, each with the number of messages the actor has not read, counted up to
    /// [`UNREAD_CAP`].
    ///
    /// A few statements whatever the number of rooms: the rooms, the actor's marks in them, and
    /// one count statement per hundred rooms.
    pub async fn rooms_with_unread(&self, actor: &Actor) -> Result<Vec<RoomUnread>, DomainError> {
        let user_id = policy::track_reads(actor)?;
        let db = self.db.as_ref();
        let rooms = visible_rooms(actor)
            .order_by(
                Expr::from(Func::lower(Expr::col((room::Entity, room::Column::Name)))),
                Order::Asc,
            )
            .order_by_asc(room::Column::Id)
            .limit(MAX_ROOMS)
            .all(db)
            .await?;
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let marks: HashMap<Uuid, Option<Uuid>> = room_read::Entity::find()
            .filter(room_read::Column::UserId.eq(user_id))
            .filter(room_read::Column::RoomId.is_in(rooms.iter().map(|r| r.id)))
            .all(db)
            .await?
            .into_iter()
            .map(|mark| (mark.room_id, mark.last_read_id))
            .collect();
        let mut listed = Vec::with_capacity(rooms.len());
        for batch in rooms.chunks(ROOMS_PER_COUNT) {
            let mut counts = Query::select();
            for (i, room) in batch.iter().enumerate() {
                let after = marks.get(&room.id).copied().flatten();
                let unread = unread_in(room.id, user_id, after);
                counts.expr_as(
                    Expr::SubQuery(None, Box::new(unread.into())),
                    Alias::new(format!("c{i}")),
                );
            }
            let row = db
                .query_one(&counts)
                .await?
                .ok_or_else(|| DomainError::Internal("the unread counts returned no row".into()))?;
            for (i, room) in batch.iter().enumerate() {
                let unread: i64 = row.try_get_by_index(i)?;
                listed.push(RoomUnread {
                    room: Room::from(room.clone()),
                    unread: u64::try_from(unread).unwrap_or(0),
                });
            }
        }
        Ok(listed)
    }

    /// `mark_read`: the actor has read the room `slug` up to its newest message. Broadcasts
    /// `room_read` on the actor's [`reads_topic`], so their other pages clear the count too.
    pub async fn mark_read(&self, actor: &Actor, slug: &str) -> Result<(), DomainError> {
        let user_id = policy::track_reads(actor)?;
        let room = self.enter_room(actor, slug).await?;
        let db = self.db.as_ref();
        // Deleted messages count too: everything up to the newest id has been seen.
        let newest: Option<Uuid> = message::Entity::find()
            .select_only()
            .column(message::Column::Id)
            .filter(message::Column::RoomId.eq(room.id))
            .order_by_desc(message::Column::Id)
            .limit(1)
            .into_tuple()
            .one(db)
            .await?;
        room_read::Entity::insert(room_read::ActiveModel {
            room_id: Set(room.id),
            user_id: Set(user_id),
            last_read_id: Set(newest),
            updated_at: Set(now()),
        })
        .on_conflict(
            OnConflict::columns([room_read::Column::RoomId, room_read::Column::UserId])
                .update_columns([room_read::Column::LastReadId, room_read::Column::UpdatedAt])
                .to_owned(),
        )
        // Without RETURNING and without reading the affected rows: MySQL reports 0 rows for an
        // upsert that changes nothing, which is no failure here.
        .exec_without_returning(db)
        .await?;
        self.bus.broadcast(
            &reads_topic(user_id),
            "room_read",
            serde_json::json!({ "room_id": room.id, "slug": room.slug, "last_read_id": newest }),
        );
        Ok(())
    }
}

/// `SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE … LIMIT 100)`: the unread messages of
/// one room for `user_id`, counted up to the cap. The inner `LIMIT` is what bounds the work: the
/// `(room_id, id)` index is read from the mark on and stops after the cap.
fn unread_in(room_id: Uuid, user_id: Uuid, after: Option<Uuid>) -> SelectStatement {
    let mut rows = Query::select();
    rows.expr(Expr::val(1))
        .from(message::Entity)
        .and_where(message::Column::RoomId.eq(room_id))
        .and_where(message::Column::AuthorId.ne(user_id))
        .and_where(message::Column::DeletedAt.is_null())
        .limit(UNREAD_CAP);
    if let Some(after) = after {
        rows.and_where(message::Column::Id.gt(after));
    }
    Query::select()
        .expr(Func::count(Expr::col(Asterisk)))
        .from_subquery(rows, Alias::new("unread"))
        .to_owned()
}
