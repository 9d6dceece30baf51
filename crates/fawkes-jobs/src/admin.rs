//! The operators' side of the queue: counts, listing, retry and cancel. No permission checks:
//! the application's domain wraps these in its own policy.

use std::collections::BTreeMap;

use fawkes_data::entity::job;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::{Error, Job, State, now_ms};

/// Jobs per queue, then per state (states with no job are left out).
pub type Counts = BTreeMap<String, BTreeMap<String, u64>>;

/// Which jobs to list; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    pub state: Option<State>,
    pub queue: Option<String>,
    pub kind: Option<String>,
}

/// The queue as operators see it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Jobs {
    db: DatabaseConnection,
}

impl Jobs {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// How many jobs each queue holds in each state.
    pub async fn counts(&self) -> Result<Counts, Error> {
        let rows: Vec<(String, String, i64)> = job::Entity::find()
            .select_only()
            .column(job::Column::Queue)
            .column(job::Column::State)
            .column_as(Expr::col(job::Column::Id).count(), "n")
            .group_by(job::Column::Queue)
            .group_by(job::Column::State)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut counts = Counts::new();
        for (queue, state, n) in rows {
            counts
                .entry(queue)
                .or_default()
                .insert(state, u64::try_from(n).unwrap_or(0));
        }
        Ok(counts)
    }

    /// Up to `limit` jobs matching `filter`, newest first, from after `before` (a job id: the
    /// last of the previous page).
    pub async fn list(
        &self,
        filter: &JobFilter,
        before: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<Job>, Error> {
        let mut query = job::Entity::find()
            .order_by_desc(job::Column::Id)
            .limit(limit);
        if let Some(state) = filter.state {
            query = query.filter(job::Column::State.eq(state.as_str()));
        }
        if let Some(queue) = &filter.queue {
            query = query.filter(job::Column::Queue.eq(queue.as_str()));
        }
        if let Some(kind) = &filter.kind {
            query = query.filter(job::Column::Kind.eq(kind.as_str()));
        }
        if let Some(before) = before {
            query = query.filter(job::Column::Id.lt(before));
        }
        Ok(query.all(&self.db).await?)
    }

    pub async fn get(&self, id: Uuid) -> Result<Job, Error> {
        job::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Runs a discarded, cancelled or waiting (e.g. failed, waiting for its retry) job now,
    /// with a fresh set of attempts. Its last error is kept until it runs.
    pub async fn retry(&self, id: Uuid) -> Result<Job, Error> {
        let retried = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(State::Available.as_str()))
            .col_expr(job::Column::RunAt, Expr::value(now_ms()))
            .col_expr(job::Column::Attempt, Expr::value(0))
            .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
            .col_expr(job::Column::LockedUntil, Expr::value(Option::<i64>::None))
            .col_expr(job::Column::CompletedAt, Expr::value(Option::<i64>::None))
            .filter(job::Column::Id.eq(id))
            .filter(job::Column::State.is_in([
                State::Discarded.as_str(),
                State::Cancelled.as_str(),
                State::Available.as_str(),
            ]))
            .exec(&self.db)
            .await?;
        self.after_change(id, retried.rows_affected).await
    }

    /// Cancels a job that has not started: it will not run (unless retried).
    pub async fn cancel(&self, id: Uuid) -> Result<Job, Error> {
        let cancelled = job::Entity::update_many()
            .col_expr(job::Column::State, Expr::value(State::Cancelled.as_str()))
            .col_expr(job::Column::CompletedAt, Expr::value(now_ms()))
            .filter(job::Column::Id.eq(id))
            .filter(job::Column::State.eq(State::Available.as_str()))
            .exec(&self.db)
            .await?;
        self.after_change(id, cancelled.rows_affected).await
    }

    /// Deletes completed, discarded and cancelled jobs that finished before `before` (Unix
    /// milliseconds); returns how many. A job whose unique key is still held stays, so its key
    /// keeps doing its work (e.g. a cron slot is not enqueued again by a late node).
    pub async fn prune_finished(&self, before: i64) -> Result<u64, Error> {
        let deleted = job::Entity::delete_many()
            .filter(job::Column::State.is_in([
                State::Completed.as_str(),
                State::Discarded.as_str(),
                State::Cancelled.as_str(),
            ]))
            .filter(job::Column::CompletedAt.lt(before))
            .filter(
                job::Column::UniqueUntil
                    .is_null()
                    .or(job::Column::UniqueUntil.lt(now_ms())),
            )
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// The job after a conditional update: changed, or why not.
    async fn after_change(&self, id: Uuid, changed: u64) -> Result<Job, Error> {
        let job = self.get(id).await?;
        if changed == 0 {
            return Err(Error::WrongState(job.state));
        }
        Ok(job)
    }
}
