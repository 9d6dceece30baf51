//! The Phoenix Channels protocol as a raw client sees it: every rule R1–R13 of
//! shared/specs/phoenix-channels.md §2, the handshake, close codes, and the app's channels
//! calling the same actions as REST.

mod common;

use common::socket::{RawSocket, Received};
use common::{Backend, TestServer};
use serde_json::{Value, json};

async fn sqlite() -> TestServer {
    TestServer::start(Backend::Sqlite)
        .await
        .expect("sqlite always runs")
}

/// `[join_ref, ref, topic, "phx_reply", {status, response}]` → (status, response).
fn reply_of(frame: &Value, msg_ref: &str) -> (String, Value) {
    assert_eq!(frame[3], "phx_reply", "not a reply: {frame}");
    assert_eq!(frame[1], msg_ref, "reply to another ref: {frame}");
    (
        frame[4]["status"].as_str().unwrap_or_default().to_owned(),
        frame[4]["response"].clone(),
    )
}

async fn member_socket(s: &TestServer, name: &str) -> (RawSocket, common::Session) {
    let session = s.register(name).await;
    (s.socket(&session.access_token).await, session)
}

#[tokio::test]
async fn connect_needs_a_valid_token_and_a_known_vsn() {
    let s = sqlite().await;
    let token = s.register("ada").await.access_token;
    let refused = s
        .socket_with("vsn=2.0.0", &[])
        .await
        .err()
        .and_then(|r| r.status());
    assert_eq!(refused.map(|c| c.as_u16()), Some(403), "no token");
    let refused = s
        .socket_with("token=garbage&vsn=2.0.0", &[])
        .await
        .err()
        .and_then(|r| r.status());
    assert_eq!(refused.map(|c| c.as_u16()), Some(403), "bad token");
    let refused = s
        .socket_with(&format!("token={token}&vsn=123.1.1"), &[])
        .await
        .err()
        .and_then(|r| r.status());
    assert_eq!(refused.map(|c| c.as_u16()), Some(403), "unknown vsn");
    assert!(
        s.socket_with(&format!("token={token}&vsn=2.0.0"), &[])
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_auth_token_subprotocol_is_accepted_and_answered_with_phoenix() {
    let s = sqlite().await;
    let token = s.register("ada").await.access_token;
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        token.as_bytes(),
    );
    let protocols = format!("phoenix, base64url.bearer.phx.{encoded}");
    let mut socket = s
        .socket_with("vsn=2.0.0", &[("sec-websocket-protocol", &protocols)])
        .await
        .expect("authToken connects");
    assert_eq!(
        socket.response_protocol.as_deref(),
        Some("phoenix"),
        "the token protocol is never echoed"
    );
    let (status, _) = reply_of(&socket.heartbeat("1").await, "1");
    assert_eq!(status, "ok");
}

#[tokio::test]
async fn a_foreign_origin_is_refused_when_origins_are_configured() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.socket.allowed_origins = vec!["https://app.example".into()]
    })
    .await
    else {
        return;
    };
    let token = s.register("ada").await.access_token;
    let query = format!("token={token}&vsn=2.0.0");
    let foreign = s
        .socket_with(&query, &[("origin", "https://evil.example")])
        .await;
    assert_eq!(
        foreign.err().and_then(|r| r.status()).map(|c| c.as_u16()),
        Some(403)
    );
    assert!(
        s.socket_with(&query, &[("origin", "https://app.example")])
            .await
            .is_ok()
    );
    assert!(
        s.socket_with(&query, &[]).await.is_ok(),
        "no Origin (non-browser clients) is allowed"
    );
}

#[tokio::test]
async fn heartbeats_are_answered_on_the_phoenix_topic_r1() {
    let s = sqlite().await;
    let (mut socket, _) = member_socket(&s, "ada").await;
    let frame = socket.heartbeat("7").await;
    assert_eq!(
        frame,
        json!([null, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}])
    );
}

