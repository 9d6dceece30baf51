//! Properties of the message history's cursor pagination, checked over real HTTP.
//!
//! 1. For any sequence of creates, edits and deletes, walking `GET /rooms/{slug}/messages` page by
//!    page returns exactly the live messages, newest first, each once, with their current bodies.
//! 2. Walking the history while another task keeps posting sees every message that existed
//!    before the walk began exactly once, and never repeats an id.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};

use common::{Backend, Session, TestServer};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use uuid::Uuid;

/// One step applied to a room through the API.
#[derive(Debug, Clone)]
enum Op {
    /// Post a new message, as the room owner or as another user.
    Create { by_guest: bool },
    /// Edit one of the live messages (by its author).
    Edit(Index),
    /// Delete one of the live messages, by its author or by the room owner.
    Delete { which: Index, by_owner: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => any::<bool>().prop_map(|by_guest| Op::Create { by_guest }),
        1 => any::<Index>().prop_map(Op::Edit),
        1 => (any::<Index>(), any::<bool>())
            .prop_map(|(which, by_owner)| Op::Delete { which, by_owner }),
    ]
}

/// A message as the model expects to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Live {
    id: Uuid,
    body: String,
    by_guest: bool,
}

fn uuid_of(message: &Value) -> Uuid {
    message["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .unwrap_or_default()
}

/// Applies `ops` to a fresh room `slug`, then checks one paginated walk against the model.
async fn check_sequence(
    s: &TestServer,
    owner: &Session,
    guest: &Session,
    slug: &str,
    ops: &[Op],
    limit: u32,
) -> Result<(), TestCaseError> {
    let room = json!({ "slug": slug, "name": "Property room" });
    s.post("/api/v1/rooms", Some(&owner.access_token), room)
        .await
        .expect(201);
    let session = |by_guest: bool| if by_guest { guest } else { owner };

    let mut model: Vec<Live> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Create { by_guest } => {
                let body = format!("message {step}");
                let reply = s
                    .post(
                        &format!("/api/v1/rooms/{slug}/messages"),
                        Some(&session(*by_guest).access_token),
                        json!({ "body": body }),
                    )
                    .await;
                let id = uuid_of(reply.expect(201));
                model.push(Live {
                    id,
                    body,
                    by_guest: *by_guest,
                });
            }
            Op::Edit(which) if !model.is_empty() => {
                let at = which.index(model.len());
                let target = &mut model[at];
                let body = format!("{} edited at {step}", target.body);
                let reply = s
                    .patch(
                        &format!("/api/v1/messages/{}", target.id),
                        &session(target.by_guest).access_token,
                        json!({ "body": body }),
                    )
                    .await;
                prop_assert_eq!(&reply.expect(200)["body"], &json!(body));
                target.body = body;
            }
            Op::Delete { which, by_owner } if !model.is_empty() => {
                let target = model.remove(which.index(model.len()));
                let who = if *by_owner {
                    owner
                } else {
                    session(target.by_guest)
                };
                s.delete(
                    &format!("/api/v1/messages/{}", target.id),
                    &who.access_token,
                )
                .await
                .expect(204);
            }
            // Editing or deleting in an empty room: nothing to pick.
            Op::Edit(_) | Op::Delete { .. } => {}
        }
    }

    let path = format!("/api/v1/rooms/{slug}/messages");
    let (items, sizes) = s.read_pages(&path, &guest.access_token, limit).await;
    let limit = limit as usize;
    let (last, full) = sizes.split_last().expect("a walk has at least one page");
    for &size in full {
        prop_assert_eq!(size, limit, "a page with a cursor is full");
    }
    prop_assert!(*last <= limit);
    prop_assert!(
        *last > 0 || sizes.len() == 1,
        "only an empty history ends on an empty page"
    );

    let ids: Vec<Uuid> = items.iter().map(uuid_of).collect();
    prop_assert!(
        ids.windows(2).all(|pair| pair[0] > pair[1]),
        "ids are strictly descending: {:?}",
        ids
    );
    let expected: Vec<(Uuid, String)> =
        model.iter().rev().map(|m| (m.id, m.body.clone())).collect();
    let listed: Vec<(Uuid, String)> = items
        .iter()
        .map(|m| {
            (
                uuid_of(m),
                m["body"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    prop_assert_eq!(listed, expected);
    Ok(())
}

/// Runs the property on `backend` with one server for every case and a new room per case.
fn live_messages_are_paged_exactly_once(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let Some(server) = runtime.block_on(TestServer::start(backend)) else {
        return;
    };
    let (owner, guest) = runtime.block_on(async {
        (
            server.register("owner").await,
            server.register("guest").await,
        )
    });
    let rooms = AtomicU32::new(0);
    proptest!(
        ProptestConfig::with_cases(16),
        |(ops in prop::collection::vec(op(), 1..=40), limit in 1u32..=10)| {
            let slug = format!("prop-{}", rooms.fetch_add(1, Ordering::Relaxed));
            runtime.block_on(check_sequence(&server, &owner, &guest, &slug, &ops, limit))?;
        }
    );
    // The server's tasks live on this runtime: stop it before the runtime goes.
    drop(server);
}

mod property {
    use super::*;

    #[test]
    fn sqlite() {
        live_messages_are_paged_exactly_once(Backend::Sqlite);
    }

    #[test]
    fn postgres() {
        live_messages_are_paged_exactly_once(Backend::Postgres);
    }

    #[test]
    fn mysql() {
        live_messages_are_paged_exactly_once(Backend::MySql);
    }
}

/// Posts messages to `url` until told to stop, publishing the ids it has stored so far.
async fn keep_posting(
    client: reqwest::Client,
    url: String,
    token: String,
    stop: tokio::sync::watch::Receiver<bool>,
    posted: tokio::sync::watch::Sender<Vec<Uuid>>,
) {
    let mut n = 0;
    while !*stop.borrow() && n < 10_000 {
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "body": format!("concurrent {n}") }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 201, "the writer's post failed");
        let message: Value = response.json().await.expect("a message");
        posted.send_modify(|ids| ids.push(uuid_of(&message)));
        n += 1;
    }
}

async fn paging_while_messages_arrive_sees_each_earlier_message_once(s: TestServer) {
    let owner = s.register("owner").await;
    let reader = s.register("reader").await;
    let room = json!({ "slug": "busy", "name": "Busy room" });
    s.post("/api/v1/rooms", Some(&owner.access_token), room)
        .await
        .expect(201);
    let mut before = Vec::new();
    for i in 0..25 {
        let reply = s
            .post(
                "/api/v1/rooms/busy/messages",
                Some(&owner.access_token),
                json!({ "body": format!("before {i}") }),
            )
            .await;
        before.push(uuid_of(reply.expect(201)));
    }

    let busy = "/api/v1/rooms/busy/messages";
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (posted_tx, mut posted_rx) = tokio::sync::watch::channel(Vec::<Uuid>::new());
    let writer = tokio::spawn(keep_posting(
        s.client.clone(),
        format!("{}/api/v1/rooms/busy/messages", s.base),
        owner.access_token.clone(),
        stop_rx,
        posted_tx,
    ));

    // Before each page, wait until the writer has stored at least one more message, so writes
    // really do land between the pages.
    let mut pages: Vec<Vec<Uuid>> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut writes_seen = 0;
    loop {
        let count = posted_rx
            .wait_for(|ids| ids.len() > writes_seen)
            .await
            .expect("the writer is running")
            .len();
        writes_seen = count;
        let (items, next) = s
            .read_page(busy, &reader.access_token, 4, cursor.as_deref())
            .await;
        pages.push(items.iter().map(uuid_of).collect());
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 100, "pagination does not end");
    }
    stop_tx.send(true).expect("the writer listens");
    writer.await.expect("the writer finished cleanly");
    let written: HashSet<Uuid> = posted_rx.borrow().iter().copied().collect();

    let seen: Vec<Uuid> = pages.iter().flatten().copied().collect();
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an id was repeated: {pages:?}");
    assert!(
        seen.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first across pages: {pages:?}"
    );
    for id in &before {
        assert!(
            unique.contains(id),
            "{id} existed before the walk but was not seen"
        );
    }
    for id in &seen {
        assert!(
            before.contains(id) || written.contains(id),
            "{id} is neither an earlier message nor one the writer posted"
        );
    }
    // The newcomers are all newer than every earlier message, so they can only have been on the
    // first page; the earlier messages come in order after them.
    let earlier_in_walk: Vec<Uuid> = seen
        .iter()
        .copied()
        .filter(|id| before.contains(id))
        .collect();
    let newest_first: Vec<Uuid> = before.iter().rev().copied().collect();
    assert_eq!(earlier_in_walk, newest_first);

    // Once the writer has stopped, a fresh walk has everything exactly once.
    let (items, _) = s.read_pages(busy, &reader.access_token, 100).await;
    let all: Vec<Uuid> = items.iter().map(uuid_of).collect();
    let everything: HashSet<Uuid> = before.iter().copied().chain(written).collect();
    assert_eq!(all.len(), everything.len());
    assert_eq!(all.iter().copied().collect::<HashSet<_>>(), everything);
}

on_every_database!(paging_while_messages_arrive_sees_each_earlier_message_once);
