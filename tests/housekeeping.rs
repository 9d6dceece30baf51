//! Housekeeping job kinds on every database, run by the server's own worker: each deletes only
//! what is past its retention.

mod common;

use std::time::Duration;

use common::TestServer;
use fawkes_data::entity::{job, notification, refresh_token, session};
use fawkes_domain::housekeeping::{PRUNE_JOBS, PRUNE_NOTIFICATIONS, PURGE_SESSIONS};
use fawkes_jobs::{Jobs, NewJob, State, enqueue};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde_json::json;
use uuid::Uuid;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn purge_sessions_removes_only_old_expired_or_revoked_ones(server: TestServer) {
    let ada = server.register("ada").await;
    for _ in 0..3 {
        server.login("ada", None).await.expect(200);
    }
    let user_id = Uuid::parse_str(&ada.user_id).expect("uuid");
    let sessions = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .order_by_asc(session::Column::CreatedAt)
        .order_by_asc(session::Column::Id)
        .all(&server.db)
        .await
        .expect("sessions");
    assert_eq!(sessions.len(), 4);
    let now = now_ms();
    let change = |row: &session::Model, expires: Option<i64>, revoked: Option<i64>| {
        let mut active: session::ActiveModel = row.clone().into();
        if let Some(at) = expires {
            active.expires_at = Set(at);
        }
        if let Some(at) = revoked {
            active.revoked_at = Set(Some(at));
        }
        active
    };
    // Expired ten days ago; revoked ten days ago; expired yesterday; open.
    change(&sessions[0], Some(now - 10 * DAY_MS), None)
        .update(&server.db)
        .await
        .expect("update");
    change(&sessions[1], None, Some(now - 10 * DAY_MS))
        .update(&server.db)
        .await
        .expect("update");
    change(&sessions[2], Some(now - DAY_MS), None)
        .update(&server.db)
        .await
        .expect("update");

    server.run_job(PURGE_SESSIONS, json!({})).await;

    let left: Vec<Uuid> = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .all(&server.db)
        .await
        .expect("sessions")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert!(!left.contains(&sessions[0].id) && !left.contains(&sessions[1].id));
    assert!(left.contains(&sessions[2].id) && left.contains(&sessions[3].id));
    let orphans = refresh_token::Entity::find()
        .filter(refresh_token::Column::SessionId.is_in([sessions[0].id, sessions[1].id]))
        .count(&server.db)
        .await
        .expect("count");
    assert_eq!(orphans, 0, "their refresh tokens went with them");
    // The open session still works.
    server.get("/api/v1/me", &ada.access_token).await;
}

async fn prune_jobs_removes_only_old_finished_jobs_without_a_held_key(server: TestServer) {
    let now = now_ms();
    let mut ids = Vec::new();
    for n in 0..5 {
        let mut job = NewJob::new("t_never_run", json!({ "n": n })).queue("t_housekeeping");
        if n == 3 {
            job = job.unique("held-key", Duration::from_secs(3600));
        }
        ids.push(
            enqueue(&server.db, job)
                .await
                .expect("enqueue")
                .expect("new"),
        );
    }
    let finish = |id: Uuid, state: State, at: i64| {
        let db = server.db.clone();
        async move {
            job::Entity::update_many()
                .col_expr(job::Column::State, Expr::value(state.as_str()))
                .col_expr(job::Column::CompletedAt, Expr::value(at))
                .filter(job::Column::Id.eq(id))
                .exec(&db)
                .await
                .expect("update");
        }
    };
    finish(ids[0], State::Completed, now - 10 * DAY_MS).await;
    finish(ids[1], State::Completed, now - 3600 * 1000).await;
    // ids[2] waits (available).
    finish(ids[3], State::Discarded, now - 10 * DAY_MS).await;
    finish(ids[4], State::Cancelled, now - 10 * DAY_MS).await;

    server.run_job(PRUNE_JOBS, json!({})).await;

    let jobs = Jobs::new(server.db.clone());
    let exists = |id: Uuid| {
        let jobs = jobs.clone();
        async move { jobs.get(id).await.is_ok() }
    };
    assert!(!exists(ids[0]).await, "old completed job pruned");
    assert!(exists(ids[1]).await, "recent completed job kept");
    assert!(exists(ids[2]).await, "waiting job kept");
    assert!(exists(ids[3]).await, "job holding its unique key kept");
    assert!(!exists(ids[4]).await, "old cancelled job pruned");
}

async fn prune_notifications_removes_only_old_read_ones(server: TestServer) {
    let ada = server.register("ada").await;
    let bob = server.register("bob").await;
    let ada_id = Uuid::parse_str(&ada.user_id).expect("uuid");
    let bob_id = Uuid::parse_str(&bob.user_id).expect("uuid");
    let now = now_ms();
    let mut ids = Vec::new();
    for (n, read_at) in [Some(now - 40 * DAY_MS), Some(now - DAY_MS), None]
        .into_iter()
        .enumerate()
    {
        let id = Uuid::now_v7();
        notification::ActiveModel {
            id: Set(id),
            user_id: Set(ada_id),
            kind: Set("mention".to_owned()),
            actor_id: Set(bob_id),
            source_kind: Set("comment".to_owned()),
            source_id: Set(Uuid::now_v7()),
            room_slug: Set(None),
            post_id: Set(None),
            video_id: Set(Some("v1".to_owned())),
            preview: Set(format!("hi @ada {n}")),
            event_key: Set(format!("test:{n}")),
            read_at: Set(read_at),
            created_at: Set(now - 100 * DAY_MS),
        }
        .insert(&server.db)
        .await
        .expect("insert");
        ids.push(id);
    }

    server
        .run_job(
            PRUNE_NOTIFICATIONS,
            json!({ "retention_secs": 30 * 24 * 3600 }),
        )
        .await;

    let left: Vec<Uuid> = notification::Entity::find()
        .filter(notification::Column::UserId.eq(ada_id))
        .all(&server.db)
        .await
        .expect("rows")
        .into_iter()
        .map(|n| n.id)
        .collect();
    assert!(!left.contains(&ids[0]), "read 40 days ago: pruned");
    assert!(left.contains(&ids[1]), "read yesterday: kept");
    assert!(left.contains(&ids[2]), "unread, however old: kept");
}

/// The defaults schedule every housekeeping kind and the sinks' reconciliation.
#[test]
fn housekeeping_is_scheduled_by_default() {
    let config = fawkes::Config::default();
    let kinds: Vec<&str> = config.jobs.cron.iter().map(|c| c.kind.as_str()).collect();
    for kind in [
        PURGE_SESSIONS,
        PRUNE_JOBS,
        PRUNE_NOTIFICATIONS,
        fawkes_sync::RECONCILE_KIND,
    ] {
        assert!(kinds.contains(&kind), "{kind} is not scheduled: {kinds:?}");
    }
    assert!(fawkes_jobs::check_cron(&config.jobs.cron).is_ok());
}

on_every_database!(
    purge_sessions_removes_only_old_expired_or_revoked_ones,
    prune_jobs_removes_only_old_finished_jobs_without_a_held_key,
    prune_notifications_removes_only_old_read_ones,
);
