//! A durable job queue in the application's own database (SQLite, PostgreSQL, MySQL/MariaDB),
//! with the same semantics on all three.
//!
//! - [`enqueue`] writes a job through any connection, a transaction included: a job enqueued in
//!   the transaction of the action that caused it exists exactly when that action committed.
//! - A [`Worker`] (one per node) runs named queues, each with its own concurrency limit. It claims
//!   due jobs atomically (`SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL and MySQL, a
//!   `BEGIN IMMEDIATE` single-writer transaction on SQLite), lowest priority first then oldest
//!   `run_at`, and holds each under a lease it renews while the job runs. A job whose lease ran
//!   out (its node died) is made available again; that attempt counts.
//! - A handler ([`JobHandler`]) is registered per kind in a [`Registry`]. Success completes the
//!   job; an error or a panic retries it with exponential backoff and jitter until
//!   `max_attempts`, then discards it keeping the last error. An unknown kind is discarded.
//! - Recurring jobs come from cron expressions ([`CronJob`]); every node runs the scheduler and
//!   each slot is enqueued once, as a unique job keyed by name and slot.
//! - Shutting down stops claiming, lets running jobs finish within a grace period, then gives
//!   the unfinished ones back (available again, the attempt not counted).
//! - [`Jobs`] holds the operators' side: counts per queue and state, a filtered list, retry and
//!   cancel.
//!
//! The crate knows job kinds only as strings and arguments only as JSON.

mod admin;
mod cron;
mod enqueue;
mod handler;
mod store;
mod worker;

pub use admin::{Counts, JobFilter, Jobs};
pub use cron::{CronJob, Scheduler, check as check_cron};
pub use enqueue::{DEFAULT_QUEUE, NewJob, enqueue};
pub use fawkes_data::entity::job::Model as Job;
pub use handler::{JobContext, JobError, JobHandler, Registry};
pub use worker::{Backoff, Worker, WorkerConfig};

use std::fmt;

/// The states a job is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Waiting for `run_at`, then for a worker (a failed job waiting for its retry is here too,
    /// with its `last_error`).
    Available,
    /// Claimed by a worker, under a lease.
    Running,
    Completed,
    /// Out of attempts, or refused by its handler; `last_error` says why.
    Discarded,
    /// Cancelled by an operator before it ran.
    Cancelled,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Available,
        State::Running,
        State::Completed,
        State::Discarded,
        State::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Available => "available",
            State::Running => "running",
            State::Completed => "completed",
            State::Discarded => "discarded",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the queue's operations can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error("invalid job: {0}")]
    Invalid(String),
    #[error("invalid cron entry {name:?}: {message}")]
    Cron { name: String, message: String },
    #[error("job not found")]
    NotFound,
    /// The job is in a state the operation does not apply to.
    #[error("the job is {0}")]
    WrongState(String),
}

/// Now, as stored: Unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A duration in milliseconds, saturating.
pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
