//! The job queue on every database: retries and backoff, scheduling, uniqueness, priorities,
//! concurrency limits, transactions, several workers, leases, shutdown, cron and the admin API.
//!
//! Workers here run queues of their own (`t_*`), which the test server's worker does not run.
//! Every wait is for a condition, bounded by a timeout.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestServer;
use fawkes_domain::Role;
use fawkes_jobs::{
    Backoff, CronJob, Job, JobError, Jobs, NewJob, Registry, Scheduler, State, Worker,
    WorkerConfig, enqueue,
};
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

fn worker_config(queues: &[(&str, usize)]) -> WorkerConfig {
    WorkerConfig {
        node: "test-node".to_owned(),
        queues: queues.iter().map(|(q, n)| ((*q).to_owned(), *n)).collect(),
        poll_interval: Duration::from_millis(50),
        lease: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(400),
        },
        cron: Vec::new(),
    }
}

/// A worker running on its own task; cancelled when dropped.
struct Running {
    worker: Worker,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<()>>,
}

impl Running {
    fn start(db: &DatabaseConnection, registry: &Registry, config: WorkerConfig) -> Running {
        let worker = Worker::new(db.clone(), registry.clone(), config).expect("worker");
        let shutdown = CancellationToken::new();
        let handle = Some(worker.spawn(shutdown.clone()));
        Running {
            worker,
            shutdown,
            handle,
        }
    }

    /// Graceful shutdown, waited for (bounded).
    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(handle) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(20), handle)
                .await
                .expect("the worker stops in time")
                .expect("the worker task ends cleanly");
        }
    }

    /// The node dies: its task is aborted, nothing is given back.
    async fn crash(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
            let _ = handle.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Polls `check` every 20 ms until it holds; fails the test after `timeout`.
async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn job(db: &DatabaseConnection, id: Uuid) -> Job {
    Jobs::new(db.clone()).get(id).await.expect("job exists")
}

async fn in_state(db: &DatabaseConnection, id: Uuid, state: State) -> bool {
    job(db, id).await.state == state.as_str()
}

async fn put(db: &DatabaseConnection, job: NewJob) -> Uuid {
    enqueue(db, job)
        .await
        .expect("enqueued")
        .expect("not a duplicate")
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn retries_back_off_then_discard(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    let tries: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = tries.clone();
    registry.register_fn("flaky", move |job| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("lock").push(Instant::now());
            Err(JobError::retry(format!("boom on attempt {}", job.attempt)))
        }
    });
    let id = put(
        db,
        NewJob::new("flaky", json!({}))
            .queue("t_retry")
            .max_attempts(4),
    )
    .await;
    let worker = Running::start(db, &registry, worker_config(&[("t_retry", 2)]));
    wait_until("the job to be discarded", Duration::from_secs(20), || {
        in_state(db, id, State::Discarded)
    })
    .await;
    worker.stop().await;
    let row = job(db, id).await;
    assert_eq!(row.attempt, 4);
    assert_eq!(row.last_error.as_deref(), Some("boom on attempt 4"));
    assert!(row.completed_at.is_some());
    let tries = tries.lock().expect("lock").clone();
    assert_eq!(tries.len(), 4, "ran exactly max_attempts times");
    // Retry n waits between half and all of min(400, 100 * 2^(n-1)) ms.
    let backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_millis(400),
    };
    for (n, pair) in tries.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let ceiling = backoff.ceiling(n as i32 + 1);
        assert!(
            gap >= ceiling / 2,
            "retry {} came after {gap:?}, before half of {ceiling:?}",
            n + 1
        );
    }
}

