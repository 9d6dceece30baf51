//! Users over real HTTP: the admin-only list, public profiles, role changes, creating accounts
//! with a role, and the ways a user could try to give themselves more power.

mod common;

use std::collections::HashSet;

use common::{Session, TestServer, id_of, session_from};
use fawkes_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

fn user_path(who: &Session) -> String {
    format!("/api/v1/users/{}", who.user_id)
}

async fn role_of(s: &TestServer, who: &Session) -> Value {
    s.get("/api/v1/me", &who.access_token).await.expect(200)["role"].clone()
}

async fn only_admins_list_users(s: TestServer) {
    let user = s.register("plain").await;
    let affiliate = s.user_with_role("partner", Role::Affiliate).await;
    let admin = s.user_with_role("root", Role::Admin).await;
    for who in [&user, &affiliate] {
        s.get("/api/v1/users", &who.access_token)
            .await
            .expect_error(403, "forbidden");
    }
    s.call(Method::GET, "/api/v1/users", None, None)
        .await
        .expect_error(401, "unauthenticated");
    s.get("/api/v1/users", &admin.access_token)
        .await
        .expect(200);
}

async fn admins_page_through_every_user_once(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let mut expected = vec![admin.user_id.clone()];
    for i in 0..6 {
        expected.push(s.register(&format!("user{i}")).await.user_id);
    }
    let (users, sizes) = s.read_pages("/api/v1/users", &admin.access_token, 3).await;
    assert_eq!(sizes, vec![3, 3, 1]);
    let ids: Vec<String> = users.iter().map(id_of).collect();
    assert_eq!(ids, expected, "oldest first, each once");
    assert_eq!(users[1]["email"], "user0@example.com", "admins see emails");
    assert_eq!(users[1]["username"], "user0");
    assert_eq!(users[1]["role"], "user");
    assert!(users.iter().all(|u| u.get("password_hash").is_none()));

    let reply = s.get("/api/v1/users?limit=0", &admin.access_token).await;
    reply.expect_error(422, "validation_failed");
    assert!(reply.body["error"]["details"]["limit"].is_array());
    let reply = s.get("/api/v1/users?cursor=xyz", &admin.access_token).await;
    reply.expect_error(422, "validation_failed");
    assert!(reply.body["error"]["details"]["cursor"].is_array());
}

async fn a_profile_is_public_and_has_no_email(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let reply = s.get(&user_path(&ada), &bob.access_token).await;
    let profile = reply.expect(200);
    assert_eq!(profile["id"], ada.user_id.as_str());
    assert_eq!(profile["username"], "ada");
    assert_eq!(profile["role"], "user");
    assert!(profile["created_at"].is_string());
    for private in ["email", "password_hash", "is_active", "last_login_at"] {
        assert!(
            profile.get(private).is_none(),
            "{private} is not public: {profile}"
        );
    }
    assert!(
        !profile.to_string().contains("example.com"),
        "no email anywhere: {profile}"
    );
    s.call(Method::GET, &user_path(&ada), None, None)
        .await
        .expect_error(401, "unauthenticated");
}

async fn an_unknown_user_is_404_and_a_malformed_id_400(s: TestServer) {
    let ada = s.register("ada").await;
    let admin = s.user_with_role("root", Role::Admin).await;
    let unknown = format!("/api/v1/users/{}", uuid::Uuid::now_v7());
    s.get(&unknown, &ada.access_token)
        .await
        .expect_error(404, "not_found");
    s.patch(
        &unknown,
        &admin.access_token,
        json!({ "role": "affiliate" }),
    )
    .await
    .expect_error(404, "not_found");
    s.get("/api/v1/users/not-a-uuid", &ada.access_token)
        .await
        .expect_error(400, "invalid_path");
}

