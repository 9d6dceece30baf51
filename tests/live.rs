//! Live pages over a raw `/live` socket: what the phoenix_live_view client is sent (sizes of
//! diffs included), and the checks the socket makes (CSRF, Origin, session tokens).

mod common;

use common::live::Browser;
use common::{Backend, TestServer};
use serde_json::{Value, json};

async fn server() -> TestServer {
    TestServer::start(Backend::Sqlite)
        .await
        .expect("SQLite always runs")
}

async fn post_message(server: &TestServer, token: &str, body: &str) {
    server
        .post(
            "/api/v1/rooms/lobby/messages",
            Some(token),
            json!({ "body": body }),
        )
        .await
        .expect(201);
}

fn ok_reply(frame: &Value) -> &Value {
    assert_eq!(frame[4]["status"], "ok", "reply: {frame}");
    &frame[4]["response"]
}

#[tokio::test]
async fn a_new_message_among_200_and_a_typing_notice_send_small_diffs() {
    let server = server().await;
    let ada = server.register("ada").await;
    server.register("bob").await;
    for n in 0..200 {
        post_message(&server, &ada.access_token, &format!("history {n}")).await;
    }
    let mut bob = Browser::default();
    bob.log_in(&server, "bob").await;
    let (mut bob_view, reply) = bob.join(&server, "/rooms/lobby").await;
    let rendered = &ok_reply(&reply)["rendered"];
    assert!(rendered["s"].is_array(), "the join sends the statics");
    assert!(rendered.to_string().contains("history 199"));

    post_message(&server, &ada.access_token, "fresh <b>news</b>").await;
    let (size, diff) = loop {
        let (size, diff) = bob_view.next_diff().await;
        if diff.to_string().contains("fresh") {
            break (size, diff);
        }
    };
    assert!(size < 1024, "a new message sent {size} bytes: {diff}");
    assert!(
        diff.to_string().contains("fresh &lt;b&gt;news&lt;/b&gt;"),
        "escaped: {diff}"
    );

    let mut ada_browser = Browser::default();
    ada_browser.log_in(&server, "ada").await;
    let (mut ada_view, _) = ada_browser.join(&server, "/rooms/lobby").await;
    let reply = ada_view.event("form", "typing", json!("body=hel")).await;
    ok_reply(&reply);
    let (size, diff) = loop {
        let (size, diff) = bob_view.next_diff().await;
        if diff.to_string().contains("is typing") {
            break (size, diff);
        }
    };
    assert!(size < 200, "a typing notice sent {size} bytes: {diff}");
}

#[tokio::test]
async fn the_admin_counters_update_themselves_with_small_diffs() {
    let server = server().await;
    server
        .user_with_role("root", fawkes_domain::Role::Admin)
        .await;
    let ada = server.register("ada").await;
    let mut admin = Browser::default();
    admin.log_in(&server, "root").await;
    let (mut view, reply) = admin.join(&server, "/admin").await;
    assert!(
        ok_reply(&reply)["rendered"]
            .to_string()
            .contains("stat-messages")
    );
    post_message(&server, &ada.access_token, "counted").await;
    let (size, diff) = view.next_diff().await;
    assert!(size < 200, "a counter change sent {size} bytes: {diff}");
}

#[tokio::test]
async fn the_live_socket_needs_the_pages_csrf_token_and_origin() {
    let server = server().await;
    let mut browser = Browser::default();
    let page = browser.get(&server, "/login").await;
    assert!(browser.live_socket(&server, &page.csrf, None).await.is_ok());
    assert!(
        browser.live_socket(&server, "forged", None).await.is_err(),
        "a forged token"
    );
    assert!(
        browser
            .live_socket(&server, &page.csrf, Some("https://evil.example"))
            .await
            .is_err(),
        "a foreign Origin (cross-site WebSocket hijacking)"
    );
    let stranger = Browser::default();
    assert!(
        stranger
            .live_socket(&server, &page.csrf, None)
            .await
            .is_err(),
        "another browser's token without its cookie"
    );
}

