use sea_orm::entity::prelude::*;

/// How far a user has read in a room. Message ids are UUIDv7, so the messages after
/// `last_read_id` are the unread ones.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "room_reads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub room_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    /// The newest message of the room when the user last read it; `None` when the room had no
    /// messages then (every message since is unread).
    pub last_read_id: Option<Uuid>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
