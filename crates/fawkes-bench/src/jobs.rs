//! `fawkes-bench jobs`: how many jobs per second the queue drains on a database. Enqueues N
//! no-op jobs on a queue of their own (in transactions of `batch`), then runs the same
//! `Worker` that `fawkes serve` runs over them and times the drain until every one completed.
//! Nothing else runs on that queue, so the figure is the queue's own cost: claim, lease,
//! outcome, per job.

use std::time::{Duration, Instant};

use anyhow::Context;
use fawkes_data::{Migrator, MigratorTrait};
use fawkes_jobs::{Jobs, NewJob, Registry, Worker, WorkerConfig};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct Params {
    /// The database: `sqlite://…`, `postgres://…` or `mysql://…` (migrated first).
    #[arg(long)]
    pub database_url: String,
    /// No-op jobs to enqueue and drain.
    #[arg(long, default_value_t = 5000)]
    pub count: usize,
    /// Jobs of the queue that run at once (the queue's concurrency).
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Jobs enqueued per transaction.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Give up after this long.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
}

#[derive(Debug, Serialize)]
pub struct JobsResult {
    scenario: &'static str,
    backend: String,
    count: usize,
    concurrency: usize,
    enqueue_seconds: f64,
    enqueued_per_second: f64,
    drain_seconds: f64,
    jobs_per_second: f64,
}

const KIND: &str = "bench_noop";

pub async fn run(params: &Params) -> anyhow::Result<JobsResult> {
    let pool = fawkes_data::PoolOptions {
        max_connections: u32::try_from(params.concurrency + 4).unwrap_or(u32::MAX),
        min_connections: 1,
        acquire_timeout: Duration::from_secs(30),
    };
    let db = fawkes_data::connect(&params.database_url, &pool)
        .await
        .context("connecting")?;
    Migrator::up(&db, None).await.context("migrating")?;
    // A queue of this run's own: earlier runs' or the server's jobs do not count.
    let queue = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    let started = Instant::now();
    let mut left = params.count;
    while left > 0 {
        let n = left.min(params.batch.max(1));
        let txn = db.begin().await?;
        for _ in 0..n {
            fawkes_jobs::enqueue(&txn, NewJob::new(KIND, serde_json::json!({})).queue(&queue))
                .await?;
        }
        txn.commit().await?;
        left -= n;
    }
    let enqueue_seconds = started.elapsed().as_secs_f64();

    let registry = Registry::new();
    registry.register_fn(KIND, |_job| async { Ok(()) });
    let config = WorkerConfig {
        node: "fawkes-bench".to_owned(),
        queues: [(queue.clone(), params.concurrency)].into_iter().collect(),
        poll_interval: Duration::from_millis(50),
        cron: Vec::new(),
        ..WorkerConfig::default()
    };
    let worker = Worker::new(db.clone(), registry, config)?;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let handle = worker.spawn(shutdown.clone());
    let jobs = Jobs::new(db.clone());
    let deadline = started + Duration::from_secs(params.timeout_secs);
    loop {
        let counts = jobs.counts().await?;
        let waiting: u64 = counts
            .get(&queue)
            .map(|states| {
                states
                    .iter()
                    .filter(|(state, _)| state.as_str() != "completed")
                    .map(|(_, n)| *n)
                    .sum()
            })
            .unwrap_or(0);
        if waiting == 0 {
            break;
        }
        if Instant::now() > deadline {
            shutdown.cancel();
            anyhow::bail!(
                "{waiting} jobs still not completed after {}s",
                params.timeout_secs
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_seconds = started.elapsed().as_secs_f64();
    shutdown.cancel();
    let _ = handle.await;
    // Leave the database as it was.
    fawkes_data::entity::job::Entity::delete_many()
        .filter(fawkes_data::entity::job::Column::Queue.eq(queue.as_str()))
        .exec(&db)
        .await?;
    let backend = params
        .database_url
        .split("://")
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(JobsResult {
        scenario: "jobs",
        backend,
        count: params.count,
        concurrency: params.concurrency,
        enqueue_seconds,
        enqueued_per_second: params.count as f64 / enqueue_seconds.max(1e-9),
        drain_seconds,
        jobs_per_second: params.count as f64 / drain_seconds.max(1e-9),
    })
}

pub fn print(result: &JobsResult) {
    println!(
        "{:<10} {:>8} {:>6} {:>12} {:>10} {:>10}",
        "backend", "jobs", "conc", "enqueue/s", "drain_s", "jobs/s"
    );
    println!(
        "{:<10} {:>8} {:>6} {:>12.0} {:>10.2} {:>10.0}",
        result.backend,
        result.count,
        result.concurrency,
        result.enqueued_per_second,
        result.drain_seconds,
        result.jobs_per_second
    );
}
