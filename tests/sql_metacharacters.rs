//! SQL metacharacters in every parameter of the REST API, on every database: quotes, comment
//! markers, `LIKE` wildcards, backslashes and unusual Unicode in path segments, query
//! parameters and body fields. Nothing answers 5xx, every refusal is the JSON envelope, text
//! that is stored comes back byte for byte, a search treats `%` and `_` literally, and every
//! table is still there afterwards.

mod common;

use common::{Reply, Session, TestServer, id_of};
use fawkes_domain::accounts::CreateUser;
use fawkes_domain::{Actor, Role};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};

/// Strings that break SQL built by concatenation, or a `LIKE` pattern left unescaped, plus
/// text a database may mangle (4-byte UTF-8, right-to-left override, combining marks).
const NASTY: &[&str] = &[
    "' OR '1'='1",
    "\"; DROP TABLE users; --",
    "'); DROP TABLE rooms; --",
    "%",
    "_",
    "\\",
    "!",
    "50% off_sale \\' \\\" `x` ;",
    "a'b\"c`d\\e%f_g!h",
    "/* comment */ -- x # y",
    "𝕏 😀 ß ﬁ e\u{301} \u{202E}txet\u{202C} \u{200B}zero-width",
    "日本語のテキスト ✓ Ünïcödé",
];

/// The domain's validation, as every action runs it first, of JSON read as an input type.
macro_rules! validated {
    ($input:ty, $($json:tt)+) => {{
        let input: $input = serde_json::from_value(json!($($json)+)).expect("an input of that shape");
        fawkes_domain::validate(&input)
    }};
}

/// The error envelope, or a success: never a 5xx, never a bare error.
#[track_caller]
fn harmless(reply: &Reply, what: &str) {
    assert!(
        !reply.status.is_server_error(),
        "{what}: {} {}",
        reply.status,
        reply.body
    );
    if reply.status.is_client_error() {
        assert!(
            reply.body["error"]["code"].is_string() && reply.body["error"]["message"].is_string(),
            "{what}: {} is not the error envelope: {}",
            reply.status,
            reply.body
        );
    }
}

fn encoded(segment: &str) -> String {
    utf8_percent_encode(segment, NON_ALPHANUMERIC).to_string()
}

async fn get_with_query(s: &TestServer, path: &str, token: &str, query: &[(&str, &str)]) -> Reply {
    let response = s
        .client
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body read");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Reply {
        status,
        headers,
        body,
    }
}

/// The admin, a plain user in a room with a message, a video comment, a published post with a
/// comment: records for the parameters that name one.
struct Fixture {
    admin: Session,
    ada: Session,
    slug: String,
    post_id: String,
}

async fn fixture(s: &TestServer) -> Fixture {
    let admin = s.user_with_role("root", Role::Admin).await;
    let ada = s.register("ada").await;
    s.create_room(&admin, "metachar", false).await;
    let post = s
        .create(
            "/api/v1/posts",
            &admin.access_token,
            json!({ "title": "A post", "body": "Its body." }),
        )
        .await;
    let post_id = id_of(&post);
    s.post(
        &format!("/api/v1/posts/{post_id}/publish"),
        Some(&admin.access_token),
        json!({}),
    )
    .await
    .expect(200);
    Fixture {
        admin,
        ada,
        slug: "metachar".to_owned(),
        post_id,
    }
}

