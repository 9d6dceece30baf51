//! SIGTERM to a real server process: it stops accepting, closes live sockets with 1012 spread
//! over the drain window, ends LongPoll sessions, lets a request that is half-way through finish,
//! and exits 0 before its deadline.

mod common;

use std::time::{Duration, Instant};

use common::process::ServerProcess;
use common::socket::connect_raw;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WINDOW_SECS: u64 = 2;
const DEADLINE_SECS: u64 = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_sockets_finishes_requests_and_exits_zero() {
    let window = WINDOW_SECS.to_string();
    let deadline = DEADLINE_SECS.to_string();
    let mut server = ServerProcess::start(&[
        (
            "FAWKES_SECRET_KEY",
            "drain-test-signing-secret-0123456789abcdef",
        ),
        ("FAWKES_SHUTDOWN__DRAIN_WINDOW_SECS", &window),
        ("FAWKES_SHUTDOWN__DEADLINE_SECS", &deadline),
    ])
    .await;
    let client = reqwest::Client::new();
    let token = register_ada(&client, &server.base).await;

    let ws = server.base.replacen("http://", "ws://", 1);
    let mut sockets = Vec::new();
    for _ in 0..4 {
        let mut socket = connect_raw(
            &format!("{ws}/socket/websocket?token={token}&vsn=2.0.0"),
            &[],
        )
        .await
        .expect("socket");
        assert_eq!(
            socket.join("room:lobby", "1", json!({})).await[4]["status"],
            "ok"
        );
        sockets.push(socket);
    }

    // A LongPoll session with a poll waiting on it.
    let longpoll = |session: Option<&str>| {
        let mut url = format!("{}/socket/longpoll?vsn=2.0.0&token={token}", server.base);
        if let Some(session) = session {
            url = format!("{}/socket/longpoll?vsn=2.0.0&token={session}", server.base);
        }
        client.get(url).send()
    };
    let opened: Value = longpoll(None)
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let session = opened["token"].as_str().expect("session").to_owned();
    let waiting_poll = tokio::spawn(longpoll(Some(&session)));

    // A request in flight: headers and half of the body are sent, the rest comes after SIGTERM.
    let body = json!({"login": "ada", "password": "a long password"}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{first}",
        body.len()
    );
    slow.write_all(head.as_bytes())
        .await
        .expect("half a request");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let terminated = Instant::now();
    server.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // No new connections: the listener is closed (or, on a connection still open, 503).
    let refused = connect_raw(
        &format!("{ws}/socket/websocket?token={token}&vsn=2.0.0"),
        &[],
    )
    .await;
    assert!(refused.is_err(), "a socket opened during the drain");
    slow.write_all(rest.as_bytes())
        .await
        .expect("the rest of the request");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut answer))
        .await
        .expect("the in-flight request is answered")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("access_token"), "{answer}");

    // Each socket is watched by a task of its own, so a close is timed when it happens, not when
    // a sequential reader gets to it.
    let watchers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let code = socket.closed().await;
                (code, terminated.elapsed())
            })
        })
        .collect();
    let mut closed_at = Vec::new();
    for watcher in watchers {
        let (code, at) = watcher.await.expect("watcher");
        assert_eq!(code, Some(1012), "told to reconnect elsewhere");
        closed_at.push(at);
    }
    let polled: Value = tokio::time::timeout(Duration::from_secs(WINDOW_SECS + 2), waiting_poll)
        .await
        .expect("the waiting poll is answered within the window, not after its own")
        .expect("task")
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        polled["status"], 410,
        "the LongPoll client starts over elsewhere"
    );

    let status = server.exit_status(Duration::from_secs(DEADLINE_SECS)).await;
    let took = terminated.elapsed();
    assert!(status.success(), "exit status {status}:\n{}", server.log());
    // Spread over the window, not all at once, and all within it.
    let first = closed_at.iter().min().copied().unwrap_or_default();
    let last = closed_at.iter().max().copied().unwrap_or_default();
    assert!(
        last - first >= Duration::from_millis(700),
        "closes not spread: {closed_at:?}"
    );
    assert!(last < Duration::from_secs(WINDOW_SECS + 1), "{closed_at:?}");
    assert!(took < Duration::from_secs(DEADLINE_SECS), "took {took:?}");
    let log = server.log();
    assert!(log.contains("draining sockets"), "{log}");
}

