//! Posts (system E) over real HTTP and channels: drafts seen by their author and admins only,
//! who may update, publish, unpublish and delete, comments on published posts with replies,
//! the error envelope, pagination, and what `post:{id}` and the `posts` feed carry.

mod common;

use common::socket::RawSocket;
use common::{Backend, Session, TestServer, id_of};
use fawkes_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

const POSTS: &str = "/api/v1/posts";

fn post_path(post: &Value) -> String {
    format!("{POSTS}/{}", id_of(post))
}

fn comments_path(post: &Value) -> String {
    format!("{}/comments", post_path(post))
}

/// A draft by `who`.
async fn draft(s: &TestServer, who: &Session, title: &str, body: &str) -> Value {
    let input = json!({ "title": title, "body": body });
    s.create(POSTS, &who.access_token, input).await
}

/// A published post by `who`.
async fn published(s: &TestServer, who: &Session, title: &str) -> Value {
    let post = draft(s, who, title, &format!("The body of {title}.")).await;
    publish(s, who, &post).await.expect(200).clone()
}

async fn publish(s: &TestServer, who: &Session, post: &Value) -> common::Reply {
    let path = format!("{}/publish", post_path(post));
    s.post(&path, Some(&who.access_token), json!({})).await
}

async fn unpublish(s: &TestServer, who: &Session, post: &Value) -> common::Reply {
    let path = format!("{}/unpublish", post_path(post));
    s.post(&path, Some(&who.access_token), json!({})).await
}

/// A request without a token, as a guest makes it.
async fn as_guest(s: &TestServer, path: &str) -> common::Reply {
    s.call(Method::GET, path, None, None).await
}

async fn comment(s: &TestServer, who: &Session, post: &Value, body: Value) -> common::Reply {
    s.post(&comments_path(post), Some(&who.access_token), body)
        .await
}

/// The ids `who` sees listed at `path` (every page).
async fn ids(s: &TestServer, who: &Session, path: &str) -> Vec<String> {
    s.listed_ids(path, &who.access_token).await
}

fn assert_invalid(reply: &common::Reply, field: &str) {
    reply.expect_error(422, "validation_failed");
    assert!(
        reply.body["error"]["details"][field]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "no message on {field}: {}",
        reply.body
    );
}

async fn a_new_post_is_a_draft_seen_by_its_author_and_admins_only(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let root = s.user_with_role("root", Role::Admin).await;
    let post = draft(&s, &ada, "  Drafty  ", "").await;
    assert_eq!(post["status"], "draft");
    assert_eq!(post["title"], "Drafty", "the title is trimmed");
    assert_eq!(post["body"], "");
    assert_eq!(post["published_at"], Value::Null);
    assert_eq!(post["author"]["id"], ada.user_id.as_str());
    assert_eq!(post["author"]["username"], "ada");
    assert_eq!(post["created_at"], post["updated_at"]);

    s.get(&post_path(&post), &ada.access_token)
        .await
        .expect(200);
    s.get(&post_path(&post), &root.access_token)
        .await
        .expect(200);
    s.get(&post_path(&post), &bob.access_token)
        .await
        .expect_error(404, "not_found");
    as_guest(&s, &post_path(&post))
        .await
        .expect_error(404, "not_found");

    let id = id_of(&post);
    assert_eq!(ids(&s, &ada, POSTS).await, vec![id.clone()]);
    assert_eq!(ids(&s, &root, POSTS).await, vec![id.clone()]);
    assert!(ids(&s, &bob, POSTS).await.is_empty());
    let drafts = format!("{POSTS}?status=draft");
    assert!(ids(&s, &bob, &drafts).await.is_empty());
    let of_ada = format!("{POSTS}?author_id={}", ada.user_id);
    assert!(ids(&s, &bob, &of_ada).await.is_empty());
    assert_eq!(ids(&s, &root, &of_ada).await, vec![id]);
    let listed = as_guest(&s, POSTS).await;
    assert_eq!(listed.expect(200)["items"], json!([]));
}

