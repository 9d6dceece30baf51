//! Comments on videos over real HTTP: adding, listing, editing, deleting, who may do which,
//! validation of video ids and content, and pagination.

mod common;

use std::collections::HashSet;

use common::{Session, TestServer, id_of};
use fawkes_domain::Role;
use reqwest::Method;
use serde_json::{Value, json};

/// The path of the comments on `video`.
fn comments_on(video: &str) -> String {
    format!("/api/v1/videos/{video}/comments")
}

/// Comments on `video` as `who` and returns the stored comment.
async fn comment(s: &TestServer, who: &Session, video: &str, content: &str) -> Value {
    let body = json!({ "content": content });
    s.create(&comments_on(video), &who.access_token, body).await
}

/// The ids of the comments on `video`, newest first.
async fn listed_ids(s: &TestServer, who: &Session, video: &str) -> Vec<String> {
    s.listed_ids(&comments_on(video), &who.access_token).await
}

async fn a_comment_is_stored_and_listed(s: TestServer) {
    let ada = s.register("ada").await;
    let added = comment(&s, &ada, "dQw4w9WgXcQ", "Great video! 🎬").await;
    assert_eq!(added["video_id"], "dQw4w9WgXcQ");
    assert_eq!(added["content"], "Great video! 🎬");
    assert_eq!(added["author"]["id"], ada.user_id.as_str());
    assert_eq!(added["author"]["username"], "ada");
    assert!(added["created_at"].is_string());
    assert_eq!(added["updated_at"], added["created_at"]);

    let bob = s.register("bob").await;
    let on_video = comments_on("dQw4w9WgXcQ");
    let (listed, _) = s.read_pages(&on_video, &bob.access_token, 50).await;
    assert_eq!(listed, vec![added]);
    let on_other = comments_on("another_video-1");
    let (other_video, _) = s.read_pages(&on_other, &bob.access_token, 50).await;
    assert!(other_video.is_empty(), "comments belong to one video");
}

async fn comments_need_a_signed_in_user(s: TestServer) {
    s.call(Method::GET, "/api/v1/videos/abc/comments", None, None)
        .await
        .expect_error(401, "unauthenticated");
    s.post(
        "/api/v1/videos/abc/comments",
        None,
        json!({ "content": "anonymous" }),
    )
    .await
    .expect_error(401, "unauthenticated");
}

async fn video_ids_are_case_sensitive(s: TestServer) {
    let ada = s.register("ada").await;
    let upper = comment(&s, &ada, "AbC", "on the upper-case video").await;
    let lower = comment(&s, &ada, "abc", "on the lower-case video").await;
    assert_eq!(listed_ids(&s, &ada, "AbC").await, vec![id_of(&upper)]);
    assert_eq!(listed_ids(&s, &ada, "abc").await, vec![id_of(&lower)]);
}

async fn invalid_video_ids_are_refused(s: TestServer) {
    let ada = s.register("ada").await;
    let too_long = "v".repeat(65);
    for video in [
        "has%20space",
        "dot.ted",
        "caf%C3%A9",
        "semi%3Bcolon",
        too_long.as_str(),
    ] {
        let path = format!("/api/v1/videos/{video}/comments");
        let list = s.get(&path, &ada.access_token).await;
        list.expect_error(422, "validation_failed");
        assert!(
            list.body["error"]["details"]["video_id"].is_array(),
            "{video}: {}",
            list.body
        );
        let add = s
            .post(&path, Some(&ada.access_token), json!({ "content": "hi" }))
            .await;
        add.expect_error(422, "validation_failed");
        assert!(add.body["error"]["details"]["video_id"].is_array());
    }
    // The longest valid id works.
    let longest = "v".repeat(64);
    comment(&s, &ada, &longest, "fits").await;
    assert_eq!(listed_ids(&s, &ada, &longest).await.len(), 1);
}

async fn blank_or_too_long_content_is_refused(s: TestServer) {
    let ada = s.register("ada").await;
    let too_long = "c".repeat(2001);
    for content in ["", "  \n ", too_long.as_str()] {
        let reply = s
            .post(
                "/api/v1/videos/vid/comments",
                Some(&ada.access_token),
                json!({ "content": content }),
            )
            .await;
        reply.expect_error(422, "validation_failed");
        assert!(
            reply.body["error"]["details"]["content"]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            reply.body
        );
    }
    assert!(listed_ids(&s, &ada, "vid").await.is_empty());
    let longest = "ü".repeat(2000);
    let stored = comment(&s, &ada, "vid", &longest).await;
    assert_eq!(stored["content"], longest.as_str());
}

