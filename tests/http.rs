//! What every route shares: the error envelope, request ids, CORS, compression, health and
//! readiness, and the OpenAPI document and docs page.

mod common;

use common::TestServer;
use reqwest::Method;
use serde_json::Value;

async fn unknown_routes_and_methods_answer_with_the_envelope(s: TestServer) {
    let token = s.register("ada").await.access_token;
    s.get("/api/v1/nothing-here", &token)
        .await
        .expect_error(404, "not_found");
    s.call(Method::GET, "/definitely/not/a/route", None, None)
        .await
        .expect_error(404, "not_found");
    s.call(Method::PUT, "/api/v1/me", Some(&token), None)
        .await
        .expect_error(405, "method_not_allowed");
    s.get("/api/v1/messages/not-a-uuid", &token)
        .await
        .expect_error(405, "method_not_allowed");
    let reply = s
        .call(
            Method::DELETE,
            "/api/v1/messages/not-a-uuid",
            Some(&token),
            None,
        )
        .await;
    reply.expect_error(400, "invalid_path");
}

async fn every_response_carries_a_request_id(s: TestServer) {
    let reply = s.call(Method::GET, "/health", None, None).await;
    let generated = reply
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert_eq!(
        generated.len(),
        36,
        "a UUID request id is generated: {generated:?}"
    );
    let echoed = s
        .client
        .get(format!("{}/health", s.base))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .expect("sent");
    assert_eq!(
        echoed
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("trace-me-123")
    );
}

async fn health_and_readiness_report_the_database(s: TestServer) {
    let health = s.call(Method::GET, "/health", None, None).await;
    assert_eq!(health.expect(200)["status"], "ok");
    let ready = s.call(Method::GET, "/ready", None, None).await;
    assert_eq!(ready.expect(200)["checks"]["database"], "ok");

    let token = s.register("grace").await.access_token;
    s.db.close_by_ref().await.expect("pool closes");
    let ready = s.call(Method::GET, "/ready", None, None).await;
    assert_eq!(ready.expect(503)["checks"]["database"], "unavailable");
    s.get("/api/v1/me", &token)
        .await
        .expect_error(503, "service_unavailable");
    let health = s.call(Method::GET, "/health", None, None).await;
    health.expect(200);
}

async fn cors_allows_configured_origins_only(s: TestServer) {
    let preflight = |origin: &'static str| {
        s.client
            .request(Method::OPTIONS, format!("{}/api/v1/auth/login", s.base))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization",
            )
            .send()
    };
    let allowed = preflight("https://app.example").await.expect("sent");
    let header = allowed
        .headers()
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok());
    assert_eq!(header, Some("https://app.example"));
    let refused = preflight("https://evil.example").await.expect("sent");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

