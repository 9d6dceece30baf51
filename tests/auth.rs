//! Registration, login, tokens, refresh rotation, logout and deactivation over real HTTP.

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Session, TEST_SECRET, TestServer, password_of, session_from};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

/// Claims like the server's, with the fields a test wants to vary.
fn claims(session: &Session, sid: &str, exp_offset: i64, iss: &str, aud: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": session.user_id, "role": "admin", "sid": sid,
        "iat": now, "nbf": now, "exp": now + exp_offset,
        "iss": iss, "aud": aud, "jti": uuid::Uuid::new_v4(),
    })
}

/// The `sid` claim of a token the server issued.
fn sid_of(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD.decode(payload).unwrap_or_default();
    let claims: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    claims["sid"].as_str().unwrap_or_default().to_owned()
}

fn sign(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap_or_default()
}

async fn register_returns_tokens_and_the_user(s: TestServer) {
    let body = json!({ "email": "Ada@Example.com", "username": "Ada", "password": "correct horse battery" });
    let reply = s.post("/api/v1/auth/register", None, body).await;
    let body = reply.expect(201);
    assert_eq!(
        body["user"]["email"], "ada@example.com",
        "emails are stored lowercased"
    );
    assert_eq!(body["user"]["username"], "Ada");
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().is_some_and(|s| s > 0));
    assert!(
        body["user"].get("password_hash").is_none(),
        "the hash never leaves the server"
    );
    let me = s
        .get(
            "/api/v1/me",
            body["access_token"].as_str().unwrap_or_default(),
        )
        .await;
    assert_eq!(me.expect(200)["username"], "Ada");
}

async fn duplicate_email_or_username_is_a_conflict(s: TestServer) {
    s.register("grace").await;
    let same_email =
        json!({ "email": "GRACE@example.com", "username": "other", "password": "long enough pw" });
    let reply = s.post("/api/v1/auth/register", None, same_email).await;
    reply.expect_error(409, "conflict");
    assert!(reply.body["error"]["details"]["email"].is_array());
    let same_name =
        json!({ "email": "new@example.com", "username": "Grace", "password": "long enough pw" });
    let reply = s.post("/api/v1/auth/register", None, same_name).await;
    reply.expect_error(409, "conflict");
    assert!(
        reply.body["error"]["details"]["username"].is_array(),
        "usernames collide regardless of case"
    );
}

async fn invalid_fields_are_reported_per_field(s: TestServer) {
    let body = json!({ "email": "not-an-email", "username": "a b", "password": "short" });
    let reply = s.post("/api/v1/auth/register", None, body).await;
    reply.expect_error(422, "validation_failed");
    let details = &reply.body["error"]["details"];
    for field in ["email", "username", "password"] {
        assert!(
            details[field].as_array().is_some_and(|m| !m.is_empty()),
            "no message for {field}: {details}"
        );
    }
    let missing = s
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "x@example.com" }),
        )
        .await;
    missing.expect_error(422, "validation_failed");
}

async fn malformed_json_is_400_and_wrong_content_type_is_415(s: TestServer) {
    let reply = s
        .call_raw(
            Method::POST,
            "/api/v1/auth/login",
            None,
            "application/json",
            b"{\"login\": ".to_vec(),
        )
        .await;
    reply.expect_error(400, "malformed_json");
    let reply = s
        .call_raw(
            Method::POST,
            "/api/v1/auth/login",
            None,
            "text/plain",
            b"login=x".to_vec(),
        )
        .await;
    reply.expect_error(415, "unsupported_media_type");
    // serde would read `RefreshInput` from `["…"]`; the document says the body is an object.
    let reply = s
        .call_raw(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            "application/json",
            b"[\"a-refresh-token\"]".to_vec(),
        )
        .await;
    reply.expect_error(422, "validation_failed");
    let reply = s
        .call_raw(
            Method::POST,
            "/api/v1/auth/refresh",
            None,
            "Application/JSON; charset=utf-8",
            b" {\"refresh_token\": \"a-refresh-token\"}".to_vec(),
        )
        .await;
    reply.expect_error(401, "invalid_token");
}