#[tokio::test]
async fn joins_answer_ok_with_the_room_or_refuse_r2_r4_r5() {
    let s = sqlite().await;
    let (mut socket, _) = member_socket(&s, "ada").await;
    let ok = socket.join("room:lobby", "1", json!({})).await;
    assert_eq!(
        &ok.as_array().map(|a| a[..3].to_vec()).unwrap_or_default(),
        &[json!("1"), json!("1"), json!("room:lobby")]
    );
    let (status, response) = reply_of(&ok, "1");
    assert_eq!(status, "ok");
    assert_eq!(response["room"]["slug"], "lobby");

    let unmatched = socket.join("nowhere:1", "2", json!({})).await;
    assert_eq!(
        unmatched,
        json!([null, "2", "nowhere:1", "phx_reply", {"status": "error", "response": {"reason": "unmatched topic"}}])
    );

    let missing = socket.join("room:does-not-exist", "3", json!({})).await;
    assert_eq!(
        missing,
        json!(["3", "3", "room:does-not-exist", "phx_reply", {"status": "error", "response": {"reason": "unauthorized"}}])
    );
}

#[tokio::test]
async fn private_rooms_and_other_users_notifications_refuse_the_join() {
    let s = sqlite().await;
    let owner = s.register("owner").await;
    let room = json!({"slug": "secret", "name": "Secret", "is_private": true});
    s.post("/api/v1/rooms", Some(&owner.access_token), room)
        .await
        .expect(201);
    let (mut outsider, outsider_session) = member_socket(&s, "outsider").await;
    let (status, response) = reply_of(&outsider.join("room:secret", "1", json!({})).await, "1");
    assert_eq!(
        (status.as_str(), response),
        ("error", json!({"reason": "unauthorized"}))
    );

    let theirs = format!("notification:{}", owner.user_id);
    let (status, response) = reply_of(&outsider.join(&theirs, "2", json!({})).await, "2");
    assert_eq!(
        (status.as_str(), response),
        ("error", json!({"reason": "unauthorized"}))
    );
    let own = format!("notification:{}", outsider_session.user_id);
    let (status, _) = reply_of(&outsider.join(&own, "3", json!({})).await, "3");
    assert_eq!(status, "ok");

    // The member joins fine.
    let mut member = s.socket(&owner.access_token).await;
    let (status, _) = reply_of(&member.join("room:secret", "1", json!({})).await, "1");
    assert_eq!(status, "ok");
}

#[tokio::test]
async fn too_many_channels_are_refused_r3() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.socket.max_channels_per_connection = 2
    })
    .await
    else {
        return;
    };
    let (mut socket, session) = member_socket(&s, "ada").await;
    reply_of(&socket.join("room:lobby", "1", json!({})).await, "1");
    let own = format!("notification:{}", session.user_id);
    reply_of(&socket.join(&own, "2", json!({})).await, "2");
    let third = socket.join("comments:video-1", "3", json!({})).await;
    assert_eq!(
        third,
        json!(["3", "3", "comments:video-1", "phx_reply", {"status": "error", "response": {"reason": "too many channels joined"}}])
    );
    let (status, _) = reply_of(&socket.heartbeat("4").await, "4");
    assert_eq!(
        status, "ok",
        "the connection keeps serving after the refusal"
    );
}

