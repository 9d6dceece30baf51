use chrono::{DateTime, Utc};
use fawkes_data::entity::{message, room};
use garde::Validate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Author;
use crate::time::to_datetime;
use crate::validation::not_blank;

/// A chat room.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Room {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// Private rooms are seen only by their members (and admins).
    pub is_private: bool,
    /// `null` for rooms the system owns, such as `lobby`.
    pub owner_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<room::Model> for Room {
    fn from(row: room::Model) -> Self {
        Self {
            id: row.id,
            slug: row.slug,
            name: row.name,
            is_private: row.is_private,
            owner_id: row.owner_id,
            created_at: to_datetime(row.created_at),
            updated_at: to_datetime(row.updated_at),
        }
    }
}

/// A room the actor can enter and how many messages in it they have not read: messages by
/// others, not deleted, newer than the newest one they had when they last read the room.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RoomUnread {
    pub room: Room,
    /// At most [`UNREAD_CAP`](super::UNREAD_CAP): counting stops there, so a client shows
    /// "99+" or the like from that value on.
    pub unread: u64,
}

/// A message in a room.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: Uuid,
    pub room_id: Uuid,
    pub author: Author,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// When the author last changed the body, if ever.
    pub edited_at: Option<DateTime<Utc>>,
}

impl Message {
    pub(super) fn new(row: message::Model, author: Author) -> Self {
        Self {
            id: row.id,
            room_id: row.room_id,
            author,
            body: row.body,
            created_at: to_datetime(row.created_at),
            edited_at: row.edited_at.map(to_datetime),
        }
    }
}

/// A member of a room.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user: Author,
    pub joined_at: DateTime<Utc>,
}

/// A room to create. Its creator becomes its owner and first member.
#[derive(Debug, Clone, Deserialize, Validate, utoipa::ToSchema)]
pub struct NewRoom {
    /// Lowercase letters, digits, `_` and `-`; the room's address (`room:{slug}`).
    #[garde(length(min = 1, max = 64), pattern(r"^[a-z0-9][a-z0-9_-]*$"))]
    #[schema(min_length = 1, max_length = 64, pattern = r"^[a-z0-9][a-z0-9_-]*$")]
    #[schema(example = "rust-lovers")]
    pub slug: String,
    #[garde(
        length(chars, min = 1, max = 100),
        custom(not_blank),
        custom(crate::validation::no_nul)
    )]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    #[schema(example = "Rust lovers")]
    pub name: String,
    #[garde(skip)]
    #[serde(default)]
    pub is_private: bool,
}

/// The text of a new or edited message.
#[derive(Debug, Clone, Deserialize, Validate, utoipa::ToSchema)]
pub struct MessageBody {
    /// 1 to 4000 characters, not only white space.
    #[garde(
        length(chars, min = 1, max = 4000),
        custom(not_blank),
        custom(crate::validation::no_nul)
    )]
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    #[schema(example = "Hello, lobby!")]
    pub body: String,
}

/// A user to add to a room.
#[derive(Debug, Clone, Deserialize, Validate, utoipa::ToSchema)]
pub struct AddMember {
    #[garde(skip)]
    pub user_id: Uuid,
}