async fn guests_read_published_posts_and_their_comments(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let post = published(&s, &ada, "Open").await;
    draft(&s, &ada, "Closed", "").await;
    comment(&s, &bob, &post, json!({"body": "first!"}))
        .await
        .expect(201);

    let listed = as_guest(&s, POSTS).await;
    let items = listed.expect(200)["items"].as_array().cloned().unwrap();
    assert_eq!(
        items.iter().map(id_of).collect::<Vec<_>>(),
        vec![id_of(&post)]
    );
    as_guest(&s, &post_path(&post)).await.expect(200);
    let comments = as_guest(&s, &comments_path(&post)).await;
    assert_eq!(comments.expect(200)["items"][0]["body"], "first!");
    // A token that is present must be valid: a guest is only someone without one.
    s.get(POSTS, "not-a-token")
        .await
        .expect_error(401, "invalid_token");
    s.post(POSTS, None, json!({"title": "anonymous"}))
        .await
        .expect_error(401, "unauthenticated");
    s.post(&format!("{}/publish", post_path(&post)), None, json!({}))
        .await
        .expect_error(401, "unauthenticated");
    comment_as_guest_is_refused(&s, &post).await;
}

async fn comment_as_guest_is_refused(s: &TestServer, post: &Value) {
    s.post(&comments_path(post), None, json!({"body": "hi"}))
        .await
        .expect_error(401, "unauthenticated");
}

async fn titles_and_bodies_are_validated(s: TestServer) {
    let ada = s.register("ada").await;
    let long_title = "t".repeat(201);
    for title in ["", "   \n", long_title.as_str()] {
        let reply = s
            .post(POSTS, Some(&ada.access_token), json!({"title": title}))
            .await;
        assert_invalid(&reply, "title");
    }
    let long_body = "b".repeat(20_001);
    let reply = s
        .post(
            POSTS,
            Some(&ada.access_token),
            json!({"title": "ok", "body": long_body}),
        )
        .await;
    assert_invalid(&reply, "body");
    s.post(POSTS, Some(&ada.access_token), json!({"body": "no title"}))
        .await
        .expect_error(422, "validation_failed");
    s.call_raw(
        Method::POST,
        POSTS,
        Some(&ada.access_token),
        "application/json",
        b"{not json".to_vec(),
    )
    .await
    .expect_error(400, "malformed_json");
    assert!(ids(&s, &ada, POSTS).await.is_empty(), "nothing was stored");
    // The limits themselves fit (counted in characters, not bytes).
    let post = draft(&s, &ada, &"é".repeat(200), &"ü".repeat(20_000)).await;
    let reply = s
        .patch(&post_path(&post), &ada.access_token, json!({"title": " "}))
        .await;
    assert_invalid(&reply, "title");
    s.get(&format!("{POSTS}/not-a-uuid"), &ada.access_token)
        .await
        .expect_error(400, "invalid_path");
    s.get(&format!("{POSTS}?status=secret"), &ada.access_token)
        .await
        .expect_error(400, "invalid_query");
}

async fn only_the_author_updates_a_post(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let root = s.user_with_role("root", Role::Admin).await;
    let open = published(&s, &ada, "Open").await;
    let closed = draft(&s, &ada, "Closed", "").await;

    let change = json!({"title": "Taken over"});
    s.patch(&post_path(&open), &bob.access_token, change.clone())
        .await
        .expect_error(403, "forbidden");
    s.patch(&post_path(&closed), &bob.access_token, change.clone())
        .await
        .expect_error(404, "not_found");
    s.patch(&post_path(&open), &root.access_token, change.clone())
        .await
        .expect_error(403, "forbidden");

    let updated = s
        .patch(
            &post_path(&closed),
            &ada.access_token,
            json!({"body": "Now with a body"}),
        )
        .await;
    let updated = updated.expect(200);
    assert_eq!(updated["title"], "Closed", "fields left out stay");
    assert_eq!(updated["body"], "Now with a body");
    assert_eq!(updated["status"], "draft");
    let updated = s
        .patch(
            &post_path(&open),
            &ada.access_token,
            json!({"title": "Open, edited"}),
        )
        .await;
    assert_eq!(updated.expect(200)["title"], "Open, edited");
    assert_eq!(updated.body["status"], "published", "still published");
    // A published post keeps a body.
    let emptied = s
        .patch(&post_path(&open), &ada.access_token, json!({"body": "  "}))
        .await;
    assert_invalid(&emptied, "body");
    let seen = s.get(&post_path(&open), &bob.access_token).await;
    assert_eq!(seen.expect(200)["title"], "Open, edited");
    assert_eq!(seen.body["body"], "The body of Open.");
}

