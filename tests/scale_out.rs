//! Two Fawkes servers sharing one PostgreSQL database and joined by a bus (PostgreSQL, Redis or
//! NATS): what happens on one reaches the sockets of the other. In-process here; the cluster
//! suite with separate processes builds on the same buses.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use serde_json::json;

/// Servers A and B on A's database, both on `bus`.
async fn pair(bus: &str) -> Option<(TestServer, TestServer)> {
    let bus = bus.to_owned();
    // A cluster of its own, so no other test's nodes share the bus.
    let cluster = format!("scale_out_{}", uuid::Uuid::new_v4().simple());
    let a = TestServer::start_with(Backend::Postgres, |c| {
        c.pubsub = bus.clone();
        c.cluster_name = cluster.clone();
    })
    .await?;
    let shared = a.config.database_url.clone();
    let b = TestServer::start_with(Backend::Postgres, |c| {
        c.pubsub = bus.clone();
        c.cluster_name = cluster.clone();
        c.database_url = shared.clone();
    })
    .await?;
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = server
                .call(reqwest::Method::GET, "/ready", None, None)
                .await;
            if ready.body["checks"]["bus"] == "ok" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the bus never became ready: {}",
                ready.body
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Some((a, b))
}

async fn across_nodes(bus: &str) {
    let Some((a, b)) = pair(bus).await else {
        return;
    };
    let ada = a.register("ada").await;
    let mut on_b = b.socket(&ada.access_token).await;
    on_b.send(json!(["1", "1", "room:lobby", "phx_join", {}]))
        .await;
    assert_eq!(on_b.next_json().await[4]["status"], "ok");

    // A lists both nodes, with B's socket counted on B.
    let admin = a.user_with_role("root", fawkes_domain::Role::Admin).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let nodes = a.get("/api/v1/admin/nodes", &admin.access_token).await;
        let nodes = nodes.expect(200).as_array().cloned().unwrap_or_default();
        let other = nodes.iter().find(|n| n["this"] == false).cloned();
        if nodes.len() == 2 && other.is_some_and(|n| n["info"]["connections"] == 1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A never listed B with its socket: {nodes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.get("/api/v1/admin/nodes", &ada.access_token)
        .await
        .expect_error(403, "forbidden");

    // Presence replicates: node A lists the connection ada holds on node B.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let listed = a
            .get("/api/v1/rooms/lobby/presence", &ada.access_token)
            .await;
        if listed.body.get(&ada.user_id).is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "A never saw B's presence: {}",
            listed.body
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let posted = a
        .post(
            "/api/v1/rooms/lobby/messages",
            Some(&ada.access_token),
            json!({"body": "from A"}),
        )
        .await;
    let stored = posted.expect(201).clone();
    let mut frame = on_b.next_json().await;
    while frame[3] == "presence_diff" || frame[3] == "presence_state" {
        frame = on_b.next_json().await;
    }
    assert_eq!(frame, json!([null, null, "room:lobby", "new_msg", stored]));
    let next = on_b.heartbeat("hb").await;
    assert_eq!(next[1], "hb", "the message arrived exactly once: {next}");

    common::longpoll_across(&[a.base.clone(), b.base.clone()], &ada.access_token).await;

    // Logging out on A disconnects the socket on B.
    a.call(
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(&ada.access_token),
        None,
    )
    .await
    .expect(204);
    assert_eq!(on_b.closed().await, Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bus_joins_two_servers() {
    across_nodes("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_bus_joins_two_servers() {
    let Some(url) = std::env::var("FAWKES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: FAWKES_TEST_REDIS_URL is not set");
        return;
    };
    across_nodes(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_bus_joins_two_servers() {
    let Some(url) = std::env::var("FAWKES_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: FAWKES_TEST_NATS_URL is not set");
        return;
    };
    across_nodes(&url).await;
}