async fn oversized_bodies_are_413(s: TestServer) {
    let huge = format!(
        "{{\"login\": \"{}\", \"password\": \"x\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let reply = s
        .call_raw(
            Method::POST,
            "/api/v1/auth/login",
            None,
            "application/json",
            huge.into_bytes(),
        )
        .await;
    reply.expect_error(413, "payload_too_large");
}

async fn login_works_with_email_or_username(s: TestServer) {
    s.register("linus").await;
    s.login("linus", None).await.expect(200);
    let upper = json!({ "login": "LINUS", "password": password_of("linus") });
    s.post("/api/v1/auth/login", None, upper).await.expect(200);
    let by_email = json!({ "login": "Linus@Example.com", "password": password_of("linus") });
    let body = s.post("/api/v1/auth/login", None, by_email).await;
    assert!(body.expect(200)["user"]["last_login_at"].is_string());
}

async fn wrong_password_and_unknown_user_get_the_same_answer(s: TestServer) {
    s.register("alan").await;
    let wrong = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "login": "alan", "password": "wrong password" }),
        )
        .await;
    wrong.expect_error(401, "invalid_credentials");
    let unknown = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "login": "nobody", "password": "whatever pw" }),
        )
        .await;
    unknown.expect_error(401, "invalid_credentials");
    assert_eq!(
        wrong.body, unknown.body,
        "the answer must not reveal whether the account exists"
    );
}

/// An unknown login costs one Argon2 verification (of a decoy hash), as a wrong password does,
/// so the answer's timing does not tell whether the account exists; the answer is the same too.
async fn an_unknown_login_costs_one_verification_like_a_wrong_password(s: TestServer) {
    s.register("alan").await;
    let accounts = &s.domain.accounts;
    let attempts = [
        ("alan", "wrong password"),
        ("alan@example.com", "wrong password"),
        ("nobody", "wrong password"),
        ("nobody@example.com", "wrong password"),
    ];
    let mut answers = Vec::new();
    for (login, password) in attempts {
        let before = accounts.password_verifications();
        let reply = s
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "login": login, "password": password }),
            )
            .await;
        reply.expect_error(401, "invalid_credentials");
        assert_eq!(
            accounts.password_verifications() - before,
            1,
            "logging in as {login} must cost exactly one password verification"
        );
        answers.push(reply.body);
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the answers differ: {answers:?}"
    );
    let before = accounts.password_verifications();
    s.login("alan", None).await.expect(200);
    assert_eq!(accounts.password_verifications() - before, 1);
}