async fn path_and_query_parameters(s: TestServer) {
    let f = fixture(&s).await;
    let token = f.admin.access_token.as_str();
    for nasty in NASTY {
        let p = encoded(nasty);
        let reads = [
            format!("/api/v1/rooms/{p}"),
            format!("/api/v1/rooms/{p}/members"),
            format!("/api/v1/rooms/{p}/presence"),
            format!("/api/v1/rooms/{p}/messages"),
            format!("/api/v1/videos/{p}/comments"),
            format!("/api/v1/users/{p}"),
            format!("/api/v1/posts/{p}"),
            format!("/api/v1/posts/{p}/comments"),
        ];
        for path in &reads {
            harmless(&s.get(path, token).await, &format!("GET {path}"));
        }
        let writes = [
            (
                Method::POST,
                format!("/api/v1/rooms/{p}/messages"),
                json!({ "body": "hi" }),
            ),
            (
                Method::POST,
                format!("/api/v1/rooms/{p}/members"),
                json!({ "user_id": f.ada.user_id }),
            ),
            (
                Method::POST,
                format!("/api/v1/videos/{p}/comments"),
                json!({ "content": "hi" }),
            ),
            (
                Method::PATCH,
                format!("/api/v1/users/{p}"),
                json!({ "role": "user" }),
            ),
            (
                Method::PATCH,
                format!("/api/v1/messages/{p}"),
                json!({ "body": "hi" }),
            ),
            (
                Method::PATCH,
                format!("/api/v1/comments/{p}"),
                json!({ "content": "hi" }),
            ),
            (
                Method::PATCH,
                format!("/api/v1/posts/{p}"),
                json!({ "title": "hi" }),
            ),
            (
                Method::POST,
                format!("/api/v1/posts/{p}/publish"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/api/v1/posts/{p}/unpublish"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/api/v1/posts/{p}/comments"),
                json!({ "body": "hi" }),
            ),
            (
                Method::POST,
                format!("/api/v1/notifications/{p}/read"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/api/v1/admin/jobs/{p}/retry"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/api/v1/admin/jobs/{p}/cancel"),
                json!({}),
            ),
            (
                Method::DELETE,
                format!("/api/v1/rooms/{p}/members/{p}"),
                Value::Null,
            ),
            (
                Method::DELETE,
                format!("/api/v1/rooms/{}/members/{p}", f.slug),
                Value::Null,
            ),
            (Method::DELETE, format!("/api/v1/messages/{p}"), Value::Null),
            (Method::DELETE, format!("/api/v1/comments/{p}"), Value::Null),
            (Method::DELETE, format!("/api/v1/posts/{p}"), Value::Null),
            (
                Method::DELETE,
                format!("/api/v1/post-comments/{p}"),
                Value::Null,
            ),
            (Method::DELETE, format!("/api/v1/devices/{p}"), Value::Null),
            (Method::DELETE, format!("/api/v1/api-keys/{p}"), Value::Null),
        ];
        for (method, path, body) in writes {
            let body = (!body.is_null()).then_some(body);
            let reply = s.call(method.clone(), &path, Some(token), body).await;
            harmless(&reply, &format!("{method} {path}"));
        }

        let lists = [
            "/api/v1/users".to_owned(),
            "/api/v1/rooms".to_owned(),
            format!("/api/v1/rooms/{}/messages", f.slug),
            "/api/v1/videos/video-1/comments".to_owned(),
            "/api/v1/posts".to_owned(),
            format!("/api/v1/posts/{}/comments", f.post_id),
            "/api/v1/notifications".to_owned(),
            "/api/v1/admin/jobs".to_owned(),
        ];
        for path in &lists {
            for name in ["cursor", "limit"] {
                let reply = get_with_query(&s, path, token, &[(name, nasty)]).await;
                harmless(&reply, &format!("GET {path}?{name}={nasty}"));
                assert!(
                    reply.status.is_client_error(),
                    "GET {path}?{name}={nasty} is no cursor or limit: {} {}",
                    reply.status,
                    reply.body
                );
            }
        }
        for name in ["author_id", "status"] {
            let reply = get_with_query(&s, "/api/v1/posts", token, &[(name, nasty)]).await;
            harmless(&reply, &format!("GET /api/v1/posts?{name}={nasty}"));
        }
        for name in ["state", "queue", "kind"] {
            let reply = get_with_query(&s, "/api/v1/admin/jobs", token, &[(name, nasty)]).await;
            harmless(&reply, &format!("GET /api/v1/admin/jobs?{name}={nasty}"));
            if reply.status.is_success() {
                assert_eq!(
                    reply.body["items"],
                    json!([]),
                    "a job filter matched {nasty:?} as a pattern"
                );
            }
        }
    }
    assert_tables_intact(&s, &f).await;
}