#[tokio::test]
async fn a_duplicate_join_replies_then_closes_the_old_join_r7() {
    let s = sqlite().await;
    let (mut socket, _) = member_socket(&s, "ada").await;
    reply_of(&socket.join("room:lobby", "1", json!({})).await, "1");
    let (status, _) = reply_of(&socket.join("room:lobby", "2", json!({})).await, "2");
    assert_eq!(status, "ok");
    assert_eq!(
        socket.next_json().await,
        json!(["1", "1", "room:lobby", "phx_close", {}])
    );
    // Pushes for the replaced join are ignored; the current join_ref and null are served.
    socket
        .send(json!(["1", "5", "room:lobby", "new_msg", {"body": "stale"}]))
        .await;
    let (status, _) = reply_of(&socket.heartbeat("6").await, "6");
    assert_eq!(
        status, "ok",
        "nothing came before the heartbeat reply: the stale push was dropped"
    );
    socket
        .send(json!([null, "7", "room:lobby", "new_msg", {"body": "fresh"}]))
        .await;
    let frames = [socket.next_json().await, socket.next_json().await];
    let reply = frames
        .iter()
        .find(|f| f[3] == "phx_reply")
        .cloned()
        .unwrap_or_default();
    assert_eq!(reply[0], "2", "replies carry the current join_ref");
    assert_eq!(reply_of(&reply, "7").0, "ok");
}

#[tokio::test]
async fn leave_replies_and_closes_and_unjoined_leaves_are_ok_r8_r9_r12() {
    let s = sqlite().await;
    let (mut socket, _) = member_socket(&s, "ada").await;
    reply_of(&socket.join("room:lobby", "1", json!({})).await, "1");
    // R9: a leave for another join_ref is ignored.
    socket
        .send(json!(["99", "2", "room:lobby", "phx_leave", {}]))
        .await;
    assert_eq!(reply_of(&socket.heartbeat("3").await, "3").0, "ok");
    // R8
    socket
        .send(json!(["1", "4", "room:lobby", "phx_leave", {}]))
        .await;
    assert_eq!(
        socket.next_json().await,
        json!(["1", "4", "room:lobby", "phx_reply", {"status": "ok", "response": {}}])
    );
    assert_eq!(
        socket.next_json().await,
        json!(["1", "1", "room:lobby", "phx_close", {}])
    );
    // R12: leaving again (what phoenix.js does after a server-side close) is still ok.
    socket
        .send(json!(["1", "5", "room:lobby", "phx_leave", {}]))
        .await;
    assert_eq!(
        socket.next_json().await,
        json!(["1", "5", "room:lobby", "phx_reply", {"status": "ok", "response": {}}])
    );
    // R13: events on the topic now get "unmatched topic".
    socket
        .send(json!(["1", "6", "room:lobby", "new_msg", {"body": "x"}]))
        .await;
    assert_eq!(
        socket.next_json().await,
        json!([null, "6", "room:lobby", "phx_reply", {"status": "error", "response": {"reason": "unmatched topic"}}])
    );
}

#[tokio::test]
async fn new_msg_is_stored_replied_and_broadcast_to_everyone_r10() {
    let s = sqlite().await;
    let (mut ada, _) = member_socket(&s, "ada").await;
    let (mut bob, bob_session) = member_socket(&s, "bob").await;
    reply_of(&ada.join("room:lobby", "1", json!({})).await, "1");
    reply_of(&bob.join("room:lobby", "1", json!({})).await, "1");

    ada.send(json!(["1", "2", "room:lobby", "new_msg", {"body": "hello"}]))
        .await;
    let frames = [ada.next_json().await, ada.next_json().await];
    let reply = frames
        .iter()
        .find(|f| f[3] == "phx_reply")
        .cloned()
        .unwrap_or_default();
    let (status, stored) = reply_of(&reply, "2");
    assert_eq!(status, "ok");
    assert_eq!(stored["body"], "hello");
    assert_eq!(stored["author"]["username"], "ada");
    let broadcast = frames
        .iter()
        .find(|f| f[3] == "new_msg")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        broadcast,
        json!([null, null, "room:lobby", "new_msg", stored])
    );
    assert_eq!(
        bob.next_json().await,
        json!([null, null, "room:lobby", "new_msg", stored])
    );

    // The message is the same one REST serves.
    let listed = s
        .get("/api/v1/rooms/lobby/messages", &bob_session.access_token)
        .await;
    assert_eq!(listed.expect(200)["items"][0], stored);

    // Invalid input is an error reply with details, and nothing is broadcast.
    ada.send(json!(["1", "3", "room:lobby", "new_msg", {"body": "   "}]))
        .await;
    let (status, response) = reply_of(&ada.next_json().await, "3");
    assert_eq!(status, "error");
    assert_eq!(response["reason"], "validation_failed");
    assert!(response["details"]["body"].is_array(), "{response}");
    ada.send(json!(["1", "4", "room:lobby", "new_msg", {"text": 5}]))
        .await;
    let (_, response) = reply_of(&ada.next_json().await, "4");
    assert_eq!(response["reason"], "validation_failed");
    assert_eq!(
        reply_of(&bob.heartbeat("9").await, "9").0,
        "ok",
        "bob received no broadcast for the refused posts"
    );
}

