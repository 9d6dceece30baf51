//! Messaging: rooms, their members and their messages.

mod messages;
mod newest;
mod policy;
mod reads;
mod rooms;
mod views;
mod writer;

use std::sync::Arc;

use fawkes_data::entity::room;
use fawkes_pubsub::PubSub;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

pub use reads::UNREAD_CAP;

use crate::Actor;
use crate::authors::Authors;
use crate::coherent::{CacheSettings, CacheStats, CoherentCache};
pub use views::{AddMember, Member, Message, MessageBody, NewRoom, Room, RoomUnread};
pub use writer::WriterStats;
use writer::{MessageWriter, Store};

/// The messaging context.
#[derive(Clone, Debug)]
pub struct Messaging {
    db: Arc<DatabaseConnection>,
    bus: PubSub,
    presence: fawkes_presence::Tracker,
    authors: Authors,
    /// Rooms by slug: every message action looks its room up first.
    rooms: CoherentCache<String, room::Model>,
    /// Each room's newest live messages, enough for the largest first page, by room id: what a
    /// client reads on opening a room.
    newest: CoherentCache<Uuid, Arc<newest::Newest>>,
    /// Stores new messages in batches (group commit) and broadcasts them.
    writer: MessageWriter,
    writer_stats: Arc<WriterStats>,
}

impl Messaging {
    pub(crate) fn new(
        db: Arc<DatabaseConnection>,
        bus: PubSub,
        presence: fawkes_presence::Tracker,
        sinks: fawkes_sync::Router,
        authors: Authors,
        cache: CacheSettings,
    ) -> Self {
        let stats = Arc::new(CacheStats::default());
        let newest = CoherentCache::weighted(
            bus.clone(),
            "fawkes:cache:newest_messages",
            cache,
            stats.clone(),
            |_, newest: &Arc<newest::Newest>| {
                u32::try_from(newest.len()).unwrap_or(u32::MAX).max(1)
            },
        );
        let writer_stats = Arc::new(WriterStats::default());
        let writer = MessageWriter::start(Store {
            db: db.clone(),
            bus: bus.clone(),
            sinks,
            newest: newest.clone(),
            stats: writer_stats.clone(),
        });
        Self {
            rooms: CoherentCache::new(bus.clone(), "fawkes:cache:rooms", cache, stats),
            newest,
            writer,
            writer_stats,
            db,
            bus,
            presence,
            authors,
        }
    }

    /// The counters of the rooms' and messages' caches, for metrics.
    pub fn cache_stats(&self) -> &Arc<CacheStats> {
        self.rooms.stats()
    }

    /// The counters of the message writer (group commit), for metrics.
    pub fn writer_stats(&self) -> &Arc<WriterStats> {
        &self.writer_stats
    }
}

/// Whether `actor` may enter `room` (`is_member`: they belong to it), for readers other than the
/// acting user (who is notified of a message).
pub(crate) fn may_enter(
    actor: &Actor,
    room: &fawkes_data::entity::room::Model,
    is_member: bool,
) -> bool {
    policy::enter_room(actor, room, is_member).is_ok()
}

/// The topic of a room's live events (`new_msg`, `msg_edited`, `msg_deleted`, `member_added`,
/// `member_removed`).
pub fn room_topic(slug: &str) -> String {
    format!("room:{slug}")
}

/// The topic on which a user's pages hear that they read a room (`room_read`), so every open tab
/// of theirs can clear that room's unread count. No socket channel serves it.
pub fn reads_topic(user_id: uuid::Uuid) -> String {
    format!("room_reads:{user_id}")
}