async fn publishing_needs_a_body_and_sets_published_at_once(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let root = s.user_with_role("root", Role::Admin).await;
    let post = draft(&s, &ada, "Soon", "").await;

    assert_invalid(&publish(&s, &ada, &post).await, "body");
    s.patch(
        &post_path(&post),
        &ada.access_token,
        json!({"body": "  \n"}),
    )
    .await
    .expect(200);
    assert_invalid(&publish(&s, &ada, &post).await, "body");
    publish(&s, &bob, &post)
        .await
        .expect_error(404, "not_found");
    s.patch(
        &post_path(&post),
        &ada.access_token,
        json!({"body": "Ready."}),
    )
    .await
    .expect(200);

    let first = publish(&s, &ada, &post).await.expect(200).clone();
    assert_eq!(first["status"], "published");
    let published_at = first["published_at"].clone();
    assert!(published_at.is_string(), "{first}");
    publish(&s, &bob, &post)
        .await
        .expect_error(403, "forbidden");
    let again = publish(&s, &ada, &post).await.expect(200).clone();
    assert_eq!(again["published_at"], published_at, "publishing twice");

    unpublish(&s, &ada, &post)
        .await
        .expect_error(403, "forbidden");
    unpublish(&s, &bob, &post)
        .await
        .expect_error(403, "forbidden");
    let back = unpublish(&s, &root, &post).await.expect(200).clone();
    assert_eq!(back["status"], "draft");
    assert_eq!(back["published_at"], published_at, "kept by unpublish");
    s.get(&post_path(&post), &bob.access_token)
        .await
        .expect_error(404, "not_found");
    unpublish(&s, &root, &post).await.expect(200);

    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let republished = publish(&s, &ada, &post).await.expect(200).clone();
    assert_eq!(republished["status"], "published");
    assert_eq!(
        republished["published_at"], published_at,
        "set by the first publish only"
    );

    // An admin publishes someone else's draft.
    let other = draft(&s, &ada, "By the editor", "Body").await;
    let by_admin = publish(&s, &root, &other).await.expect(200).clone();
    assert_eq!(by_admin["status"], "published");
    assert_eq!(by_admin["author"]["id"], ada.user_id.as_str());
}

async fn the_author_or_an_admin_deletes_a_post(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let root = s.user_with_role("root", Role::Admin).await;
    let open = published(&s, &ada, "Open").await;
    let closed = draft(&s, &ada, "Closed", "").await;
    let remark = comment(&s, &bob, &open, json!({"body": "mine"}))
        .await
        .expect(201)
        .clone();

    s.delete(&post_path(&open), &bob.access_token)
        .await
        .expect_error(403, "forbidden");
    s.delete(&post_path(&closed), &bob.access_token)
        .await
        .expect_error(404, "not_found");
    s.delete(&post_path(&closed), &ada.access_token)
        .await
        .expect(204);
    s.delete(&post_path(&open), &root.access_token)
        .await
        .expect(204);
    for post in [&open, &closed] {
        s.get(&post_path(post), &ada.access_token)
            .await
            .expect_error(404, "not_found");
    }
    s.delete(
        &format!("/api/v1/post-comments/{}", id_of(&remark)),
        &bob.access_token,
    )
    .await
    .expect_error(404, "not_found");
    assert!(ids(&s, &ada, POSTS).await.is_empty());
}

