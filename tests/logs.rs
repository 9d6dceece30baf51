//! The log of a real server process at trace level (everything, dependencies included), in JSON: every line is JSON, the lines of a
//! request carry its request id, the lines of a connection its socket id, and no password,
//! token or signing key ever appears.

mod common;

use std::time::Duration;

use base64::Engine;
use common::process::ServerProcess;
use common::socket::connect_raw;
use serde_json::{Value, json};

const SECRET: &str = "log-test-signing-secret-0123456789abcdef";
const PASSWORD: &str = "a password nobody may log";

async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (reqwest::header::HeaderMap, Value) {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers().clone();
    (headers, response.json().await.unwrap_or(Value::Null))
}

fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_owned()
}

/// The spans a JSON line was logged in, by name.
fn span<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["spans"].as_array()?.iter().find(|s| s["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_carry_ids_and_never_a_secret() {
    let mut server = ServerProcess::start(&[
        ("FAWKES_SECRET_KEY", SECRET),
        ("FAWKES_LOG__FORMAT", "json"),
        ("FAWKES_LOG__LEVEL", "trace"),
    ])
    .await;
    fawkes_sync::install_crypto_provider();
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{}/api/v1{path}", server.base);

    let (_, registered) = post(
        &client,
        api("/auth/register"),
        None,
        json!({"email": "ada@example.com", "username": "ada", "password": PASSWORD}),
    )
    .await;
    let (login_headers, logged_in) = post(
        &client,
        api("/auth/login"),
        None,
        json!({"login": "ada", "password": PASSWORD, "device_id": "laptop", "device_name": "Ada's laptop"}),
    )
    .await;
    let login_request_id = login_headers["x-request-id"]
        .to_str()
        .expect("request id")
        .to_owned();
    let (_, refreshed) = post(
        &client,
        api("/auth/refresh"),
        None,
        json!({"refresh_token": text(&logged_in["refresh_token"])}),
    )
    .await;
    // A wrong password and a reused refresh token (which ends that session) are logged as
    // failures, without the values.
    let wrong = client
        .post(api("/auth/login"))
        .json(&json!({"login": "ada", "password": format!("{PASSWORD}!")}))
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    let reused = client
        .post(api("/auth/refresh"))
        .json(&json!({"refresh_token": text(&logged_in["refresh_token"])}))
        .send()
        .await
        .expect("sent");
    assert_eq!(reused.status(), 401);
    let (_, again) = post(
        &client,
        api("/auth/login"),
        None,
        json!({"login": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    let access = text(&again["access_token"]);
    let me = client
        .get(api("/me"))
        .bearer_auth(&access)
        .send()
        .await
        .expect("sent");
    assert_eq!(me.status(), 200);

    // Sockets: the token in the query (as phoenix.js `params`) and in the protocol header (as
    // its `authToken` option), then LongPoll with the token in the URL.
    let ws = server.base.replacen("http://", "ws://", 1);
    let mut by_query = connect_raw(
        &format!("{ws}/socket/websocket?token={access}&vsn=2.0.0"),
        &[],
    )
    .await
    .expect("socket by query");
    let joined = by_query.join("room:lobby", "1", json!({})).await;
    assert_eq!(joined[4]["status"], "ok", "{joined}");
    by_query
        .send(json!(["1", "2", "room:lobby", "new_msg", {"body": "logged?"}]))
        .await;
    let encoded =
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(text(&again["access_token"]));
    let protocols = format!("phoenix, base64url.bearer.phx.{encoded}");
    let by_header = connect_raw(
        &format!("{ws}/socket/websocket?vsn=2.0.0"),
        &[("sec-websocket-protocol", &protocols)],
    )
    .await
    .expect("socket by header");
    let polled: Value = client
        .get(format!(
            "{}/socket/longpoll?vsn=2.0.0&token={access}",
            server.base
        ))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(polled["status"], 410);
    let longpoll_session = text(&polled["token"]);
    by_query.close().await;
    by_header.close().await;
    post(&client, api("/auth/logout"), Some(&access), json!({})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.terminate();
    assert!(server.exit_status(Duration::from_secs(20)).await.success());

    let log = server.log();
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(
        lines.len() > 20,
        "too little was logged to prove anything:\n{log}"
    );

    let secrets = [
        ("the password", PASSWORD.to_owned()),
        ("the signing secret", SECRET.to_owned()),
        (
            "the registration access token",
            text(&registered["access_token"]),
        ),
        (
            "the registration refresh token",
            text(&registered["refresh_token"]),
        ),
        ("the login access token", text(&logged_in["access_token"])),
        ("the login refresh token", text(&logged_in["refresh_token"])),
        (
            "the refreshed access token",
            text(&refreshed["access_token"]),
        ),
        ("the second login's access token", access.clone()),
        (
            "the refreshed refresh token",
            text(&refreshed["refresh_token"]),
        ),
        (
            "the second login's refresh token",
            text(&again["refresh_token"]),
        ),
        ("the base64 socket token", encoded.clone()),
        ("the LongPoll session token", longpoll_session),
    ];
    for (what, secret) in &secrets {
        assert!(!log.contains(secret.as_str()), "{what} was logged");
    }
    // Not even a fragment of a token: the JWT signature is its most secret part.
    let signature = access.rsplit('.').next().expect("signature");
    assert!(
        !log.contains(signature),
        "part of an access token was logged"
    );

    // Every line logged inside a request carries that request's id.
    let mut in_requests = 0;
    for line in &lines {
        if let Some(http) = span(line, "http") {
            in_requests += 1;
            let id = http["request_id"].as_str().unwrap_or_default();
            assert_eq!(
                id.len(),
                36,
                "a request line without its request id: {line}"
            );
        }
    }
    assert!(in_requests >= 10, "{in_requests} lines inside requests");
    assert!(
        lines
            .iter()
            .any(|l| span(l, "http").is_some_and(|s| s["request_id"] == login_request_id.as_str())),
        "the id answered in x-request-id is the one in the log"
    );

    // Every line of a connection carries its socket id, and the two sockets have different ones.
    let mut socket_ids = std::collections::BTreeSet::new();
    for line in &lines {
        if let Some(socket) = span(line, "socket") {
            let id = socket["socket_id"].as_str().unwrap_or_default();
            assert_eq!(
                id.len(),
                16,
                "a connection line without its socket id: {line}"
            );
            socket_ids.insert(id.to_owned());
        }
    }
    let joined_line = lines
        .iter()
        .find(|l| l["fields"]["message"] == "channel joined")
        .expect("the join is logged at debug level");
    assert!(span(joined_line, "socket").is_some(), "{joined_line}");
    assert!(
        span(joined_line, "http").is_some(),
        "the request that opened the socket: {joined_line}"
    );
    assert_eq!(
        socket_ids.len(),
        3,
        "two WebSockets and one LongPoll session: {socket_ids:?}"
    );
}
