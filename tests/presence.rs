//! Presence in rooms, on the wire: `presence_state` after every join, `presence_diff` joins and
//! leaves for others, one meta per connection, status updates, and the same list over REST.

mod common;

use common::{Backend, TestServer};
use serde_json::{Value, json};

async fn sqlite() -> TestServer {
    TestServer::start(Backend::Sqlite)
        .await
        .expect("sqlite always runs")
}

/// Reads frames until one with `event` arrives.
async fn next_event(socket: &mut common::socket::RawSocket, event: &str) -> Value {
    loop {
        let frame = socket.next_json().await;
        if frame[3] == event {
            return frame;
        }
    }
}

fn metas(state: &Value, key: &str) -> Vec<Value> {
    state[key]["metas"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn joining_a_room_tracks_the_user_and_sends_the_state() {
    let s = sqlite().await;
    let ada = s.register("ada").await;
    let bob = s.register("bob").await;
    let mut a = s.socket(&ada.access_token).await;
    a.skip_presence = false;
    a.send(json!(["1", "1", "room:lobby", "phx_join", {}]))
        .await;
    assert_eq!(
        a.next_json().await[3],
        "phx_reply",
        "the join reply comes before the presence state"
    );
    let state = next_event(&mut a, "presence_state").await;
    assert_eq!(state[0], "1", "presence_state is a push with the join_ref");
    let own = metas(&state[4], &ada.user_id);
    assert_eq!(own.len(), 1);
    assert_eq!(own[0]["username"], "ada");
    assert_eq!(own[0]["status"], "online");
    assert!(own[0]["phx_ref"].is_string());

    let mut b = s.socket(&bob.access_token).await;
    b.skip_presence = false;
    b.send(json!(["1", "1", "room:lobby", "phx_join", {}]))
        .await;
    let state = next_event(&mut b, "presence_state").await;
    assert_eq!(metas(&state[4], &ada.user_id).len(), 1, "bob sees ada");
    assert_eq!(metas(&state[4], &bob.user_id).len(), 1, "and himself");
    let diff = next_event(&mut a, "presence_diff").await;
    assert_eq!(diff[0], Value::Null, "diffs are broadcasts");
    assert_eq!(metas(&diff[4]["joins"], &bob.user_id)[0]["username"], "bob");
    assert_eq!(diff[4]["leaves"], json!({}));

    // REST serves the same state.
    let listed = s
        .get("/api/v1/rooms/lobby/presence", &ada.access_token)
        .await;
    let listed = listed.expect(200).clone();
    assert_eq!(metas(&listed, &ada.user_id).len(), 1);
    assert_eq!(metas(&listed, &bob.user_id).len(), 1);

    // Bob's connection closes: ada sees him leave.
    b.close().await;
    let diff = next_event(&mut a, "presence_diff").await;
    assert_eq!(metas(&diff[4]["leaves"], &bob.user_id).len(), 1);
    let listed = s
        .get("/api/v1/rooms/lobby/presence", &ada.access_token)
        .await;
    assert!(listed.expect(200).get(&bob.user_id).is_none());
}

#[tokio::test]
async fn two_tabs_are_two_metas_and_status_updates_replace_one() {
    let s = sqlite().await;
    let ada = s.register("ada").await;
    let mut watcher = s.socket(&s.register("watcher").await.access_token).await;
    watcher.skip_presence = false;
    watcher
        .send(json!(["1", "1", "room:lobby", "phx_join", {}]))
        .await;
    next_event(&mut watcher, "presence_state").await;

    let mut tab1 = s.socket(&ada.access_token).await;
    let mut tab2 = s.socket(&ada.access_token).await;
    tab1.skip_presence = false;
    tab2.skip_presence = false;
    for tab in [&mut tab1, &mut tab2] {
        tab.send(json!(["1", "1", "room:lobby", "phx_join", {}]))
            .await;
        next_event(tab, "presence_state").await;
    }
    let first = next_event(&mut watcher, "presence_diff").await;
    let second = next_event(&mut watcher, "presence_diff").await;
    let refs: Vec<Value> = [first, second]
        .iter()
        .map(|d| metas(&d[4]["joins"], &ada.user_id)[0]["phx_ref"].clone())
        .collect();
    assert_ne!(refs[0], refs[1], "each tab has its own meta");

    tab1.send(json!(["1", "2", "room:lobby", "presence_update", {"status": "away"}]))
        .await;
    assert_eq!(next_event(&mut tab1, "phx_reply").await[4]["status"], "ok");
    let update = next_event(&mut watcher, "presence_diff").await;
    let joined = metas(&update[4]["joins"], &ada.user_id);
    let left = metas(&update[4]["leaves"], &ada.user_id);
    assert_eq!(joined[0]["status"], "away");
    assert_eq!(
        joined[0]["phx_ref_prev"], left[0]["phx_ref"],
        "an update names the meta it replaces"
    );

    tab1.send(json!(["1", "3", "room:lobby", "presence_update", {"status": ""}]))
        .await;
    let refused = next_event(&mut tab1, "phx_reply").await;
    assert_eq!(refused[4]["response"]["reason"], "validation_failed");

    tab2.send(json!(["1", "4", "room:lobby", "phx_leave", {}]))
        .await;
    let leave = next_event(&mut watcher, "presence_diff").await;
    assert_eq!(
        metas(&leave[4]["leaves"], &ada.user_id).len(),
        1,
        "leaving one tab removes one meta"
    );
    let listed = s
        .get("/api/v1/rooms/lobby/presence", &ada.access_token)
        .await;
    let remaining = metas(listed.expect(200), &ada.user_id);
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["status"], "away");
}

#[tokio::test]
async fn presence_of_a_private_room_is_for_members_only() {
    let s = sqlite().await;
    let owner = s.register("owner").await;
    let outsider = s.register("outsider").await;
    s.post(
        "/api/v1/rooms",
        Some(&owner.access_token),
        json!({"slug": "inner", "name": "Inner", "is_private": true}),
    )
    .await
    .expect(201);
    s.get("/api/v1/rooms/inner/presence", &outsider.access_token)
        .await
        .expect_error(404, "not_found");
    s.get("/api/v1/rooms/inner/presence", &owner.access_token)
        .await
        .expect(200);
}