async fn body_fields(s: TestServer) {
    let f = fixture(&s).await;
    let token = f.admin.access_token.as_str();
    let slug = &f.slug;
    for (i, nasty) in NASTY.iter().enumerate() {
        // Accounts: refused by validation or by the credentials check, never by the database.
        let bodies = [
            json!({ "email": nasty, "username": format!("u{i}x"), "password": "long enough pw" }),
            json!({ "email": format!("u{i}@example.com"), "username": nasty, "password": "long enough pw" }),
        ];
        for body in bodies {
            let reply = s.post("/api/v1/auth/register", None, body.clone()).await;
            harmless(&reply, &format!("register {body}"));
            assert_eq!(reply.status, 422, "register {body}: {}", reply.body);
        }
        for body in [
            json!({ "login": nasty, "password": "whatever pw" }),
            json!({ "login": "root", "password": nasty }),
            json!({ "login": format!("{nasty}@example.com"), "password": "whatever pw" }),
        ] {
            let reply = s.post("/api/v1/auth/login", None, body.clone()).await;
            reply.expect_error(401, "invalid_credentials");
        }
        let reply = s
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({ "refresh_token": nasty }),
            )
            .await;
        reply.expect_error(401, "invalid_token");
        let create = json!({ "email": format!("c{i}@example.com"), "username": nasty, "password": "long enough pw" });
        let reply = s.post("/api/v1/users", Some(token), create).await;
        harmless(&reply, "create user");
        let reply = s
            .patch(
                &format!("/api/v1/users/{}", f.ada.user_id),
                token,
                json!({ "role": nasty }),
            )
            .await;
        harmless(&reply, "a role");
        assert_eq!(reply.status, 422, "{}", reply.body);

        // A password and a device name with metacharacters work as any other text.
        let name = format!("pw{i}");
        let password = format!("{nasty}-long-enough");
        let body = json!({ "email": format!("{name}@example.com"), "username": name, "password": password, "device_id": nasty, "device_name": nasty });
        s.post("/api/v1/auth/register", None, body)
            .await
            .expect(201);
        let login = json!({ "login": name, "password": password, "device_id": nasty, "device_name": nasty });
        let session =
            common::session_from(s.post("/api/v1/auth/login", None, login).await.expect(200));
        let devices = s.get("/api/v1/devices", &session.access_token).await;
        let devices = devices.expect(200);
        assert_eq!(devices[0]["device_id"], *nasty, "{devices}");
        assert_eq!(devices[0]["name"], *nasty, "{devices}");

        // Text that is stored comes back byte for byte.
        let room_slug = format!("room-{i}");
        let room = s
            .create(
                "/api/v1/rooms",
                token,
                json!({ "slug": room_slug, "name": nasty }),
            )
            .await;
        assert_eq!(room["name"], *nasty);
        let read = s.get(&format!("/api/v1/rooms/{room_slug}"), token).await;
        assert_eq!(read.expect(200)["name"], *nasty);
        let reply = s
            .post(
                "/api/v1/rooms",
                Some(token),
                json!({ "slug": nasty, "name": "x" }),
            )
            .await;
        reply.expect_error(422, "validation_failed");

        let message = s
            .create(
                &format!("/api/v1/rooms/{slug}/messages"),
                token,
                json!({ "body": nasty }),
            )
            .await;
        assert_eq!(message["body"], *nasty);
        let edited = s
            .patch(
                &format!("/api/v1/messages/{}", id_of(&message)),
                token,
                json!({ "body": format!("{nasty}{nasty}") }),
            )
            .await;
        assert_eq!(edited.expect(200)["body"], format!("{nasty}{nasty}"));

        let comment = s
            .create(
                "/api/v1/videos/video-1/comments",
                token,
                json!({ "content": nasty }),
            )
            .await;
        assert_eq!(comment["content"], *nasty);

        let post = s
            .create(
                "/api/v1/posts",
                token,
                json!({ "title": nasty, "body": nasty }),
            )
            .await;
        let read = s
            .get(&format!("/api/v1/posts/{}", id_of(&post)), token)
            .await;
        let read = read.expect(200);
        assert_eq!(
            (&read["title"], &read["body"]),
            (&json!(nasty), &json!(nasty))
        );
        let reply = s
            .post(
                &format!("/api/v1/posts/{}/comments", f.post_id),
                Some(token),
                json!({ "body": nasty }),
            )
            .await;
        assert_eq!(reply.expect(201)["body"], *nasty);

        let key = s
            .create(
                "/api/v1/api-keys",
                token,
                json!({ "name": nasty, "scopes": ["publish"] }),
            )
            .await;
        assert_eq!(key["api_key"]["name"], *nasty, "{key}");
        for body in [
            json!({ "topic": nasty, "event": "e", "payload": {} }),
            json!({ "topic": format!("notification:{nasty}"), "event": nasty, "payload": { "x": nasty } }),
        ] {
            let reply = s.post("/api/v1/broadcast", Some(token), body.clone()).await;
            harmless(&reply, &format!("broadcast {body}"));
        }
    }

    // Every message came back as it was sent, in the list too.
    let (listed, _) = s
        .read_pages(&format!("/api/v1/rooms/{slug}/messages"), token, 100)
        .await;
    let mut bodies: Vec<String> = listed
        .iter()
        .filter_map(|m| m["body"].as_str().map(str::to_owned))
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = NASTY.iter().map(|n| format!("{n}{n}")).collect();
    expected.sort();
    assert_eq!(bodies, expected);
    let (comments, _) = s
        .read_pages("/api/v1/videos/video-1/comments", token, 100)
        .await;
    assert_eq!(comments.len(), NASTY.len());
    assert_tables_intact(&s, &f).await;
}

