//! Rooms and their members.

use fawkes_data::entity::{room, room_member, user};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect, QueryTrait};

use super::{AddMember, Member, Messaging, NewRoom, Room, policy, room_topic};
use crate::authors::author_of;
use crate::page::oldest_first;
use crate::store::{begin_write, insert_row};
use crate::time::{now, to_datetime};
use crate::validation::validate;
use crate::{Actor, DomainError, Page, PageRequest};

impl Messaging {
    /// The rooms the actor can enter: every public room and the private ones they belong to.
    pub async fn list_rooms(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<Room>, DomainError> {
        policy::create_room(actor)?;
        let (cursor, limit) = page.parse()?;
        let rows = oldest_first(visible_rooms(actor), room::Column::Id, (cursor, limit))
            .all(self.db.as_ref())
            .await?;
        Ok(Page::from_rows(rows, limit, |row| row.id, Room::from))
    }

    /// `create_room`: the creator owns the room and is its first member.
    pub async fn create_room(&self, actor: &Actor, input: NewRoom) -> Result<Room, DomainError> {
        validate(&input)?;
        policy::create_room(actor)?;
        let owner = actor
            .user_id()
            .ok_or(DomainError::Forbidden("rooms need an owner"))?;
        let taken = room::Entity::find()
            .filter(room::Column::Slug.eq(input.slug.as_str()))
            .one(self.db.as_ref())
            .await?;
        if taken.is_some() {
            return Err(slug_taken());
        }
        let at = now();
        let txn = begin_write(self.db.as_ref()).await?;
        let row = room::ActiveModel {
            id: Set(Uuid::now_v7()),
            slug: Set(input.slug),
            name: Set(input.name.trim().to_owned()),
            is_private: Set(input.is_private),
            owner_id: Set(Some(owner)),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&txn)
        .await
        .map_err(|e| match DomainError::from(e) {
            DomainError::Conflict { .. } => slug_taken(),
            other => other,
        })?;
        room_member::ActiveModel {
            room_id: Set(row.id),
            user_id: Set(owner),
            joined_at: Set(at),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        let room = Room::from(row);
        if !room.is_private {
            self.bus.broadcast("rooms", "room_created", to_json(&room));
        }
        Ok(room)
    }

    /// One room by slug, if the actor can enter it.
    pub async fn get_room(&self, actor: &Actor, slug: &str) -> Result<Room, DomainError> {
        self.enter_room(actor, slug).await.map(Room::from)
    }

    /// Who is in the room now: `{user_id: {metas: [...]}}`, one meta per connection.
    pub async fn room_presence(
        &self,
        actor: &Actor,
        slug: &str,
    ) -> Result<serde_json::Value, DomainError> {
        let room = self.enter_room(actor, slug).await?;
        Ok(self.presence.list(&room_topic(&room.slug)))
    }

    /// The members of a room the actor can enter.
    pub async fn list_members(
        &self,
        actor: &Actor,
        slug: &str,
    ) -> Result<Vec<Member>, DomainError> {
        let room = self.enter_room(actor, slug).await?;
        let rows = room_member::Entity::find()
            .filter(room_member::Column::RoomId.eq(room.id))
            .order_by_asc(room_member::Column::JoinedAt)
            .all(self.db.as_ref())
            .await?;
        let authors = self.authors.load(rows.iter().map(|r| r.user_id)).await?;
        Ok(rows
            .into_iter()
            .map(|row| Member {
                user: author_of(&authors, row.user_id),
                joined_at: to_datetime(row.joined_at),
            })
            .collect())
    }

    /// `add_member`: the owner or an admin adds a user. Adding a member twice changes nothing;
    /// the flag says whether this call added them.
    pub async fn add_member(
        &self,
        actor: &Actor,
        slug: &str,
        input: AddMember,
    ) -> Result<(Member, bool), DomainError> {
        validate(&input)?;
        let room = self.enter_room(actor, slug).await?;
        policy::add_member(actor, &room)?;
        let db = self.db.as_ref();
        let user = user::Entity::find_by_id(input.user_id)
            .one(db)
            .await?
            .ok_or(DomainError::NotFound("user"))?;
        let author = crate::Author {
            id: user.id,
            username: user.username,
        };
        if let Some(existing) = self.membership(room.id, user.id).await? {
            let member = Member {
                user: author,
                joined_at: to_datetime(existing.joined_at),
            };
            return Ok((member, false));
        }
        let row = insert_row(
            db,
            room_member::ActiveModel {
                room_id: Set(room.id),
                user_id: Set(user.id),
                joined_at: Set(now()),
            },
        )
        .await?;
        let member = Member {
            user: author,
            joined_at: to_datetime(row.joined_at),
        };
        self.bus
            .broadcast(&room_topic(&room.slug), "member_added", to_json(&member));
        Ok((member, true))
    }

    /// `remove_member`: a member leaves, or the owner or an admin removes them.
    pub async fn remove_member(
        &self,
        actor: &Actor,
        slug: &str,
        user_id: Uuid,
    ) -> Result<(), DomainError> {
        let room = self.enter_room(actor, slug).await?;
        policy::remove_member(actor, &room, user_id)?;
        let removed = room_member::Entity::delete_many()
            .filter(room_member::Column::RoomId.eq(room.id))
            .filter(room_member::Column::UserId.eq(user_id))
            .exec(self.db.as_ref())
            .await?;
        if removed.rows_affected == 0 {
            return Err(DomainError::NotFound("member"));
        }
        self.bus.broadcast(
            &room_topic(&room.slug),
            "member_removed",
            serde_json::json!({ "user_id": user_id }),
        );
        Ok(())
    }

    /// The room `slug`, after checking the actor may enter it.
    pub(super) async fn enter_room(
        &self,
        actor: &Actor,
        slug: &str,
    ) -> Result<room::Model, DomainError> {
        // No slug holds U+0000 (creation checks the pattern), and PostgreSQL would fail the
        // lookup rather than find nothing.
        if slug.contains('\0') {
            return Err(DomainError::NotFound("room"));
        }
        let room = self
            .rooms
            .get_or_load(slug, || async {
                room::Entity::find()
                    .filter(room::Column::Slug.eq(slug))
                    .one(self.db.as_ref())
                    .await?
                    .ok_or(DomainError::NotFound("room"))
            })
            .await?;
        self.check_entry(actor, &room).await?;
        Ok(room)
    }

    pub(super) async fn check_entry(
        &self,
        actor: &Actor,
        room: &room::Model,
    ) -> Result<(), DomainError> {
        let is_member = match actor.user_id() {
            Some(user_id) if room.is_private => self.membership(room.id, user_id).await?.is_some(),
            _ => false,
        };
        policy::enter_room(actor, room, is_member)
    }

    async fn membership(
        &self,
        room_id: Uuid,
        user_id: Uuid,
    ) -> Result<Option<room_member::Model>, DomainError> {
        Ok(room_member::Entity::find_by_id((room_id, user_id))
            .one(self.db.as_ref())
            .await?)
    }
}

/// The rooms `actor` can enter, as a query: all of them for admins, else the public ones and the
/// private ones the actor belongs to. One definition, so every list of rooms agrees.
pub(super) fn visible_rooms(actor: &Actor) -> Select<room::Entity> {
    let query = room::Entity::find();
    if actor.is_admin() {
        return query;
    }
    let member_of = room_member::Entity::find()
        .select_only()
        .column(room_member::Column::RoomId)
        .filter(room_member::Column::UserId.eq(actor.user_id()))
        .into_query();
    query.filter(
        Condition::any()
            .add(room::Column::IsPrivate.eq(false))
            .add(room::Column::Id.in_subquery(member_of)),
    )
}

fn slug_taken() -> DomainError {
    DomainError::Conflict {
        field: "slug",
        message: "a room with this slug already exists".to_owned(),
    }
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}