async fn panics_refusals_and_unknown_kinds(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    registry.register_fn("panics", |_job| async move {
        if true {
            panic!("handler blew up");
        }
        Ok(())
    });
    registry.register_fn("refuses", |job| async move {
        let _: Vec<u32> = job.args()?;
        Ok(())
    });
    let panics = put(
        db,
        NewJob::new("panics", json!({}))
            .queue("t_err")
            .max_attempts(2),
    )
    .await;
    let refuses = put(
        db,
        NewJob::new("refuses", json!({"not": "a list"})).queue("t_err"),
    )
    .await;
    let unknown = put(db, NewJob::new("nobody-knows", json!({})).queue("t_err")).await;
    let worker = Running::start(db, &registry, worker_config(&[("t_err", 3)]));
    for id in [panics, refuses, unknown] {
        wait_until("the job to be discarded", Duration::from_secs(15), || {
            in_state(db, id, State::Discarded)
        })
        .await;
    }
    worker.stop().await;
    let row = job(db, panics).await;
    assert_eq!(row.attempt, 2, "a panic is retried like an error");
    assert_eq!(row.last_error.as_deref(), Some("panicked: handler blew up"));
    let row = job(db, refuses).await;
    assert_eq!(row.attempt, 1, "a refusal is not retried");
    assert!(
        row.last_error
            .unwrap_or_default()
            .starts_with("invalid arguments")
    );
    let row = job(db, unknown).await;
    assert_eq!(
        row.last_error.as_deref(),
        Some("no handler for job kind \"nobody-knows\" on this node")
    );
}

async fn future_jobs_wait_for_run_at(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    let ran: Arc<Mutex<HashMap<Uuid, i64>>> = Arc::default();
    let seen = ran.clone();
    registry.register_fn("stamp", move |job| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("lock").insert(job.id, now_ms());
            Ok(())
        }
    });
    let run_at = now_ms() + 1200;
    let later = put(
        db,
        NewJob::new("stamp", json!({}))
            .queue("t_later")
            .run_at(run_at),
    )
    .await;
    let now = put(db, NewJob::new("stamp", json!({})).queue("t_later")).await;
    let worker = Running::start(db, &registry, worker_config(&[("t_later", 2)]));
    wait_until("the due job to run", Duration::from_secs(10), || {
        in_state(db, now, State::Completed)
    })
    .await;
    assert!(
        in_state(db, later, State::Available).await,
        "the future job waits"
    );
    wait_until("the future job to run", Duration::from_secs(10), || {
        in_state(db, later, State::Completed)
    })
    .await;
    worker.stop().await;
    let performed = ran.lock().expect("lock")[&later];
    assert!(
        performed >= run_at,
        "ran {} ms before run_at",
        run_at - performed
    );
}

async fn unique_jobs_are_enqueued_once_per_window(server: TestServer) {
    let db = &server.db;
    let unique = |key: &str, window_ms: u64| {
        NewJob::new("u", json!({}))
            .queue("t_unique_nobody_runs")
            .unique(key, Duration::from_millis(window_ms))
    };
    let first = enqueue(db, unique("k", 1500)).await.expect("enqueue");
    assert!(first.is_some());
    assert_eq!(enqueue(db, unique("k", 1500)).await.expect("enqueue"), None);
    // Inside a transaction too, and the transaction stays usable.
    let txn = db.begin().await.expect("begin");
    assert_eq!(
        enqueue(&txn, unique("k", 1500)).await.expect("enqueue"),
        None
    );
    assert!(
        enqueue(&txn, unique("other", 1500))
            .await
            .expect("enqueue")
            .is_some()
    );
    txn.commit().await.expect("commit");
    // Once the window has passed, the key is free again.
    let until = job(db, first.expect("first")).await.unique_until;
    wait_until("the window to pass", Duration::from_secs(5), || async {
        until.is_some_and(|u| now_ms() > u)
    })
    .await;
    let again = enqueue(db, unique("k", 1500)).await.expect("enqueue");
    assert!(again.is_some() && again != first);
    assert_eq!(job(db, first.expect("first")).await.unique_key, None);
    // Concurrently: many tasks, one key, one job.
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { enqueue(&db, unique("raced", 60_000)).await })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        if task.await.expect("task").expect("enqueue").is_some() {
            won += 1;
        }
    }
    assert_eq!(won, 1, "exactly one concurrent enqueue wins");
    let listed = Jobs::new(db.clone())
        .list(&fawkes_jobs::JobFilter::default(), None, 100)
        .await
        .expect("list");
    let raced = listed
        .iter()
        .filter(|j| j.unique_key.as_deref() == Some("raced"))
        .count();
    assert_eq!(raced, 1);
}