async fn comments_go_on_published_posts_only(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let root = s.user_with_role("root", Role::Admin).await;
    let post = draft(&s, &ada, "Soon", "Body").await;
    let hello = json!({"body": "hello"});
    comment(&s, &ada, &post, hello.clone())
        .await
        .expect_error(403, "forbidden");
    comment(&s, &bob, &post, hello.clone())
        .await
        .expect_error(404, "not_found");
    s.get(&comments_path(&post), &bob.access_token)
        .await
        .expect_error(404, "not_found");

    publish(&s, &ada, &post).await.expect(200);
    let added = comment(&s, &bob, &post, hello.clone()).await;
    let added = added.expect(201).clone();
    assert_eq!(added["post_id"], id_of(&post).as_str());
    assert_eq!(added["parent_id"], Value::Null);
    assert_eq!(added["author"]["username"], "bob");
    assert_eq!(added["body"], "hello");

    let long = "c".repeat(4001);
    for body in ["", " \t ", long.as_str()] {
        assert_invalid(
            &comment(&s, &bob, &post, json!({"body": body})).await,
            "body",
        );
    }

    // Once unpublished, the comments stay readable to those who can read the post, and no one
    // adds more.
    unpublish(&s, &root, &post).await.expect(200);
    comment(&s, &ada, &post, hello.clone())
        .await
        .expect_error(403, "forbidden");
    comment(&s, &bob, &post, hello)
        .await
        .expect_error(404, "not_found");
    let listed = ids(&s, &ada, &comments_path(&post)).await;
    assert_eq!(listed, vec![id_of(&added)]);
    s.get(&comments_path(&post), &bob.access_token)
        .await
        .expect_error(404, "not_found");
}

async fn replies_stay_in_their_post_and_thread(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let one = published(&s, &ada, "One").await;
    let two = published(&s, &ada, "Two").await;
    let root = comment(&s, &bob, &one, json!({"body": "thread"}))
        .await
        .expect(201)
        .clone();
    let reply = comment(
        &s,
        &ada,
        &one,
        json!({"body": "reply", "parent_id": id_of(&root)}),
    )
    .await
    .expect(201)
    .clone();
    assert_eq!(reply["parent_id"], id_of(&root).as_str());
    let nested = comment(
        &s,
        &bob,
        &one,
        json!({"body": "reply to the reply", "parent_id": id_of(&reply)}),
    )
    .await
    .expect(201)
    .clone();
    assert_eq!(
        nested["parent_id"],
        id_of(&root).as_str(),
        "a reply to a reply joins the thread"
    );

    let elsewhere = json!({"body": "wrong post", "parent_id": id_of(&root)});
    assert_invalid(&comment(&s, &ada, &two, elsewhere).await, "parent_id");
    let unknown = json!({"body": "nowhere", "parent_id": uuid::Uuid::now_v7()});
    assert_invalid(&comment(&s, &ada, &two, unknown).await, "parent_id");

    let listed = ids(&s, &bob, &comments_path(&one)).await;
    assert_eq!(
        listed,
        vec![id_of(&root), id_of(&reply), id_of(&nested)],
        "oldest first"
    );
    assert!(ids(&s, &bob, &comments_path(&two)).await.is_empty());

    // Deleting a thread's first comment removes its replies.
    s.delete(
        &format!("/api/v1/post-comments/{}", id_of(&root)),
        &bob.access_token,
    )
    .await
    .expect(204);
    assert!(ids(&s, &bob, &comments_path(&one)).await.is_empty());
}

