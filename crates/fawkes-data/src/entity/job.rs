use sea_orm::entity::prelude::*;

/// A background job (`fawkes-jobs`). Instants are Unix milliseconds.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The named queue whose workers run it.
    pub queue: String,
    /// Which handler runs it.
    pub kind: String,
    /// The handler's arguments, as JSON text.
    #[sea_orm(column_type = "Text")]
    pub args: String,
    /// `available`, `running`, `completed`, `discarded` or `cancelled`.
    pub state: String,
    /// Lower runs first.
    pub priority: i32,
    /// Attempts started so far (a claim counts one).
    pub attempt: i32,
    pub max_attempts: i32,
    /// Not run before this instant.
    pub run_at: i64,
    /// The worker holding the job while it runs.
    pub locked_by: Option<String>,
    /// The lease: past it, a running job is taken to be orphaned.
    pub locked_until: Option<i64>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    /// Set for unique jobs: one job per key until `unique_until`.
    pub unique_key: Option<String>,
    pub unique_until: Option<i64>,
    pub inserted_at: i64,
    /// When it completed, was discarded or was cancelled.
    pub completed_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