async fn lower_priority_runs_first(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    let order: Arc<Mutex<Vec<i64>>> = Arc::default();
    let seen = order.clone();
    registry.register_fn("order", move |job| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .expect("lock")
                .push(job.args["n"].as_i64().unwrap_or(-1));
            Ok(())
        }
    });
    // (priority, n): n is the expected position.
    let jobs = [(5, 5), (1, 2), (3, 4), (0, 0), (1, 3), (0, 1)];
    for (priority, n) in jobs {
        put(
            db,
            NewJob::new("order", json!({ "n": n }))
                .queue("t_prio")
                .priority(priority)
                .run_at(now_ms() - 10_000 + n),
        )
        .await;
    }
    let worker = Running::start(db, &registry, worker_config(&[("t_prio", 1)]));
    wait_until("every job to run", Duration::from_secs(10), || async {
        order.lock().expect("lock").len() == jobs.len()
    })
    .await;
    worker.stop().await;
    assert_eq!(*order.lock().expect("lock"), vec![0, 1, 2, 3, 4, 5]);
}

async fn queue_concurrency_is_never_exceeded(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    let gauges: Arc<Mutex<BTreeMap<String, (usize, usize)>>> = Arc::default();
    let done = Arc::new(AtomicUsize::new(0));
    let (g, d) = (gauges.clone(), done.clone());
    registry.register_fn("busy", move |job| {
        let (gauges, done) = (g.clone(), d.clone());
        async move {
            {
                let mut gauges = gauges.lock().expect("lock");
                let (now, max) = gauges.entry(job.queue.clone()).or_default();
                *now += 1;
                *max = (*max).max(*now);
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            gauges
                .lock()
                .expect("lock")
                .entry(job.queue.clone())
                .or_default()
                .0 -= 1;
            done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    for n in 0..24 {
        let queue = if n % 2 == 0 { "t_three" } else { "t_one" };
        put(db, NewJob::new("busy", json!({})).queue(queue)).await;
    }
    let worker = Running::start(
        db,
        &registry,
        worker_config(&[("t_three", 3), ("t_one", 1)]),
    );
    wait_until("every job to run", Duration::from_secs(20), || async {
        done.load(Ordering::SeqCst) == 24
    })
    .await;
    worker.stop().await;
    let gauges = gauges.lock().expect("lock").clone();
    assert_eq!(gauges["t_three"].1, 3, "t_three ran 3 at once, never more");
    assert_eq!(gauges["t_one"].1, 1, "t_one ran one at a time");
}

async fn jobs_follow_their_transaction(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    let ran: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = ran.clone();
    registry.register_fn("tx", move |job| {
        let seen = seen.clone();
        async move {
            seen.lock()
                .expect("lock")
                .push(job.args["which"].as_str().unwrap_or("").to_owned());
            Ok(())
        }
    });
    let txn = db.begin().await.expect("begin");
    let rolled_back = enqueue(
        &txn,
        NewJob::new("tx", json!({"which": "rolled back"})).queue("t_tx"),
    )
    .await
    .expect("enqueue")
    .expect("id");
    txn.rollback().await.expect("rollback");
    let txn = db.begin().await.expect("begin");
    let committed = enqueue(
        &txn,
        NewJob::new("tx", json!({"which": "committed"})).queue("t_tx"),
    )
    .await
    .expect("enqueue")
    .expect("id");
    txn.commit().await.expect("commit");
    assert!(matches!(
        Jobs::new(db.clone()).get(rolled_back).await,
        Err(fawkes_jobs::Error::NotFound)
    ));
    let worker = Running::start(db, &registry, worker_config(&[("t_tx", 2)]));
    wait_until("the committed job to run", Duration::from_secs(10), || {
        in_state(db, committed, State::Completed)
    })
    .await;
    worker.stop().await;
    assert_eq!(*ran.lock().expect("lock"), vec!["committed".to_owned()]);
}

async fn two_workers_run_each_job_exactly_once(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    let runs: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
    let running: Arc<Mutex<HashSet<Uuid>>> = Arc::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    let (r, c, o) = (runs.clone(), running.clone(), overlaps.clone());
    registry.register_fn("once", move |job| {
        let (runs, running, overlaps) = (r.clone(), c.clone(), o.clone());
        async move {
            if !running.lock().expect("lock").insert(job.id) {
                overlaps.fetch_add(1, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            *runs.lock().expect("lock").entry(job.id).or_default() += 1;
            running.lock().expect("lock").remove(&job.id);
            Ok(())
        }
    });
    let total = 200;
    let mut ids = Vec::new();
    for _ in 0..total {
        ids.push(put(db, NewJob::new("once", json!({})).queue("t_two")).await);
    }
    let config = || worker_config(&[("t_two", 4)]);
    let a = Running::start(db, &registry, config());
    let b = Running::start(db, &registry, config());
    let (a_id, b_id) = (a.worker.id().to_owned(), b.worker.id().to_owned());
    let jobs = Jobs::new(db.clone());
    wait_until("every job to complete", Duration::from_secs(60), || async {
        let counts = jobs.counts().await.expect("counts");
        counts
            .get("t_two")
            .and_then(|states| states.get("completed"))
            .copied()
            == Some(total as u64)
    })
    .await;
    a.stop().await;
    b.stop().await;
    let runs = runs.lock().expect("lock").clone();
    assert_eq!(runs.len(), total);
    assert!(
        ids.iter().all(|id| runs.get(id) == Some(&1)),
        "each job ran exactly once"
    );
    assert_eq!(overlaps.load(Ordering::SeqCst), 0);
    let mut by_worker: HashMap<String, usize> = HashMap::new();
    for row in jobs
        .list(
            &fawkes_jobs::JobFilter {
                queue: Some("t_two".into()),
                ..Default::default()
            },
            None,
            1000,
        )
        .await
        .expect("list")
    {
        *by_worker
            .entry(row.locked_by.unwrap_or_default())
            .or_default() += 1;
    }
    eprintln!("jobs per worker: {by_worker:?}");
    assert_eq!(
        by_worker.get(&a_id).unwrap_or(&0) + by_worker.get(&b_id).unwrap_or(&0),
        total
    );
}

async fn an_expired_lease_is_run_again_elsewhere(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    let attempts: Arc<Mutex<Vec<i32>>> = Arc::default();
    let seen = attempts.clone();
    registry.register_fn("stuck-once", move |job| {
        let seen = seen.clone();
        async move {
            seen.lock().expect("lock").push(job.attempt);
            if job.attempt == 1 {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    });
    let id = put(db, NewJob::new("stuck-once", json!({})).queue("t_lease")).await;
    let mut config = worker_config(&[("t_lease", 1)]);
    config.lease = Duration::from_millis(600);
    let first = Running::start(db, &registry, config.clone());
    let first_id = first.worker.id().to_owned();
    wait_until(
        "the first worker to claim it",
        Duration::from_secs(10),
        || async { job(db, id).await.locked_by.as_deref() == Some(first_id.as_str()) },
    )
    .await;
    first.crash().await;
    let second = Running::start(db, &registry, config);
    wait_until(
        "another worker to finish it",
        Duration::from_secs(15),
        || in_state(db, id, State::Completed),
    )
    .await;
    let second_id = second.worker.id().to_owned();
    second.stop().await;
    let row = job(db, id).await;
    assert_eq!(row.attempt, 2, "the lost attempt counts");
    assert_eq!(row.locked_by.as_deref(), Some(second_id.as_str()));
    assert!(row.last_error.unwrap_or_default().contains("lease expired"));
    assert_eq!(*attempts.lock().expect("lock"), vec![1, 2]);
}

async fn shutdown_finishes_short_jobs_and_releases_long_ones(server: TestServer) {
    let db = &server.db;
    let registry = Registry::new();
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    registry.register_fn("sleepy", move |job| {
        let started = s.clone();
        async move {
            started.fetch_add(1, Ordering::SeqCst);
            let ms = job.args["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        }
    });
    let short = put(
        db,
        NewJob::new("sleepy", json!({"ms": 300})).queue("t_stop"),
    )
    .await;
    let long = put(
        db,
        NewJob::new("sleepy", json!({"ms": 600_000})).queue("t_stop"),
    )
    .await;
    let mut config = worker_config(&[("t_stop", 2)]);
    config.shutdown_grace = Duration::from_millis(1500);
    let worker = Running::start(db, &registry, config);
    wait_until("both jobs to start", Duration::from_secs(10), || async {
        started.load(Ordering::SeqCst) == 2
    })
    .await;
    let began = Instant::now();
    worker.stop().await;
    assert!(began.elapsed() < Duration::from_secs(10));
    let row = job(db, short).await;
    assert_eq!(row.state, "completed", "the short job finished");
    let row = job(db, long).await;
    assert_eq!(row.state, "available", "the long job was given back");
    assert_eq!(row.attempt, 0, "its attempt does not count");
    assert_eq!(row.locked_by, None);
}

async fn cron_slots_are_enqueued_once_across_nodes(server: TestServer) {
    let db = &server.db;
    let entry = CronJob {
        name: "tick".to_owned(),
        schedule: "* * * * * *".to_owned(),
        kind: "tick".to_owned(),
        queue: "t_cron_nobody_runs".to_owned(),
        args: json!({"from": "cron"}),
    };
    let shutdown = CancellationToken::new();
    let nodes: Vec<_> = (0..2)
        .map(|_| {
            let scheduler = Scheduler::new(db.clone(), vec![entry.clone()]).expect("valid");
            tokio::spawn(scheduler.run(shutdown.clone()))
        })
        .collect();
    let jobs = Jobs::new(db.clone());
    let filter = fawkes_jobs::JobFilter {
        kind: Some("tick".into()),
        ..Default::default()
    };
    wait_until("three slots", Duration::from_secs(15), || async {
        jobs.list(&filter, None, 100).await.expect("list").len() >= 3
    })
    .await;
    shutdown.cancel();
    for node in nodes {
        node.await.expect("scheduler ends");
    }
    let rows = jobs.list(&filter, None, 100).await.expect("list");
    let keys: HashSet<String> = rows.iter().filter_map(|r| r.unique_key.clone()).collect();
    assert_eq!(keys.len(), rows.len(), "each slot enqueued once: {keys:?}");
    for row in &rows {
        assert_eq!(row.unique_key, Some(entry.slot_key(row.run_at)));
        assert_eq!(row.run_at % 1000, 0, "a slot is a whole second");
        assert_eq!(row.args, r#"{"from":"cron"}"#);
    }
    assert!(
        Scheduler::new(
            db.clone(),
            vec![CronJob {
                schedule: "not a schedule".into(),
                ..entry
            }]
        )
        .is_err()
    );
}

async fn admins_list_retry_and_cancel_over_rest(server: TestServer) {
    let db = &server.db;
    let admin = server.user_with_role("root", Role::Admin).await;
    let user = server.register("mallory").await;
    let waiting = put(
        db,
        NewJob::new("admin-test", json!({"n": 1}))
            .queue("t_admin")
            .delay(Duration::from_secs(3600)),
    )
    .await;
    let mut ids = vec![waiting];
    for n in 2..=5 {
        ids.push(
            put(
                db,
                NewJob::new("admin-test", json!({ "n": n }))
                    .queue("t_admin")
                    .delay(Duration::from_secs(3600)),
            )
            .await,
        );
    }
    // Non-admins and strangers are refused.
    server
        .call(reqwest::Method::GET, "/api/v1/admin/jobs", None, None)
        .await
        .expect_error(401, "unauthenticated");
    server
        .get("/api/v1/admin/jobs", &user.access_token)
        .await
        .expect_error(403, "forbidden");
    let path = format!("/api/v1/admin/jobs/{waiting}/cancel");
    server
        .post(&path, Some(&user.access_token), json!({}))
        .await
        .expect_error(403, "forbidden");
    let path = format!("/api/v1/admin/jobs/{waiting}/retry");
    server
        .post(&path, Some(&user.access_token), json!({}))
        .await
        .expect_error(403, "forbidden");
    assert!(in_state(db, waiting, State::Available).await);
    // Admins list, filtered and paginated (newest first).
    let listed = server
        .listed_ids(
            "/api/v1/admin/jobs?queue=t_admin&state=available",
            &admin.access_token,
        )
        .await;
    let mut newest_first: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    newest_first.reverse();
    assert_eq!(listed, newest_first);
    let (page, next) = server
        .read_page(
            "/api/v1/admin/jobs?queue=t_admin",
            &admin.access_token,
            2,
            None,
        )
        .await;
    assert_eq!(page.len(), 2);
    assert!(next.is_some());
    assert_eq!(page[0]["kind"], "admin-test");
    assert_eq!(page[0]["args"], json!({"n": 5}));
    assert_eq!(page[0]["state"], "available");
    server
        .get("/api/v1/admin/jobs?state=bogus", &admin.access_token)
        .await
        .expect_error(422, "validation_failed");
    // Cancel a waiting job; cancelling it again is a conflict; retry brings it back now.
    let cancelled = server
        .post(
            &format!("/api/v1/admin/jobs/{waiting}/cancel"),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    assert_eq!(cancelled.expect(200)["state"], "cancelled");
    server
        .post(
            &format!("/api/v1/admin/jobs/{waiting}/cancel"),
            Some(&admin.access_token),
            json!({}),
        )
        .await
        .expect_error(409, "conflict");
    let listed = server
        .listed_ids("/api/v1/admin/jobs?state=cancelled", &admin.access_token)
        .await;
    assert_eq!(listed, vec![waiting.to_string()]);
    let retried = server
        .post(
            &format!("/api/v1/admin/jobs/{waiting}/retry"),
            Some(&admin.access_token),
            json!({}),
        )
        .await;
    let body = retried.expect(200);
    assert_eq!(body["state"], "available");
    let row = job(db, waiting).await;
    assert!(row.run_at <= now_ms(), "a retried job is due now");
    server
        .post(
            &format!("/api/v1/admin/jobs/{}/retry", Uuid::now_v7()),
            Some(&admin.access_token),
            json!({}),
        )
        .await
        .expect_error(404, "not_found");
    // Counts per queue and state, as metrics read them.
    let counts = server
        .domain
        .jobs
        .counts(&fawkes_domain::Actor::System)
        .await
        .expect("counts");
    assert_eq!(counts["t_admin"]["available"], 5);
}

/// A second node over the same database, built as `fawkes serve` builds it: the handler
/// registered through `Server::jobs` runs the jobs of the configured queue, and the worker stops
/// with the server.
async fn the_server_runs_registered_handlers(server: TestServer) {
    let db = &server.db;
    let mut config = server.config.clone();
    config.jobs.queues = BTreeMap::from([("t_server".to_owned(), 2)]);
    config.jobs.poll_interval_ms = 50;
    let node = fawkes::server::Server::build(&config)
        .await
        .expect("second node builds");
    let ran = Arc::new(AtomicUsize::new(0));
    let seen = ran.clone();
    node.jobs.register_fn("served", move |_job| {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    let listener = fawkes::server::Server::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let shutdown = CancellationToken::new();
    let serving = tokio::spawn(node.serve(listener, shutdown.clone()));
    let id = put(db, NewJob::new("served", json!({})).queue("t_server")).await;
    wait_until("the node to run the job", Duration::from_secs(10), || {
        in_state(db, id, State::Completed)
    })
    .await;
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(20), serving)
        .await
        .expect("the node stops in time")
        .expect("task")
        .expect("served cleanly");
}

on_every_database!(
    the_server_runs_registered_handlers,
    retries_back_off_then_discard,
    panics_refusals_and_unknown_kinds,
    future_jobs_wait_for_run_at,
    unique_jobs_are_enqueued_once_per_window,
    lower_priority_runs_first,
    queue_concurrency_is_never_exceeded,
    jobs_follow_their_transaction,
    two_workers_run_each_job_exactly_once,
    an_expired_lease_is_run_again_elsewhere,
    shutdown_finishes_short_jobs_and_releases_long_ones,
    cron_slots_are_enqueued_once_across_nodes,
    admins_list_retry_and_cancel_over_rest,
);
