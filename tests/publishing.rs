//! Published namespaces: API keys managed by admins, `POST /api/v1/broadcast`, and who may
//! join `transaction:*` and `notification:*`.

mod common;

use common::TestServer;
use fawkes_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

async fn api_key(s: &TestServer, admin_token: &str) -> String {
    let created = s
        .post(
            "/api/v1/api-keys",
            Some(admin_token),
            json!({"name": "payments", "scopes": ["publish"]}),
        )
        .await;
    let body = created.expect(201);
    assert_eq!(body["api_key"]["scopes"], json!(["publish"]));
    body["key"]
        .as_str()
        .expect("the key is shown once")
        .to_owned()
}

async fn api_keys_are_admin_managed_and_shown_once(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let user = s.register("ada").await;
    let refused = s
        .post(
            "/api/v1/api-keys",
            Some(&user.access_token),
            json!({"name": "x", "scopes": ["publish"]}),
        )
        .await;
    refused.expect_error(403, "forbidden");
    let key = api_key(&s, &admin.access_token).await;
    assert!(key.starts_with("fk_"));
    let listed = s.get("/api/v1/api-keys", &admin.access_token).await;
    let listed = listed.expect(200).clone();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert!(
        !listed.to_string().contains(&key),
        "the key never appears in a list"
    );
    assert!(key.starts_with(listed[0]["prefix"].as_str().unwrap_or("?")));
    let invalid = s
        .post(
            "/api/v1/api-keys",
            Some(&admin.access_token),
            json!({"name": " ", "scopes": []}),
        )
        .await;
    invalid.expect_error(422, "validation_failed");
    let unknown_scope = s
        .post(
            "/api/v1/api-keys",
            Some(&admin.access_token),
            json!({"name": "x", "scopes": ["root"]}),
        )
        .await;
    unknown_scope.expect_error(422, "validation_failed");

    // A key is no user: it cannot read accounts or act as an admin.
    s.get("/api/v1/users", &key)
        .await
        .expect_error(403, "forbidden");
    s.get("/api/v1/me", &key)
        .await
        .expect_error(401, "unauthenticated");

    let id = listed[0]["id"].as_str().unwrap_or_default();
    s.delete(&format!("/api/v1/api-keys/{id}"), &admin.access_token)
        .await
        .expect(204);
    let after = s
        .post(
            "/api/v1/broadcast",
            Some(&key),
            json!({"topic": format!("transaction:{}", user.user_id), "event": "e", "payload": {}}),
        )
        .await;
    after.expect_error(401, "invalid_token");
    s.delete(&format!("/api/v1/api-keys/{id}"), &admin.access_token)
        .await
        .expect_error(404, "not_found");
}

async fn a_service_publishes_to_the_owner_of_a_transaction_topic(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let key = api_key(&s, &admin.access_token).await;
    let ada = s.register("ada").await;
    let eve = s.register("eve").await;
    let topic = format!("transaction:{}", ada.user_id);

    let mut owner = s.socket(&ada.access_token).await;
    let joined = owner.join(&topic, "1", json!({})).await;
    assert_eq!(joined[4]["status"], "ok", "{joined}");
    let mut intruder = s.socket(&eve.access_token).await;
    let refused = intruder.join(&topic, "1", json!({})).await;
    assert_eq!(
        refused[4],
        json!({"status": "error", "response": {"reason": "unauthorized"}})
    );

    let event = json!({"topic": topic, "event": "status_changed", "payload": {"status": "settled", "amount": 42}});
    let published = s.post("/api/v1/broadcast", Some(&key), event).await;
    assert_eq!(
        published.expect(202),
        &json!({"topic": topic, "event": "status_changed"})
    );
    assert_eq!(
        owner.next_json().await,
        json!([null, null, topic, "status_changed", {"status": "settled", "amount": 42}])
    );
}

async fn notifications_reach_only_their_user(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let ada = s.register("ada").await;
    let topic = format!("notification:{}", ada.user_id);
    let mut socket = s.socket(&ada.access_token).await;
    assert_eq!(socket.join(&topic, "1", json!({})).await[4]["status"], "ok");
    let mut admin_socket = s.socket(&admin.access_token).await;
    let refused = admin_socket.join(&topic, "1", json!({})).await;
    assert_eq!(
        refused[4]["response"]["reason"], "unauthorized",
        "not even admins read someone's notifications"
    );
    let note = json!({"topic": topic, "event": "notice", "payload": {"text": "hi"}});
    s.post("/api/v1/broadcast", Some(&admin.access_token), note)
        .await
        .expect(202);
    assert_eq!(socket.next_json().await[4], json!({"text": "hi"}));
}

async fn publishing_is_refused_outside_the_rules(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let user = s.register("ada").await;
    let topic = format!("transaction:{}", user.user_id);
    let ok = json!({"topic": topic, "event": "e", "payload": {}});
    s.post("/api/v1/broadcast", Some(&user.access_token), ok.clone())
        .await
        .expect_error(403, "forbidden");
    s.call(Method::POST, "/api/v1/broadcast", None, Some(ok))
        .await
        .expect_error(401, "unauthenticated");
    let cases: [(Value, &str); 4] = [
        (
            json!({"topic": "room:lobby", "event": "new_msg", "payload": {"body": "spoof"}}),
            "topic",
        ),
        (
            json!({"topic": topic, "event": "phx_close", "payload": {}}),
            "event",
        ),
        (
            json!({"topic": topic, "event": "e", "payload": [1, 2]}),
            "payload",
        ),
        (
            json!({"topic": topic, "event": "e", "payload": {"big": "x".repeat(70_000)}}),
            "payload",
        ),
    ];
    let more: [(Value, &str); 2] = [
        (json!({"topic": topic, "event": "e"}), "payload"),
        (
            json!({"topic": topic, "event": "e", "payload_base64": "***"}),
            "payload_base64",
        ),
    ];
    for (body, field) in cases.into_iter().chain(more) {
        let reply = s
            .post("/api/v1/broadcast", Some(&admin.access_token), body)
            .await;
        reply.expect_error(422, "validation_failed");
        assert!(
            reply.body["error"]["details"][field].is_array(),
            "{}",
            reply.body
        );
    }
}

async fn binary_payloads_arrive_as_binary_frames(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let ada = s.register("ada").await;
    let topic = format!("notification:{}", ada.user_id);
    let mut socket = s.socket(&ada.access_token).await;
    assert_eq!(socket.join(&topic, "1", json!({})).await[4]["status"], "ok");
    let body = json!({"topic": topic, "event": "blob", "payload_base64": "3q2+7w=="});
    s.post("/api/v1/broadcast", Some(&admin.access_token), body)
        .await
        .expect(202);
    // Kind 2 (broadcast), topic length, event length, topic, event, then the raw bytes.
    let mut expected = vec![2u8, topic.len() as u8, 4];
    expected.extend_from_slice(topic.as_bytes());
    expected.extend_from_slice(b"blob");
    expected.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
    assert_eq!(
        socket.next().await,
        common::socket::Received::Binary(expected)
    );
}

on_every_database!(
    binary_payloads_arrive_as_binary_frames,
    api_keys_are_admin_managed_and_shown_once,
    a_service_publishes_to_the_owner_of_a_transaction_topic,
    notifications_reach_only_their_user,
    publishing_is_refused_outside_the_rules,
);
