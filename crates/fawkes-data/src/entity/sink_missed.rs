use sea_orm::entity::prelude::*;

/// A delivery that an outbound sink (`fawkes-sync`) missed: its circuit breaker was open, it
/// failed for good, or older missed deliveries were still waiting. The reconciliation job sends
/// these in `id` order (UUIDv7: the order the events happened) and deletes each once delivered.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sink_missed")]
pub struct Model {
    /// The delivery id (`X-Fawkes-Delivery`), the same on every attempt.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The configured sink's name.
    pub sink: String,
    /// The event, e.g. `comment.created`.
    pub event: String,
    /// The delivery job's arguments, as JSON text.
    #[sea_orm(column_type = "Text")]
    pub args: String,
    /// Attempts made by reconciliation so far.
    pub attempts: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// When it was recorded (Unix milliseconds).
    pub missed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
