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
    let registered: Value = client
        .post(format!("{}/api/v1/auth/register", server.base))
        .json(
            &json!({"email": "ada@example.com", "username": "ada", "password": "a long password"}),
        )
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let token = registered["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

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

    let mut closed_at = Vec::new();
    for socket in &mut sockets {
        assert_eq!(
            socket.closed().await,
            Some(1012),
            "told to reconnect elsewhere"
        );
        closed_at.push(terminated.elapsed());
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