#[tokio::test]
async fn a_message_posted_over_rest_reaches_the_channel() {
    let s = sqlite().await;
    let (mut socket, session) = member_socket(&s, "ada").await;
    reply_of(&socket.join("room:lobby", "1", json!({})).await, "1");
    let posted = s
        .post(
            "/api/v1/rooms/lobby/messages",
            Some(&session.access_token),
            json!({"body": "from REST"}),
        )
        .await;
    let stored = posted.expect(201).clone();
    assert_eq!(
        socket.next_json().await,
        json!([null, null, "room:lobby", "new_msg", stored])
    );
    let id = stored["id"].as_str().unwrap_or_default();
    s.patch(
        &format!("/api/v1/messages/{id}"),
        &session.access_token,
        json!({"body": "edited"}),
    )
    .await
    .expect(200);
    let edited = socket.next_json().await;
    assert_eq!(
        (edited[3].clone(), edited[4]["body"].clone()),
        (json!("msg_edited"), json!("edited"))
    );
    s.delete(&format!("/api/v1/messages/{id}"), &session.access_token)
        .await
        .expect(204);
    let deleted = socket.next_json().await;
    assert_eq!(
        (deleted[3].clone(), deleted[4]["id"].clone()),
        (json!("msg_deleted"), json!(id))
    );
}

#[tokio::test]
async fn edit_and_delete_over_the_channel_follow_the_rest_policies() {
    let s = sqlite().await;
    let (mut ada, _) = member_socket(&s, "ada").await;
    let (mut eve, _) = member_socket(&s, "eve").await;
    reply_of(&ada.join("room:lobby", "1", json!({})).await, "1");
    reply_of(&eve.join("room:lobby", "1", json!({})).await, "1");
    ada.send(json!(["1", "2", "room:lobby", "new_msg", {"body": "mine"}]))
        .await;
    let mut id = Value::Null;
    for _ in 0..2 {
        let frame = ada.next_json().await;
        if frame[3] == "phx_reply" {
            id = frame[4]["response"]["id"].clone();
        }
    }
    let _broadcast = eve.next_json().await;
    eve.send(json!(["1", "3", "room:lobby", "edit_msg", {"id": id, "body": "hijacked"}]))
        .await;
    assert_eq!(
        reply_of(&eve.next_json().await, "3"),
        ("error".to_owned(), json!({"reason": "unauthorized"}))
    );
    eve.send(json!(["1", "4", "room:lobby", "delete_msg", {"id": id}]))
        .await;
    assert_eq!(
        reply_of(&eve.next_json().await, "4"),
        ("error".to_owned(), json!({"reason": "unauthorized"}))
    );
    ada.send(json!(["1", "5", "room:lobby", "edit_msg", {"id": id, "body": "fixed"}]))
        .await;
    let frames = [ada.next_json().await, ada.next_json().await];
    assert!(
        frames
            .iter()
            .any(|f| f[3] == "msg_edited" && f[4]["body"] == "fixed"),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f[3] == "phx_reply" && f[4]["status"] == "ok"),
        "{frames:?}"
    );
}

