//! The worker's statements: claim, lease renewal, outcomes, release and rescue.
//!
//! Every write about a claimed job is guarded by `state = 'running' AND locked_by = <worker>
//! AND attempt = <attempt>`: a worker that lost its lease (the job was rescued and maybe claimed
//! again) can no longer change the job.

use fawkes_data::entity::job;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use uuid::Uuid;

use crate::{State, now_ms};

/// Which claim of which job: the guard of every later write.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub id: Uuid,
    pub attempt: i32,
}

fn guarded(
    update: sea_orm::UpdateMany<job::Entity>,
    claim: &Claim,
    worker: &str,
) -> sea_orm::UpdateMany<job::Entity> {
    update
        .filter(job::Column::Id.eq(claim.id))
        .filter(job::Column::State.eq(State::Running.as_str()))
        .filter(job::Column::LockedBy.eq(worker))
        .filter(job::Column::Attempt.eq(claim.attempt))
}

/// Claims up to `limit` due jobs of `queue` for `worker`, under a lease of `lease_ms`: each is
/// `running`, locked by the worker, its attempt counted. Lowest priority first, then oldest
/// `run_at`.
///
/// PostgreSQL and MySQL lock the chosen rows with `FOR UPDATE SKIP LOCKED`, so concurrent
/// claimers on other nodes pass over them; SQLite has one writer at a time, and `BEGIN
/// IMMEDIATE` takes the write lock before the read.
pub(crate) async fn claim(
    db: &DatabaseConnection,
    queue: &str,
    limit: usize,
    worker: &str,
    lease_ms: i64,
) -> Result<Vec<job::Model>, DbErr> {
    let backend = db.get_database_backend();
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    let now = now_ms();
    let mut due = job::Entity::find()
        .filter(job::Column::State.eq(State::Available.as_str()))
        .filter(job::Column::Queue.eq(queue))
        .filter(job::Column::RunAt.lte(now))
        .order_by_asc(job::Column::Priority)
        .order_by_asc(job::Column::RunAt)
        .order_by_asc(job::Column::Id)
        .limit(limit as u64);
    if backend != DbBackend::Sqlite {
        due = due.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let mut rows = due.all(&txn).await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(rows);
    }
    let locked_until = now + lease_ms;
    job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(State::Running.as_str()))
        .col_expr(job::Column::LockedBy, Expr::value(worker))
        .col_expr(job::Column::LockedUntil, Expr::value(locked_until))
        .col_expr(job::Column::Attempt, Expr::col(job::Column::Attempt).add(1))
        .filter(job::Column::Id.is_in(rows.iter().map(|r| r.id)))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    for row in &mut rows {
        row.state = State::Running.as_str().to_owned();
        row.locked_by = Some(worker.to_owned());
        row.locked_until = Some(locked_until);
        row.attempt += 1;
    }
    Ok(rows)
}

/// Renews the lease; false when the job is no longer this claim's.
pub(crate) async fn extend(
    db: &DatabaseConnection,
    claim: &Claim,
    worker: &str,
    lease_ms: i64,
) -> Result<bool, DbErr> {
    let update = job::Entity::update_many()
        .col_expr(job::Column::LockedUntil, Expr::value(now_ms() + lease_ms));
    Ok(guarded(update, claim, worker).exec(db).await?.rows_affected == 1)
}

pub(crate) async fn complete(
    db: &DatabaseConnection,
    claim: &Claim,
    worker: &str,
) -> Result<bool, DbErr> {
    let update = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(State::Completed.as_str()))
        .col_expr(job::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::CompletedAt, Expr::value(now_ms()));
    Ok(guarded(update, claim, worker).exec(db).await?.rows_affected == 1)
}

/// Back to `available` at `run_at`, keeping the error.
pub(crate) async fn retry_later(
    db: &DatabaseConnection,
    claim: &Claim,
    worker: &str,
    run_at: i64,
    error: &str,
) -> Result<bool, DbErr> {
    let update = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(State::Available.as_str()))
        .col_expr(job::Column::RunAt, Expr::value(run_at))
        .col_expr(job::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::LastError, Expr::value(error));
    Ok(guarded(update, claim, worker).exec(db).await?.rows_affected == 1)
}

pub(crate) async fn discard(
    db: &DatabaseConnection,
    claim: &Claim,
    worker: &str,
    error: &str,
) -> Result<bool, DbErr> {
    let update = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(State::Discarded.as_str()))
        .col_expr(job::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::CompletedAt, Expr::value(now_ms()))
        .col_expr(job::Column::LastError, Expr::value(error));
    Ok(guarded(update, claim, worker).exec(db).await?.rows_affected == 1)
}

/// Gives back every job `worker` still holds: available now, the attempt not counted.
pub(crate) async fn release_all(db: &DatabaseConnection, worker: &str) -> Result<u64, DbErr> {
    let released = job::Entity::update_many()
        .col_expr(job::Column::State, Expr::value(State::Available.as_str()))
        .col_expr(job::Column::Attempt, Expr::col(job::Column::Attempt).sub(1))
        .col_expr(job::Column::RunAt, Expr::value(now_ms()))
        .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .filter(job::Column::State.eq(State::Running.as_str()))
        .filter(job::Column::LockedBy.eq(worker))
        .exec(db)
        .await?;
    Ok(released.rows_affected)
}

/// What the rescue of expired leases did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rescued {
    pub available: u64,
    pub discarded: u64,
}

const LEASE_EXPIRED: &str = "the lease expired: the worker running this job stopped answering";

/// Running jobs whose lease has expired (their node died or lost the database): available
/// again now, or discarded when that was their last attempt. The lost attempt counts.
pub(crate) async fn rescue_expired(db: &DatabaseConnection) -> Result<Rescued, DbErr> {
    let now = now_ms();
    let expired = || {
        job::Entity::update_many()
            .filter(job::Column::State.eq(State::Running.as_str()))
            .filter(job::Column::LockedUntil.lt(now))
    };
    let discarded = expired()
        .col_expr(job::Column::State, Expr::value(State::Discarded.as_str()))
        .col_expr(job::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::CompletedAt, Expr::value(now))
        .col_expr(job::Column::LastError, Expr::value(LEASE_EXPIRED))
        .filter(Expr::col(job::Column::Attempt).gte(Expr::col(job::Column::MaxAttempts)))
        .exec(db)
        .await?
        .rows_affected;
    let available = expired()
        .col_expr(job::Column::State, Expr::value(State::Available.as_str()))
        .col_expr(job::Column::RunAt, Expr::value(now))
        .col_expr(job::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(job::Column::LockedUntil, Expr::value(Option::<i64>::None))
        .col_expr(job::Column::LastError, Expr::value(LEASE_EXPIRED))
        .exec(db)
        .await?
        .rows_affected;
    Ok(Rescued {
        available,
        discarded,
    })
}
