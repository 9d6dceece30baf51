use chrono::{DateTime, Utc};
use fawkes_data::entity::notification;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Author;
use crate::time::to_datetime;

/// Why a user is notified. When one event concerns a user in several ways they get one
/// notification, of the most specific kind: `mention` (they were named) over `thread_reply`
/// (a reply in a thread they commented in) over `post_comment` (a comment on their post).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// Someone commented on your post.
    PostComment,
    /// Someone replied in a thread you commented in.
    ThreadReply,
    /// Someone wrote `@you` in a message or comment.
    Mention,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Mention => "mention",
            NotificationKind::PostComment => "post_comment",
            NotificationKind::ThreadReply => "thread_reply",
        }
    }

    pub(crate) fn parse(stored: &str) -> Self {
        match stored {
            "post_comment" => NotificationKind::PostComment,
            "thread_reply" => NotificationKind::ThreadReply,
            _ => NotificationKind::Mention,
        }
    }
}

/// What a notification is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A message in a room (`room_slug` names it).
    Message,
    /// A comment on a video (`video_id` names it).
    Comment,
    /// A comment on a post (`post_id` names it).
    PostComment,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Message => "message",
            SourceKind::Comment => "comment",
            SourceKind::PostComment => "post_comment",
        }
    }

    pub(crate) fn parse(stored: &str) -> Self {
        match stored {
            "comment" => SourceKind::Comment,
            "post_comment" => SourceKind::PostComment,
            _ => SourceKind::Message,
        }
    }
}

/// The message or comment a notification is about, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct NotificationSource {
    pub kind: SourceKind,
    /// The message's or comment's id.
    pub id: Uuid,
    /// The room of a message.
    pub room_slug: Option<String>,
    /// The post of a post comment.
    pub post_id: Option<Uuid>,
    /// The video of a comment.
    pub video_id: Option<String>,
}

/// A notification, as its recipient sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub kind: NotificationKind,
    /// Who caused it.
    pub actor: Author,
    pub source: NotificationSource,
    /// The start of the message or comment (at most 200 characters).
    pub preview: String,
    /// When the recipient marked it read; `null` while unread.
    pub read_at: Option<DateTime<Utc>>,
    /// When the event happened (the message or comment was written).
    pub created_at: DateTime<Utc>,
}

impl Notification {
    pub(super) fn new(row: notification::Model, actor: Author) -> Self {
        Self {
            id: row.id,
            kind: NotificationKind::parse(&row.kind),
            actor,
            source: NotificationSource {
                kind: SourceKind::parse(&row.source_kind),
                id: row.source_id,
                room_slug: row.room_slug,
                post_id: row.post_id,
                video_id: row.video_id,
            },
            preview: row.preview,
            read_at: row.read_at.map(to_datetime),
            created_at: to_datetime(row.created_at),
        }
    }

    pub fn is_unread(&self) -> bool {
        self.read_at.is_none()
    }
}

/// How many of the user's notifications are unread (also the payload of
/// `notifications_read`, with what was marked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnreadCount {
    pub unread_count: u64,
}

/// The answer to marking every notification read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AllRead {
    /// How many were unread and are now read.
    pub marked: u64,
    /// Unread after marking (0 unless one arrived meanwhile).
    pub unread_count: u64,
}