async fn a_comment_is_deleted_by_its_author_or_an_admin(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let carl = s.register("carl").await;
    let root = s.user_with_role("root", Role::Admin).await;
    let post = published(&s, &ada, "Post").await;
    let by_bob = comment(&s, &bob, &post, json!({"body": "bob's"}))
        .await
        .expect(201)
        .clone();
    let by_carl = comment(&s, &carl, &post, json!({"body": "carl's"}))
        .await
        .expect(201)
        .clone();
    let path = |c: &Value| format!("/api/v1/post-comments/{}", id_of(c));

    // Not even the post's author deletes someone else's comment.
    for other in [&carl, &ada] {
        s.delete(&path(&by_bob), &other.access_token)
            .await
            .expect_error(403, "forbidden");
    }
    s.call(Method::DELETE, &path(&by_bob), None, None)
        .await
        .expect_error(401, "unauthenticated");
    s.delete(&path(&by_bob), &bob.access_token)
        .await
        .expect(204);
    s.delete(&path(&by_bob), &bob.access_token)
        .await
        .expect_error(404, "not_found");
    s.delete(&path(&by_carl), &root.access_token)
        .await
        .expect(204);
    assert!(ids(&s, &ada, &comments_path(&post)).await.is_empty());

    // On a post that went back to draft, an outsider's comment is not there for them.
    let post = published(&s, &ada, "Later a draft").await;
    let kept = comment(&s, &carl, &post, json!({"body": "kept"}))
        .await
        .expect(201)
        .clone();
    unpublish(&s, &root, &post).await.expect(200);
    s.delete(&path(&kept), &carl.access_token)
        .await
        .expect_error(404, "not_found");
    s.delete(&path(&kept), &root.access_token).await.expect(204);
}

async fn posts_page_newest_first_each_once(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let mut expected = Vec::new();
    for n in 0..7 {
        let author = if n % 2 == 0 { &ada } else { &bob };
        expected.push(id_of(&published(&s, author, &format!("Post {n}")).await));
    }
    let own_draft = id_of(&draft(&s, &bob, "Bob's draft", "").await);
    expected.reverse();
    let (items, sizes) = s.read_pages(POSTS, &ada.access_token, 3).await;
    assert_eq!(items.iter().map(id_of).collect::<Vec<_>>(), expected);
    assert_eq!(sizes, vec![3, 3, 1]);

    let mut bobs_view = expected.clone();
    bobs_view.insert(0, own_draft.clone());
    assert_eq!(
        ids(&s, &bob, POSTS).await,
        bobs_view,
        "with bob's own draft"
    );
    let of_bob = format!("{POSTS}?author_id={}&status=published", bob.user_id);
    let bobs_published: Vec<String> = expected
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(ids(&s, &ada, &of_bob).await, bobs_published);
    let bobs_drafts = format!("{POSTS}?status=draft");
    assert_eq!(ids(&s, &bob, &bobs_drafts).await, vec![own_draft]);
    s.get(&format!("{POSTS}?limit=0"), &ada.access_token)
        .await
        .expect_error(422, "validation_failed");
    s.get(&format!("{POSTS}?cursor=nope"), &ada.access_token)
        .await
        .expect_error(422, "validation_failed");
}

/// `[join_ref, ref, topic, "phx_reply", {status, response}]` → (status, response).
fn reply_of(frame: &Value) -> (String, Value) {
    assert_eq!(frame[3], "phx_reply", "not a reply: {frame}");
    (
        frame[4]["status"].as_str().unwrap_or_default().to_owned(),
        frame[4]["response"].clone(),
    )
}

/// The next broadcast on the socket (skipping nothing but replies).
async fn next_event(socket: &mut RawSocket) -> Value {
    loop {
        let frame = socket.next_json().await;
        if frame[3] != "phx_reply" {
            return frame;
        }
    }
}