#[tokio::test]
async fn a_view_token_joins_its_own_view_only() {
    let server = server().await;
    let mut browser = Browser::default();
    let page = browser.get(&server, "/login").await;
    let mut socket = browser
        .live_socket(&server, &page.csrf, None)
        .await
        .expect("connects");
    let url = format!("{}/login", server.base);
    let params = json!({"url": url, "params": {}, "session": page.session, "static": null});
    let reply = socket.join("lv:phx-someoneelse", "1", params.clone()).await;
    assert_eq!(reply[4]["status"], "error", "{reply}");
    let mut tampered = params.clone();
    tampered["session"] = json!(format!("{}x", page.session));
    let reply = socket
        .join(&format!("lv:{}", page.view_id), "2", tampered)
        .await;
    assert_eq!(reply[4]["status"], "error", "{reply}");
    let reply = socket
        .join(&format!("lv:{}", page.view_id), "3", params)
        .await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
}

#[tokio::test]
async fn pages_need_a_sign_in_and_a_wrong_password_says_so() {
    let server = server().await;
    server.register("ada").await;
    let mut browser = Browser::default();
    let page = browser.get(&server, "/rooms").await;
    assert_eq!(
        (page.status, page.location.as_deref()),
        (303, Some("/login"))
    );
    let login = browser.get(&server, "/login").await;
    let (status, location) = browser
        .post_form(
            &server,
            "/login",
            &[
                ("_csrf_token", &login.csrf),
                ("login", "ada"),
                ("password", "wrong password"),
            ],
        )
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    assert!(!browser.has_cookie("fawkes_session"));
    let again = browser.get(&server, "/login").await;
    assert!(
        again.html.contains("alert-error"),
        "the reason is shown: {}",
        again.html
    );
    let (status, _) = browser
        .post_form(
            &server,
            "/login",
            &[
                ("_csrf_token", "forged"),
                ("login", "ada"),
                ("password", "password-of-ada"),
            ],
        )
        .await;
    assert_eq!(
        status, 403,
        "a form post without the page's CSRF token is refused"
    );
}

/// `http.secure_cookies` marks every cookie the pages set `Secure`; off, none is.
#[tokio::test]
async fn cookies_are_secure_when_configured() {
    for secure in [false, true] {
        let server = TestServer::start_with(Backend::Sqlite, |c| c.http.secure_cookies = secure)
            .await
            .expect("SQLite always runs");
        server.register("ada").await;
        let mut browser = Browser::default();
        browser.log_in(&server, "ada").await;
        for name in ["fawkes_session", "_fawkes_csrf", "fawkes_device"] {
            assert!(browser.has_cookie(name), "{name} is set");
            assert_eq!(browser.is_secure(name), secure, "{name}");
        }
    }
}

#[tokio::test]
async fn logging_out_sends_the_open_views_away() {
    let server = server().await;
    server.register("ada").await;
    let mut browser = Browser::default();
    browser.log_in(&server, "ada").await;
    let (mut view, _) = browser.join(&server, "/rooms").await;
    let page = browser.get(&server, "/rooms").await;
    let (status, location) = browser
        .post_form(&server, "/logout", &[("_csrf_token", &page.csrf)])
        .await;
    assert_eq!((status, location.as_deref()), (303, Some("/login")));
    loop {
        let frame = view.socket.next_json().await;
        if frame[3] == "redirect" {
            break;
        }
    }
}

#[tokio::test]
async fn a_non_admin_cannot_change_a_role() {
    let server = server().await;
    let ada = server.register("ada").await;
    server.register("bob").await;
    let mut bob = Browser::default();
    bob.log_in(&server, "bob").await;
    let (mut view, reply) = bob.join(&server, "/admin").await;
    assert!(
        ok_reply(&reply)["rendered"]
            .to_string()
            .contains("Only admins")
    );
    let value = format!("id={}&role=admin", ada.user_id);
    ok_reply(&view.event("form", "set_role", json!(value)).await);
    let me = server.get("/api/v1/me", &ada.access_token).await;
    assert_eq!(me.expect(200)["role"], "user");
}

