//! Rooms and their members over real HTTP: creation, validation, visibility of private rooms
//! and who may add or remove members.

mod common;

use common::{Session, TestServer};
use fawkes_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

/// `actor` adds `member` to the room; returns the reply.
async fn add_member(
    s: &TestServer,
    actor: &Session,
    slug: &str,
    member: &Session,
) -> common::Reply {
    s.post(
        &format!("/api/v1/rooms/{slug}/members"),
        Some(&actor.access_token),
        json!({ "user_id": member.user_id }),
    )
    .await
}

/// The slugs of a list of rooms.
fn slugs_of(rooms: &[Value]) -> Vec<String> {
    rooms
        .iter()
        .map(|r| r["slug"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The slugs of every room `who` can list, following `next_cursor` to the end.
async fn listed_slugs(s: &TestServer, who: &Session) -> Vec<String> {
    let (rooms, _) = s.read_pages("/api/v1/rooms", &who.access_token, 100).await;
    slugs_of(&rooms)
}

/// The user ids of a room's members, as `who` sees them.
async fn member_ids(s: &TestServer, who: &Session, slug: &str) -> Vec<String> {
    let reply = s
        .get(&format!("/api/v1/rooms/{slug}/members"), &who.access_token)
        .await;
    reply
        .expect(200)
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| m["user"]["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn the_lobby_exists_and_is_listed(s: TestServer) {
    let ada = s.register("ada").await;
    let lobby = s.get("/api/v1/rooms/lobby", &ada.access_token).await;
    let lobby = lobby.expect(200);
    assert_eq!(lobby["slug"], "lobby");
    assert_eq!(lobby["is_private"], false);
    assert!(
        lobby["owner_id"].is_null(),
        "the system owns the lobby: {lobby}"
    );
    assert_eq!(listed_slugs(&s, &ada).await, vec!["lobby"]);
    let posted = s
        .post(
            "/api/v1/rooms/lobby/messages",
            Some(&ada.access_token),
            json!({ "body": "hello lobby" }),
        )
        .await;
    posted.expect(201);
}

async fn rooms_need_a_signed_in_user(s: TestServer) {
    s.call(Method::GET, "/api/v1/rooms", None, None)
        .await
        .expect_error(401, "unauthenticated");
    s.call(Method::GET, "/api/v1/rooms/lobby", None, None)
        .await
        .expect_error(401, "unauthenticated");
    let create = json!({ "slug": "anon", "name": "Anonymous" });
    s.post("/api/v1/rooms", None, create)
        .await
        .expect_error(401, "unauthenticated");
}

async fn creating_a_room_makes_the_creator_owner_and_member(s: TestServer) {
    let ada = s.register("ada").await;
    let body = json!({ "slug": "rust-lovers_2", "name": "  Rust lovers  " });
    let reply = s.post("/api/v1/rooms", Some(&ada.access_token), body).await;
    let room = reply.expect(201);
    assert_eq!(room["slug"], "rust-lovers_2");
    assert_eq!(room["name"], "Rust lovers", "the name is trimmed");
    assert_eq!(room["is_private"], false, "rooms are public unless asked");
    assert_eq!(room["owner_id"], ada.user_id.as_str());
    assert!(room["id"].is_string() && room["created_at"].is_string());

    let fetched = s
        .get("/api/v1/rooms/rust-lovers_2", &ada.access_token)
        .await;
    assert_eq!(fetched.expect(200)["id"], room["id"]);
    assert_eq!(
        member_ids(&s, &ada, "rust-lovers_2").await,
        vec![ada.user_id.clone()]
    );
    let bob = s.register("bob").await;
    let seen_by_bob = listed_slugs(&s, &bob).await;
    assert!(
        seen_by_bob.contains(&"rust-lovers_2".to_owned()),
        "public rooms are listed for everyone: {seen_by_bob:?}"
    );
}

async fn a_taken_slug_is_a_conflict_on_the_slug(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    s.create_room(&ada, "general", false).await;
    for (who, private) in [(&ada, false), (&bob, true)] {
        let body = json!({ "slug": "general", "name": "Another", "is_private": private });
        let reply = s.post("/api/v1/rooms", Some(&who.access_token), body).await;
        reply.expect_error(409, "conflict");
        assert!(
            reply.body["error"]["details"]["slug"]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            "the conflict names the slug: {}",
            reply.body
        );
    }
    let lobby = json!({ "slug": "lobby", "name": "My lobby" });
    let reply = s
        .post("/api/v1/rooms", Some(&ada.access_token), lobby)
        .await;
    reply.expect_error(409, "conflict");
    assert_eq!(listed_slugs(&s, &ada).await, vec!["lobby", "general"]);
}

async fn invalid_slugs_and_names_are_reported_per_field(s: TestServer) {
    let ada = s.register("ada").await;
    let both_bad = json!({ "slug": "Not A Slug!", "name": "   " });
    let reply = s
        .post("/api/v1/rooms", Some(&ada.access_token), both_bad)
        .await;
    reply.expect_error(422, "validation_failed");
    let details = &reply.body["error"]["details"];
    for field in ["slug", "name"] {
        assert!(
            details[field].as_array().is_some_and(|m| !m.is_empty()),
            "no message for {field}: {details}"
        );
    }

    let too_long_slug = "a".repeat(65);
    let too_long_name = "n".repeat(101);
    let bad_slugs = [
        "",
        "-starts-with-dash",
        "_under",
        "UPPER",
        "has.dot",
        "é",
        &too_long_slug,
    ];
    for slug in bad_slugs {
        let body = json!({ "slug": slug, "name": "Fine name" });
        let reply = s.post("/api/v1/rooms", Some(&ada.access_token), body).await;
        reply.expect_error(422, "validation_failed");
        assert!(
            reply.body["error"]["details"]["slug"].is_array(),
            "slug {slug:?}: {}",
            reply.body
        );
        assert!(
            reply.body["error"]["details"].get("name").is_none(),
            "only the slug is wrong: {}",
            reply.body
        );
    }
    for name in ["", " \t\n ", too_long_name.as_str()] {
        let body = json!({ "slug": "fine", "name": name });
        let reply = s.post("/api/v1/rooms", Some(&ada.access_token), body).await;
        reply.expect_error(422, "validation_failed");
        assert!(
            reply.body["error"]["details"]["name"].is_array(),
            "name {name:?}: {}",
            reply.body
        );
    }
    let missing = s
        .post(
            "/api/v1/rooms",
            Some(&ada.access_token),
            json!({ "slug": "fine" }),
        )
        .await;
    missing.expect_error(422, "validation_failed");

    // The longest valid slug and name are accepted.
    let longest = json!({ "slug": "a".repeat(64), "name": "n".repeat(100) });
    s.post("/api/v1/rooms", Some(&ada.access_token), longest)
        .await
        .expect(201);
    assert_eq!(
        listed_slugs(&s, &ada).await.len(),
        2,
        "no invalid room was stored"
    );
}

async fn a_private_room_does_not_exist_for_outsiders(s: TestServer) {
    let owner = s.register("owner").await;
    let outsider = s.register("outsider").await;
    let room = s.create_room(&owner, "secret", true).await;
    assert_eq!(room["is_private"], true);

    let tok = outsider.access_token.as_str();
    s.get("/api/v1/rooms/secret", tok)
        .await
        .expect_error(404, "not_found");
    s.get("/api/v1/rooms/secret/messages", tok)
        .await
        .expect_error(404, "not_found");
    s.get("/api/v1/rooms/secret/members", tok)
        .await
        .expect_error(404, "not_found");
    let post = s
        .post(
            "/api/v1/rooms/secret/messages",
            Some(tok),
            json!({ "body": "let me in" }),
        )
        .await;
    post.expect_error(404, "not_found");
    add_member(&s, &outsider, "secret", &outsider)
        .await
        .expect_error(404, "not_found");
    assert_eq!(listed_slugs(&s, &outsider).await, vec!["lobby"]);

    // The answers are the same as for a room that does not exist at all.
    let unknown = s.get("/api/v1/rooms/no-such-room", tok).await;
    let hidden = s.get("/api/v1/rooms/secret", tok).await;
    assert_eq!(unknown.body["error"], hidden.body["error"]);

    // Nothing the outsider tried reached the room.
    let messages = s
        .get("/api/v1/rooms/secret/messages", &owner.access_token)
        .await;
    assert_eq!(messages.expect(200)["items"], json!([]));
    assert_eq!(
        member_ids(&s, &owner, "secret").await,
        vec![owner.user_id.clone()]
    );
    assert_eq!(listed_slugs(&s, &owner).await, vec!["lobby", "secret"]);
}

async fn a_member_added_by_the_owner_can_see_and_post(s: TestServer) {
    let owner = s.register("owner").await;
    let friend = s.register("friend").await;
    s.create_room(&owner, "club", true).await;

    let added = add_member(&s, &owner, "club", &friend).await;
    let member = added.expect(201);
    assert_eq!(member["user"]["id"], friend.user_id.as_str());
    assert_eq!(member["user"]["username"], "friend");
    assert!(member["joined_at"].is_string());
    let again = add_member(&s, &owner, "club", &friend).await;
    assert_eq!(
        again.expect(200)["joined_at"],
        member["joined_at"],
        "adding twice changes nothing"
    );

    let tok = friend.access_token.as_str();
    s.get("/api/v1/rooms/club", tok).await.expect(200);
    assert_eq!(listed_slugs(&s, &friend).await, vec!["lobby", "club"]);
    let mut members = member_ids(&s, &friend, "club").await;
    members.sort();
    let mut expected = vec![owner.user_id.clone(), friend.user_id.clone()];
    expected.sort();
    assert_eq!(members, expected);
    let posted = s
        .post(
            "/api/v1/rooms/club/messages",
            Some(tok),
            json!({ "body": "thanks for the invite" }),
        )
        .await;
    posted.expect(201);
    let seen = s
        .get("/api/v1/rooms/club/messages", &owner.access_token)
        .await;
    let seen = seen.expect(200);
    assert_eq!(seen["items"][0]["body"], "thanks for the invite");
    assert_eq!(seen["items"][0]["author"]["username"], "friend");
}

async fn only_the_owner_or_an_admin_adds_members(s: TestServer) {
    let owner = s.register("owner").await;
    let member = s.register("member").await;
    let stranger = s.register("stranger").await;
    let admin = s.user_with_role("root", Role::Admin).await;
    s.create_room(&owner, "private", true).await;
    s.create_room(&owner, "public", false).await;
    add_member(&s, &owner, "private", &member).await.expect(201);

    // A member of a private room is not its owner.
    add_member(&s, &member, "private", &stranger)
        .await
        .expect_error(403, "forbidden");
    // Anyone can see a public room, but only its owner adds to it.
    add_member(&s, &stranger, "public", &stranger)
        .await
        .expect_error(403, "forbidden");
    // The lobby has no owner: nobody but admins adds to it.
    add_member(&s, &owner, "lobby", &stranger)
        .await
        .expect_error(403, "forbidden");
    s.get("/api/v1/rooms/private", &stranger.access_token)
        .await
        .expect_error(404, "not_found");
    assert_eq!(member_ids(&s, &owner, "public").await.len(), 1);

    add_member(&s, &admin, "private", &stranger)
        .await
        .expect(201);
    s.get("/api/v1/rooms/private", &stranger.access_token)
        .await
        .expect(200);
}

async fn adding_an_unknown_or_malformed_user_is_refused(s: TestServer) {
    let owner = s.register("owner").await;
    s.create_room(&owner, "room", false).await;
    let unknown = json!({ "user_id": uuid::Uuid::new_v4() });
    s.post(
        "/api/v1/rooms/room/members",
        Some(&owner.access_token),
        unknown,
    )
    .await
    .expect_error(404, "not_found");
    let malformed = json!({ "user_id": "not-a-uuid" });
    s.post(
        "/api/v1/rooms/room/members",
        Some(&owner.access_token),
        malformed,
    )
    .await
    .expect_error(422, "validation_failed");
    assert_eq!(member_ids(&s, &owner, "room").await.len(), 1);
}

async fn admins_see_and_enter_private_rooms(s: TestServer) {
    let owner = s.register("owner").await;
    let admin = s.user_with_role("root", Role::Admin).await;
    s.create_room(&owner, "hideout", true).await;
    s.post(
        "/api/v1/rooms/hideout/messages",
        Some(&owner.access_token),
        json!({ "body": "only us" }),
    )
    .await
    .expect(201);

    assert_eq!(listed_slugs(&s, &admin).await, vec!["lobby", "hideout"]);
    s.get("/api/v1/rooms/hideout", &admin.access_token)
        .await
        .expect(200);
    let messages = s
        .get("/api/v1/rooms/hideout/messages", &admin.access_token)
        .await;
    assert_eq!(messages.expect(200)["items"][0]["body"], "only us");
    assert_eq!(
        member_ids(&s, &admin, "hideout").await,
        vec![owner.user_id.clone()]
    );
    s.post(
        "/api/v1/rooms/hideout/messages",
        Some(&admin.access_token),
        json!({ "body": "admin here" }),
    )
    .await
    .expect(201);
}

async fn a_member_can_leave_and_then_loses_access(s: TestServer) {
    let owner = s.register("owner").await;
    let guest = s.register("guest").await;
    s.create_room(&owner, "den", true).await;
    add_member(&s, &owner, "den", &guest).await.expect(201);

    let leave = format!("/api/v1/rooms/den/members/{}", guest.user_id);
    s.delete(&leave, &guest.access_token).await.expect(204);
    s.get("/api/v1/rooms/den", &guest.access_token)
        .await
        .expect_error(404, "not_found");
    assert_eq!(listed_slugs(&s, &guest).await, vec!["lobby"]);
    assert_eq!(
        member_ids(&s, &owner, "den").await,
        vec![owner.user_id.clone()]
    );
    // Gone means gone: leaving again finds no room.
    s.delete(&leave, &guest.access_token)
        .await
        .expect_error(404, "not_found");
}

async fn the_owner_removes_members_and_members_cannot_remove_each_other(s: TestServer) {
    let owner = s.register("owner").await;
    let ann = s.register("ann").await;
    let ben = s.register("ben").await;
    s.create_room(&owner, "team", false).await;
    add_member(&s, &owner, "team", &ann).await.expect(201);
    add_member(&s, &owner, "team", &ben).await.expect(201);

    let remove_ben = format!("/api/v1/rooms/team/members/{}", ben.user_id);
    s.delete(&remove_ben, &ann.access_token)
        .await
        .expect_error(403, "forbidden");
    assert_eq!(member_ids(&s, &owner, "team").await.len(), 3);

    s.delete(&remove_ben, &owner.access_token).await.expect(204);
    let members = member_ids(&s, &owner, "team").await;
    assert_eq!(members.len(), 2);
    assert!(!members.contains(&ben.user_id));
    // Removing someone who is not a member is a 404.
    s.delete(&remove_ben, &owner.access_token)
        .await
        .expect_error(404, "not_found");
}

async fn the_owner_cannot_be_removed(s: TestServer) {
    let owner = s.register("owner").await;
    let admin = s.user_with_role("root", Role::Admin).await;
    s.create_room(&owner, "mine", true).await;
    let remove_owner = format!("/api/v1/rooms/mine/members/{}", owner.user_id);
    s.delete(&remove_owner, &owner.access_token)
        .await
        .expect_error(403, "forbidden");
    s.delete(&remove_owner, &admin.access_token)
        .await
        .expect_error(403, "forbidden");
    assert_eq!(
        member_ids(&s, &owner, "mine").await,
        vec![owner.user_id.clone()]
    );
    s.get("/api/v1/rooms/mine", &owner.access_token)
        .await
        .expect(200);
}

async fn an_unknown_room_is_404(s: TestServer) {
    let ada = s.register("ada").await;
    let tok = ada.access_token.as_str();
    for path in [
        "/api/v1/rooms/nowhere",
        "/api/v1/rooms/nowhere/messages",
        "/api/v1/rooms/nowhere/members",
    ] {
        s.get(path, tok).await.expect_error(404, "not_found");
    }
    s.post(
        "/api/v1/rooms/nowhere/messages",
        Some(tok),
        json!({ "body": "hello?" }),
    )
    .await
    .expect_error(404, "not_found");
    add_member(&s, &ada, "nowhere", &ada)
        .await
        .expect_error(404, "not_found");
    s.delete(
        &format!("/api/v1/rooms/nowhere/members/{}", ada.user_id),
        tok,
    )
    .await
    .expect_error(404, "not_found");
}

async fn a_malformed_user_id_in_the_path_is_400(s: TestServer) {
    let ada = s.register("ada").await;
    let reply = s
        .delete("/api/v1/rooms/lobby/members/not-a-uuid", &ada.access_token)
        .await;
    reply.expect_error(400, "invalid_path");
    s.delete("/api/v1/rooms/lobby/members/12345", &ada.access_token)
        .await
        .expect_error(400, "invalid_path");
}

async fn the_room_list_pages_through_every_visible_room_once(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    for i in 0..5 {
        s.create_room(&ada, &format!("room-{i}"), false).await;
    }
    s.create_room(&bob, "bobs-secret", true).await;

    let (rooms, sizes) = s.read_pages("/api/v1/rooms", &ada.access_token, 2).await;
    assert!(
        sizes.iter().all(|&n| n <= 2),
        "more than the limit: {sizes:?}"
    );
    assert_eq!(sizes.len(), 3);
    let seen = slugs_of(&rooms);
    assert_eq!(
        seen,
        vec!["lobby", "room-0", "room-1", "room-2", "room-3", "room-4"],
        "oldest first, each once, without others' private rooms"
    );

    let reply = s.get("/api/v1/rooms?limit=0", &ada.access_token).await;
    reply.expect_error(422, "validation_failed");
    assert!(reply.body["error"]["details"]["limit"].is_array());
    let reply = s
        .get("/api/v1/rooms?cursor=garbage", &ada.access_token)
        .await;
    reply.expect_error(422, "validation_failed");
    assert!(reply.body["error"]["details"]["cursor"].is_array());
}

on_every_database!(
    the_lobby_exists_and_is_listed,
    rooms_need_a_signed_in_user,
    creating_a_room_makes_the_creator_owner_and_member,
    a_taken_slug_is_a_conflict_on_the_slug,
    invalid_slugs_and_names_are_reported_per_field,
    a_private_room_does_not_exist_for_outsiders,
    a_member_added_by_the_owner_can_see_and_post,
    only_the_owner_or_an_admin_adds_members,
    adding_an_unknown_or_malformed_user_is_refused,
    admins_see_and_enter_private_rooms,
    a_member_can_leave_and_then_loses_access,
    the_owner_removes_members_and_members_cannot_remove_each_other,
    the_owner_cannot_be_removed,
    an_unknown_room_is_404,
    a_malformed_user_id_in_the_path_is_400,
    the_room_list_pages_through_every_visible_room_once,
);