async fn the_feed_carries_published_posts_and_never_a_draft(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let root = s.user_with_role("root", Role::Admin).await;
    let mut feed = s.socket(&bob.access_token).await;
    assert_eq!(reply_of(&feed.join("posts", "1", json!({})).await).0, "ok");

    let post = draft(&s, &ada, "Secret plans", "draft body").await;
    s.patch(
        &post_path(&post),
        &ada.access_token,
        json!({"title": "Still secret"}),
    )
    .await
    .expect(200);
    publish(&s, &ada, &post).await.expect(200);
    // Broadcasts keep their order: had the draft's update gone out, it would come first.
    let event = next_event(&mut feed).await;
    assert_eq!(event[2], "posts");
    assert_eq!(event[3], "post_published", "{event}");
    assert_eq!(event[4]["id"], id_of(&post).as_str());
    assert_eq!(event[4]["title"], "Still secret");
    assert_eq!(event[4]["status"], "published");

    unpublish(&s, &root, &post).await.expect(200);
    let event = next_event(&mut feed).await;
    assert_eq!(event[3], "post_unpublished");
    assert_eq!(event[4], json!({"id": id_of(&post)}), "no draft content");
    s.patch(
        &post_path(&post),
        &ada.access_token,
        json!({"body": "draft again"}),
    )
    .await
    .expect(200);
    let gone = draft(&s, &ada, "Never shown", "").await;
    s.delete(&post_path(&gone), &ada.access_token)
        .await
        .expect(204);
    let open = published(&s, &ada, "Open").await;
    let event = next_event(&mut feed).await;
    assert_eq!(
        (event[3].clone(), event[4]["id"].clone()),
        (json!("post_published"), json!(id_of(&open))),
        "the draft's update and deletion never reached the feed: {event}"
    );
    s.delete(&post_path(&open), &ada.access_token)
        .await
        .expect(204);
    let event = next_event(&mut feed).await;
    assert_eq!(event[3], "post_deleted");
    assert_eq!(event[4], json!({"id": id_of(&open)}));

    feed.send(json!(["1", "9", "posts", "post_published", {"title": "fake"}]))
        .await;
    let (status, response) = reply_of(&feed.next_json().await);
    assert_eq!(status, "error");
    assert_eq!(response["reason"], "read_only");
}

async fn a_post_topic_is_joined_by_its_readers_and_carries_its_events(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let root = s.user_with_role("root", Role::Admin).await;
    let post = draft(&s, &ada, "Draft", "Body").await;
    let topic = format!("post:{}", id_of(&post));

    let mut bob_socket = s.socket(&bob.access_token).await;
    let (status, response) = reply_of(&bob_socket.join(&topic, "1", json!({})).await);
    assert_eq!(
        (status.as_str(), &response),
        ("error", &json!({"reason": "unauthorized"}))
    );
    let (status, _) = reply_of(&bob_socket.join("post:not-an-id", "2", json!({})).await);
    assert_eq!(status, "error");
    let mut ada_socket = s.socket(&ada.access_token).await;
    let (status, response) = reply_of(&ada_socket.join(&topic, "1", json!({})).await);
    assert_eq!(status, "ok");
    assert_eq!(response["post"]["title"], "Draft");

    publish(&s, &ada, &post).await.expect(200);
    assert_eq!(next_event(&mut ada_socket).await[3], "post_published");
    let (status, _) = reply_of(&bob_socket.join(&topic, "3", json!({})).await);
    assert_eq!(status, "ok", "a published post is open to everyone");

    // add_comment over the channel: the reply carries the comment, both readers get it.
    bob_socket
        .send(json!(["3", "4", topic, "add_comment", {"body": "over the socket"}]))
        .await;
    // The broadcast may overtake the reply on the sender's own socket.
    let (first, second) = (bob_socket.next_json().await, bob_socket.next_json().await);
    let (reply, event) = if first[3] == "phx_reply" {
        (first, second)
    } else {
        (second, first)
    };
    let (status, added) = reply_of(&reply);
    assert_eq!(status, "ok");
    assert_eq!(added["body"], "over the socket");
    assert_eq!(
        (event[3].clone(), event[4]["id"].clone()),
        (json!("comment_added"), added["id"].clone())
    );
    let event = next_event(&mut ada_socket).await;
    assert_eq!(event[3], "comment_added");
    bob_socket
        .send(json!(["3", "5", topic, "add_comment", {"body": " "}]))
        .await;
    let (status, refused) = reply_of(&bob_socket.next_json().await);
    assert_eq!(status, "error");
    assert_eq!(refused["reason"], "validation_failed");
    bob_socket
        .send(json!(["3", "6", topic, "publish_post", {}]))
        .await;
    let (status, refused) = reply_of(&bob_socket.next_json().await);
    assert_eq!(status, "error");
    assert_eq!(refused["reason"], "unknown_event");

    let path = format!("/api/v1/post-comments/{}", id_of(&added));
    s.delete(&path, &bob.access_token).await.expect(204);
    let event = next_event(&mut ada_socket).await;
    assert_eq!(event[3], "comment_deleted");
    assert_eq!(
        event[4],
        json!({"id": added["id"], "post_id": id_of(&post)})
    );
    assert_eq!(next_event(&mut bob_socket).await[3], "comment_deleted");

    // Unpublished: bob, still joined, learns it and nothing of the draft after that.
    unpublish(&s, &root, &post).await.expect(200);
    let event = next_event(&mut bob_socket).await;
    assert_eq!(event[3], "post_unpublished");
    assert_eq!(event[4], json!({"id": id_of(&post), "status": "draft"}));
    let event = next_event(&mut ada_socket).await;
    assert_eq!(event[3], "post_unpublished");
    assert_eq!(event[4]["title"], "Draft", "the author sees the whole post");
    s.patch(
        &post_path(&post),
        &ada.access_token,
        json!({"title": "Reworked in private"}),
    )
    .await
    .expect(200);
    let event = next_event(&mut ada_socket).await;
    assert_eq!(event[3], "post_updated");
    assert_eq!(event[4]["title"], "Reworked in private");
    s.delete(&post_path(&post), &ada.access_token)
        .await
        .expect(204);
    let event = next_event(&mut bob_socket).await;
    assert_eq!(
        event[3], "post_deleted",
        "the private update never reached bob: {event}"
    );
}

