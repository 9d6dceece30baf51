//! `/metrics`: every family moves with real traffic, read back through a parser of the text
//! format (by name and labels, not by grepping).

mod common;

use std::time::Duration;

use common::prom::Scrape;
use common::{Backend, TestServer};
use serde_json::json;

async fn scrape(s: &TestServer, token: Option<&str>) -> (u16, String) {
    let mut request = s.client.get(format!("{}/metrics", s.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape sent");
    let status = response.status().as_u16();
    (status, response.text().await.expect("scrape body"))
}

async fn parsed(s: &TestServer) -> Scrape {
    let (status, body) = scrape(s, None).await;
    assert_eq!(status, 200, "{body}");
    Scrape::parse(&body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_moves_every_family() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.socket.events_per_second = 1;
        c.socket.event_burst = 3;
    })
    .await
    else {
        return;
    };
    let before = parsed(&s).await;
    assert_eq!(
        before.get(
            "fawkes_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        before.get("fawkes_sockets_open", &[("transport", "websocket")]),
        0.0
    );
    assert_eq!(
        before
            .types
            .get("fawkes_http_request_duration_seconds")
            .map(String::as_str),
        None,
        "no request has finished before the first scrape"
    );

    let ada = s.register("ada").await;
    s.get("/api/v1/rooms/lobby/messages", &ada.access_token)
        .await
        .expect(200);
    s.get("/no/such/route", &ada.access_token).await.expect(404);

    let mut socket = s.socket(&ada.access_token).await;
    let joined = socket.join("room:lobby", "1", json!({})).await;
    assert_eq!(joined[4]["status"], "ok", "{joined}");
    s.post(
        "/api/v1/rooms/lobby/messages",
        Some(&ada.access_token),
        json!({"body": "counted, @ada"}),
    )
    .await
    .expect(201);
    // The broadcast reaches the socket: the fan-out happened before we scrape.
    loop {
        let frame = socket.next_json().await;
        if frame[3] == "new_msg" {
            break;
        }
    }
    // Beyond the burst of 3 (the join took one), events are refused with rate_limited.
    for n in 0..5 {
        socket
            .send(json!(["1", format!("p{n}"), "room:lobby", "ping", {}]))
            .await;
    }
    let mut refused = 0;
    for _ in 0..5 {
        let frame = socket.next_json().await;
        if frame[4]["response"]["reason"] == "rate_limited" {
            refused += 1;
        }
    }
    assert!(refused >= 2, "{refused} refusals");

    let after = parsed(&s).await;
    let register = [
        ("method", "POST"),
        ("route", "/api/v1/auth/register"),
        ("status", "201"),
    ];
    assert_eq!(after.get("fawkes_http_requests_total", &register), 1.0);
    assert_eq!(
        after.types["fawkes_http_request_duration_seconds"],
        "histogram"
    );
    assert_eq!(
        after.get("fawkes_http_request_duration_seconds_count", &register),
        1.0
    );
    assert_eq!(
        after.get(
            "fawkes_http_request_duration_seconds_bucket",
            &[register[0], register[1], register[2], ("le", "+Inf")]
        ),
        1.0
    );
    // Routes are labelled by their pattern, never by the path with its ids.
    assert_eq!(
        after.get(
            "fawkes_http_requests_total",
            &[
                ("route", "/api/v1/rooms/{slug}/messages"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        after.get(
            "fawkes_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(
        after
            .value("fawkes_http_requests_total", &[("route", "/no/such/route")])
            .is_none()
    );
    assert_eq!(
        after.get(
            "fawkes_http_requests_total",
            &[("route", "/socket/websocket"), ("status", "101")]
        ),
        1.0
    );

    assert_eq!(
        after.get("fawkes_sockets_open", &[("transport", "websocket")]),
        1.0
    );
    assert_eq!(
        after.get("fawkes_channels_joined", &[("namespace", "room")]),
        1.0
    );
    assert!(after.get("fawkes_socket_frames_received_total", &[]) >= 6.0);
    assert!(after.get("fawkes_socket_frames_sent_total", &[]) >= 7.0);
    assert!(after.get("fawkes_broadcasts_total", &[]) >= 1.0);
    assert!(after.get("fawkes_broadcast_deliveries_total", &[]) >= 1.0);
    assert_eq!(
        after.get("fawkes_slow_consumer_disconnects_total", &[]),
        0.0
    );
    assert_eq!(
        after.get("fawkes_rate_limited_total", &[("limit", "socket_event")]),
        f64::from(refused)
    );
    assert_eq!(after.get("fawkes_rate_limited_disconnects_total", &[]), 0.0);
    assert_eq!(after.get("fawkes_presence_entries", &[]), 1.0);
    // One message posted: stored in one transaction of the writer.
    assert_eq!(after.get("fawkes_messages_stored_total", &[]), 1.0);
    assert_eq!(after.get("fawkes_message_transactions_total", &[]), 1.0);
    assert!(
        after.get(
            "fawkes_db_query_duration_seconds_count",
            &[("op", "select")]
        ) >= 1.0
    );
    assert!(
        after.get(
            "fawkes_db_query_duration_seconds_count",
            &[("op", "insert")]
        ) >= 2.0
    );
    let pool = after.get("fawkes_db_pool_connections", &[("state", "idle")])
        + after.get("fawkes_db_pool_connections", &[("state", "in_use")]);
    assert!(pool >= 1.0, "the pool holds connections");
    assert!(
        after.value("fawkes_bus_connected", &[]).is_none(),
        "one node: no bus series"
    );
    // The mention enqueued a notification job (cluster-wide counts from the jobs table).
    assert!(after.get("fawkes_jobs", &[("queue", "notifications")]) >= 1.0);
    assert!(
        after.get(
            "fawkes_cache_requests_total",
            &[("cache", "auth"), ("result", "hit")]
        ) >= 1.0
    );

    // Leaving brings the gauges back down, and the emptied namespace reads 0 instead of vanishing.
    socket.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let now = parsed(&s).await;
        if now.get("fawkes_sockets_open", &[("transport", "websocket")]) == 0.0 {
            assert_eq!(
                now.get("fawkes_channels_joined", &[("namespace", "room")]),
                0.0
            );
            assert_eq!(now.get("fawkes_presence_entries", &[]), 0.0);
            assert!(
                now.get("fawkes_http_requests_total", &[("route", "/metrics")])
                    > after.get("fawkes_http_requests_total", &[("route", "/metrics")])
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the socket never closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_token_is_required() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.metrics.token = Some("scrape-me-please".to_owned());
    })
    .await
    else {
        return;
    };
    let (status, body) = scrape(&s, None).await;
    assert_eq!(status, 401);
    let envelope: serde_json::Value = serde_json::from_str(&body).expect("JSON envelope");
    assert_eq!(envelope["error"]["code"], "invalid_token");
    assert_eq!(scrape(&s, Some("wrong")).await.0, 401);
    let (status, body) = scrape(&s, Some("scrape-me-please")).await;
    assert_eq!(status, 200);
    assert_eq!(Scrape::parse(&body).get("fawkes_build_info", &[]), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_reports_its_connection() {
    let Some(url) = std::env::var("FAWKES_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: FAWKES_TEST_REDIS_URL is not set");
        return;
    };
    let cluster = format!("metrics{}", std::process::id());
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.pubsub = url.clone();
        c.cluster_name = cluster.clone();
    })
    .await
    else {
        return;
    };
    let redis = [("backend", "redis")];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while parsed(&s).await.value("fawkes_bus_connected", &redis) != Some(1.0) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bus never connected"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ada = s.register("ada").await;
    s.post(
        "/api/v1/rooms/lobby/messages",
        Some(&ada.access_token),
        json!({"body": "over the bus"}),
    )
    .await
    .expect(201);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = parsed(&s).await;
        let sent = now.get(
            "fawkes_bus_messages_total",
            &[("backend", "redis"), ("direction", "sent")],
        );
        if sent >= 1.0 {
            assert_eq!(now.get("fawkes_bus_messages_dropped_total", &redis), 0.0);
            assert_eq!(now.get("fawkes_bus_backlog", &redis), 0.0);
            assert!(now.value("fawkes_bus_reconnects_total", &redis).is_some());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing was sent over the bus"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Grafana dashboard only asks for families the server describes, so it cannot drift from
/// the code silently.
#[test]
fn the_dashboard_uses_only_exported_families() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../deploy/grafana/fawkes.json")).expect("valid JSON");
    let exported = include_str!("../crates/fawkes-web/src/metrics.rs");
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push(target["expr"].as_str().expect("expr").to_owned());
        }
    }
    assert!(exprs.len() > 20, "{} queries", exprs.len());
    let mut families = std::collections::BTreeSet::new();
    for expr in &exprs {
        for (start, _) in expr.match_indices("fawkes_") {
            let name: String = expr[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let family = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|f| f.ends_with("_seconds"))
                })
                .unwrap_or(&name)
                .to_owned();
            families.insert(family);
        }
    }
    let start = exported.find("fn describe()").expect("describe()");
    let described = &exported[start..];
    let described = &described[..described.find("\n}\n").expect("end of describe()")];
    for family in &families {
        assert!(
            described.contains(&format!("\"{family}\"")),
            "the dashboard uses {family}, which the server does not describe"
        );
    }
    assert!(families.len() >= 18, "{families:?}");
}
