//! The worker: one per node, a claim loop per named queue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use fawkes_data::entity::job;
use rand::Rng;
use sea_orm::DatabaseConnection;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::cron::{CronJob, Scheduler};
use crate::handler::{JobContext, JobError, Registry};
use crate::store::{self, Claim};
use crate::{Error, millis, now_ms};

/// Delay before retry `n` (from 1): `min(cap, base · 2^(n-1))`, of which a random half is
/// taken off ("equal jitter"), so retries of many jobs that failed together spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(3600),
        }
    }
}

impl Backoff {
    /// The delay before the retry that follows failed attempt `attempt` (from 1), without jitter.
    pub fn ceiling(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(32);
        self.base
            .checked_mul(2u32.saturating_pow(exponent))
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The delay with jitter: between half the ceiling and the ceiling.
    pub fn delay(&self, attempt: i32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        let jitter = rand::rng().random_range(0..=millis(ceiling - half).max(0) as u64);
        half + Duration::from_millis(jitter)
    }
}

/// How a node's worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// This node's name; `locked_by` is `<node>/<random id>`, unique per worker.
    pub node: String,
    /// The queues this worker runs, each with how many of its jobs may run at once.
    pub queues: BTreeMap<String, usize>,
    /// How often an idle queue looks for due jobs.
    pub poll_interval: Duration,
    /// How long a claim holds a job without being renewed; renewed every third of it.
    pub lease: Duration,
    /// At shutdown, how long running jobs may take before they are given back.
    pub shutdown_grace: Duration,
    pub backoff: Backoff,
    /// Recurring jobs enqueued by this node's scheduler (each slot once across nodes).
    pub cron: Vec<CronJob>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            node: "fawkes@localhost".to_owned(),
            queues: BTreeMap::from([("default".to_owned(), 10)]),
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(25),
            backoff: Backoff::default(),
            cron: Vec::new(),
        }
    }
}

struct Inner {
    db: DatabaseConnection,
    registry: Registry,
    config: WorkerConfig,
    /// `locked_by` of this worker's claims.
    id: String,
    /// Wakes the queue loops before their poll interval (see [`Worker::wake`]).
    wake: Notify,
    scheduler: Scheduler,
}

/// Runs the configured queues on this node. Clone it to keep a handle for [`Worker::wake`].
#[derive(Clone)]
pub struct Worker {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.inner.id)
            .finish()
    }
}

impl Worker {
    /// A worker over `db` running the kinds in `registry`. Fails on an invalid cron entry.
    pub fn new(
        db: DatabaseConnection,
        registry: Registry,
        config: WorkerConfig,
    ) -> Result<Worker, Error> {
        let scheduler = Scheduler::new(db.clone(), config.cron.clone())?;
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{}/{}", config.node, &suffix[..12]);
        Ok(Worker {
            inner: Arc::new(Inner {
                db,
                registry,
                config,
                id,
                wake: Notify::new(),
                scheduler,
            }),
        })
    }

    /// The `locked_by` value of this worker's claims.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// Makes every queue look for due jobs now (e.g. after an enqueue on this node).
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
    }

    /// Runs on a task of its own until `shutdown`; the handle ends when the worker has stopped.
    pub fn spawn(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(self.clone().run(shutdown))
    }

    /// Runs until `shutdown` is cancelled: then stops claiming, waits up to `shutdown_grace`
    /// for running jobs, and gives back those still running (available again, the attempt not
    /// counted). Dropping this future without cancelling instead abandons the running jobs, as
    /// a crash would: their leases expire and another worker runs them again.
    pub async fn run(self, shutdown: CancellationToken) {
        let inner = self.inner;
        tracing::info!(worker = %inner.id, queues = ?inner.config.queues, kinds = ?inner.registry.kinds(), "job worker started");
        let mut loops = JoinSet::new();
        for (queue, &limit) in &inner.config.queues {
            if limit > 0 {
                loops.spawn(queue_loop(
                    inner.clone(),
                    queue.clone(),
                    limit,
                    shutdown.clone(),
                ));
            }
        }
        loops.spawn(rescue_loop(inner.clone(), shutdown.clone()));
        loops.spawn(inner.scheduler.clone().run(shutdown.clone()));
        while let Some(result) = loops.join_next().await {
            if let Err(e) = result {
                tracing::error!(error = %e, "a job worker loop ended abnormally");
            }
        }
        match store::release_all(&inner.db, &inner.id).await {
            Ok(0) => {}
            Ok(released) => {
                tracing::info!(released, "unfinished jobs given back at shutdown")
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot give back unfinished jobs; their leases will expire")
            }
        }
        tracing::info!(worker = %inner.id, "job worker stopped");
    }
}

/// Claims and runs one queue's jobs, at most `limit` at a time.
async fn queue_loop(inner: Arc<Inner>, queue: String, limit: usize, shutdown: CancellationToken) {
    let lease_ms = millis(inner.config.lease).max(1);
    let poll = inner.config.poll_interval.max(Duration::from_millis(1));
    let mut running: JoinSet<()> = JoinSet::new();
    // Handlers see the shutdown only once claiming has stopped.
    let jobs_shutdown = CancellationToken::new();
    while !shutdown.is_cancelled() {
        let free = limit.saturating_sub(running.len());
        if free > 0 {
            match store::claim(&inner.db, &queue, free, &inner.id, lease_ms).await {
                Ok(jobs) => {
                    for job in jobs {
                        running.spawn(run_job(inner.clone(), job, jobs_shutdown.clone()));
                    }
                }
                Err(e) => tracing::warn!(queue = %queue, error = %e, "cannot claim jobs"),
            }
        }
        let full = running.len() >= limit;
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = running.join_next(), if !running.is_empty() => {}
            _ = tokio::time::sleep(poll), if !full => {}
            _ = inner.wake.notified(), if !full => {}
        }
    }
    jobs_shutdown.cancel();
    let grace = tokio::time::sleep(inner.config.shutdown_grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            next = running.join_next() => if next.is_none() { break },
            _ = &mut grace => {
                tracing::warn!(queue = %queue, unfinished = running.len(), "shutdown grace over: giving unfinished jobs back");
                running.shutdown().await;
                break;
            }
        }
    }
}

