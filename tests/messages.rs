//! Messages in rooms over real HTTP: posting, reading back, editing, deleting, who may do which,
//! and cursor pagination of the history.

mod common;

use std::collections::HashSet;

use common::{Session, TestServer, id_of};
use fawkes_domain::Role;
use serde_json::{Value, json};

/// The path of the room's messages.
fn messages_in(slug: &str) -> String {
    format!("/api/v1/rooms/{slug}/messages")
}

/// Posts `body` to the room as `who` and returns the stored message.
async fn post(s: &TestServer, who: &Session, slug: &str, body: &str) -> Value {
    let message = json!({ "body": body });
    s.create(&messages_in(slug), &who.access_token, message)
        .await
}

/// The ids of the room's messages, newest first.
async fn listed_ids(s: &TestServer, who: &Session, slug: &str) -> Vec<String> {
    s.listed_ids(&messages_in(slug), &who.access_token).await
}

async fn a_posted_message_reads_back(s: TestServer) {
    let ada = s.register("ada").await;
    let room = s.create_room(&ada, "chat", false).await;
    let posted = post(&s, &ada, "chat", "Hello, world! 🦀 ünïcödé").await;
    assert_eq!(posted["body"], "Hello, world! 🦀 ünïcödé");
    assert_eq!(posted["room_id"], room["id"]);
    assert_eq!(posted["author"]["id"], ada.user_id.as_str());
    assert_eq!(posted["author"]["username"], "ada");
    assert!(posted["edited_at"].is_null());
    assert!(posted["created_at"].is_string());

    let bob = s.register("bob").await;
    let chat = messages_in("chat");
    let (listed, _) = s.read_pages(&chat, &bob.access_token, 50).await;
    assert_eq!(listed, vec![posted], "everyone reads what was stored");
}

/// Posts that arrive together, which the node's writer stores in shared transactions, are each
/// answered with what was stored, stored once, and broadcast once to their own room.
async fn concurrent_posts_are_each_stored_and_broadcast_once(s: TestServer) {
    const POSTS: usize = 40;
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let rooms = ["north", "south"];
    for slug in rooms {
        s.create_room(&ada, slug, false).await;
    }
    let mut watcher = s.socket(&ada.access_token).await;
    for (join_ref, slug) in ["1", "2"].into_iter().zip(rooms) {
        let reply = watcher
            .join(&format!("room:{slug}"), join_ref, json!({}))
            .await;
        assert_eq!(reply[4]["status"], "ok", "{reply}");
    }

    let posts = (0..POSTS).map(|i| {
        let (who, slug) = if i % 2 == 0 {
            (&ada, rooms[0])
        } else {
            (&bob, rooms[1])
        };
        let body = format!("message {i}");
        let s = &s;
        async move {
            let reply = s
                .post(
                    &messages_in(slug),
                    Some(&who.access_token),
                    json!({ "body": body }),
                )
                .await;
            (who, slug, body, reply)
        }
    });
    let mut posted: HashSet<(String, String)> = HashSet::new();
    for (who, slug, body, reply) in futures_util::future::join_all(posts).await {
        let message = reply.expect(201);
        assert_eq!(message["body"], body.as_str());
        assert_eq!(message["author"]["id"], who.user_id.as_str());
        assert!(posted.insert((slug.to_owned(), id_of(message))));
    }

    for slug in rooms {
        let stored: HashSet<(String, String)> = listed_ids(&s, &ada, slug)
            .await
            .into_iter()
            .map(|id| (slug.to_owned(), id))
            .collect();
        assert_eq!(
            stored.len(),
            POSTS / 2,
            "{slug} holds each of its posts once"
        );
        assert!(
            stored.is_subset(&posted),
            "{slug} holds only what was posted to it"
        );
    }
    let mut broadcast = HashSet::new();
    while broadcast.len() < POSTS {
        let frame = watcher.next_json().await;
        if frame[3] == "new_msg" {
            let topic = frame[2].as_str().unwrap_or_default();
            let slug = topic.strip_prefix("room:").unwrap_or(topic).to_owned();
            let id = frame[4]["id"].as_str().unwrap_or_default().to_owned();
            assert!(
                posted.contains(&(slug.clone(), id.clone())),
                "a broadcast of a post to its own room: {frame}"
            );
            assert!(broadcast.insert((slug, id)), "broadcast twice: {frame}");
        }
    }
    // Nothing more: a heartbeat's reply is the next frame.
    let pong = watcher.heartbeat("beat").await;
    assert_eq!(pong[3], "phx_reply", "only one broadcast per post: {pong}");
}

