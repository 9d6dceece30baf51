//! HTTP rate limits: auth attempts per client IP, REST writes per user, presence updates per
//! socket; per node in memory, or across nodes through Redis. (The per-socket event limit is in
//! `channels.rs`: `flooding_pushes_are_refused_then_disconnected`.)

mod common;

use std::time::Duration;

use common::{Backend, Reply, TestServer, password_of};
use fawkes_domain::accounts::CreateUser;
use fawkes_domain::{Actor, Role};
use serde_json::json;

async fn create_user(s: &TestServer, name: &str) {
    let input = CreateUser {
        email: format!("{name}@example.com"),
        username: name.to_owned(),
        password: password_of(name),
        role: Some(Role::User),
    };
    s.domain
        .accounts
        .create_user(&Actor::System, input)
        .await
        .expect("user created");
}

/// A login attempt for `name` from `forwarded_for` (sent as `X-Forwarded-For` when given).
async fn login_from(
    s: &TestServer,
    name: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Reply {
    let mut request = s
        .client
        .post(format!("{}/api/v1/auth/login", s.base))
        .json(&json!({"login": name, "password": password}));
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    let response = request.send().await.expect("sent");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// Asserts a 429 envelope with a `Retry-After` of 1 to `max` seconds, and returns it.
#[track_caller]
fn expect_limited(reply: &Reply, max: u64) -> u64 {
    reply.expect_error(429, "rate_limited");
    let retry_after: u64 = reply.headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After");
    assert!(
        (1..=max).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(
        reply.body["error"]["details"]["retry_after_secs"],
        retry_after
    );
    retry_after
}

async fn scrape_limited(s: &TestServer, limit: &str) -> f64 {
    let body = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    common::prom::Scrape::parse(&body)
        .value("fawkes_rate_limited_total", &[("limit", limit)])
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brute_force_login_is_refused_per_address_and_the_limit_resets() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.rate_limit.auth_attempts = 3;
        c.rate_limit.auth_period_secs = 2;
    })
    .await
    else {
        return;
    };
    create_user(&s, "ada").await;
    for _ in 0..3 {
        login_from(&s, "ada", "guess", None)
            .await
            .expect_error(401, "invalid_credentials");
    }
    expect_limited(&login_from(&s, "ada", "guess", None).await, 2);
    // Refused before the password is even looked at: the right one does not get through either.
    let right = password_of("ada");
    expect_limited(&login_from(&s, "ada", &right, None).await, 2);
    // Without a trusted proxy a client cannot dodge the limit by naming another address.
    expect_limited(&login_from(&s, "ada", &right, Some("203.0.113.7")).await, 2);
    // Registration and refresh count against the same address.
    let register = s
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "x@example.com", "username": "x", "password": "long enough pw"}),
        )
        .await;
    expect_limited(&register, 2);
    assert_eq!(scrape_limited(&s, "auth").await, 4.0);

    // After the period the whole allowance is back.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    login_from(&s, "ada", &right, None).await.expect(200);
    login_from(&s, "ada", "guess", None)
        .await
        .expect_error(401, "invalid_credentials");
    login_from(&s, "ada", "guess", None)
        .await
        .expect_error(401, "invalid_credentials");
    expect_limited(&login_from(&s, "ada", &right, None).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_address_has_its_own_allowance() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.rate_limit.auth_attempts = 2;
        c.rate_limit.auth_period_secs = 60;
        c.rate_limit.trust_forwarded_for = true;
    })
    .await
    else {
        return;
    };
    create_user(&s, "ada").await;
    let attacker = Some("198.51.100.1");
    login_from(&s, "ada", "guess", attacker).await.expect(401);
    login_from(&s, "ada", "guess", attacker).await.expect(401);
    expect_limited(&login_from(&s, "ada", "guess", attacker).await, 60);
    // The proxy appends the address it saw; whatever the client put before it does not count.
    expect_limited(
        &login_from(&s, "ada", "guess", Some("192.0.2.55, 198.51.100.1")).await,
        60,
    );
    // Someone else behind the same proxy is not locked out.
    login_from(&s, "ada", &password_of("ada"), Some("198.51.100.2"))
        .await
        .expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_writes_are_limited_per_user_and_reads_are_not() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.rate_limit.writes = 3;
        c.rate_limit.writes_period_secs = 2;
    })
    .await
    else {
        return;
    };
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let post = |token: String, n: u32| {
        let s = &s;
        async move {
            s.post(
                "/api/v1/rooms/lobby/messages",
                Some(&token),
                json!({"body": format!("message {n}")}),
            )
            .await
        }
    };
    for n in 0..3 {
        post(ada.access_token.clone(), n).await.expect(201);
    }
    expect_limited(&post(ada.access_token.clone(), 3).await, 2);
    // Other users write on; reads are never limited.
    post(bob.access_token.clone(), 0).await.expect(201);
    for _ in 0..10 {
        s.get("/api/v1/rooms/lobby/messages", &ada.access_token)
            .await
            .expect(200);
    }
    assert_eq!(scrape_limited(&s, "write").await, 1.0);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    post(ada.access_token.clone(), 4).await.expect(201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_updates_are_limited_per_socket() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.socket.presence_updates_per_second = 1;
        c.socket.presence_update_burst = 2;
    })
    .await
    else {
        return;
    };
    let ada = s.register("ada").await;
    let mut socket = s.socket(&ada.access_token).await;
    assert_eq!(
        socket.join("room:lobby", "1", json!({})).await[4]["status"],
        "ok"
    );
    let mut reasons = Vec::new();
    for n in 0..4 {
        let msg_ref = format!("u{n}");
        socket
            .send(json!(["1", msg_ref, "room:lobby", "presence_update", {"status": "away"}]))
            .await;
        let reply = socket.next_json().await;
        assert_eq!(reply[1], msg_ref.as_str(), "{reply}");
        reasons.push(
            reply[4]["response"]["reason"]
                .as_str()
                .unwrap_or("ok")
                .to_owned(),
        );
    }
    assert_eq!(reasons, ["ok", "ok", "rate_limited", "rate_limited"]);
    // Another socket of the same user has its own allowance.
    let mut other = s.socket(&ada.access_token).await;
    assert_eq!(
        other.join("room:lobby", "1", json!({})).await[4]["status"],
        "ok"
    );
    other
        .send(json!(["1", "x", "room:lobby", "presence_update", {"status": "busy"}]))
        .await;
    assert_eq!(other.next_json().await[4]["status"], "ok");
    assert_eq!(scrape_limited(&s, "presence").await, 2.0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    socket
        .send(json!(["1", "later", "room:lobby", "presence_update", {"status": "online"}]))
        .await;
    assert_eq!(socket.next_json().await[4]["status"], "ok");
}