async fn requests_without_a_valid_token_are_401(s: TestServer) {
    let reply = s.call(Method::GET, "/api/v1/me", None, None).await;
    reply.expect_error(401, "unauthenticated");
    assert_eq!(
        reply
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    s.get("/api/v1/me", "not.a.jwt")
        .await
        .expect_error(401, "invalid_token");
}

async fn forged_and_expired_tokens_are_refused(s: TestServer) {
    let me = s.register("mallory").await;
    let sid = sid_of(&me.access_token);
    let good = claims(&me, &sid, 600, "fawkes", "fawkes");
    assert_eq!(
        s.get("/api/v1/me", &sign(&good, TEST_SECRET.as_bytes()))
            .await
            .status,
        200,
        "control: a correct forgery-free token works"
    );

    let other_key = sign(&good, b"some-other-secret-key-that-is-long-enough");
    s.get("/api/v1/me", &other_key)
        .await
        .expect_error(401, "invalid_token");

    let expired = sign(
        &claims(&me, &sid, -3600, "fawkes", "fawkes"),
        TEST_SECRET.as_bytes(),
    );
    s.get("/api/v1/me", &expired)
        .await
        .expect_error(401, "token_expired");

    let wrong_issuer = sign(
        &claims(&me, &sid, 600, "evil", "fawkes"),
        TEST_SECRET.as_bytes(),
    );
    s.get("/api/v1/me", &wrong_issuer)
        .await
        .expect_error(401, "invalid_token");
    let wrong_audience = sign(
        &claims(&me, &sid, 600, "fawkes", "evil"),
        TEST_SECRET.as_bytes(),
    );
    s.get("/api/v1/me", &wrong_audience)
        .await
        .expect_error(401, "invalid_token");

    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(good.to_string());
    s.get("/api/v1/me", &format!("{header}.{payload}."))
        .await
        .expect_error(401, "invalid_token");

    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &good,
        &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap_or_default();
    s.get("/api/v1/me", &hs512)
        .await
        .expect_error(401, "invalid_token");

    let unknown_session = sign(
        &claims(
            &me,
            &uuid::Uuid::new_v4().to_string(),
            600,
            "fawkes",
            "fawkes",
        ),
        TEST_SECRET.as_bytes(),
    );
    s.get("/api/v1/me", &unknown_session)
        .await
        .expect_error(401, "invalid_token");
}

async fn the_stored_role_counts_not_the_token_claim(s: TestServer) {
    let me = s.register("eve").await;
    let sid = sid_of(&me.access_token);
    // A validly signed token claiming "admin" for a plain user changes nothing: policies read the stored role.
    let token = sign(
        &claims(&me, &sid, 600, "fawkes", "fawkes"),
        TEST_SECRET.as_bytes(),
    );
    s.get("/api/v1/users", &token)
        .await
        .expect_error(403, "forbidden");
}

async fn refresh_rotates_and_reuse_revokes_the_family(s: TestServer) {
    let first = session_from(s.login_registered("ken").await.expect(200));
    let rotated = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": first.refresh_token }),
        )
        .await;
    let second = session_from(rotated.expect(200));
    assert_ne!(second.refresh_token, first.refresh_token);
    s.get("/api/v1/me", &second.access_token).await.expect(200);

    // The first token again: someone copied it. The whole session dies.
    let reuse = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": first.refresh_token }),
        )
        .await;
    reuse.expect_error(401, "refresh_token_reused");
    let after = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": second.refresh_token }),
        )
        .await;
    after.expect_error(401, "session_revoked");
    s.get("/api/v1/me", &second.access_token)
        .await
        .expect_error(401, "session_revoked");

    let garbage = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": "nope" }),
        )
        .await;
    garbage.expect_error(401, "invalid_token");
}

async fn logout_ends_the_session_only(s: TestServer) {
    s.register("dennis").await;
    let laptop = session_from(s.login("dennis", Some("laptop")).await.expect(200));
    let phone = session_from(s.login("dennis", Some("phone")).await.expect(200));
    s.call(
        Method::POST,
        "/api/v1/auth/logout",
        Some(&laptop.access_token),
        None,
    )
    .await
    .expect(204);
    s.get("/api/v1/me", &laptop.access_token)
        .await
        .expect_error(401, "session_revoked");
    let refresh = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": laptop.refresh_token }),
        )
        .await;
    refresh.expect_error(401, "session_revoked");
    s.get("/api/v1/me", &phone.access_token).await.expect(200);
}

async fn deactivated_users_cannot_log_in_and_their_tokens_stop(s: TestServer) {
    let admin = s.user_with_role("root", fawkes_domain::Role::Admin).await;
    let bob = s.register("bob").await;
    let change = json!({ "is_active": false });
    let reply = s
        .patch(
            &format!("/api/v1/users/{}", bob.user_id),
            &admin.access_token,
            change,
        )
        .await;
    assert_eq!(reply.expect(200)["is_active"], false);
    s.get("/api/v1/me", &bob.access_token)
        .await
        .expect_error(401, "session_revoked");
    s.login("bob", None)
        .await
        .expect_error(403, "account_disabled");
    let refresh = s
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refresh_token": bob.refresh_token }),
        )
        .await;
    assert_eq!(refresh.status, 401);

    let reactivate = s
        .patch(
            &format!("/api/v1/users/{}", bob.user_id),
            &admin.access_token,
            json!({ "is_active": true }),
        )
        .await;
    reactivate.expect(200);
    s.login("bob", None).await.expect(200);
}

