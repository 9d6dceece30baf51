//! The domain actions live pages call, driven directly through the server's domain on every
//! database: cookie sessions, own-account changes, the admin's user search, unread counts and
//! the recent message count.

mod common;

use std::time::Duration;

use common::{Session, TestServer, password_of};
use fawkes_data::entity::{message, session};
use fawkes_domain::accounts::{ChangePassword, ChangeUsername, UpdateUser};
use fawkes_domain::messaging::{MessageBody, NewRoom, UNREAD_CAP};
use fawkes_domain::{Actor, AuthFailure, DomainError, Role};
use sea_orm::prelude::*;
use sea_orm::sea_query::Expr;
use serde_json::json;

async fn actor_of(s: &TestServer, who: &Session) -> Actor {
    s.domain
        .accounts
        .authenticate(&who.access_token)
        .await
        .expect("the access token authenticates")
}

fn uuid(text: &str) -> Uuid {
    text.parse().expect("a uuid")
}

fn ids_of(actor: &Actor) -> (Uuid, Uuid) {
    let identity = actor.identity().expect("a user");
    (identity.user_id, identity.session_id)
}

#[track_caller]
fn assert_auth_failure(result: Result<Actor, DomainError>, expected: &[AuthFailure]) {
    match result {
        Err(DomainError::Unauthenticated(failure)) if expected.contains(&failure) => {}
        other => panic!("expected one of {expected:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_field_error<T: std::fmt::Debug>(result: Result<T, DomainError>, field: &str) {
    match result {
        Err(DomainError::Validation(fields)) => {
            assert!(
                fields.contains_key(field),
                "no error on {field}: {fields:?}"
            )
        }
        other => panic!("expected a validation error on {field}, got {other:?}"),
    }
}

async fn cookie_sessions_end_with_logout_and_deactivation(s: TestServer) {
    let accounts = &s.domain.accounts;
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let admin = actor_of(&s, &s.user_with_role("root", Role::Admin).await).await;
    let ada_actor = actor_of(&s, &ada).await;
    let (ada_id, ada_sid) = ids_of(&ada_actor);

    let from_cookie = accounts.authenticate_session(ada_id, ada_sid).await;
    assert_eq!(
        from_cookie.ok(),
        Some(ada_actor.clone()),
        "the same actor as the token's"
    );
    // A session belongs to its user only, and an unknown session is nobody's.
    let bob_id = uuid(&bob.user_id);
    assert_auth_failure(
        accounts.authenticate_session(bob_id, ada_sid).await,
        &[AuthFailure::InvalidToken],
    );
    assert_auth_failure(
        accounts.authenticate_session(ada_id, Uuid::now_v7()).await,
        &[AuthFailure::InvalidToken],
    );

    // The stored role counts, not the one at login.
    let change = UpdateUser {
        role: Some(Role::Admin),
        is_active: None,
    };
    accounts
        .update_user(&admin, ada_id, change)
        .await
        .expect("promoted");
    let promoted = accounts.authenticate_session(ada_id, ada_sid).await;
    assert!(promoted.is_ok_and(|actor| actor.is_admin()));

    accounts.logout(&ada_actor).await.expect("logged out");
    assert_auth_failure(
        accounts.authenticate_session(ada_id, ada_sid).await,
        &[AuthFailure::SessionRevoked],
    );

    let (_, bob_sid) = ids_of(&actor_of(&s, &bob).await);
    assert!(accounts.authenticate_session(bob_id, bob_sid).await.is_ok());
    let deactivate = UpdateUser {
        role: None,
        is_active: Some(false),
    };
    accounts
        .update_user(&admin, bob_id, deactivate)
        .await
        .expect("deactivated");
    assert_auth_failure(
        accounts.authenticate_session(bob_id, bob_sid).await,
        &[AuthFailure::SessionRevoked, AuthFailure::AccountDisabled],
    );

    // A cookie outlives no session: once the session has expired it is refused, although an
    // access token would be checked by its own expiry.
    // The ids come from the token itself: authenticating first would cache the session, and
    // the row is aged below behind the domain's back, which no invalidation announces.
    let carol = s.register("carol").await;
    let claims = accounts
        .tokens()
        .verify(&carol.access_token)
        .expect("a valid token");
    let (carol_id, carol_sid) = (claims.sub, claims.sid);
    session::Entity::update_many()
        .col_expr(session::Column::ExpiresAt, Expr::value(1_i64))
        .filter(session::Column::Id.eq(carol_sid))
        .exec(&s.db)
        .await
        .expect("session aged");
    assert_auth_failure(
        accounts.authenticate_session(carol_id, carol_sid).await,
        &[AuthFailure::SessionRevoked],
    );
}

async fn a_username_changes_unless_taken_or_invalid(s: TestServer) {
    let accounts = &s.domain.accounts;
    let ada = actor_of(&s, &s.register("ada").await).await;
    s.register("bob").await;
    let rename = |name: &str| ChangeUsername {
        username: name.to_owned(),
    };

    for taken in ["bob", "BOB"] {
        match accounts.change_username(&ada, rename(taken)).await {
            Err(DomainError::Conflict { field, .. }) => assert_eq!(field, "username"),
            other => panic!("{taken} is taken, got {other:?}"),
        }
    }
    for invalid in ["a b", "x", "ada@example.com", &"a".repeat(33)] {
        assert_field_error(
            accounts.change_username(&ada, rename(invalid)).await,
            "username",
        );
    }
    assert_auth_failure(
        accounts
            .change_username(&Actor::Anonymous, rename("nobody"))
            .await
            .map(|_| Actor::Anonymous),
        &[AuthFailure::Missing],
    );

    let renamed = accounts
        .change_username(&ada, rename("Ada.Lovelace"))
        .await
        .expect("renamed");
    assert_eq!(renamed.username, "Ada.Lovelace");
    // Only the case of one's own name: not taken by anyone else.
    let recased = accounts
        .change_username(&ada, rename("ada.lovelace"))
        .await
        .expect("recased");
    assert_eq!(recased.username, "ada.lovelace");
    assert_eq!(
        accounts.me(&ada).await.expect("me").username,
        "ada.lovelace"
    );

    let body = json!({ "login": "ADA.LOVELACE", "password": password_of("ada") });
    s.post("/api/v1/auth/login", None, body).await.expect(200);
    let old = json!({ "login": "ada", "password": password_of("ada") });
    s.post("/api/v1/auth/login", None, old)
        .await
        .expect_error(401, "invalid_credentials");
    // The old name is free again.
    let body =
        json!({ "email": "ada2@example.com", "username": "ada", "password": password_of("ada") });
    s.post("/api/v1/auth/register", None, body)
        .await
        .expect(201);
}

async fn a_password_changes_with_the_current_one_and_ends_other_sessions(s: TestServer) {
    let accounts = &s.domain.accounts;
    let here = s.register("ada").await;
    let elsewhere = common::session_from(s.login("ada", Some("phone")).await.expect(200));
    let ada = actor_of(&s, &here).await;
    let change = |current: &str, new: &str| ChangePassword {
        current_password: current.to_owned(),
        new_password: new.to_owned(),
    };

    assert_field_error(
        accounts
            .change_password(&ada, change("not-my-password", "a new password"))
            .await,
        "current_password",
    );
    assert_field_error(
        accounts
            .change_password(&ada, change(&password_of("ada"), "short"))
            .await,
        "new_password",
    );
    // Refusals changed nothing.
    assert!(accounts.authenticate(&elsewhere.access_token).await.is_ok());
    s.login("ada", None).await.expect(200);

    accounts
        .change_password(&ada, change(&password_of("ada"), "a new password"))
        .await
        .expect("changed");

    s.login("ada", None)
        .await
        .expect_error(401, "invalid_credentials");
    let body = json!({ "login": "ada", "password": "a new password" });
    s.post("/api/v1/auth/login", None, body).await.expect(200);

    // The actor's own session goes on; every other one has ended.
    assert!(accounts.authenticate(&here.access_token).await.is_ok());
    let (ada_id, ada_sid) = ids_of(&ada);
    assert!(accounts.authenticate_session(ada_id, ada_sid).await.is_ok());
    assert_auth_failure(
        accounts.authenticate(&elsewhere.access_token).await,
        &[AuthFailure::SessionRevoked],
    );
    s.post(
        "/api/v1/auth/refresh",
        None,
        json!({ "refresh_token": elsewhere.refresh_token }),
    )
    .await
    .expect_error(401, "session_revoked");
}

async fn admins_search_users_ignoring_case(s: TestServer) {
    let accounts = &s.domain.accounts;
    let plain = actor_of(&s, &s.register("plain").await).await;
    let admin = actor_of(&s, &s.user_with_role("root", Role::Admin).await).await;
    let ada = s.register("AdaLovelace").await;
    let grace = s.register("grace_h").await;
    let alan = s.register("Alan.Turing").await;

    assert!(matches!(
        accounts.search_users(&plain, "ada", 10).await,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        accounts.search_users(&Actor::Anonymous, "ada", 10).await,
        Err(DomainError::Unauthenticated(AuthFailure::Missing))
    ));
    assert_field_error(accounts.search_users(&admin, "ada", 0).await, "limit");
    assert_field_error(accounts.search_users(&admin, "ada", 101).await, "limit");

    let names = |users: Vec<fawkes_domain::accounts::User>| {
        users.into_iter().map(|u| u.username).collect::<Vec<_>>()
    };
    let search = |query: &'static str, limit| {
        let admin = admin.clone();
        async move {
            names(
                accounts
                    .search_users(&admin, query, limit)
                    .await
                    .expect("search"),
            )
        }
    };
    assert_eq!(search("LOVE", 10).await, ["AdaLovelace"]);
    assert_eq!(search("  adalovelace ", 10).await, ["AdaLovelace"]);
    assert_eq!(search("TURING", 10).await, ["Alan.Turing"]);
    // By email, in any case.
    assert_eq!(search("GRACE_H@EXAMPLE", 10).await, ["grace_h"]);
    // `_` and `%` are literal, not patterns.
    assert_eq!(search("_", 10).await, ["grace_h"]);
    assert!(search("%", 10).await.is_empty());
    assert!(search("nobody-like-this", 10).await.is_empty());
    // Newest first; an empty query lists the newest accounts.
    assert_eq!(
        search("", 10).await,
        ["Alan.Turing", "grace_h", "AdaLovelace", "root", "plain"]
    );
    assert_eq!(search("", 2).await, ["Alan.Turing", "grace_h"]);
    assert_eq!(search("a", 2).await, ["Alan.Turing", "grace_h"]);
    let found = accounts
        .search_users(&Actor::System, "example.com", 100)
        .await
        .expect("the operator searches");
    let ids: Vec<String> = found.iter().map(|u| u.id.to_string()).collect();
    for who in [&ada, &grace, &alan] {
        assert!(ids.contains(&who.user_id));
    }
}

async fn unread_counts_follow_others_messages_and_reset_when_read(s: TestServer) {
    let messaging = &s.domain.messaging;
    let ada = actor_of(&s, &s.register("ada").await).await;
    let bob = actor_of(&s, &s.register("bob").await).await;
    let room = |slug: &str, name: &str, is_private: bool| NewRoom {
        slug: slug.to_owned(),
        name: name.to_owned(),
        is_private,
    };
    messaging
        .create_room(&ada, room("general", "general chat", false))
        .await
        .expect("room");
    messaging
        .create_room(&ada, room("beta", "Beta", false))
        .await
        .expect("room");
    messaging
        .create_room(&ada, room("secret", "a secret", true))
        .await
        .expect("room");
    let post = |who: &Actor, slug: &'static str, body: &str| {
        let (who, body) = (
            who.clone(),
            MessageBody {
                body: body.to_owned(),
            },
        );
        async move {
            messaging
                .post_message(&who, slug, body)
                .await
                .expect("posted")
        }
    };
    let unread = |who: &Actor| {
        let who = who.clone();
        async move {
            messaging
                .rooms_with_unread(&who)
                .await
                .expect("unread counts")
                .into_iter()
                .map(|entry| (entry.room.slug, entry.unread))
                .collect::<Vec<_>>()
        }
    };

    // Ordered by name ignoring case; private rooms only for their members.
    assert_eq!(
        unread(&bob).await,
        [
            ("beta".into(), 0),
            ("general".into(), 0),
            ("lobby".into(), 0)
        ]
    );
    assert_eq!(
        unread(&ada).await,
        [
            ("secret".into(), 0),
            ("beta".into(), 0),
            ("general".into(), 0),
            ("lobby".into(), 0)
        ]
    );

    post(&ada, "general", "one").await;
    post(&ada, "general", "two").await;
    let third = post(&ada, "general", "three").await;
    post(&ada, "secret", "hush").await;
    post(&bob, "general", "hi").await;
    assert_eq!(
        unread(&bob).await,
        [
            ("beta".into(), 0),
            ("general".into(), 3),
            ("lobby".into(), 0)
        ],
        "ada's messages, not bob's own"
    );
    assert_eq!(unread(&ada).await[2], ("general".into(), 1));

    // Deleted messages are not unread.
    messaging
        .delete_message(&ada, third.id)
        .await
        .expect("deleted");
    assert_eq!(unread(&bob).await[1], ("general".into(), 2));

    messaging.mark_read(&bob, "general").await.expect("read");
    assert_eq!(unread(&bob).await[1], ("general".into(), 0));
    // Marking again with nothing new changes nothing and does not fail.
    messaging.mark_read(&bob, "general").await.expect("read");
    post(&ada, "general", "four").await;
    assert_eq!(unread(&bob).await[1], ("general".into(), 1));
    // Read up to the newest message even when it was deleted.
    let fifth = post(&ada, "general", "five").await;
    messaging
        .delete_message(&ada, fifth.id)
        .await
        .expect("deleted");
    messaging.mark_read(&bob, "general").await.expect("read");
    post(&ada, "general", "six").await;
    assert_eq!(unread(&bob).await[1], ("general".into(), 1));

    // A room read while empty counts what comes after.
    messaging.mark_read(&bob, "beta").await.expect("read");
    post(&ada, "beta", "first").await;
    assert_eq!(unread(&bob).await[0], ("beta".into(), 1));

    // The count stops at the cap.
    for i in 0..UNREAD_CAP + 5 {
        post(&bob, "lobby", &format!("flood {i}")).await;
    }
    assert_eq!(unread(&ada).await[3], ("lobby".into(), UNREAD_CAP));
    messaging.mark_read(&ada, "lobby").await.expect("read");
    assert_eq!(unread(&ada).await[3], ("lobby".into(), 0));

    // Reading needs a room one may enter, and a user.
    assert!(matches!(
        messaging.mark_read(&bob, "secret").await,
        Err(DomainError::NotFound(_))
    ));
    assert!(matches!(
        messaging.mark_read(&bob, "no-such-room").await,
        Err(DomainError::NotFound(_))
    ));
    assert!(matches!(
        messaging.mark_read(&Actor::Anonymous, "lobby").await,
        Err(DomainError::Unauthenticated(_))
    ));
    assert!(matches!(
        messaging.rooms_with_unread(&Actor::Anonymous).await,
        Err(DomainError::Unauthenticated(_))
    ));
}