/// Registers ada and returns her access token.
async fn register_ada(client: &reqwest::Client, base: &str) -> String {
    let registered: Value = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(
            &json!({"email": "ada@example.com", "username": "ada", "password": "a long password"}),
        )
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    registered["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// Connections that do not go away are cut at the deadline; the process still exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_bounds_the_drain() {
    let mut server = ServerProcess::start(&[
        (
            "FAWKES_SECRET_KEY",
            "drain-test-signing-secret-0123456789abcdef",
        ),
        ("FAWKES_SHUTDOWN__DRAIN_WINDOW_SECS", "0"),
        ("FAWKES_SHUTDOWN__DEADLINE_SECS", "1"),
    ])
    .await;
    // A request that never completes its body holds the HTTP drain open.
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stuck = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    stuck
        .write_all(format!("POST /api/v1/auth/login HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{").as_bytes())
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let terminated = Instant::now();
    server.terminate();
    let status = server.exit_status(Duration::from_secs(5)).await;
    assert!(status.success(), "{status}");
    let took = terminated.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(
        server.log().contains("drain deadline reached"),
        "{}",
        server.log()
    );
}

/// Two nodes on one database; a client on the drained node reconnects to the other when told
/// (1012) and keeps posting. Every message the server acknowledged is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_move_to_another_node_and_no_acknowledged_message_is_lost() {
    use common::socket::Received;
    let shared = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}/shared.db", shared.path().display());
    let env = [
        (
            "FAWKES_SECRET_KEY",
            "drain-test-signing-secret-0123456789abcdef",
        ),
        ("DATABASE_URL", database.as_str()),
        ("FAWKES_SHUTDOWN__DRAIN_WINDOW_SECS", "1"),
        ("FAWKES_SHUTDOWN__DEADLINE_SECS", "10"),
    ];
    let mut a = ServerProcess::start(&env).await;
    let b = ServerProcess::start(&env).await;
    let client = reqwest::Client::new();
    let token = register_ada(&client, &a.base).await;
    let socket_on = |base: &str| {
        format!(
            "{}/socket/websocket?token={token}&vsn=2.0.0",
            base.replacen("http://", "ws://", 1)
        )
    };

    let mut socket = connect_raw(&socket_on(&a.base), &[])
        .await
        .expect("socket on a");
    assert_eq!(
        socket.join("room:lobby", "1", json!({})).await[4]["status"],
        "ok"
    );
    let (mut acked, mut on_b, mut moved, mut sent) = (Vec::new(), 0, false, 0u32);
    let mut join_ref = "1";
    while on_b < 20 {
        sent += 1;
        let body = format!("message {sent}");
        let msg_ref = sent.to_string();
        socket
            .send(json!([join_ref, msg_ref, "room:lobby", "new_msg", {"body": body}]))
            .await;
        let outcome = loop {
            match socket.next().await {
                Received::Text(frame) if frame[1] == json!(msg_ref) => break Some(frame),
                Received::Text(_) | Received::Binary(_) => continue,
                Received::Closed(code) => {
                    assert_eq!(
                        code,
                        Some(1012),
                        "the drained node says reconnect elsewhere"
                    );
                    break None;
                }
            }
        };
        match outcome {
            Some(reply) => {
                assert_eq!(reply[4]["status"], "ok", "{reply}");
                acked.push(body);
                if moved {
                    on_b += 1;
                }
            }
            None => {
                // As a client's reconnect would: the other node, the same token, a rejoin.
                assert!(!moved, "closed twice");
                moved = true;
                socket = connect_raw(&socket_on(&b.base), &[])
                    .await
                    .expect("socket on b");
                assert_eq!(
                    socket.join("room:lobby", "2", json!({})).await[4]["status"],
                    "ok"
                );
                join_ref = "2";
            }
        }
        if sent == 20 {
            a.terminate();
        }
        assert!(sent < 2000, "the drained node never closed the socket");
    }
    assert!(moved, "the client moved to the other node");
    let status = a.exit_status(Duration::from_secs(10)).await;
    assert!(status.success(), "exit status {status}:\n{}", a.log());

    let mut stored = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/api/v1/rooms/lobby/messages?limit=100", b.base);
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = client
            .get(url)
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        for item in page["items"].as_array().into_iter().flatten() {
            stored.insert(item["body"].as_str().unwrap_or_default().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let lost: Vec<_> = acked
        .iter()
        .filter(|body| !stored.contains(*body))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
    assert!(acked.len() >= 40, "only {} acknowledged", acked.len());
}
