//! Putting a job on a queue.

use std::time::Duration;

use fawkes_data::entity::job;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::{Error, State, millis, now_ms};

/// The queue a job goes to unless told otherwise.
pub const DEFAULT_QUEUE: &str = "default";
/// Attempts a job gets unless told otherwise.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 20;

/// A job to enqueue. `NewJob::new(kind, args)` then the builder methods for the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// The named queue (1 to 64 characters); `default` unless set.
    pub queue: String,
    /// The handler kind (1 to 128 characters).
    pub kind: String,
    /// The handler's arguments.
    pub args: serde_json::Value,
    /// Not before this instant (Unix milliseconds); `None` is now.
    pub run_at: Option<i64>,
    /// Lower runs first; 0 unless set.
    pub priority: i32,
    /// Attempts before the job is discarded (at least 1).
    pub max_attempts: i32,
    /// `(key, window)`: while a job with this key was enqueued less than `window` ago, another
    /// with the same key is not enqueued, whatever the first one's state (see [`enqueue`]).
    pub unique: Option<(String, Duration)>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, args: serde_json::Value) -> Self {
        Self {
            queue: DEFAULT_QUEUE.to_owned(),
            kind: kind.into(),
            args,
            run_at: None,
            priority: 0,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            unique: None,
        }
    }

    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn max_attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    /// Not before `at` (Unix milliseconds).
    pub fn run_at(mut self, at: i64) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Not before `delay` from now.
    pub fn delay(self, delay: Duration) -> Self {
        self.run_at(now_ms().saturating_add(millis(delay)))
    }

    /// At most one job with `key` per `window` (see [`enqueue`]).
    pub fn unique(mut self, key: impl Into<String>, window: Duration) -> Self {
        self.unique = Some((key.into(), window));
        self
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let length = |field: &str, value: &str, max: usize| {
            let chars = value.chars().count();
            if chars == 0 || chars > max {
                return Err(Error::Invalid(format!(
                    "{field} must have 1 to {max} characters"
                )));
            }
            Ok(())
        };
        length("queue", &self.queue, 64)?;
        length("kind", &self.kind, 128)?;
        if let Some((key, _)) = &self.unique {
            length("unique key", key, 255)?;
        }
        if self.max_attempts < 1 {
            return Err(Error::Invalid("max_attempts must be at least 1".into()));
        }
        Ok(())
    }
}

/// Enqueues `job` through `conn` (a pool or a transaction) and returns its id, or `None` when
/// it is unique and its key is taken.
///
/// Called with the transaction of the action that causes the job, the job exists if and only
/// if that transaction commits. On SQLite, give it a transaction that writes from the start
/// (`BEGIN IMMEDIATE`, the domain's `begin_write`): a deferred one that reads before it writes
/// fails with "database is locked" when another writer got in between.
///
/// **Unique jobs.** A job enqueued with `unique: (key, window)` holds `key` for `window` from
/// its enqueueing, whether it is waiting, running, completed, discarded or cancelled. While the
/// key is held, enqueueing the same key does nothing and answers `None`. Once the window has
/// passed, the next enqueue of that key releases it from the old job and enqueues anew. The
/// key is a unique index, so of two concurrent enqueues exactly one wins (the other waits for
/// the winner's transaction and then finds the key taken; if the winner rolls back, it wins).
pub async fn enqueue<C: ConnectionTrait>(conn: &C, job: NewJob) -> Result<Option<Uuid>, Error> {
    job.check()?;
    let now = now_ms();
    let args = serde_json::to_string(&job.args).map_err(|e| Error::Invalid(e.to_string()))?;
    let (unique_key, unique_until) = match &job.unique {
        Some((key, window)) => {
            // A plain read takes no lock (a locking read of a missing key would take a gap lock
            // on MySQL, where two such enqueuers then deadlock on their inserts).
            let holder: Option<Option<i64>> = job::Entity::find()
                .select_only()
                .column(job::Column::UniqueUntil)
                .filter(job::Column::UniqueKey.eq(key.as_str()))
                .into_tuple()
                .one(conn)
                .await?;
            match holder {
                Some(Some(until)) if until > now => return Ok(None),
                Some(_) => {
                    job::Entity::update_many()
                        .col_expr(
                            job::Column::UniqueKey,
                            sea_orm::sea_query::Expr::value(Option::<String>::None),
                        )
                        .filter(job::Column::UniqueKey.eq(key.as_str()))
                        .filter(
                            job::Column::UniqueUntil
                                .lte(now)
                                .or(job::Column::UniqueUntil.is_null()),
                        )
                        .exec(conn)
                        .await?;
                }
                None => {}
            }
            (Some(key.clone()), Some(now.saturating_add(millis(*window))))
        }
        None => (None, None),
    };
    let id = Uuid::now_v7();
    let unique = unique_key.is_some();
    let row = job::ActiveModel {
        id: Set(id),
        queue: Set(job.queue),
        kind: Set(job.kind),
        args: Set(args),
        state: Set(State::Available.as_str().to_owned()),
        priority: Set(job.priority),
        attempt: Set(0),
        max_attempts: Set(job.max_attempts),
        run_at: Set(job.run_at.unwrap_or(now)),
        locked_by: Set(None),
        locked_until: Set(None),
        last_error: Set(None),
        unique_key: Set(unique_key),
        unique_until: Set(unique_until),
        inserted_at: Set(now),
        completed_at: Set(None),
    };
    if !unique {
        job::Entity::insert(row)
            .exec_without_returning(conn)
            .await?;
        return Ok(Some(id));
    }
    // A taken key must not fail the statement: on PostgreSQL that would abort the caller's
    // whole transaction. MySQL has no DO NOTHING; `id = id` is its no-op.
    job::Entity::insert(row)
        .on_conflict(
            OnConflict::column(job::Column::UniqueKey)
                .do_nothing_on([job::Column::Id])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    // MySQL counts a no-op duplicate as a found row, so ask for the row itself.
    let inserted = job::Entity::find_by_id(id)
        .select_only()
        .column(job::Column::Id)
        .into_tuple::<Uuid>()
        .one(conn)
        .await?;
    Ok(inserted)
}