async fn blank_or_too_long_bodies_are_refused(s: TestServer) {
    let ada = s.register("ada").await;
    let too_long = "x".repeat(4001);
    for body in ["", "   ", "\n\t", too_long.as_str()] {
        let reply = s
            .post(
                "/api/v1/rooms/lobby/messages",
                Some(&ada.access_token),
                json!({ "body": body }),
            )
            .await;
        reply.expect_error(422, "validation_failed");
        assert!(
            reply.body["error"]["details"]["body"]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            "no message for body {:?}: {}",
            body.get(..10),
            reply.body
        );
    }
    let missing = s
        .post(
            "/api/v1/rooms/lobby/messages",
            Some(&ada.access_token),
            json!({}),
        )
        .await;
    missing.expect_error(422, "validation_failed");
    assert!(listed_ids(&s, &ada, "lobby").await.is_empty());

    // The limit counts characters, not bytes.
    let longest = "é".repeat(4000);
    let stored = post(&s, &ada, "lobby", &longest).await;
    assert_eq!(stored["body"], longest.as_str());
}

async fn only_the_author_edits_and_editing_sets_edited_at(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let admin = s.user_with_role("root", Role::Admin).await;
    s.create_room(&ada, "chat", false).await;
    let message = post(&s, &bob, "chat", "original").await;
    let path = format!("/api/v1/messages/{}", id_of(&message));

    // Not the room owner, not an admin: only the author.
    for other in [&ada, &admin] {
        s.patch(&path, &other.access_token, json!({ "body": "hijacked" }))
            .await
            .expect_error(403, "forbidden");
    }
    let chat = messages_in("chat");
    let (listed, _) = s.read_pages(&chat, &ada.access_token, 50).await;
    assert_eq!(listed, vec![message.clone()], "the message is unchanged");

    let edited = s
        .patch(&path, &bob.access_token, json!({ "body": "corrected" }))
        .await;
    let edited = edited.expect(200);
    assert_eq!(edited["id"], message["id"]);
    assert_eq!(edited["body"], "corrected");
    assert_eq!(edited["created_at"], message["created_at"]);
    assert!(edited["edited_at"].is_string(), "{edited}");
    let (listed, _) = s.read_pages(&chat, &ada.access_token, 50).await;
    assert_eq!(listed, vec![edited.clone()]);

    let blank = s
        .patch(&path, &bob.access_token, json!({ "body": " " }))
        .await;
    blank.expect_error(422, "validation_failed");
    assert!(blank.body["error"]["details"]["body"].is_array());
    let (listed, _) = s.read_pages(&chat, &ada.access_token, 50).await;
    assert_eq!(listed[0]["body"], "corrected");
}

async fn the_author_deletes_their_message(s: TestServer) {
    let ada = s.register("ada").await;
    let keep = post(&s, &ada, "lobby", "keep me").await;
    let gone = post(&s, &ada, "lobby", "delete me").await;
    s.delete(
        &format!("/api/v1/messages/{}", id_of(&gone)),
        &ada.access_token,
    )
    .await
    .expect(204);
    assert_eq!(listed_ids(&s, &ada, "lobby").await, vec![id_of(&keep)]);
}

