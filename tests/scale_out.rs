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
    let a = TestServer::start_with(Backend::Postgres, |c| c.pubsub = bus.clone()).await?;
    let shared = a.config.database_url.clone();
    let b = TestServer::start_with(Backend::Postgres, |c| {
        c.pubsub = bus.clone();
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

    longpoll_alternating(&a, &b, &ada.access_token).await;

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

/// A LongPoll session opened on A keeps working when its requests land on B.
async fn longpoll_alternating(a: &TestServer, b: &TestServer, access_token: &str) {
    let opened: serde_json::Value = a
        .client
        .get(format!(
            "{}/socket/longpoll?vsn=2.0.0&token={access_token}",
            a.base
        ))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(opened["status"], 410);
    let session = opened["token"].as_str().expect("token").to_owned();
    let post = |server: &TestServer, frame: serde_json::Value| {
        let request = server
            .client
            .post(format!(
                "{}/socket/longpoll?vsn=2.0.0&token={session}",
                server.base
            ))
            .header("content-type", "application/x-ndjson")
            .body(frame.to_string());
        async move {
            request
                .send()
                .await
                .expect("sent")
                .json::<serde_json::Value>()
                .await
                .expect("JSON")
        }
    };
    let poll = |server: &TestServer| {
        let request = server.client.get(format!(
            "{}/socket/longpoll?vsn=2.0.0&token={session}",
            server.base
        ));
        async move {
            request
                .send()
                .await
                .expect("sent")
                .json::<serde_json::Value>()
                .await
                .expect("JSON")
        }
    };
    assert_eq!(
        post(b, json!(["1", "1", "room:lobby", "phx_join", {}])).await,
        json!({"status": 200}),
        "a post through B"
    );
    // Polls alternate between the nodes until `wanted` shows up among the frames.
    let mut frames: Vec<serde_json::Value> = Vec::new();
    let mut on_b = true;
    let mut poll_until = async |wanted: &dyn Fn(&serde_json::Value) -> bool,
                                frames: &mut Vec<serde_json::Value>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !frames.iter().any(wanted) {
            assert!(
                Instant::now() < deadline,
                "never arrived through either node: {frames:?}"
            );
            let polled = poll(if on_b { b } else { a }).await;
            on_b = !on_b;
            assert!(
                polled["status"] == 200 || polled["status"] == 204,
                "{polled}"
            );
            for message in polled["messages"].as_array().cloned().unwrap_or_default() {
                frames.push(
                    serde_json::from_str(message.as_str().unwrap_or("null")).unwrap_or_default(),
                );
            }
        }
    };
    poll_until(
        &|f| f[3] == "phx_reply" && f[4]["status"] == "ok",
        &mut frames,
    )
    .await;
    let message = json!(["1", "2", "room:lobby", "new_msg", {"body": "lp across nodes"}]);
    assert_eq!(post(a, message).await, json!({"status": 200}));
    poll_until(
        &|f| f[3] == "new_msg" && f[4]["body"] == "lp across nodes",
        &mut frames,
    )
    .await;
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