#[tokio::test]
async fn typing_reaches_everyone_but_the_typist() {
    let s = sqlite().await;
    let (mut ada, ada_session) = member_socket(&s, "ada").await;
    let (mut bob, _) = member_socket(&s, "bob").await;
    reply_of(&ada.join("room:lobby", "1", json!({})).await, "1");
    reply_of(&bob.join("room:lobby", "1", json!({})).await, "1");
    ada.send(json!(["1", "2", "room:lobby", "typing", {}]))
        .await;
    let typing = bob.next_json().await;
    assert_eq!(
        typing,
        json!([null, null, "room:lobby", "typing", {"user": {"id": ada_session.user_id, "username": "ada"}}])
    );
    assert_eq!(
        reply_of(&ada.heartbeat("3").await, "3").0,
        "ok",
        "the typist does not get its own event"
    );
}

#[tokio::test]
async fn rejoining_with_last_seen_id_catches_up() {
    let s = sqlite().await;
    let session = s.register("ada").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let posted = s
            .post(
                "/api/v1/rooms/lobby/messages",
                Some(&session.access_token),
                json!({"body": format!("m{n}")}),
            )
            .await;
        ids.push(posted.expect(201)["id"].clone());
    }
    let mut socket = s.socket(&session.access_token).await;
    let (status, response) = reply_of(
        &socket
            .join("room:lobby", "1", json!({"last_seen_id": ids[1]}))
            .await,
        "1",
    );
    assert_eq!(status, "ok");
    let caught_up: Vec<Value> = response["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["id"].clone())
        .collect();
    assert_eq!(
        caught_up,
        ids[2..].to_vec(),
        "the messages after the last seen one, oldest first"
    );
    assert_eq!(response["truncated"], false);
    let (status, response) = reply_of(
        &socket
            .join("room:lobby", "2", json!({"last_seen_id": "nope"}))
            .await,
        "2",
    );
    assert_eq!(
        (status.as_str(), response["reason"].clone()),
        ("error", json!("validation_failed"))
    );
}

#[tokio::test]
async fn comments_channel_creates_and_broadcasts() {
    let s = sqlite().await;
    let (mut socket, _) = member_socket(&s, "ada").await;
    reply_of(&socket.join("comments:vid-1", "1", json!({})).await, "1");
    socket
        .send(json!(["1", "2", "comments:vid-1", "new_comment", {"content": "nice"}]))
        .await;
    let frames = [socket.next_json().await, socket.next_json().await];
    assert!(
        frames
            .iter()
            .any(|f| f[3] == "new_comment" && f[4]["content"] == "nice"),
        "{frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|f| f[3] == "phx_reply" && f[4]["status"] == "ok"),
        "{frames:?}"
    );
    let refused = socket.join("comments:bad id", "3", json!({})).await;
    assert_eq!(reply_of(&refused, "3").1["reason"], "validation_failed");
}

#[tokio::test]
async fn events_for_unjoined_topics_get_unmatched_topic_r13() {
    let s = sqlite().await;
    let (mut socket, _) = member_socket(&s, "ada").await;
    socket
        .send(json!([null, "5", "room:nope", "new_msg", {}]))
        .await;
    assert_eq!(
        socket.next_json().await,
        json!([null, "5", "room:nope", "phx_reply", {"status": "error", "response": {"reason": "unmatched topic"}}])
    );
    socket
        .send(json!([null, "6", "phoenix", "other", {}]))
        .await;
    assert_eq!(
        socket.next_json().await,
        json!([null, "6", "phoenix", "phx_reply", {"status": "error", "response": {"reason": "unmatched topic"}}])
    );
}

#[tokio::test]
async fn the_v1_serializer_speaks_objects() {
    let s = sqlite().await;
    let token = s.register("ada").await.access_token;
    let mut socket = s
        .socket_with(&format!("token={token}&vsn=1.0.0"), &[])
        .await
        .expect("v1 connects");
    socket
        .send(json!({"topic": "room:lobby", "event": "phx_join", "payload": {}, "ref": "1"}))
        .await;
    let reply = socket.next_json().await;
    assert_eq!(reply["event"], "phx_reply");
    assert_eq!(reply["ref"], "1");
    assert_eq!(reply["payload"]["status"], "ok");
    assert!(reply.get("join_ref").is_none());
}

