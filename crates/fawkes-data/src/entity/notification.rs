use sea_orm::entity::prelude::*;

/// A notification for one user about one event. Ids are UUIDv7 of the event's instant, so
/// ordering by id is ordering by when the events happened. `(user_id, event_key)` is unique.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The recipient.
    pub user_id: Uuid,
    /// `mention`, `post_comment` or `thread_reply`.
    pub kind: String,
    /// Who caused it (the author of the source).
    pub actor_id: Uuid,
    /// `message`, `comment` (on a video) or `post_comment`.
    pub source_kind: String,
    pub source_id: Uuid,
    /// Where the source is: the room of a message, the post of a post comment, the video of a
    /// comment.
    pub room_slug: Option<String>,
    pub post_id: Option<Uuid>,
    pub video_id: Option<String>,
    /// The start of the source's text (at most 200 characters).
    #[sea_orm(column_type = "Text")]
    pub preview: String,
    /// Names the event, e.g. `message:{id}`.
    pub event_key: String,
    pub read_at: Option<i64>,
    /// When the event happened.
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