async fn the_room_owner_deletes_others_messages_in_their_room(s: TestServer) {
    let owner = s.register("owner").await;
    let guest = s.register("guest").await;
    s.create_room(&owner, "owned", false).await;
    let message = post(&s, &guest, "owned", "rude words").await;
    s.delete(
        &format!("/api/v1/messages/{}", id_of(&message)),
        &owner.access_token,
    )
    .await
    .expect(204);
    assert!(listed_ids(&s, &guest, "owned").await.is_empty());

    // Owning one room gives no power over another.
    let in_lobby = post(&s, &guest, "lobby", "hello").await;
    s.delete(
        &format!("/api/v1/messages/{}", id_of(&in_lobby)),
        &owner.access_token,
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(
        listed_ids(&s, &guest, "lobby").await,
        vec![id_of(&in_lobby)]
    );
}

async fn an_admin_deletes_any_message(s: TestServer) {
    let owner = s.register("owner").await;
    let admin = s.user_with_role("root", Role::Admin).await;
    s.create_room(&owner, "hidden", true).await;
    let private = post(&s, &owner, "hidden", "secret").await;
    let public = post(&s, &owner, "lobby", "public").await;
    for message in [&private, &public] {
        s.delete(
            &format!("/api/v1/messages/{}", id_of(message)),
            &admin.access_token,
        )
        .await
        .expect(204);
    }
    assert!(listed_ids(&s, &owner, "hidden").await.is_empty());
    assert!(listed_ids(&s, &owner, "lobby").await.is_empty());
}

async fn an_unrelated_user_cannot_delete(s: TestServer) {
    let owner = s.register("owner").await;
    let author = s.register("author").await;
    let stranger = s.register("stranger").await;
    s.create_room(&owner, "place", false).await;
    let message = post(&s, &author, "place", "mine").await;
    s.delete(
        &format!("/api/v1/messages/{}", id_of(&message)),
        &stranger.access_token,
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(listed_ids(&s, &owner, "place").await, vec![id_of(&message)]);
}

async fn deleted_and_unknown_messages_are_404(s: TestServer) {
    let ada = s.register("ada").await;
    let message = post(&s, &ada, "lobby", "short-lived").await;
    let path = format!("/api/v1/messages/{}", id_of(&message));
    s.delete(&path, &ada.access_token).await.expect(204);
    s.patch(&path, &ada.access_token, json!({ "body": "back?" }))
        .await
        .expect_error(404, "not_found");
    s.delete(&path, &ada.access_token)
        .await
        .expect_error(404, "not_found");

    let unknown = format!("/api/v1/messages/{}", uuid::Uuid::now_v7());
    s.patch(&unknown, &ada.access_token, json!({ "body": "x" }))
        .await
        .expect_error(404, "not_found");
    s.delete(&unknown, &ada.access_token)
        .await
        .expect_error(404, "not_found");
    s.delete("/api/v1/messages/not-a-uuid", &ada.access_token)
        .await
        .expect_error(400, "invalid_path");
    assert!(listed_ids(&s, &ada, "lobby").await.is_empty());
}

async fn messages_in_a_private_room_do_not_exist_for_outsiders(s: TestServer) {
    let owner = s.register("owner").await;
    let outsider = s.register("outsider").await;
    s.create_room(&owner, "vault", true).await;
    let message = post(&s, &owner, "vault", "classified").await;
    let path = format!("/api/v1/messages/{}", id_of(&message));

    let edit = s
        .patch(&path, &outsider.access_token, json!({ "body": "leaked" }))
        .await;
    edit.expect_error(404, "not_found");
    s.delete(&path, &outsider.access_token)
        .await
        .expect_error(404, "not_found");
    let vault = messages_in("vault");
    let (listed, _) = s.read_pages(&vault, &owner.access_token, 50).await;
    assert_eq!(listed, vec![message]);
}

async fn history_pages_newest_first_with_each_message_once(s: TestServer) {
    let ada = s.register("ada").await;
    s.create_room(&ada, "history", false).await;
    let mut posted = Vec::new();
    for i in 0..7 {
        posted.push(id_of(
            &post(&s, &ada, "history", &format!("message {i}")).await,
        ));
    }
    let history = messages_in("history");
    let (messages, sizes) = s.read_pages(&history, &ada.access_token, 3).await;
    assert_eq!(sizes, vec![3, 3, 1]);
    let ids: Vec<String> = messages.iter().map(id_of).collect();
    let newest_first: Vec<String> = posted.iter().rev().cloned().collect();
    assert_eq!(ids, newest_first);
    let bodies: Vec<&str> = messages.iter().filter_map(|m| m["body"].as_str()).collect();
    assert_eq!(bodies[0], "message 6");
    assert_eq!(bodies[6], "message 0");

    // When the last page is exactly full, its cursor is already null: no empty page follows.
    let (messages, sizes) = s.read_pages(&history, &ada.access_token, 7).await;
    assert_eq!(messages.len(), 7);
    assert_eq!(sizes, vec![7], "a full last page has a null cursor");
    let unique: HashSet<String> = messages.iter().map(id_of).collect();
    assert_eq!(unique.len(), 7);
}

async fn bad_page_parameters_are_refused(s: TestServer) {
    let ada = s.register("ada").await;
    let tok = ada.access_token.as_str();
    let reply = s
        .get("/api/v1/rooms/lobby/messages?cursor=not-a-cursor!", tok)
        .await;
    reply.expect_error(422, "validation_failed");
    assert!(reply.body["error"]["details"]["cursor"].is_array());
    // Valid base64, but not 16 bytes.
    let reply = s.get("/api/v1/rooms/lobby/messages?cursor=AAAA", tok).await;
    reply.expect_error(422, "validation_failed");
    assert!(reply.body["error"]["details"]["cursor"].is_array());

    for limit in ["0", "101"] {
        let reply = s
            .get(&format!("/api/v1/rooms/lobby/messages?limit={limit}"), tok)
            .await;
        reply.expect_error(422, "validation_failed");
        assert!(reply.body["error"]["details"]["limit"].is_array());
    }
    for limit in ["abc", "-1", "1.5"] {
        s.get(&format!("/api/v1/rooms/lobby/messages?limit={limit}"), tok)
            .await
            .expect_error(400, "invalid_query");
    }
    s.get("/api/v1/rooms/lobby/messages?limit=1", tok)
        .await
        .expect(200);
    s.get("/api/v1/rooms/lobby/messages?limit=100", tok)
        .await
        .expect(200);
}

on_every_database!(
    a_posted_message_reads_back,
    concurrent_posts_are_each_stored_and_broadcast_once,
    blank_or_too_long_bodies_are_refused,
    only_the_author_edits_and_editing_sets_edited_at,
    the_author_deletes_their_message,
    the_room_owner_deletes_others_messages_in_their_room,
    an_admin_deletes_any_message,
    an_unrelated_user_cannot_delete,
    deleted_and_unknown_messages_are_404,
    messages_in_a_private_room_do_not_exist_for_outsiders,
    history_pages_newest_first_with_each_message_once,
    bad_page_parameters_are_refused,
);