async fn only_the_author_edits_a_comment(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let admin = s.user_with_role("root", Role::Admin).await;
    let original = comment(&s, &ada, "vid", "first take").await;
    let path = format!("/api/v1/comments/{}", id_of(&original));

    for other in [&bob, &admin] {
        s.patch(
            &path,
            &other.access_token,
            json!({ "content": "not yours" }),
        )
        .await
        .expect_error(403, "forbidden");
    }
    let vid = comments_on("vid");
    let (listed, _) = s.read_pages(&vid, &ada.access_token, 50).await;
    assert_eq!(listed, vec![original.clone()], "the comment is unchanged");

    let edited = s
        .patch(
            &path,
            &ada.access_token,
            json!({ "content": "second take" }),
        )
        .await;
    let edited = edited.expect(200);
    assert_eq!(edited["id"], original["id"]);
    assert_eq!(edited["content"], "second take");
    assert_eq!(edited["created_at"], original["created_at"]);
    let (listed, _) = s.read_pages(&vid, &bob.access_token, 50).await;
    assert_eq!(listed, vec![edited.clone()]);

    let blank = s
        .patch(&path, &ada.access_token, json!({ "content": "" }))
        .await;
    blank.expect_error(422, "validation_failed");
    assert!(blank.body["error"]["details"]["content"].is_array());
}

async fn the_author_or_an_admin_deletes_a_comment(s: TestServer) {
    let ada = s.register("ada").await;
    let admin = s.user_with_role("root", Role::Admin).await;
    let by_ada = comment(&s, &ada, "vid", "mine").await;
    let moderated = comment(&s, &ada, "vid", "moderated").await;
    let kept = comment(&s, &ada, "vid", "kept").await;
    s.delete(
        &format!("/api/v1/comments/{}", id_of(&by_ada)),
        &ada.access_token,
    )
    .await
    .expect(204);
    s.delete(
        &format!("/api/v1/comments/{}", id_of(&moderated)),
        &admin.access_token,
    )
    .await
    .expect(204);
    assert_eq!(listed_ids(&s, &ada, "vid").await, vec![id_of(&kept)]);
}

async fn an_unrelated_user_cannot_delete_a_comment(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let affiliate = s.user_with_role("partner", Role::Affiliate).await;
    let target = comment(&s, &ada, "vid", "stay").await;
    let path = format!("/api/v1/comments/{}", id_of(&target));
    for other in [&bob, &affiliate] {
        s.delete(&path, &other.access_token)
            .await
            .expect_error(403, "forbidden");
    }
    assert_eq!(listed_ids(&s, &ada, "vid").await, vec![id_of(&target)]);
}

async fn deleted_and_unknown_comments_are_404(s: TestServer) {
    let ada = s.register("ada").await;
    let gone = comment(&s, &ada, "vid", "bye").await;
    let path = format!("/api/v1/comments/{}", id_of(&gone));
    s.delete(&path, &ada.access_token).await.expect(204);
    s.delete(&path, &ada.access_token)
        .await
        .expect_error(404, "not_found");
    s.patch(&path, &ada.access_token, json!({ "content": "back" }))
        .await
        .expect_error(404, "not_found");
    let unknown = format!("/api/v1/comments/{}", uuid::Uuid::now_v7());
    s.patch(&unknown, &ada.access_token, json!({ "content": "x" }))
        .await
        .expect_error(404, "not_found");
    s.delete(&unknown, &ada.access_token)
        .await
        .expect_error(404, "not_found");
    s.delete("/api/v1/comments/nope", &ada.access_token)
        .await
        .expect_error(400, "invalid_path");
}

async fn comments_page_newest_first_each_once(s: TestServer) {
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let mut posted = Vec::new();
    for i in 0..7 {
        let who = if i % 2 == 0 { &ada } else { &bob };
        posted.push(id_of(
            &comment(&s, who, "paged", &format!("comment {i}")).await,
        ));
    }
    comment(&s, &ada, "elsewhere", "not on this video").await;

    let paged = comments_on("paged");
    let (comments, sizes) = s.read_pages(&paged, &ada.access_token, 3).await;
    assert_eq!(sizes, vec![3, 3, 1]);
    let ids: Vec<String> = comments.iter().map(id_of).collect();
    let newest_first: Vec<String> = posted.iter().rev().cloned().collect();
    assert_eq!(ids, newest_first);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 7);
    assert_eq!(comments[0]["content"], "comment 6");
    assert_eq!(comments[0]["author"]["username"], "ada");
    assert_eq!(comments[1]["author"]["username"], "bob");

    let tok = ada.access_token.as_str();
    let reply = s
        .get("/api/v1/videos/paged/comments?cursor=bm9wZQ", tok)
        .await;
    reply.expect_error(422, "validation_failed");
    assert!(reply.body["error"]["details"]["cursor"].is_array());
    let reply = s.get("/api/v1/videos/paged/comments?limit=101", tok).await;
    reply.expect_error(422, "validation_failed");
    assert!(reply.body["error"]["details"]["limit"].is_array());
    s.get("/api/v1/videos/paged/comments?limit=x", tok)
        .await
        .expect_error(400, "invalid_query");
}

on_every_database!(
    a_comment_is_stored_and_listed,
    comments_need_a_signed_in_user,
    video_ids_are_case_sensitive,
    invalid_video_ids_are_refused,
    blank_or_too_long_content_is_refused,
    only_the_author_edits_a_comment,
    the_author_or_an_admin_deletes_a_comment,
    an_unrelated_user_cannot_delete_a_comment,
    deleted_and_unknown_comments_are_404,
    comments_page_newest_first_each_once,
);
