//! The job queue as operators see it: list, retry, cancel and counts, admins only. The queue
//! itself is `fawkes-jobs`; this context adds who may do it and the public JSON shapes.

use chrono::{DateTime, Utc};
use fawkes_jobs::{JobFilter, State};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::page::{Page, PageRequest};
use crate::time::to_datetime;
use crate::{Actor, AuthFailure, DomainError};

/// A job as admins see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: Uuid,
    pub queue: String,
    pub kind: String,
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
    /// `available`, `running`, `completed`, `discarded` or `cancelled`.
    pub state: String,
    /// Lower runs first.
    pub priority: i32,
    /// Attempts started so far.
    pub attempt: i32,
    pub max_attempts: i32,
    /// Not run before this.
    pub run_at: DateTime<Utc>,
    /// The worker that holds (or last ran) it.
    pub locked_by: Option<String>,
    /// The end of the running job's lease.
    pub locked_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub unique_key: Option<String>,
    pub unique_until: Option<DateTime<Utc>>,
    pub inserted_at: DateTime<Utc>,
    /// When it completed, was discarded or was cancelled.
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<fawkes_jobs::Job> for Job {
    fn from(row: fawkes_jobs::Job) -> Self {
        Self {
            args: serde_json::from_str(&row.args).unwrap_or(serde_json::Value::Null),
            id: row.id,
            queue: row.queue,
            kind: row.kind,
            state: row.state,
            priority: row.priority,
            attempt: row.attempt,
            max_attempts: row.max_attempts,
            run_at: to_datetime(row.run_at),
            locked_by: row.locked_by,
            locked_until: row.locked_until.map(to_datetime),
            last_error: row.last_error,
            unique_key: row.unique_key,
            unique_until: row.unique_until.map(to_datetime),
            inserted_at: to_datetime(row.inserted_at),
            completed_at: row.completed_at.map(to_datetime),
        }
    }
}

/// Which jobs to list; each filter is optional.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobQuery {
    /// `available`, `running`, `completed`, `discarded` or `cancelled`.
    pub state: Option<String>,
    pub queue: Option<String>,
    pub kind: Option<String>,
}

/// The job queue's admin actions.
#[derive(Debug, Clone)]
pub struct Jobs {
    jobs: fawkes_jobs::Jobs,
}

/// Managing the job queue: admins only.
fn manage_jobs(actor: &Actor) -> Result<(), DomainError> {
    match actor {
        Actor::Anonymous => Err(AuthFailure::Missing.into()),
        _ if actor.is_admin() => Ok(()),
        _ => Err(DomainError::Forbidden("only admins may manage jobs")),
    }
}

impl From<fawkes_jobs::Error> for DomainError {
    fn from(err: fawkes_jobs::Error) -> Self {
        match err {
            fawkes_jobs::Error::Db(e) => e.into(),
            fawkes_jobs::Error::NotFound => DomainError::NotFound("job"),
            fawkes_jobs::Error::WrongState(state) => DomainError::Conflict {
                field: "state",
                message: format!("the job is {state}"),
            },
            fawkes_jobs::Error::Invalid(message) => DomainError::invalid("job", message),
            e @ fawkes_jobs::Error::Cron { .. } => DomainError::Internal(e.to_string()),
        }
    }
}

impl Jobs {
    pub fn new(db: sea_orm::DatabaseConnection) -> Self {
        Self {
            jobs: fawkes_jobs::Jobs::new(db),
        }
    }

    /// Jobs newest first, filtered by state, queue and kind.
    pub async fn list(
        &self,
        actor: &Actor,
        query: &JobQuery,
        page: &PageRequest,
    ) -> Result<Page<Job>, DomainError> {
        manage_jobs(actor)?;
        let (cursor, limit) = page.parse()?;
        let state = match query.state.as_deref().filter(|s| !s.is_empty()) {
            Some(text) => Some(State::parse(text).ok_or_else(|| {
                DomainError::invalid(
                    "state",
                    "one of available, running, completed, discarded, cancelled",
                )
            })?),
            None => None,
        };
        let filter = JobFilter {
            state,
            queue: query.queue.clone().filter(|q| !q.is_empty()),
            kind: query.kind.clone().filter(|k| !k.is_empty()),
        };
        let rows = self
            .jobs
            .list(&filter, cursor.map(|c| c.0), limit + 1)
            .await?;
        Ok(Page::from_rows(rows, limit, |row| row.id, Job::from))
    }

    /// `retry_job`: a discarded, cancelled or waiting job runs now, with fresh attempts.
    pub async fn retry(&self, actor: &Actor, id: Uuid) -> Result<Job, DomainError> {
        manage_jobs(actor)?;
        Ok(self.jobs.retry(id).await?.into())
    }

    /// `cancel_job`: a job that has not started will not run.
    pub async fn cancel(&self, actor: &Actor, id: Uuid) -> Result<Job, DomainError> {
        manage_jobs(actor)?;
        Ok(self.jobs.cancel(id).await?.into())
    }

    /// Jobs per queue and state.
    pub async fn counts(&self, actor: &Actor) -> Result<fawkes_jobs::Counts, DomainError> {
        manage_jobs(actor)?;
        Ok(self.jobs.counts().await?)
    }
}
