//! Notifications on every database: who a mention, a post comment or a thread reply notifies
//! (once, never the actor, never someone who cannot read the source), that they are made by
//! jobs enqueued in the action's own transaction, the push on `notification:{user_id}`, and the
//! REST list (unread first), mark read (own only) and read-all.
//!
//! The server's own worker runs the `notifications` queue; tests wait until that queue has
//! nothing left to run, bounded, never a fixed sleep.

mod common;

use std::time::{Duration, Instant};

use common::live::Browser;
use common::{Session, TestServer, id_of};
use fawkes_data::entity::{job, notification};
use fawkes_domain::messaging::MessageBody;
use fawkes_domain::notifications::{JOB_KIND, QUEUE, SourceKind};
use fawkes_domain::{Actor, Identity, Role};
use fawkes_jobs::{JobContext, JobHandler};
use sea_orm::prelude::*;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const NOTIFICATIONS: &str = "/api/v1/notifications";

/// The `notify` jobs enqueued so far.
async fn notify_jobs(s: &TestServer) -> Vec<job::Model> {
    job::Entity::find()
        .filter(job::Column::Kind.eq(JOB_KIND))
        .all(&s.db)
        .await
        .expect("jobs read")
}

/// Waits until every `notify` job has run (none waiting or running), then checks none failed.
async fn settle(s: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = notify_jobs(s).await;
        if jobs
            .iter()
            .all(|j| j.state != "available" && j.state != "running")
        {
            for job in &jobs {
                assert_eq!(job.state, "completed", "a notify job failed: {job:?}");
                assert_eq!(job.queue, QUEUE);
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "notify jobs still pending: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs every `notify` job's handler once more, as a job that runs twice would.
async fn run_every_job_again(s: &TestServer) {
    for job in notify_jobs(s).await {
        let context = JobContext {
            id: job.id,
            queue: job.queue.clone(),
            kind: job.kind.clone(),
            args: serde_json::from_str(&job.args).expect("JSON args"),
            attempt: job.attempt + 1,
            max_attempts: job.max_attempts,
            shutdown: CancellationToken::new(),
        };
        s.domain
            .notifications
            .perform(&context)
            .await
            .expect("the job runs again");
    }
}

/// Every notification of `who`, as the REST list gives them.
async fn notifications_of(s: &TestServer, who: &Session) -> Vec<Value> {
    s.read_pages(NOTIFICATIONS, &who.access_token, 100).await.0
}

async fn unread_count(s: &TestServer, who: &Session) -> u64 {
    s.get(&format!("{NOTIFICATIONS}/unread-count"), &who.access_token)
        .await
        .expect(200)["unread_count"]
        .as_u64()
        .expect("a count")
}

async fn say(s: &TestServer, who: &Session, slug: &str, body: &str) -> Value {
    s.create(
        &format!("/api/v1/rooms/{slug}/messages"),
        &who.access_token,
        json!({ "body": body }),
    )
    .await
}

async fn add_member(s: &TestServer, owner: &Session, slug: &str, member: &Session) {
    s.post(
        &format!("/api/v1/rooms/{slug}/members"),
        Some(&owner.access_token),
        json!({ "user_id": member.user_id }),
    )
    .await
    .expect(201);
}

async fn published_post(s: &TestServer, author: &Session, title: &str) -> Value {
    let post = s
        .create(
            "/api/v1/posts",
            &author.access_token,
            json!({ "title": title, "body": format!("The body of {title}.") }),
        )
        .await;
    s.post(
        &format!("/api/v1/posts/{}/publish", id_of(&post)),
        Some(&author.access_token),
        json!({}),
    )
    .await
    .expect(200)
    .clone()
}

async fn comment_on(
    s: &TestServer,
    who: &Session,
    post: &Value,
    body: &str,
    parent: Option<&Value>,
) -> Value {
    let mut input = json!({ "body": body });
    if let Some(parent) = parent {
        input["parent_id"] = json!(id_of(parent));
    }
    s.create(
        &format!("/api/v1/posts/{}/comments", id_of(post)),
        &who.access_token,
        input,
    )
    .await
}

/// `"{kind} by {actor's name}"` of each notification, in list order.
fn kinds(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|n| {
            format!(
                "{} by {}",
                n["kind"].as_str().unwrap_or_default(),
                n["actor"]["username"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

async fn room_mentions_notify_readers_once_and_nobody_else(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    s.create_room(&ada, "secret", true).await;
    add_member(&s, &ada, "secret", &bob).await;

    let plain = say(&s, &ada, "lobby", "no mention here, mail ada@example.com").await;
    assert!(
        notify_jobs(&s).await.is_empty(),
        "a message that mentions nobody enqueues no job"
    );
    let message = say(
        &s,
        &ada,
        "lobby",
        "hi @bob and @Carol, not @nobody, and me @ada",
    )
    .await;
    let hidden = say(&s, &ada, "secret", "psst @bob @carol").await;
    assert_eq!(notify_jobs(&s).await.len(), 2);
    settle(&s).await;

    let bobs = notifications_of(&s, &bob).await;
    assert_eq!(kinds(&bobs), ["mention by ada", "mention by ada"]);
    let secret = &bobs[0];
    assert_eq!(secret["source"]["kind"], "message");
    assert_eq!(secret["source"]["id"], hidden["id"]);
    assert_eq!(secret["source"]["room_slug"], "secret");
    assert_eq!(secret["preview"], "psst @bob @carol");
    assert_eq!(secret["read_at"], Value::Null);
    assert_eq!(bobs[1]["source"]["id"], message["id"]);

    let carols = notifications_of(&s, &carol).await;
    assert_eq!(
        carols.len(),
        1,
        "not about a private room carol cannot enter"
    );
    assert_eq!(carols[0]["source"]["room_slug"], "lobby");
    assert!(
        notifications_of(&s, &ada).await.is_empty(),
        "nobody is notified of their own mention"
    );
    assert_ne!(plain["id"], message["id"]);

    run_every_job_again(&s).await;
    let rows = notification::Entity::find()
        .count(&s.db)
        .await
        .expect("count");
    assert_eq!(rows, 3, "a job that runs twice notifies nobody twice");
    assert_eq!(unread_count(&s, &bob).await, 2);
}

async fn post_comments_notify_the_author_and_the_thread(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let dave = s.register("dave").await;
    let eve = s.register("eve").await;
    let post = published_post(&s, &ada, "Hello").await;

    let own = comment_on(&s, &ada, &post, "my own first words", None).await;
    assert!(
        notify_jobs(&s).await.is_empty(),
        "the author commenting on their own post, naming nobody, enqueues nothing"
    );
    let first = comment_on(&s, &bob, &post, "first!", None).await;
    settle(&s).await;
    assert_eq!(
        kinds(&notifications_of(&s, &ada).await),
        ["post_comment by bob"]
    );

    let eve_reply = comment_on(&s, &eve, &post, "me too", Some(&first)).await;
    let root = s.user_with_role("root", Role::Admin).await;
    s.patch(
        &format!("/api/v1/users/{}", eve.user_id),
        &root.access_token,
        json!({ "is_active": false }),
    )
    .await
    .expect(200);
    let carol_reply = comment_on(&s, &carol, &post, "a reply", Some(&first)).await;
    // A reply to a reply joins the thread; dave names ada, who wrote the post.
    let dave_reply = comment_on(&s, &dave, &post, "@ada look", Some(&carol_reply)).await;
    assert_eq!(dave_reply["parent_id"], first["id"]);
    settle(&s).await;

    let adas = notifications_of(&s, &ada).await;
    assert_eq!(
        kinds(&adas),
        [
            "mention by dave",
            "post_comment by carol",
            "post_comment by eve",
            "post_comment by bob",
        ],
        "one notification per event: the mention outranks the comment on her post"
    );
    assert_eq!(adas[0]["source"]["kind"], "post_comment");
    assert_eq!(adas[0]["source"]["post_id"], post["id"]);
    assert_eq!(adas[0]["source"]["id"], dave_reply["id"]);
    assert_eq!(
        kinds(&notifications_of(&s, &bob).await),
        [
            "thread_reply by dave",
            "thread_reply by carol",
            "thread_reply by eve",
        ]
    );
    assert_eq!(
        kinds(&notifications_of(&s, &carol).await),
        ["thread_reply by dave"],
        "only replies after carol's own"
    );
    assert!(notifications_of(&s, &dave).await.is_empty());
    let eves = notification::Entity::find()
        .filter(notification::Column::UserId.eq(Uuid::parse_str(&eve.user_id).expect("id")))
        .count(&s.db)
        .await
        .expect("count");
    assert_eq!(eves, 0, "a deactivated account is not notified");
    assert_ne!(own["id"], eve_reply["id"]);
}

async fn video_comment_mentions_notify(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    s.create(
        "/api/v1/videos/intro-1/comments",
        &ada.access_token,
        json!({ "content": "nice one" }),
    )
    .await;
    assert!(notify_jobs(&s).await.is_empty());
    let comment = s
        .create(
            "/api/v1/videos/intro-1/comments",
            &ada.access_token,
            json!({ "content": "@bob watch this" }),
        )
        .await;
    settle(&s).await;
    let bobs = notifications_of(&s, &bob).await;
    assert_eq!(kinds(&bobs), ["mention by ada"]);
    assert_eq!(
        bobs[0]["source"],
        json!({"kind": "comment", "id": comment["id"], "video_id": "intro-1",
               "room_slug": null, "post_id": null})
    );
}

async fn refused_and_rolled_back_actions_enqueue_nothing(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let long = format!("@bob {}", "x".repeat(5000));
    s.post(
        "/api/v1/rooms/lobby/messages",
        Some(&ada.access_token),
        json!({ "body": long }),
    )
    .await
    .expect_error(422, "validation_failed");
    let draft = s
        .create(
            "/api/v1/posts",
            &ada.access_token,
            json!({ "title": "Draft", "body": "not yet" }),
        )
        .await;
    s.post(
        &format!("/api/v1/posts/{}/comments", id_of(&draft)),
        Some(&ada.access_token),
        json!({ "body": "@bob look" }),
    )
    .await
    .expect_error(403, "forbidden");

    // A write that fails after its job was enqueued: the author does not exist, so the
    // message's foreign key refuses it and the transaction rolls back, job included.
    let ghost = Actor::User(Identity {
        user_id: Uuid::now_v7(),
        role: Role::User,
        session_id: Uuid::now_v7(),
        device_id: None,
    });
    let failed = s
        .domain
        .messaging
        .post_message(
            &ghost,
            "lobby",
            MessageBody {
                body: "@bob from nobody".to_owned(),
            },
        )
        .await;
    assert!(failed.is_err(), "the write fails: {failed:?}");
    assert!(
        notify_jobs(&s).await.is_empty(),
        "no job outlives its rolled-back action"
    );
    let listed = s
        .get("/api/v1/rooms/lobby/messages", &bob.access_token)
        .await;
    assert_eq!(listed.expect(200)["items"], json!([]));

    // The same action that commits has its job.
    say(&s, &ada, "lobby", "@bob hello").await;
    assert_eq!(notify_jobs(&s).await.len(), 1);
    settle(&s).await;
    assert_eq!(unread_count(&s, &bob).await, 1);
}

async fn the_recipients_channel_receives_the_push(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let mut bobs = s.socket(&bob.access_token).await;
    let bob_topic = format!("notification:{}", bob.user_id);
    assert_eq!(
        bobs.join(&bob_topic, "1", json!({})).await[4]["status"],
        "ok"
    );
    let mut carols = s.socket(&carol.access_token).await;
    let carol_topic = format!("notification:{}", carol.user_id);
    assert_eq!(
        carols.join(&carol_topic, "1", json!({})).await[4]["status"],
        "ok"
    );

    let message = say(&s, &ada, "lobby", "ping @bob").await;
    settle(&s).await;
    let pushed = bobs.next_json().await;
    assert_eq!(pushed[2], bob_topic);
    assert_eq!(pushed[3], "notification");
    let note = &pushed[4];
    assert_eq!(note["kind"], "mention");
    assert_eq!(note["actor"]["username"], "ada");
    assert_eq!(note["source"]["id"], message["id"]);
    assert_eq!(note["preview"], "ping @bob");
    assert_eq!(note["read_at"], Value::Null);

    // Marking it read tells bob's other tabs the new count.
    s.post(
        &format!("{NOTIFICATIONS}/{}/read", id_of(note)),
        Some(&bob.access_token),
        json!({}),
    )
    .await
    .expect(200);
    let read = bobs.next_json().await;
    assert_eq!(read[3], "notifications_read");
    assert_eq!(read[4], json!({"id": note["id"], "unread_count": 0}));

    // Carol heard nothing of bob's: the first frame she gets is her own heartbeat reply.
    assert_eq!(carols.heartbeat("hb").await[3], "phx_reply");
}

async fn rest_lists_unread_first_and_marks_only_your_own(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    for n in 1..=3 {
        say(&s, &ada, "lobby", &format!("@bob number {n}")).await;
    }
    say(&s, &ada, "lobby", "@carol yours").await;
    settle(&s).await;

    let list = notifications_of(&s, &bob).await;
    let previews: Vec<&str> = list
        .iter()
        .map(|n| n["preview"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        previews,
        ["@bob number 3", "@bob number 2", "@bob number 1"]
    );
    let middle = id_of(&list[1]);

    // Another user's notification does not exist for carol, and stays unread.
    s.post(
        &format!("{NOTIFICATIONS}/{middle}/read"),
        Some(&carol.access_token),
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
    s.post(
        &format!("{NOTIFICATIONS}/{}/read", Uuid::now_v7()),
        Some(&bob.access_token),
        json!({}),
    )
    .await
    .expect_error(404, "not_found");
    assert_eq!(unread_count(&s, &bob).await, 3);

    let marked = s
        .post(
            &format!("{NOTIFICATIONS}/{middle}/read"),
            Some(&bob.access_token),
            json!({}),
        )
        .await;
    assert!(marked.expect(200)["read_at"].is_string());
    let again = s
        .post(
            &format!("{NOTIFICATIONS}/{middle}/read"),
            Some(&bob.access_token),
            json!({}),
        )
        .await;
    assert_eq!(
        again.expect(200)["read_at"],
        marked.body["read_at"],
        "marking twice keeps the first time"
    );
    assert_eq!(unread_count(&s, &bob).await, 2);

    // Unread first (newest first), then the read one; page by page alike.
    let expected = ["@bob number 3", "@bob number 1", "@bob number 2"];
    let list = notifications_of(&s, &bob).await;
    let previews: Vec<&str> = list
        .iter()
        .map(|n| n["preview"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(previews, expected);
    for limit in [1, 2] {
        let (paged, sizes) = s.read_pages(NOTIFICATIONS, &bob.access_token, limit).await;
        let previews: Vec<&str> = paged
            .iter()
            .map(|n| n["preview"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(previews, expected, "pages of {limit}: {sizes:?}");
    }
    s.get(&format!("{NOTIFICATIONS}?cursor=bogus"), &bob.access_token)
        .await
        .expect_error(422, "validation_failed");
    s.call(reqwest::Method::GET, NOTIFICATIONS, None, None)
        .await
        .expect_error(401, "unauthenticated");

    let all = s
        .post(
            &format!("{NOTIFICATIONS}/read-all"),
            Some(&bob.access_token),
            json!({}),
        )
        .await;
    assert_eq!(all.expect(200), &json!({"marked": 2, "unread_count": 0}));
    assert_eq!(unread_count(&s, &bob).await, 0);
    assert_eq!(unread_count(&s, &carol).await, 1, "carol's are untouched");
    assert!(
        notifications_of(&s, &bob)
            .await
            .iter()
            .all(|n| n["read_at"].is_string())
    );
}

on_every_database!(
    room_mentions_notify_readers_once_and_nobody_else,
    post_comments_notify_the_author_and_the_thread,
    video_comment_mentions_notify,
    refused_and_rolled_back_actions_enqueue_nothing,
    the_recipients_channel_receives_the_push,
    rest_lists_unread_first_and_marks_only_your_own,
);

/// The navbar's unread badge follows by small diffs: a mention from elsewhere adds it, marking
/// the notification read on the notifications page (another tab) takes it away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_navbar_badge_follows_mentions_live() {
    let s = TestServer::start(common::Backend::Sqlite)
        .await
        .expect("SQLite always runs");
    let ada = s.register("ada").await;
    let bob_api = s.register("bob").await;
    let mut bob = Browser::default();
    bob.log_in(&s, "bob").await;
    let (mut rooms, reply) = bob.join(&s, "/rooms").await;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    assert!(
        !reply.to_string().contains("nav-unread"),
        "no badge while nothing is unread"
    );

    say(&s, &ada, "lobby", "@bob have a look").await;
    let (size, diff) = loop {
        let (size, diff) = rooms.next_diff().await;
        if diff.to_string().contains("nav-unread") {
            break (size, diff);
        }
    };
    assert!(size < 400, "the badge sent {size} bytes: {diff}");
    assert!(
        diff.to_string().contains(r#"{"0":"1","s":"#),
        "a 1 in the badge: {diff}"
    );

    let (mut page, reply) = bob.join(&s, "/notifications").await;
    let rendered = reply[4]["response"]["rendered"].to_string();
    assert!(rendered.contains("have a look"), "{rendered}");
    assert!(rendered.contains("mentioned you in #"), "{rendered}");
    let id = id_of(&notifications_of(&s, &bob_api).await[0]);
    let marked = page.event("click", "read", json!({ "id": id })).await;
    assert_eq!(marked[4]["status"], "ok", "{marked}");
    let (size, diff) = rooms.next_diff().await;
    assert!(size < 400, "clearing the badge sent {size} bytes: {diff}");
    let diff = diff.to_string();
    assert!(
        diff.contains(r#":"""#) && !diff.contains("nav-unread"),
        "the badge's hole is emptied: {diff}"
    );
    assert_eq!(unread_count(&s, &bob_api).await, 0);
}

#[test]
fn the_source_kinds_are_named_as_the_job_arguments_say() {
    assert_eq!(SourceKind::Message.as_str(), "message");
    assert_eq!(SourceKind::Comment.as_str(), "comment");
    assert_eq!(SourceKind::PostComment.as_str(), "post_comment");
}