on_every_database!(
    a_new_post_is_a_draft_seen_by_its_author_and_admins_only,
    guests_read_published_posts_and_their_comments,
    titles_and_bodies_are_validated,
    only_the_author_updates_a_post,
    publishing_needs_a_body_and_sets_published_at_once,
    the_author_or_an_admin_deletes_a_post,
    comments_go_on_published_posts_only,
    replies_stay_in_their_post_and_thread,
    a_comment_is_deleted_by_its_author_or_an_admin,
    posts_page_newest_first_each_once,
    the_feed_carries_published_posts_and_never_a_draft,
    a_post_topic_is_joined_by_its_readers_and_carries_its_events,
);

#[tokio::test]
async fn guests_follow_published_posts_when_the_socket_admits_them() {
    let Some(s) = TestServer::start_with(Backend::Sqlite, |c| c.socket.allow_guests = true).await
    else {
        return;
    };
    let ada = s.register("ada").await;
    let open = published(&s, &ada, "Open").await;
    let closed = draft(&s, &ada, "Closed", "").await;
    let mut guest = s
        .socket_with("vsn=2.0.0", &[])
        .await
        .expect("guests may connect");
    assert_eq!(reply_of(&guest.join("posts", "1", json!({})).await).0, "ok");
    let open_topic = format!("post:{}", id_of(&open));
    assert_eq!(
        reply_of(&guest.join(&open_topic, "2", json!({})).await).0,
        "ok"
    );
    let closed_topic = format!("post:{}", id_of(&closed));
    assert_eq!(
        reply_of(&guest.join(&closed_topic, "3", json!({})).await).0,
        "error"
    );
    guest
        .send(json!(["2", "4", open_topic, "add_comment", {"body": "guest"}]))
        .await;
    let (status, refused) = reply_of(&guest.next_json().await);
    assert_eq!(
        (status.as_str(), &refused),
        ("error", &json!({"reason": "unauthorized"}))
    );
    publish(&s, &ada, &closed).await;
    // It had no body: still a draft, so nothing reached the feed; the next post does.
    let next = published(&s, &ada, "Next").await;
    let event = next_event(&mut guest).await;
    assert_eq!(event[3], "post_published");
    assert_eq!(event[4]["id"], id_of(&next).as_str());
}
