//! The LongPoll transport (spec §4): sessions, ndjson posts, held polls, expiry.

mod common;

use std::time::{Duration, Instant};

use common::{Backend, TestServer};
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start_with(Backend::Sqlite, |c| c.socket.longpoll_window_secs = 1)
        .await
        .expect("sqlite always runs")
}

fn url(s: &TestServer, query: &str) -> String {
    format!("{}/socket/longpoll?{query}", s.base)
}

async fn get(s: &TestServer, query: &str) -> Value {
    let response = s
        .client
        .get(url(s, query))
        .header("accept", "application/json")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200, "LongPoll always answers HTTP 200");
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    response.json().await.expect("JSON body")
}

async fn post(s: &TestServer, query: &str, lines: &[Value]) -> Value {
    let body = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let response = s
        .client
        .post(url(s, query))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON body")
}

/// Opens a session the way phoenix.js does and returns its token.
async fn open(s: &TestServer, access_token: &str) -> String {
    // The app's token travels as the `authToken` header on LongPoll (or as a `token` param).
    let response = s
        .client
        .get(url(s, "vsn=2.0.0"))
        .header("x-phoenix-authtoken", access_token)
        .send()
        .await
        .expect("sent");
    let opened: Value = response.json().await.expect("JSON");
    assert_eq!(opened["status"], 410);
    assert_eq!(opened["messages"], json!([]));
    opened["token"].as_str().expect("session token").to_owned()
}

/// Every frame the session has for us within one poll, decoded.
async fn frames(s: &TestServer, session: &str) -> Vec<Value> {
    let polled = get(s, &format!("vsn=2.0.0&token={session}")).await;
    assert_eq!(polled["status"], 200, "{polled}");
    polled["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            serde_json::from_str(m.as_str().expect("each message is a string"))
                .expect("an encoded frame")
        })
        .collect()
}

#[tokio::test]
async fn a_session_joins_posts_and_receives_through_polls() {
    let s = server().await;
    let ada = s.register("ada").await;
    let session = open(&s, &ada.access_token).await;
    let query = format!("vsn=2.0.0&token={session}");
    let posted = post(
        &s,
        &query,
        &[
            json!(["1", "1", "room:lobby", "phx_join", {}]),
            json!(["1", "2", "room:lobby", "new_msg", {"body": "over longpoll"}]),
        ],
    )
    .await;
    assert_eq!(posted, json!({"status": 200}));
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend(frames(&s, &session).await);
    }
    assert_eq!(
        got[0][3], "phx_reply",
        "the join reply comes first: {got:?}"
    );
    assert_eq!(got[0][4]["status"], "ok");
    assert!(
        got.iter()
            .any(|f| f[3] == "new_msg" && f[4]["body"] == "over longpoll"),
        "{got:?}"
    );
    assert!(
        got.iter().any(|f| f[1] == "2" && f[4]["status"] == "ok"),
        "{got:?}"
    );

    // A message posted over REST arrives on the next poll.
    s.post(
        "/api/v1/rooms/lobby/messages",
        Some(&ada.access_token),
        json!({"body": "from REST"}),
    )
    .await
    .expect(201);
    let next = frames(&s, &session).await;
    assert_eq!(
        next.first().map(|f| f[4]["body"].clone()),
        Some(json!("from REST"))
    );
}

#[tokio::test]
async fn an_idle_poll_answers_204_and_unknown_sessions_410() {
    let s = server().await;
    let ada = s.register("ada").await;
    let session = open(&s, &ada.access_token).await;
    let idle = get(&s, &format!("vsn=2.0.0&token={session}")).await;
    assert_eq!(
        idle,
        json!({"status": 204, "token": session, "messages": []})
    );
    let gone = get(&s, "vsn=2.0.0&token=lp.no-such-session").await;
    assert_eq!(
        gone["status"], 410,
        "a session token that is not live: start over"
    );
    // The app's own `token` param beside the session token is not mistaken for it.
    let both = get(
        &s,
        &format!("token={}&vsn=2.0.0&token={session}", ada.access_token),
    )
    .await;
    assert_eq!(both["status"], 204);
    let gone = post(
        &s,
        "vsn=2.0.0&token=no-such-session",
        &[json!([null, "1", "phoenix", "heartbeat", {}])],
    )
    .await;
    assert_eq!(gone, json!({"status": 410}));
    let malformed = s
        .client
        .post(url(&s, &format!("vsn=2.0.0&token={session}")))
        .header("content-type", "application/x-ndjson")
        .body("not a frame")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        malformed.json::<Value>().await.ok(),
        Some(json!({"status": 400}))
    );
}

#[tokio::test]
async fn refused_connects_and_bad_versions_answer_403() {
    let s = server().await;
    assert_eq!(get(&s, "vsn=2.0.0").await, json!({"status": 403}));
    let ada = s.register("ada").await;
    assert_eq!(
        get(&s, &format!("vsn=9.9.9&token={}", ada.access_token)).await["status"],
        403
    );
}

#[tokio::test]
async fn a_session_without_polls_expires_and_leaves_its_channels() {
    let s = server().await;
    let ada = s.register("ada").await;
    let session = open(&s, &ada.access_token).await;
    post(
        &s,
        &format!("vsn=2.0.0&token={session}"),
        &[json!(["1", "1", "room:lobby", "phx_join", {}])],
    )
    .await;
    let joined = || {
        s.endpoint
            .stats()
            .joined_channels
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(joined(), 1);
    // With a 1 s window the session ends 1.5 s after its last poll; wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while joined() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(joined(), 0, "the expired session left its channel");
    assert_eq!(
        get(&s, &format!("vsn=2.0.0&token={session}")).await["status"],
        410
    );
}

#[tokio::test]
async fn preflight_allows_any_origin() {
    let s = server().await;
    let response = s
        .client
        .request(reqwest::Method::OPTIONS, url(&s, "vsn=2.0.0"))
        .header("origin", "https://elsewhere.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-phoenix-authtoken",
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(
        header("access-control-allow-methods").as_deref(),
        Some("get, post, options")
    );
    assert_eq!(
        header("access-control-allow-headers").as_deref(),
        Some("content-type,x-phoenix-authtoken")
    );
}