async fn login_with_a_device_registers_it_and_revoking_it_signs_it_out(s: TestServer) {
    s.register("ada").await;
    let laptop = session_from(s.login("ada", Some("laptop-1")).await.expect(200));
    let phone = session_from(s.login("ada", Some("phone-1")).await.expect(200));
    // Logging in again from the same device refreshes it instead of adding another.
    let phone_again = session_from(s.login("ada", Some("phone-1")).await.expect(200));
    let devices = s.get("/api/v1/devices", &laptop.access_token).await;
    let devices = devices.expect(200).as_array().cloned().unwrap_or_default();
    assert_eq!(devices.len(), 2, "{devices:?}");
    let phone_row = devices
        .iter()
        .find(|d| d["device_id"] == "phone-1")
        .cloned()
        .unwrap_or_default();
    assert_eq!(phone_row["name"], "ada's phone-1");

    let id = phone_row["id"].as_str().unwrap_or_default();
    s.delete(&format!("/api/v1/devices/{id}"), &laptop.access_token)
        .await
        .expect(204);
    for revoked in [&phone, &phone_again] {
        s.get("/api/v1/me", &revoked.access_token)
            .await
            .expect_error(401, "session_revoked");
        let refresh = s
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({ "refresh_token": revoked.refresh_token }),
            )
            .await;
        refresh.expect_error(401, "session_revoked");
    }
    s.get("/api/v1/me", &laptop.access_token).await.expect(200);
    let devices = s.get("/api/v1/devices", &laptop.access_token).await;
    let phone_row = devices
        .body
        .as_array()
        .and_then(|d| d.iter().find(|d| d["device_id"] == "phone-1").cloned());
    assert_eq!(
        phone_row.map(|d| d["is_active"].clone()),
        Some(json!(false))
    );
}

async fn another_users_device_is_not_found(s: TestServer) {
    s.register("owner").await;
    let owner = session_from(s.login("owner", Some("tablet")).await.expect(200));
    let intruder = s.register("intruder").await;
    let devices = s.get("/api/v1/devices", &owner.access_token).await;
    let id = devices.body[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    s.delete(&format!("/api/v1/devices/{id}"), &intruder.access_token)
        .await
        .expect_error(404, "not_found");
    s.get("/api/v1/me", &owner.access_token).await.expect(200);
}

trait LoginRegistered {
    async fn login_registered(&self, name: &str) -> common::Reply;
}

impl LoginRegistered for TestServer {
    async fn login_registered(&self, name: &str) -> common::Reply {
        self.register(name).await;
        self.login(name, None).await
    }
}

on_every_database!(
    register_returns_tokens_and_the_user,
    duplicate_email_or_username_is_a_conflict,
    invalid_fields_are_reported_per_field,
    malformed_json_is_400_and_wrong_content_type_is_415,
    oversized_bodies_are_413,
    login_works_with_email_or_username,
    wrong_password_and_unknown_user_get_the_same_answer,
    an_unknown_login_costs_one_verification_like_a_wrong_password,
    requests_without_a_valid_token_are_401,
    forged_and_expired_tokens_are_refused,
    the_stored_role_counts_not_the_token_claim,
    refresh_rotates_and_reuse_revokes_the_family,
    logout_ends_the_session_only,
    deactivated_users_cannot_log_in_and_their_tokens_stop,
    login_with_a_device_registers_it_and_revoking_it_signs_it_out,
    another_users_device_is_not_found,
);