async fn admins_count_recent_messages(s: TestServer) {
    let messaging = &s.domain.messaging;
    let ada = actor_of(&s, &s.register("ada").await).await;
    let admin = actor_of(&s, &s.user_with_role("root", Role::Admin).await).await;
    let hour = Duration::from_secs(3600);

    assert!(matches!(
        messaging.recent_message_count(&ada, hour).await,
        Err(DomainError::Forbidden(_))
    ));
    assert!(matches!(
        messaging
            .recent_message_count(&Actor::Anonymous, hour)
            .await,
        Err(DomainError::Unauthenticated(_))
    ));
    assert_eq!(
        messaging.recent_message_count(&admin, hour).await.ok(),
        Some(0)
    );

    let mut posted = Vec::new();
    for body in ["one", "two", "three"] {
        let body = MessageBody { body: body.into() };
        posted.push(
            messaging
                .post_message(&ada, "lobby", body)
                .await
                .expect("posted"),
        );
    }
    assert_eq!(
        messaging.recent_message_count(&admin, hour).await.ok(),
        Some(3)
    );
    assert_eq!(
        messaging
            .recent_message_count(&Actor::System, Duration::MAX)
            .await
            .ok(),
        Some(3)
    );

    // A message from two hours ago is outside the hour.
    let two_hours_ago = chrono::Utc::now().timestamp_millis() - 7_200_000;
    message::Entity::update_many()
        .col_expr(message::Column::CreatedAt, Expr::value(two_hours_ago))
        .filter(message::Column::Id.eq(posted[0].id))
        .exec(&s.db)
        .await
        .expect("message aged");
    assert_eq!(
        messaging.recent_message_count(&admin, hour).await.ok(),
        Some(2)
    );
    assert_eq!(
        messaging
            .recent_message_count(&admin, Duration::from_secs(3 * 3600))
            .await
            .ok(),
        Some(3)
    );
}

on_every_database!(
    cookie_sessions_end_with_logout_and_deactivation,
    a_username_changes_unless_taken_or_invalid,
    a_password_changes_with_the_current_one_and_ends_other_sessions,
    admins_search_users_ignoring_case,
    unread_counts_follow_others_messages_and_reset_when_read,
    admins_count_recent_messages,
);