async fn a_role_change_takes_effect_on_existing_tokens(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let bob = s.register("bob").await;
    assert_eq!(role_of(&s, &bob).await, "user");

    let reply = s
        .patch(
            &user_path(&bob),
            &admin.access_token,
            json!({ "role": "affiliate" }),
        )
        .await;
    let changed = reply.expect(200);
    assert_eq!(changed["role"], "affiliate");
    assert_eq!(changed["is_active"], true, "only the role changed");
    assert_eq!(
        role_of(&s, &bob).await,
        "affiliate",
        "the token he already has"
    );
    let profile = s.get(&user_path(&bob), &admin.access_token).await;
    assert_eq!(profile.expect(200)["role"], "affiliate");

    // Promotion works the same way: the stored role counts, not the one in the token.
    s.patch(
        &user_path(&bob),
        &admin.access_token,
        json!({ "role": "admin" }),
    )
    .await
    .expect(200);
    s.get("/api/v1/users", &bob.access_token).await.expect(200);
    s.patch(
        &user_path(&bob),
        &admin.access_token,
        json!({ "role": "user" }),
    )
    .await
    .expect(200);
    s.get("/api/v1/users", &bob.access_token)
        .await
        .expect_error(403, "forbidden");
}

async fn users_cannot_change_roles_or_promote_themselves(s: TestServer) {
    let bob = s.register("bob").await;
    let ada = s.register("ada").await;
    let affiliate = s.user_with_role("partner", Role::Affiliate).await;
    s.patch(
        &user_path(&bob),
        &bob.access_token,
        json!({ "role": "admin" }),
    )
    .await
    .expect_error(403, "forbidden");
    s.patch(
        &user_path(&affiliate),
        &affiliate.access_token,
        json!({ "role": "admin" }),
    )
    .await
    .expect_error(403, "forbidden");
    s.patch(
        &user_path(&ada),
        &bob.access_token,
        json!({ "is_active": false }),
    )
    .await
    .expect_error(403, "forbidden");
    assert_eq!(role_of(&s, &bob).await, "user");
    assert_eq!(role_of(&s, &affiliate).await, "affiliate");
    s.get("/api/v1/me", &ada.access_token).await.expect(200);
    s.get("/api/v1/users", &bob.access_token)
        .await
        .expect_error(403, "forbidden");
}

async fn admins_cannot_demote_or_deactivate_themselves(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    for change in [
        json!({ "role": "user" }),
        json!({ "is_active": false }),
        json!({ "role": "admin", "is_active": false }),
    ] {
        s.patch(&user_path(&admin), &admin.access_token, change)
            .await
            .expect_error(403, "forbidden");
    }
    let me = s.get("/api/v1/me", &admin.access_token).await;
    let me = me.expect(200);
    assert_eq!(me["role"], "admin");
    assert_eq!(me["is_active"], true);
    s.get("/api/v1/users", &admin.access_token)
        .await
        .expect(200);

    // Another admin may change them.
    let other = s.user_with_role("root2", Role::Admin).await;
    let reply = s
        .patch(
            &user_path(&admin),
            &other.access_token,
            json!({ "role": "user" }),
        )
        .await;
    assert_eq!(reply.expect(200)["role"], "user");
}

async fn invalid_changes_are_refused(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let bob = s.register("bob").await;
    for change in [
        json!({ "role": "superuser" }),
        json!({ "role": "Admin" }),
        json!({ "is_active": "no" }),
    ] {
        s.patch(&user_path(&bob), &admin.access_token, change)
            .await
            .expect_error(422, "validation_failed");
    }
    let me = s.get("/api/v1/me", &bob.access_token).await;
    let me = me.expect(200);
    assert_eq!(me["role"], "user");
    assert_eq!(me["is_active"], true);
}