/// With Redis, two nodes share one count per address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_the_limit_holds_across_nodes() {
    let Some(url) = std::env::var("FAWKES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: FAWKES_TEST_REDIS_URL is not set");
        return;
    };
    // Its own cluster name: counts of other runs and tests never mix with this one.
    let cluster = format!("rl{}x{}", std::process::id(), rand_suffix());
    let start = || {
        let (url, cluster) = (url.clone(), cluster.clone());
        TestServer::start_with(Backend::Sqlite, move |c| {
            c.rate_limit.auth_attempts = 3;
            c.rate_limit.auth_period_secs = 3;
            c.rate_limit.redis_url = Some(url);
            c.cluster_name = cluster;
        })
    };
    let (Some(a), Some(b)) = (start().await, start().await) else {
        return;
    };
    create_user(&a, "ada").await;
    create_user(&b, "ada").await;
    login_from(&a, "ada", "guess", None).await.expect(401);
    login_from(&b, "ada", "guess", None).await.expect(401);
    login_from(&a, "ada", "guess", None).await.expect(401);
    // The fourth attempt is refused on whichever node it lands.
    let wait = expect_limited(&login_from(&b, "ada", &password_of("ada"), None).await, 3);
    expect_limited(&login_from(&a, "ada", &password_of("ada"), None).await, 3);
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    login_from(&b, "ada", &password_of("ada"), None)
        .await
        .expect(200);
}

/// Without an answering Redis, each node still limits on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_falls_back_to_counting_on_the_node() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.rate_limit.auth_attempts = 2;
        c.rate_limit.auth_period_secs = 60;
        c.rate_limit.redis_url = Some("redis://127.0.0.1:1".to_owned());
    })
    .await
    else {
        return;
    };
    create_user(&s, "ada").await;
    login_from(&s, "ada", "guess", None).await.expect(401);
    login_from(&s, "ada", "guess", None).await.expect(401);
    expect_limited(&login_from(&s, "ada", "guess", None).await, 60);
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}
