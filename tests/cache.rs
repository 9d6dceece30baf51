//! The caches across nodes: two servers on one PostgreSQL database joined by a bus, both with
//! warm caches. A logout on one is refused on the other, and a role change made on one is in
//! force on the other; a message posted, edited or deleted on one shows in the other's first page
//! of the room, and so does a new username; each within one second, and the caches were really
//! used.

mod common;

use std::time::{Duration, Instant};

use common::prom::Scrape;
use common::{Backend, TestServer};
use fawkes_domain::Role;
use serde_json::json;

/// Servers A and B on A's database and `bus`, with a cluster of their own.
async fn pair(bus: &str) -> Option<(TestServer, TestServer)> {
    let cluster = format!("cache_{}", uuid::Uuid::new_v4().simple());
    let (bus_a, cluster_a) = (bus.to_owned(), cluster.clone());
    let a = TestServer::start_with(Backend::Postgres, move |c| {
        c.pubsub = bus_a;
        c.cluster_name = cluster_a;
    })
    .await?;
    let (bus_b, shared) = (bus.to_owned(), a.config.database_url.clone());
    let b = TestServer::start_with(Backend::Postgres, move |c| {
        c.pubsub = bus_b;
        c.cluster_name = cluster;
        c.database_url = shared;
    })
    .await?;
    for server in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while server
            .call(reqwest::Method::GET, "/ready", None, None)
            .await
            .body["checks"]["bus"]
            != "ok"
        {
            assert!(Instant::now() < deadline, "the bus never became ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Some((a, b))
}

/// Checks every 10 ms until `reached` holds (at most 5 s); how long that took.
async fn until(what: &str, mut reached: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if reached().await {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what} never reached the other node"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Polls `path` on `server` as `token` until it answers `status`; how long that took.
async fn until_status(server: &TestServer, path: &str, token: &str, status: u16) -> Duration {
    until(&format!("{path} answering {status}"), async || {
        server.get(path, token).await.status.as_u16() == status
    })
    .await
}

async fn cache_hits(server: &TestServer) -> f64 {
    hits_of(server, "auth").await
}

async fn hits_of(server: &TestServer, cache: &str) -> f64 {
    let body = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    Scrape::parse(&body).get(
        "fawkes_cache_requests_total",
        &[("cache", cache), ("result", "hit")],
    )
}

async fn revocations_and_role_changes_reach_every_node(bus: &str) {
    let Some((a, b)) = pair(bus).await else {
        return;
    };
    let admin = a.user_with_role("root", Role::Admin).await;
    let ada = a.register("ada").await;
    let bob = a.register("bob").await;
    // Warm both caches with every token used below.
    for server in [&a, &b] {
        for _ in 0..3 {
            server
                .get("/api/v1/me", &ada.access_token)
                .await
                .expect(200);
            server
                .get("/api/v1/users", &bob.access_token)
                .await
                .expect_error(403, "forbidden");
            server
                .get("/api/v1/users", &admin.access_token)
                .await
                .expect(200);
        }
    }
    let hits_before = cache_hits(&b).await;
    assert!(
        hits_before >= 6.0,
        "B answered from its cache: {hits_before} hits"
    );

    // Logout on A: the session is refused on A at once and on B within a second.
    a.post("/api/v1/auth/logout", Some(&ada.access_token), json!({}))
        .await
        .expect(204);
    a.get("/api/v1/me", &ada.access_token)
        .await
        .expect_error(401, "session_revoked");
    let took = until_status(&b, "/api/v1/me", &ada.access_token, 401).await;
    assert!(
        took < Duration::from_secs(1),
        "revocation reached B after {took:?}"
    );
    b.get("/api/v1/me", &ada.access_token)
        .await
        .expect_error(401, "session_revoked");

    // Promotion on A: in force on B within a second; then demotion the same way.
    let promote = |role: &str| {
        let body = json!({ "role": role });
        let path = format!("/api/v1/users/{}", bob.user_id);
        let a = &a;
        let token = admin.access_token.clone();
        async move { a.patch(&path, &token, body).await.expect(200).clone() }
    };
    promote("admin").await;
    a.get("/api/v1/users", &bob.access_token).await.expect(200);
    let took = until_status(&b, "/api/v1/users", &bob.access_token, 200).await;
    assert!(
        took < Duration::from_secs(1),
        "the promotion reached B after {took:?}"
    );
    promote("user").await;
    a.get("/api/v1/users", &bob.access_token)
        .await
        .expect_error(403, "forbidden");
    let took = until_status(&b, "/api/v1/users", &bob.access_token, 403).await;
    assert!(
        took < Duration::from_secs(1),
        "the demotion reached B after {took:?}"
    );

    // Deactivation ends every session everywhere.
    a.patch(
        &format!("/api/v1/users/{}", bob.user_id),
        &admin.access_token,
        json!({"is_active": false}),
    )
    .await
    .expect(200);
    let took = until_status(&b, "/api/v1/me", &bob.access_token, 401).await;
    assert!(
        took < Duration::from_secs(1),
        "the deactivation reached B after {took:?}"
    );
    assert!(
        cache_hits(&b).await > hits_before,
        "the cache kept serving between changes"
    );
}

/// The lobby's first page on `server` as `token`: `(id, body, username)` of each message.
async fn first_page(server: &TestServer, token: &str) -> Vec<(String, String, String)> {
    let page = server
        .get("/api/v1/rooms/lobby/messages?limit=5", token)
        .await
        .expect(200)
        .clone();
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| {
            let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
            (
                text(&m["id"]),
                text(&m["body"]),
                text(&m["author"]["username"]),
            )
        })
        .collect()
}

/// Reads B's first page until `seen` holds for it; how long that took.
async fn until_page(
    server: &TestServer,
    token: &str,
    what: &str,
    seen: impl Fn(&[(String, String, String)]) -> bool,
) -> Duration {
    until(what, async || seen(&first_page(server, token).await)).await
}

async fn message_changes_reach_every_node(bus: &str) {
    let Some((a, b)) = pair(bus).await else {
        return;
    };
    let ada = a.register("ada").await;
    let token = ada.access_token.as_str();
    let first = a
        .create(
            "/api/v1/rooms/lobby/messages",
            token,
            json!({"body": "one"}),
        )
        .await;
    // Warm both nodes' caches of the lobby's first page, its room and its authors.
    for server in [&a, &b] {
        for _ in 0..3 {
            assert_eq!(first_page(server, token).await.len(), 1);
        }
    }
    let hits_before = hits_of(&b, "messages").await;
    assert!(
        hits_before >= 4.0,
        "B answered from its cache: {hits_before} hits"
    );

    let second = a
        .create(
            "/api/v1/rooms/lobby/messages",
            token,
            json!({"body": "two"}),
        )
        .await;
    let second_id = common::id_of(&second);
    assert_eq!(first_page(&a, token).await[0].0, second_id, "A at once");
    let took = until_page(&b, token, "the new message", |page| {
        page.first().is_some_and(|m| m.0 == second_id)
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "the message reached B after {took:?}"
    );

    a.patch(
        &format!("/api/v1/messages/{second_id}"),
        token,
        json!({"body": "two, edited"}),
    )
    .await
    .expect(200);
    let took = until_page(&b, token, "the edit", |page| {
        page.first().is_some_and(|m| m.1 == "two, edited")
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "the edit reached B after {took:?}"
    );

    a.delete(
        &format!("/api/v1/messages/{}", common::id_of(&first)),
        token,
    )
    .await
    .expect(204);
    let took = until_page(&b, token, "the deletion", |page| page.len() == 1).await;
    assert!(
        took < Duration::from_secs(1),
        "the deletion reached B after {took:?}"
    );

    // A new name shows next to every message on both nodes.
    let actor = a
        .domain
        .accounts
        .authenticate(token)
        .await
        .expect("ada's token");
    a.domain
        .accounts
        .change_username(
            &actor,
            fawkes_domain::accounts::ChangeUsername {
                username: "ada_renamed".into(),
            },
        )
        .await
        .expect("rename");
    assert_eq!(first_page(&a, token).await[0].2, "ada_renamed", "A at once");
    let took = until_page(&b, token, "the new name", |page| {
        page.iter().all(|m| m.2 == "ada_renamed")
    })
    .await;
    assert!(
        took < Duration::from_secs(1),
        "the name reached B after {took:?}"
    );
    assert!(
        hits_of(&b, "messages").await > hits_before,
        "the cache kept serving between changes"
    );
    assert!(hits_of(&b, "authors").await > 0.0, "authors were cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_postgres_bus() {
    revocations_and_role_changes_reach_every_node("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_over_the_postgres_bus() {
    message_changes_reach_every_node("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_redis_bus() {
    let Some(url) = std::env::var("FAWKES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: FAWKES_TEST_REDIS_URL is not set");
        return;
    };
    revocations_and_role_changes_reach_every_node(&url).await;
}