/// Expired leases, looked for every poll interval (at least every quarter lease).
async fn rescue_loop(inner: Arc<Inner>, shutdown: CancellationToken) {
    let every = inner
        .config
        .poll_interval
        .min(inner.config.lease / 4)
        .max(Duration::from_millis(10));
    loop {
        match store::rescue_expired(&inner.db).await {
            Ok(rescued) if rescued.available + rescued.discarded > 0 => {
                tracing::warn!(
                    available = rescued.available,
                    discarded = rescued.discarded,
                    "jobs whose lease expired"
                );
                inner.wake.notify_waiters();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot rescue expired jobs"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Aborts the task when dropped, so a handler never outlives the job runner that owns it.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one claimed job: the handler on its own task (a panic is caught there), the lease
/// renewed meanwhile, then the outcome written.
async fn run_job(inner: Arc<Inner>, job: job::Model, shutdown: CancellationToken) {
    let claim = Claim {
        id: job.id,
        attempt: job.attempt,
    };
    let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, queue = %job.queue, attempt = job.attempt);
    let Some(handler) = inner.registry.get(&job.kind) else {
        let error = format!("no handler for job kind {:?} on this node", job.kind);
        tracing::warn!(parent: &span, "{error}; discarded");
        write_outcome(&inner, &claim, Outcome::Discard(error)).await;
        return;
    };
    if job.attempt > job.max_attempts {
        // Claimed past its last attempt (e.g. max_attempts lowered by hand): nothing left to run.
        let error = job
            .last_error
            .clone()
            .unwrap_or_else(|| "out of attempts".to_owned());
        write_outcome(&inner, &claim, Outcome::Discard(error)).await;
        return;
    }
    let args = serde_json::from_str(&job.args).unwrap_or(serde_json::Value::Null);
    let context = JobContext {
        id: job.id,
        queue: job.queue.clone(),
        kind: job.kind.clone(),
        args,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
        shutdown,
    };
    let mut task = AbortOnDrop(tokio::spawn(async move { handler.perform(&context).await }));
    let lease_ms = millis(inner.config.lease).max(1);
    let mut renew = tokio::time::interval((inner.config.lease / 3).max(Duration::from_millis(5)));
    renew.tick().await;
    let result = loop {
        tokio::select! {
            result = &mut task.0 => break result,
            _ = renew.tick() => match store::extend(&inner.db, &claim, &inner.id, lease_ms).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(parent: &span, "lost the job's lease; stopping it");
                    return;
                }
                Err(e) => tracing::warn!(parent: &span, error = %e, "cannot renew the job's lease"),
            },
        }
    };
    let outcome = match result {
        Ok(Ok(())) => Outcome::Complete,
        Ok(Err(error)) => failed(&inner, &job, error),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            failed(
                &inner,
                &job,
                JobError::retry(format!("panicked: {message}")),
            )
        }
        Err(_) => return,
    };
    match &outcome {
        Outcome::Complete => tracing::debug!(parent: &span, "job completed"),
        Outcome::Retry { error, run_at } => {
            tracing::info!(parent: &span, %error, in_ms = run_at - now_ms(), "job failed; will retry")
        }
        Outcome::Discard(error) => tracing::warn!(parent: &span, %error, "job discarded"),
    }
    write_outcome(&inner, &claim, outcome).await;
}

enum Outcome {
    Complete,
    Retry { error: String, run_at: i64 },
    Discard(String),
}

fn failed(inner: &Inner, job: &job::Model, error: JobError) -> Outcome {
    if error.retry && job.attempt < job.max_attempts {
        let delay = inner.config.backoff.delay(job.attempt);
        Outcome::Retry {
            error: error.message,
            run_at: now_ms().saturating_add(millis(delay)),
        }
    } else {
        Outcome::Discard(error.message)
    }
}

/// Writes the outcome, trying a few times: if it never lands, the lease expires and the job
/// runs again (jobs run at least once).
async fn write_outcome(inner: &Inner, claim: &Claim, outcome: Outcome) {
    let worker = inner.id.as_str();
    for attempt in 0..3u32 {
        let written = match &outcome {
            Outcome::Complete => store::complete(&inner.db, claim, worker).await,
            Outcome::Retry { error, run_at } => {
                store::retry_later(&inner.db, claim, worker, *run_at, error).await
            }
            Outcome::Discard(error) => store::discard(&inner.db, claim, worker, error).await,
        };
        match written {
            Ok(true) => return,
            Ok(false) => {
                tracing::warn!(id = %claim.id, "the job was no longer ours when it finished");
                return;
            }
            Err(e) => {
                tracing::warn!(id = %claim.id, error = %e, "cannot record the job's outcome");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter_in_the_upper_half() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(1000),
        };
        assert_eq!(backoff.ceiling(1), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(2), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(4), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(5), Duration::from_millis(1000));
        assert_eq!(backoff.ceiling(500), Duration::from_millis(1000));
        for attempt in 1..10 {
            let delay = backoff.delay(attempt);
            let ceiling = backoff.ceiling(attempt);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{delay:?} vs {ceiling:?}"
            );
        }
    }
}