/// `search_users` (the admin page's search) matches `%`, `_` and the escape character as
/// themselves, not as `LIKE` wildcards.
async fn user_search_takes_wildcards_literally(s: TestServer) {
    let f = fixture(&s).await;
    let accounts = &s.domain.accounts;
    for (username, email) in [
        ("under_score", "under_score@example.com"),
        ("underxscore", "underxscore@example.com"),
        ("per.cent", "50%off@example.com"),
        ("bang", "bang!x@example.com"),
        ("back", "back\\slash@example.com"),
    ] {
        let input = CreateUser {
            email: email.to_owned(),
            username: username.to_owned(),
            password: "long enough pw".to_owned(),
            role: None,
        };
        if let Err(e) = accounts.create_user(&Actor::System, input).await {
            // An address the validator refuses cannot be searched for; the rest still are.
            assert!(
                matches!(e, fawkes_domain::DomainError::Validation(_)),
                "{email}: {e:?}"
            );
        }
    }
    let admin = accounts
        .authenticate(&f.admin.access_token)
        .await
        .expect("the admin's token");
    let names = |found: Vec<fawkes_domain::accounts::User>| {
        let mut names: Vec<String> = found.into_iter().map(|u| u.username).collect();
        names.sort();
        names
    };
    let search = |query: &'static str| {
        let admin = admin.clone();
        async move {
            accounts
                .search_users(&admin, query, 100)
                .await
                .unwrap_or_else(|e| panic!("search {query:?}: {e:?}"))
        }
    };
    assert_eq!(
        names(search("r_s").await),
        ["under_score"],
        "`_` is literal"
    );
    assert_eq!(
        names(search("R_S").await),
        ["under_score"],
        "case is ignored"
    );
    assert_eq!(
        names(search("under%score").await),
        Vec::<String>::new(),
        "`%` is literal"
    );
    assert_eq!(names(search("%").await), addresses_with(&s, '%').await);
    assert_eq!(names(search("_").await), ["under_score"]);
    assert_eq!(names(search("!").await), addresses_with(&s, '!').await);
    assert_eq!(names(search("\\").await), addresses_with(&s, '\\').await);
    assert_eq!(names(search("' OR '1'='1").await), Vec::<String>::new());
    assert_eq!(
        names(search("\"; DROP TABLE users; --").await),
        Vec::<String>::new()
    );
    assert_tables_intact(&s, &f).await;
}