#[tokio::test]
async fn binary_pushes_are_decoded_and_answered() {
    let s = sqlite().await;
    let (mut socket, _) = member_socket(&s, "ada").await;
    reply_of(&socket.join("room:lobby", "1", json!({})).await, "1");
    // kind 0, join_ref "1", ref "2", topic "room:lobby", event "new_msg", payload de ad
    let mut frame = vec![0u8, 1, 1, 10, 7];
    frame.extend_from_slice(b"12room:lobbynew_msg");
    frame.extend_from_slice(&[0xde, 0xad]);
    socket.send_binary(frame).await;
    let (status, response) = reply_of(&socket.next_json().await, "2");
    assert_eq!(
        (status.as_str(), response),
        ("error", json!({"reason": "invalid_payload"}))
    );
}

#[tokio::test]
async fn malformed_and_oversized_frames_close_only_that_connection() {
    let Some(s) =
        TestServer::start_with(Backend::Sqlite, |c| c.socket.max_frame_bytes = 4096).await
    else {
        return;
    };
    let (mut bystander, _) = member_socket(&s, "bystander").await;
    let (mut broken, _) = member_socket(&s, "broken").await;
    broken.send_text("this is not json").await;
    assert_eq!(broken.closed().await, Some(1007));
    let (mut huge, _) = member_socket(&s, "huge").await;
    huge.send(json!([null, "1", "room:lobby", "new_msg", {"body": "x".repeat(10_000)}]))
        .await;
    assert_eq!(huge.closed().await, Some(1009));
    let (mut wrong, _) = member_socket(&s, "wrong").await;
    wrong.send(json!([1, 2, 3])).await;
    assert_eq!(wrong.closed().await, Some(1007));
    assert_eq!(reply_of(&bystander.heartbeat("1").await, "1").0, "ok");
}

#[tokio::test]
async fn logout_and_deactivation_disconnect_the_sockets_with_1001() {
    let s = sqlite().await;
    let admin = s.user_with_role("root", fawkes_domain::Role::Admin).await;
    let ada = s.register("ada").await;
    let mut socket = s.socket(&ada.access_token).await;
    reply_of(&socket.join("room:lobby", "1", json!({})).await, "1");
    s.call(
        reqwest::Method::POST,
        "/api/v1/auth/logout",
        Some(&ada.access_token),
        None,
    )
    .await
    .expect(204);
    assert_eq!(socket.closed().await, Some(1001));

    let bob = s.register("bob").await;
    let second = common::session_from(s.login("bob", Some("phone")).await.expect(200));
    let mut first_socket = s.socket(&bob.access_token).await;
    let mut second_socket = s.socket(&second.access_token).await;
    let change = json!({"is_active": false});
    s.patch(
        &format!("/api/v1/users/{}", bob.user_id),
        &admin.access_token,
        change,
    )
    .await
    .expect(200);
    assert_eq!(first_socket.closed().await, Some(1001));
    assert_eq!(second_socket.closed().await, Some(1001));
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| c.socket.idle_timeout_secs = 1).await
    else {
        return;
    };
    let (mut socket, _) = member_socket(&s, "ada").await;
    assert_eq!(socket.closed().await, Some(1001));
}