#[tokio::test]
async fn scrolling_up_loads_older_messages_once_each() {
    let server = server().await;
    let ada = server.register("ada").await;
    for n in 0..60 {
        post_message(&server, &ada.access_token, &format!("history {n:02}")).await;
    }
    let mut browser = Browser::default();
    browser.log_in(&server, "ada").await;
    let (mut view, reply) = browser.join(&server, "/rooms/lobby").await;
    let shown = ok_reply(&reply)["rendered"].to_string();
    assert!(
        shown.contains("history 59") && !shown.contains("history 09"),
        "the newest page only"
    );
    let reply = view.event("hook", "load_more", json!({})).await;
    let older = ok_reply(&reply)["diff"].to_string();
    assert!(
        older.contains("history 00") && older.contains("history 09"),
        "{older}"
    );
    assert!(
        !older.contains("history 59\""),
        "known messages are not resent: {older}"
    );
    assert!(
        older.contains("data-has-more") || older.contains("false"),
        "no more pages: {older}"
    );
}

#[tokio::test]
async fn authors_edit_and_delete_their_own_messages_only() {
    let server = server().await;
    let ada_session = server.register("ada").await;
    server.register("bob").await;
    let mut ada = Browser::default();
    ada.log_in(&server, "ada").await;
    let (mut ada_view, _) = ada.join(&server, "/rooms/lobby").await;
    ok_reply(
        &ada_view
            .event("form", "send", json!("body=first+draft"))
            .await,
    );
    let (messages, _) = server
        .read_page(
            "/api/v1/rooms/lobby/messages",
            &ada_session.access_token,
            10,
            None,
        )
        .await;
    let id = messages[0]["id"].as_str().expect("the message").to_owned();

    let mut bob = Browser::default();
    bob.log_in(&server, "bob").await;
    let (mut bob_view, reply) = bob.join(&server, "/rooms/lobby").await;
    assert!(
        !ok_reply(&reply)["rendered"]
            .to_string()
            .contains(r#"phx-click=\"edit\""#),
        "no edit button on others' messages"
    );
    let forged = bob_view
        .event("form", "save_edit", json!(format!("id={id}&body=hijacked")))
        .await;
    assert!(
        ok_reply(&forged).to_string().contains("only the author"),
        "refused and said: {forged}"
    );

    let reply = ada_view.event("click", "edit", json!({"id": id})).await;
    assert!(ok_reply(&reply).to_string().contains("save_edit"));
    ok_reply(
        &ada_view
            .event(
                "form",
                "save_edit",
                json!(format!("id={id}&body=second+thought")),
            )
            .await,
    );
    let (_, diff) = loop {
        let (size, diff) = bob_view.next_diff().await;
        if diff.to_string().contains("second thought") {
            break (size, diff);
        }
    };
    assert!(!diff.to_string().contains("hijacked"));
    ok_reply(&ada_view.event("click", "delete", json!({"id": id})).await);
    loop {
        let (_, diff) = bob_view.next_diff().await;
        if diff.to_string().contains("\"kc\":0") {
            break;
        }
    }
}

#[tokio::test]
async fn a_comment_on_a_post_reaches_its_readers_as_a_small_diff() {
    let server = server().await;
    let ada = server.register("ada").await;
    server.register("bob").await;
    let post = server
        .create(
            "/api/v1/posts",
            &ada.access_token,
            json!({"title": "Live post", "body": "Read me."}),
        )
        .await;
    let id = post["id"].as_str().expect("post id").to_owned();
    let mut bob = Browser::default();
    bob.log_in(&server, "bob").await;
    assert_eq!(
        bob.get(&server, &format!("/posts/{id}")).await.status,
        404,
        "a draft is not there for others"
    );
    server
        .post(
            &format!("/api/v1/posts/{id}/publish"),
            Some(&ada.access_token),
            json!({}),
        )
        .await
        .expect(200);

    let (mut bob_view, reply) = bob.join(&server, &format!("/posts/{id}")).await;
    let rendered = ok_reply(&reply)["rendered"].to_string();
    assert!(rendered.contains("Live post") && rendered.contains("Read me."));
    let comment = server
        .create(
            &format!("/api/v1/posts/{id}/comments"),
            &ada.access_token,
            json!({"body": "first <i>comment</i>"}),
        )
        .await;
    let (size, diff) = loop {
        let (size, diff) = bob_view.next_diff().await;
        if diff.to_string().contains("first") {
            break (size, diff);
        }
    };
    assert!(size < 1024, "a new comment sent {size} bytes: {diff}");
    assert!(
        diff.to_string()
            .contains("first &lt;i&gt;comment&lt;/i&gt;"),
        "escaped: {diff}"
    );

    // Bob replies from the page; ada's page gets the reply in the same thread.
    let mut ada_browser = Browser::default();
    ada_browser.log_in(&server, "ada").await;
    let (mut ada_view, _) = ada_browser.join(&server, &format!("/posts/{id}")).await;
    let comment_id = comment["id"].as_str().expect("comment id");
    ok_reply(
        &bob_view
            .event("click", "reply", json!({"id": comment_id}))
            .await,
    );
    ok_reply(
        &bob_view
            .event("form", "comment", json!("body=a+reply"))
            .await,
    );
    loop {
        let (_, diff) = ada_view.next_diff().await;
        if diff.to_string().contains("a reply") {
            break;
        }
    }
    let (comments, _) = server
        .read_page(
            &format!("/api/v1/posts/{id}/comments"),
            &ada.access_token,
            10,
            None,
        )
        .await;
    assert_eq!(comments[1]["body"], "a reply");
    assert_eq!(comments[1]["parent_id"], comment["id"]);
}

#[tokio::test]
async fn the_post_editor_checks_fields_as_typed_and_only_for_the_author() {
    let server = server().await;
    let ada = server.register("ada").await;
    server.register("bob").await;
    let mut ada_browser = Browser::default();
    ada_browser.log_in(&server, "ada").await;
    let (mut editor, _) = ada_browser.join(&server, "/posts/new").await;
    let blank = editor
        .event("form", "validate", json!("title=+&body=&_unused_body="))
        .await;
    let blank = ok_reply(&blank).to_string();
    assert!(blank.contains("must not be blank"), "{blank}");
    let typed = editor
        .event("form", "validate", json!("title=Hello&body=&_unused_body="))
        .await;
    assert!(
        !ok_reply(&typed).to_string().contains("must not be blank"),
        "the error clears: {typed}"
    );
    // Publishing without a body is refused on the body field; the draft is kept.
    let refused = editor
        .event("form", "save", json!("title=Hello&body=&intent=publish"))
        .await;
    assert!(
        ok_reply(&refused)
            .to_string()
            .contains("a published post needs a body"),
        "{refused}"
    );
    let (drafts, _) = server
        .read_page("/api/v1/posts?status=draft", &ada.access_token, 10, None)
        .await;
    assert_eq!(drafts.len(), 1, "saved as a draft");
    let id = drafts[0]["id"].as_str().expect("id").to_owned();

    let mut bob = Browser::default();
    bob.log_in(&server, "bob").await;
    let page = bob.get(&server, &format!("/posts/{id}/edit")).await;
    assert_eq!(page.status, 303, "others are sent away: {}", page.html);
    let published = editor
        .event(
            "form",
            "save",
            json!("title=Hello&body=Now+it+has+one&intent=publish"),
        )
        .await;
    ok_reply(&published);
    let page = bob.get(&server, &format!("/posts/{id}/edit")).await;
    assert_eq!(
        page.location,
        Some(format!("/posts/{id}")),
        "to the post, not its editor"
    );
    assert_eq!(bob.get(&server, &format!("/posts/{id}")).await.status, 200);
}
