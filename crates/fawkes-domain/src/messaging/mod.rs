//! Messaging: rooms, their members and their messages.

mod messages;
mod policy;
mod rooms;
mod views;

use std::sync::Arc;

use fawkes_pubsub::PubSub;
use sea_orm::DatabaseConnection;

pub use views::{AddMember, Member, Message, MessageBody, NewRoom, Room};

/// The messaging context.
#[derive(Clone, Debug)]
pub struct Messaging {
    db: Arc<DatabaseConnection>,
    bus: PubSub,
    presence: fawkes_presence::Tracker,
}

impl Messaging {
    pub fn new(
        db: Arc<DatabaseConnection>,
        bus: PubSub,
        presence: fawkes_presence::Tracker,
    ) -> Self {
        Self { db, bus, presence }
    }
}

/// The topic of a room's live events (`new_msg`, `msg_edited`, `msg_deleted`, `member_added`,
/// `member_removed`).
pub fn room_topic(slug: &str) -> String {
    format!("room:{slug}")
}
