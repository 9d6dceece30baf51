//! Group commit for `post_message`: the messages that arrive while one transaction is being
//! written are stored together in the next, one `BEGIN`/`COMMIT` for many.
//!
//! Each message used to cost its own three round trips to the database (`BEGIN`, `INSERT`,
//! `COMMIT`), and on a machine shared with the database every round trip gives up the core: the
//! store path topped out near 2,000 messages a second (BENCHMARKS.md). A batch is whatever is
//! queued when the writer is free, so a lone message waits for nothing; under load the batches
//! grow by themselves.
//!
//! What the writer owes each message: stored, then broadcast, then answered; or answered with
//! the error that kept it from the store. An error of the store as a whole (unavailable, full)
//! refuses the whole batch; any other error has each message written again on its own, so one
//! bad message does not take the others with it. Once queued, a message is the writer's: a
//! caller that stops waiting (a client gone, a request timed out) does not take it back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use fawkes_data::entity::message;
use fawkes_pubsub::PubSub;
use fawkes_sync::Event;
use sea_orm::prelude::*;
use sea_orm::{DatabaseConnection, IntoActiveModel};
use tokio::sync::{mpsc, oneshot};

use super::rooms::to_json;
use super::{Message, room_topic};
use crate::coherent::CoherentCache;
use crate::notifications::{SourceKind, enqueue_notify, may_mention};
use crate::outbound::emit;
use crate::store::begin_write;
use crate::{Author, DomainError};

/// The most messages stored in one transaction.
const MAX_BATCH: usize = 64;
/// Messages waiting for the writer; a post waits for room when it is full.
const QUEUE: usize = 1024;

/// A message to store, and where its outcome goes.
struct Draft {
    row: message::Model,
    room_slug: String,
    /// As the message is broadcast and answered: the name it was sent under.
    author: Author,
    reply: oneshot::Sender<Result<Message, DomainError>>,
}

/// The writer's counters: messages stored over transactions committed is the mean batch.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub transactions: AtomicU64,
    pub messages: AtomicU64,
}

/// What the writer needs to store and announce messages.
pub(super) struct Store {
    pub(super) db: Arc<DatabaseConnection>,
    pub(super) bus: PubSub,
    pub(super) sinks: fawkes_sync::Router,
    /// Each room's first page, dropped once its new messages are committed.
    pub(super) newest: CoherentCache<Uuid, Arc<super::newest::Newest>>,
    pub(super) stats: Arc<WriterStats>,
}

/// The handle of a node's one message writer; the writer stops when the last handle is dropped,
/// after storing what was queued.
#[derive(Clone, Debug)]
pub(super) struct MessageWriter {
    queue: mpsc::Sender<Draft>,
}

impl MessageWriter {
    pub(super) fn start(store: Store) -> Self {
        let (queue, drafts) = mpsc::channel(QUEUE);
        tokio::spawn(store.run(drafts));
        Self { queue }
    }

    /// Stores `row` (with its `notify` job when it may mention someone, and its sink event) in
    /// the next batch, then broadcasts `new_msg` on the room's topic.
    pub(super) async fn post(
        &self,
        row: message::Model,
        room_slug: String,
        author: Author,
    ) -> Result<Message, DomainError> {
        let (reply, outcome) = oneshot::channel();
        let draft = Draft {
            row,
            room_slug,
            author,
            reply,
        };
        self.queue.send(draft).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> DomainError {
    DomainError::Internal("the message writer has stopped".to_owned())
}

impl Store {
    async fn run(self, mut drafts: mpsc::Receiver<Draft>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while drafts.recv_many(&mut batch, MAX_BATCH).await > 0 {
            self.commit(std::mem::take(&mut batch)).await;
        }
    }

    async fn commit(&self, batch: Vec<Draft>) {
        match self.write(&batch).await {
            Ok(()) => self.announce(batch),
            Err(error) if batch.len() == 1 || store_wide(&error) => {
                for draft in batch {
                    let _ = draft.reply.send(Err(error.clone()));
                }
            }
            Err(error) => {
                tracing::debug!(%error, messages = batch.len(), "a batch failed: storing each alone");
                for draft in batch {
                    match self.write(std::slice::from_ref(&draft)).await {
                        Ok(()) => self.announce(vec![draft]),
                        Err(error) => {
                            let _ = draft.reply.send(Err(error));
                        }
                    }
                }
            }
        }
    }

    /// One transaction for all of `drafts`.
    async fn write(&self, drafts: &[Draft]) -> Result<(), DomainError> {
        let txn = begin_write(self.db.as_ref()).await?;
        for draft in drafts {
            // The notify job and the sink event commit with the message or not at all.
            if may_mention(&draft.row.body) {
                enqueue_notify(&txn, SourceKind::Message, draft.row.id).await?;
            }
            emit(&self.sinks, &txn, created_event(draft)).await?;
        }
        // Without `RETURNING`: the rows are known, and a lone `… RETURNING` is what
        // `store::insert_row` warns of.
        message::Entity::insert_many(drafts.iter().map(|d| d.row.clone().into_active_model()))
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        self.stats.transactions.fetch_add(1, Relaxed);
        self.stats.messages.fetch_add(drafts.len() as u64, Relaxed);
        Ok(())
    }

    /// After the commit: drops the rooms' first pages, broadcasts, answers.
    fn announce(&self, stored: Vec<Draft>) {
        let mut rooms: Vec<Uuid> = stored.iter().map(|d| d.row.room_id).collect();
        rooms.sort_unstable();
        rooms.dedup();
        self.newest.invalidate(&rooms);
        for draft in stored {
            let message = Message::new(draft.row, draft.author);
            self.bus
                .broadcast(&room_topic(&draft.room_slug), "new_msg", to_json(&message));
            let _ = draft.reply.send(Ok(message));
        }
    }
}

/// Whether `error` is the store's as a whole rather than one message's: writing each message
/// alone would only fail again, once per message.
fn store_wide(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::Unavailable(_) | DomainError::StorageFull(_)
    )
}

/// The sinks' `message.created` event.
fn created_event(draft: &Draft) -> Event {
    let row = &draft.row;
    Event::new(
        "message.created",
        serde_json::json!({
            "id": row.id,
            "room": draft.room_slug,
            "room_id": row.room_id,
            "author_id": row.author_id,
            "body": row.body,
            "created_at": crate::time::to_datetime(row.created_at),
        }),
    )
}

#[cfg(test)]
mod tests {
    use fawkes_data::entity::{room, user};
    use fawkes_data::{Migrator, MigratorTrait};
    use sea_orm::ActiveValue::Set;