#[tokio::test]
async fn a_slow_consumer_is_dropped_without_holding_up_others() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| c.socket.outbound_queue = 8).await
    else {
        return;
    };
    let (mut slow, _) = member_socket(&s, "slow").await;
    let (mut fast, _) = member_socket(&s, "fast").await;
    reply_of(&slow.join("room:lobby", "1", json!({})).await, "1");
    reply_of(&fast.join("room:lobby", "1", json!({})).await, "1");
    // Large broadcasts fill the kernel buffers and then the slow client's queue, because it
    // never reads; the fast one keeps up.
    let big = "x".repeat(256 * 1024);
    let bus = s.endpoint_bus();
    let mut received = 0;
    for _ in 0..200 {
        bus.broadcast("room:lobby", "bulk", json!({"data": big}));
        if let Received::Text(_) = fast.next().await {
            received += 1;
        }
        if s.slow_consumer_disconnects() > 0 {
            break;
        }
    }
    assert_eq!(
        s.slow_consumer_disconnects(),
        1,
        "the slow client was dropped"
    );
    assert!(received > 0);
    assert_eq!(
        reply_of(&fast.heartbeat("2").await, "2").0,
        "ok",
        "the fast client is still served"
    );
    let _ = slow.closed().await;
}

#[tokio::test]
async fn guests_read_public_rooms_only_when_allowed() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| c.socket.allow_guests = true).await
    else {
        return;
    };
    let owner = s.register("owner").await;
    let room = json!({"slug": "members-only", "name": "Members", "is_private": true});
    s.post("/api/v1/rooms", Some(&owner.access_token), room)
        .await
        .expect(201);
    let mut guest = s
        .socket_with("vsn=2.0.0", &[])
        .await
        .expect("guests may connect");
    let (status, _) = reply_of(&guest.join("room:lobby", "1", json!({})).await, "1");
    assert_eq!(status, "ok");
    guest
        .send(json!(["1", "2", "room:lobby", "new_msg", {"body": "hi"}]))
        .await;
    assert_eq!(
        reply_of(&guest.next_json().await, "2"),
        ("error".to_owned(), json!({"reason": "unauthorized"}))
    );
    let (status, _) = reply_of(&guest.join("room:members-only", "3", json!({})).await, "3");
    assert_eq!(status, "error");
    // What members post, guests see.
    s.post(
        "/api/v1/rooms/lobby/messages",
        Some(&owner.access_token),
        json!({"body": "welcome"}),
    )
    .await
    .expect(201);
    assert_eq!(guest.next_json().await[4]["body"], "welcome");
}

#[tokio::test]
async fn flooding_pushes_are_refused_then_disconnected() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| {
        c.socket.events_per_second = 5;
        c.socket.event_burst = 5;
        c.socket.max_refused_in_a_row = 20;
    })
    .await
    else {
        return;
    };
    let (mut bystander, _) = member_socket(&s, "bystander").await;
    let (mut flooder, _) = member_socket(&s, "flooder").await;
    reply_of(&flooder.join("room:lobby", "1", json!({})).await, "1");
    for n in 0..10 {
        flooder
            .send(json!(["1", format!("p{n}"), "room:lobby", "ping", {}]))
            .await;
    }
    let mut reasons = Vec::new();
    for n in 0..10 {
        let (_, response) = reply_of(&flooder.next_json().await, &format!("p{n}"));
        reasons.push(response["reason"].as_str().unwrap_or_default().to_owned());
    }
    // The join used one event of the burst of 5; four pings pass, the rest are refused.
    assert_eq!(
        reasons.iter().filter(|r| *r == "unknown_event").count(),
        4,
        "{reasons:?}"
    );
    assert_eq!(
        reasons.iter().filter(|r| *r == "rate_limited").count(),
        6,
        "{reasons:?}"
    );
    assert_eq!(
        reply_of(&flooder.heartbeat("hb").await, "hb").0,
        "ok",
        "heartbeats are never limited"
    );
    assert_eq!(
        reply_of(&bystander.heartbeat("hb").await, "hb").0,
        "ok",
        "others are served"
    );
    for n in 0..30 {
        flooder
            .send(json!(["1", format!("q{n}"), "room:lobby", "ping", {}]))
            .await;
    }
    assert_eq!(
        flooder.closed().await,
        Some(1008),
        "sustained abuse closes the connection"
    );
    assert_eq!(reply_of(&bystander.heartbeat("hb2").await, "hb2").0, "ok");
}