/// U+0000, which PostgreSQL cannot store in text (SQLite and MySQL can), is refused with a 4xx
/// on every database, wherever it comes in.
async fn nul_is_refused_alike_on_every_database(s: TestServer) {
    let f = fixture(&s).await;
    let token = f.admin.access_token.as_str();
    let slug = &f.slug;
    let reply = s
        .post(
            &format!("/api/v1/rooms/{slug}/messages"),
            Some(token),
            json!({ "body": "a\u{0}b" }),
        )
        .await;
    reply.expect_error(422, "validation_failed");
    let reply = s
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "login": "root\u{0}", "password": "whatever pw" }),
        )
        .await;
    reply.expect_error(422, "validation_failed");
    let reply = s
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "nul@example.com", "username": "nul", "password": "long\u{0}enough" }),
        )
        .await;
    reply.expect_error(422, "validation_failed");
    s.get("/api/v1/rooms/a%00b", token)
        .await
        .expect_error(400, "invalid_path");
    s.get("/api/v1/videos/a%00b/comments", token)
        .await
        .expect_error(400, "invalid_path");
    for (path, name) in [
        ("/api/v1/admin/jobs", "kind"),
        ("/api/v1/admin/jobs", "queue"),
        ("/api/v1/admin/jobs", "state"),
        ("/api/v1/rooms", "cursor"),
    ] {
        get_with_query(&s, path, token, &[(name, "a\u{0}b")])
            .await
            .expect_error(400, "invalid_query");
    }
    // Channels and pages reach the domain without the REST extractors: its validation refuses
    // U+0000 in every text it stores or looks up, whichever way the text came in.
    let admin = s
        .domain
        .accounts
        .authenticate(token)
        .await
        .expect("the admin's token");
    let posted = s
        .domain
        .messaging
        .post_message(
            &admin,
            slug,
            fawkes_domain::messaging::MessageBody {
                body: "a\u{0}b".to_owned(),
            },
        )
        .await;
    assert!(
        matches!(&posted, Err(fawkes_domain::DomainError::Validation(f)) if f.contains_key("body")),
        "{posted:?}"
    );
    let search = s.domain.accounts.search_users(&admin, "a\u{0}", 10).await;
    assert!(
        matches!(&search, Err(fawkes_domain::DomainError::Validation(f)) if f.contains_key("query")),
        "{search:?}"
    );
    let members = s.domain.messaging.list_members(&admin, "a\u{0}b").await;
    assert!(
        matches!(members, Err(fawkes_domain::DomainError::NotFound(_))),
        "a room named with U+0000 (a channel topic can carry one) is simply not there"
    );
    use fawkes_domain::{accounts, comments, messaging, posts};
    let checked = [
        (
            "login",
            validated!(accounts::LoginInput, { "login": "a\u{0}", "password": "pw" }),
        ),
        (
            "device_id",
            validated!(accounts::LoginInput, { "login": "a", "password": "pw", "device_id": "d\u{0}" }),
        ),
        (
            "device_name",
            validated!(accounts::RegisterInput, { "email": "a@example.com", "username": "abc", "password": "long enough", "device_name": "d\u{0}" }),
        ),
        (
            "name",
            validated!(messaging::NewRoom, { "slug": "s", "name": "n\u{0}" }),
        ),
        (
            "content",
            validated!(comments::CommentContent, { "content": "c\u{0}" }),
        ),
        (
            "title",
            validated!(posts::NewPost, { "title": "t\u{0}", "body": "" }),
        ),
        ("body", validated!(posts::PostChanges, { "body": "b\u{0}" })),
        (
            "body",
            validated!(posts::NewPostComment, { "body": "b\u{0}" }),
        ),
        (
            "name",
            validated!(accounts::NewApiKey, { "name": "k\u{0}", "scopes": ["publish"] }),
        ),
    ];
    for (field, result) in checked {
        assert!(
            matches!(&result, Err(fawkes_domain::DomainError::Validation(f)) if f.contains_key(field)),
            "{field}: {result:?}"
        );
    }

    // An escaped backslash followed by `u0000` is plain text.
    let text = "a\\u0000b";
    let message = s
        .create(
            &format!("/api/v1/rooms/{slug}/messages"),
            token,
            json!({ "body": text }),
        )
        .await;
    assert_eq!(message["body"], text);
    assert_tables_intact(&s, &f).await;
}

/// The usernames of the accounts whose email contains `c` (those the validator accepted).
async fn addresses_with(s: &TestServer, c: char) -> Vec<String> {
    let all = s
        .domain
        .accounts
        .search_users(&Actor::System, "", 100)
        .await
        .expect("every account");
    let mut names: Vec<String> = all
        .into_iter()
        .filter(|u| u.email.contains(c) || u.username.contains(c))
        .map(|u| u.username)
        .collect();
    names.sort();
    names
}

/// Every table still exists and the fixture's records are still there.
async fn assert_tables_intact(s: &TestServer, f: &Fixture) {
    for table in [
        "users",
        "rooms",
        "room_members",
        "messages",
        "comments",
        "posts",
        "post_comments",
        "sessions",
        "refresh_tokens",
        "api_keys",
        "jobs",
        "notifications",
        "room_reads",
        "sink_missed",
        "user_devices",
    ] {
        let backend = s.db.get_database_backend();
        let count =
            s.db.query_one_raw(Statement::from_string(
                backend,
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await;
        assert!(count.is_ok(), "table {table}: {count:?}");
    }
    s.login("root", None).await.expect(200);
    s.get(&format!("/api/v1/rooms/{}", f.slug), &f.admin.access_token)
        .await
        .expect(200);
    s.get(
        &format!("/api/v1/posts/{}", f.post_id),
        &f.admin.access_token,
    )
    .await
    .expect(200);
}

on_every_database!(
    path_and_query_parameters,
    body_fields,
    user_search_takes_wildcards_literally,
    nul_is_refused_alike_on_every_database,
);