async fn admins_create_users_with_a_role(s: TestServer) {
    let admin = s.user_with_role("root", Role::Admin).await;
    let input = json!({
        "email": "Partner@Example.com", "username": "partner",
        "password": "partner password", "role": "affiliate",
    });
    let reply = s
        .post("/api/v1/users", Some(&admin.access_token), input)
        .await;
    let created = reply.expect(201);
    assert_eq!(created["role"], "affiliate");
    assert_eq!(created["email"], "partner@example.com");
    assert_eq!(created["username"], "partner");
    assert_eq!(created["is_active"], true);
    assert!(created.get("password_hash").is_none());

    let login = json!({ "login": "partner", "password": "partner password" });
    let session = session_from(s.post("/api/v1/auth/login", None, login).await.expect(200));
    assert_eq!(session.user_id, created["id"].as_str().unwrap_or_default());
    assert_eq!(role_of(&s, &session).await, "affiliate");

    let default_role = json!({
        "email": "plain@example.com", "username": "plain", "password": "plain password",
    });
    let reply = s
        .post("/api/v1/users", Some(&admin.access_token), default_role)
        .await;
    assert_eq!(reply.expect(201)["role"], "user");

    let duplicate = json!({
        "email": "other@example.com", "username": "PARTNER", "password": "whatever pw",
    });
    let reply = s
        .post("/api/v1/users", Some(&admin.access_token), duplicate)
        .await;
    reply.expect_error(409, "conflict");
    assert!(reply.body["error"]["details"]["username"].is_array());

    let invalid =
        json!({ "email": "nope", "username": "x", "password": "short", "role": "affiliate" });
    let reply = s
        .post("/api/v1/users", Some(&admin.access_token), invalid)
        .await;
    reply.expect_error(422, "validation_failed");
    for field in ["email", "username", "password"] {
        assert!(
            reply.body["error"]["details"][field].is_array(),
            "{field}: {}",
            reply.body
        );
    }
    let (users, _) = s
        .read_pages("/api/v1/users", &admin.access_token, 100)
        .await;
    assert_eq!(users.len(), 3, "root, partner and plain");
}

async fn only_admins_create_users(s: TestServer) {
    let bob = s.register("bob").await;
    let affiliate = s.user_with_role("partner", Role::Affiliate).await;
    for (who, name) in [(&bob, "bobs-friend"), (&affiliate, "partners-friend")] {
        let input = json!({
            "email": format!("{name}@example.com"), "username": name,
            "password": "some password", "role": "admin",
        });
        s.post("/api/v1/users", Some(&who.access_token), input)
            .await
            .expect_error(403, "forbidden");
        s.login(name, None)
            .await
            .expect_error(401, "invalid_credentials");
    }
    let anonymous = json!({
        "email": "anon@example.com", "username": "anon", "password": "some password",
    });
    s.post("/api/v1/users", None, anonymous)
        .await
        .expect_error(401, "unauthenticated");

    let admin = s.user_with_role("root", Role::Admin).await;
    let (users, _) = s
        .read_pages("/api/v1/users", &admin.access_token, 100)
        .await;
    let names: HashSet<&str> = users
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, HashSet::from(["bob", "partner", "root"]));
}

async fn registering_cannot_choose_a_role(s: TestServer) {
    let body = json!({
        "email": "sneaky@example.com", "username": "sneaky",
        "password": "sneaky password", "role": "admin", "is_active": true,
    });
    let reply = s.post("/api/v1/auth/register", None, body).await;
    let body = reply.expect(201);
    assert_eq!(body["user"]["role"], "user");
    let session = session_from(body);
    assert_eq!(role_of(&s, &session).await, "user");
    s.get("/api/v1/users", &session.access_token)
        .await
        .expect_error(403, "forbidden");
}

on_every_database!(
    only_admins_list_users,
    admins_page_through_every_user_once,
    a_profile_is_public_and_has_no_email,
    an_unknown_user_is_404_and_a_malformed_id_400,
    a_role_change_takes_effect_on_existing_tokens,
    users_cannot_change_roles_or_promote_themselves,
    admins_cannot_demote_or_deactivate_themselves,
    invalid_changes_are_refused,
    admins_create_users_with_a_role,
    only_admins_create_users,
    registering_cannot_choose_a_role,
);