async fn large_answers_are_compressed_on_request(s: TestServer) {
    let response = s
        .client
        .get(format!("{}/api/openapi.json", s.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
}

async fn the_openapi_document_covers_every_route_with_errors(s: TestServer) {
    let reply = s.call(Method::GET, "/api/openapi.json", None, None).await;
    let doc = reply.expect(200);
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    let expected = [
        ("post", "/api/v1/auth/register"),
        ("post", "/api/v1/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/me"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/users"),
        ("get", "/api/v1/users/{id}"),
        ("patch", "/api/v1/users/{id}"),
        ("get", "/api/v1/devices"),
        ("delete", "/api/v1/devices/{id}"),
        ("get", "/api/v1/rooms"),
        ("post", "/api/v1/rooms"),
        ("get", "/api/v1/rooms/{slug}"),
        ("get", "/api/v1/rooms/{slug}/members"),
        ("post", "/api/v1/rooms/{slug}/members"),
        ("delete", "/api/v1/rooms/{slug}/members/{user_id}"),
        ("get", "/api/v1/rooms/{slug}/presence"),
        ("get", "/api/v1/rooms/{slug}/messages"),
        ("post", "/api/v1/rooms/{slug}/messages"),
        ("patch", "/api/v1/messages/{id}"),
        ("delete", "/api/v1/messages/{id}"),
        ("get", "/api/v1/videos/{video_id}/comments"),
        ("post", "/api/v1/videos/{video_id}/comments"),
        ("patch", "/api/v1/comments/{id}"),
        ("delete", "/api/v1/comments/{id}"),
        ("get", "/api/v1/posts"),
        ("post", "/api/v1/posts"),
        ("get", "/api/v1/posts/{id}"),
        ("patch", "/api/v1/posts/{id}"),
        ("delete", "/api/v1/posts/{id}"),
        ("post", "/api/v1/posts/{id}/publish"),
        ("post", "/api/v1/posts/{id}/unpublish"),
        ("get", "/api/v1/posts/{id}/comments"),
        ("post", "/api/v1/posts/{id}/comments"),
        ("delete", "/api/v1/post-comments/{id}"),
        ("get", "/api/v1/notifications"),
        ("get", "/api/v1/notifications/unread-count"),
        ("post", "/api/v1/notifications/{id}/read"),
        ("post", "/api/v1/notifications/read-all"),
        ("post", "/api/v1/broadcast"),
        ("get", "/api/v1/api-keys"),
        ("post", "/api/v1/api-keys"),
        ("delete", "/api/v1/api-keys/{id}"),
        ("get", "/api/v1/admin/nodes"),
        ("get", "/api/v1/admin/jobs"),
        ("post", "/api/v1/admin/jobs/{id}/retry"),
        ("post", "/api/v1/admin/jobs/{id}/cancel"),
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
    ];
    for (method, path) in expected {
        let operation = &doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let responses = operation["responses"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} documents no success"
        );
        if path.starts_with("/api/v1") {
            let error_ref = &responses
                .get("401")
                .or(responses.get("400"))
                .cloned()
                .unwrap_or(Value::Null);
            let schema = &error_ref["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/ErrorBody",
                "{method} {path} documents no error envelope"
            );
        }
    }
    let documented: usize = doc["paths"].as_object().map_or(0, |p| {
        p.values()
            .map(|v| v.as_object().map_or(0, |o| o.len()))
            .sum()
    });
    assert_eq!(
        documented,
        expected.len(),
        "an undocumented or unexpected operation appeared"
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// A 64 KiB header or a thousand headers are refused with 431 (the API's in the envelope) on
/// the API, the pages and the socket mount, and the server goes on serving.
async fn oversized_headers_are_431_and_the_server_stays_up(s: TestServer) {
    let big = "a".repeat(64 * 1024);
    for path in ["/api/v1/me", "/health", "/", "/socket/longpoll?vsn=2.0.0"] {
        let response = s
            .client
            .get(format!("{}{path}", s.base))
            .header("x-big", big.as_str())
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(response.status(), 431, "{path}");
        let body: Value = response.json().await.unwrap_or_default();
        assert_eq!(body["error"]["code"], "headers_too_large", "{path}: {body}");
    }
    let mut many = reqwest::header::HeaderMap::new();
    for i in 0..1000 {
        many.insert(
            reqwest::header::HeaderName::try_from(format!("x-h{i}")).expect("a header name"),
            reqwest::header::HeaderValue::from_static("v"),
        );
    }
    for path in ["/api/v1/me", "/"] {
        let response = s
            .client
            .get(format!("{}{path}", s.base))
            .headers(many.clone())
            .send()
            .await
            .expect("an answer, not a dropped connection");
        // hyper refuses these before any of our code runs, so without the envelope.
        assert_eq!(response.status(), 431, "{path}");
    }
    // Headers just under the limit still work.
    let response = s
        .client
        .get(format!("{}/health", s.base))
        .header("x-fits", "a".repeat(16 * 1024))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    s.call(Method::GET, "/health", None, None).await.expect(200);
}

async fn interactive_docs_are_served_from_the_binary(s: TestServer) {
    let page = s
        .client
        .get(format!("{}/api/docs/", s.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap_or_default();
    assert!(html.to_lowercase().contains("swagger"), "{html}");
    assert!(
        !html.contains("cdn.") && !html.contains("unpkg"),
        "the docs must not load from a CDN"
    );
    let script = s
        .client
        .get(format!("{}/api/docs/swagger-ui-bundle.js", s.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(script.status(), 200);
}

mod with_cors {
    use super::*;

    pub(super) async fn start(backend: common::Backend) -> Option<TestServer> {
        TestServer::start_with(backend, |config| {
            config.cors_origins = vec!["https://app.example".into()]
        })
        .await
    }
}

mod cors {
    use super::*;

    macro_rules! cors_test {
        ($name:ident, $backend:ident) => {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(server) = with_cors::start(common::Backend::$backend).await {
                    cors_allows_configured_origins_only(server).await;
                }
            }
        };
    }
    cors_test!(sqlite, Sqlite);
}

on_every_database!(
    unknown_routes_and_methods_answer_with_the_envelope,
    every_response_carries_a_request_id,
    health_and_readiness_report_the_database,
    large_answers_are_compressed_on_request,
    the_openapi_document_covers_every_route_with_errors,
    interactive_docs_are_served_from_the_binary,
    oversized_headers_are_431_and_the_server_stays_up,
);