    use super::*;
    use crate::coherent::CacheSettings;

    fn author(id: Uuid) -> Author {
        Author {
            id,
            username: "ada".to_owned(),
        }
    }

    fn draft_row(room_id: Uuid, author_id: Uuid, body: &str) -> message::Model {
        message::Model {
            id: Uuid::now_v7(),
            room_id,
            author_id,
            body: body.to_owned(),
            created_at: crate::time::now(),
            edited_at: None,
            deleted_at: None,
        }
    }

    /// A message that cannot be stored (its room does not exist) shares a batch with two that
    /// can: those are stored and broadcast, and only the bad one is refused.
    // On the current-thread runtime the writer first runs when the test awaits, so all three
    // drafts are queued by then and make one batch.
    #[tokio::test]
    async fn one_bad_message_does_not_sink_its_batch() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = fawkes_data::connect(&url, &Default::default())
            .await
            .expect("sqlite opens");
        Migrator::up(&db, None).await.expect("migrations");
        let (user_id, room_id) = (Uuid::now_v7(), Uuid::now_v7());
        let at = crate::time::now();
        user::ActiveModel {
            id: Set(user_id),
            email: Set("ada@example.com".to_owned()),
            username: Set("ada".to_owned()),
            username_key: Set("ada".to_owned()),
            password_hash: Set(String::new()),
            role: Set("user".to_owned()),
            is_active: Set(true),
            last_login_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&db)
        .await
        .expect("user");
        room::ActiveModel {
            id: Set(room_id),
            slug: Set("north".to_owned()),
            name: Set("North".to_owned()),
            is_private: Set(false),
            owner_id: Set(Some(user_id)),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&db)
        .await
        .expect("room");

        let bus = PubSub::new();
        let mut heard = bus.subscribe("room:north", 8);
        let stats = Arc::new(WriterStats::default());
        let writer = MessageWriter::start(Store {
            db: Arc::new(db.clone()),
            bus: bus.clone(),
            sinks: fawkes_sync::Router::default(),
            newest: CoherentCache::new(
                bus,
                "test:newest",
                CacheSettings::default(),
                Arc::default(),
            ),
            stats: stats.clone(),
        });
        let (first, bad, last) = tokio::join!(
            writer.post(
                draft_row(room_id, user_id, "first"),
                "north".into(),
                author(user_id)
            ),
            writer.post(
                draft_row(Uuid::now_v7(), user_id, "lost"),
                "north".into(),
                author(user_id)
            ),
            writer.post(
                draft_row(room_id, user_id, "last"),
                "north".into(),
                author(user_id)
            ),
        );
        let (first, last) = (first.expect("first stored"), last.expect("last stored"));
        assert!(bad.is_err(), "a message to no room is refused");

        let stored: Vec<String> = message::Entity::find()
            .all(&db)
            .await
            .expect("read back")
            .into_iter()
            .map(|m| m.body)
            .collect();
        assert_eq!(stored.len(), 2, "{stored:?}");
        assert!(stored.contains(&"first".to_owned()) && stored.contains(&"last".to_owned()));
        assert_eq!(
            stats.transactions.load(Relaxed),
            2,
            "the batch failed whole, then the good ones were stored alone"
        );
        for expected in [first.id, last.id] {
            let event = heard.recv().await.expect("a broadcast");
            assert_eq!(&*event.event, "new_msg");
            let fawkes_pubsub::Payload::Json(payload) = &event.payload else {
                panic!("a JSON broadcast: {event:?}");
            };
            assert_eq!(payload["id"], serde_json::json!(expected));
        }
    }
}
