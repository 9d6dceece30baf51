//! Housekeeping: recurring jobs that delete what is past its retention. Each kind takes
//! `{"retention_secs": N}` (its default otherwise) and deletes only rows older than that.
//!
//! - `purge_sessions`: sessions (and their refresh tokens) that expired or were revoked more
//!   than the retention ago (default 7 days; kept that long so a reused token still meets its
//!   revoked session and is recognised as reuse).
//! - `prune_jobs`: completed, discarded and cancelled jobs finished more than the retention ago
//!   (default 7 days), except those still holding a unique key.
//! - `prune_notifications`: notifications read more than the retention ago (default 90 days);
//!   unread ones stay.
//!
//! Typing state is not here because none is kept on the server: `typing` is a broadcast, and a
//! page shows it for a few seconds from its own view state.

use std::sync::Arc;

use fawkes_data::entity::{notification, refresh_token, session};
use fawkes_jobs::{JobContext, JobError, JobHandler};
use sea_orm::prelude::*;
use sea_orm::sea_query::Query;
use sea_orm::{Condition, TransactionTrait};
use serde::Deserialize;

use crate::time::now;

pub const PURGE_SESSIONS: &str = "purge_sessions";
pub const PRUNE_JOBS: &str = "prune_jobs";
pub const PRUNE_NOTIFICATIONS: &str = "prune_notifications";
/// Every housekeeping kind.
pub const KINDS: [&str; 3] = [PURGE_SESSIONS, PRUNE_JOBS, PRUNE_NOTIFICATIONS];

const DAY_SECS: u64 = 24 * 3600;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    retention_secs: Option<u64>,
}

/// The handler of every housekeeping kind.
#[derive(Clone, Debug)]
pub struct Housekeeping {
    db: Arc<DatabaseConnection>,
}

impl Housekeeping {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db: Arc::new(db) }
    }

    /// Deletes sessions expired or revoked before `before` (Unix ms) with their refresh
    /// tokens; returns how many sessions.
    pub async fn purge_sessions(&self, before: i64) -> Result<u64, DbErr> {
        let old = Condition::any()
            .add(session::Column::ExpiresAt.lt(before))
            .add(session::Column::RevokedAt.lt(before));
        let txn = self.db.begin().await?;
        refresh_token::Entity::delete_many()
            .filter(
                refresh_token::Column::SessionId.in_subquery(
                    Query::select()
                        .column(session::Column::Id)
                        .from(session::Entity)
                        .cond_where(old.clone())
                        .to_owned(),
                ),
            )
            .exec(&txn)
            .await?;
        let deleted = session::Entity::delete_many()
            .filter(old)
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted.rows_affected)
    }

    /// Deletes notifications read before `before`; returns how many.
    pub async fn prune_notifications(&self, before: i64) -> Result<u64, DbErr> {
        let deleted = notification::Entity::delete_many()
            .filter(notification::Column::ReadAt.lt(before))
            .exec(self.db.as_ref())
            .await?;
        Ok(deleted.rows_affected)
    }
}

#[async_trait::async_trait]
impl JobHandler for Housekeeping {
    async fn perform(&self, job: &JobContext) -> Result<(), JobError> {
        // `{}` and `null` both mean the defaults.
        let args: Args = if job.args.is_null() {
            Args::default()
        } else {
            job.args()?
        };
        let default_days = match job.kind.as_str() {
            PRUNE_NOTIFICATIONS => 90,
            _ => 7,
        };
        let retention = args.retention_secs.unwrap_or(default_days * DAY_SECS);
        let before =
            now().saturating_sub(i64::try_from(retention.saturating_mul(1000)).unwrap_or(i64::MAX));
        let deleted = match job.kind.as_str() {
            PURGE_SESSIONS => self.purge_sessions(before).await?,
            PRUNE_JOBS => fawkes_jobs::Jobs::new(self.db.as_ref().clone())
                .prune_finished(before)
                .await
                .map_err(|e| JobError::retry(e.to_string()))?,
            PRUNE_NOTIFICATIONS => self.prune_notifications(before).await?,
            other => {
                return Err(JobError::discard(format!(
                    "not a housekeeping kind: {other}"
                )));
            }
        };
        tracing::info!(kind = %job.kind, deleted, retention_secs = retention, "housekeeping done");
        Ok(())
    }
}
