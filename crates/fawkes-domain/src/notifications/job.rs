//! The `notify` job: who hears about a message or comment, written once per recipient and
//! pushed to each.

use std::collections::{BTreeMap, HashMap};

use fawkes_data::entity::{
    comment, message, notification, post, post_comment, room, room_member, user,
};
use fawkes_jobs::{JobContext, JobError, JobHandler, NewJob};
use sea_orm::ActiveValue::Set;
use sea_orm::QuerySelect;
use sea_orm::prelude::*;
use sea_orm::sea_query::{ExprTrait, OnConflict};
use serde::{Deserialize, Serialize};

use super::mentions::mentioned_names;
use super::{Notification, NotificationKind, Notifications, SourceKind, notification_topic};
use crate::authors::author_of;
use crate::store::begin_write;
use crate::{Actor, DomainError, Identity, Role};

/// The job kind of notifications.
pub const JOB_KIND: &str = "notify";
/// The queue notification jobs go to.
pub const QUEUE: &str = "notifications";
/// Attempts before a notification job is given up (with the queue's backoff, hours).
const MAX_ATTEMPTS: i32 = 10;
/// Longest preview kept of the source's text, in characters.
const PREVIEW_CHARS: usize = 200;

/// The arguments of a `notify` job: `{source, id}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct NotifyArgs {
    source: SourceKind,
    id: Uuid,
}

/// Enqueues the `notify` job for a new message or comment, through the transaction that writes
/// it: no job for an action that rolled back, no action without its job.
pub(crate) async fn enqueue_notify<C: ConnectionTrait>(
    conn: &C,
    source: SourceKind,
    id: Uuid,
) -> Result<(), DomainError> {
    let args = serde_json::to_value(NotifyArgs { source, id }).unwrap_or_default();
    let job = NewJob::new(JOB_KIND, args)
        .queue(QUEUE)
        .max_attempts(MAX_ATTEMPTS);
    fawkes_jobs::enqueue(conn, job).await.map_err(|e| match e {
        fawkes_jobs::Error::Db(e) => DomainError::from(e),
        other => DomainError::Internal(other.to_string()),
    })?;
    Ok(())
}

/// One event to tell people about: the source as it is now.
struct Event {
    key: String,
    source: SourceKind,
    source_id: Uuid,
    author_id: Uuid,
    /// When the source was written.
    at: i64,
    text: String,
    room: Option<room::Model>,
    post: Option<post::Model>,
    video_id: Option<String>,
    /// Who is concerned and how, before the checks (the most specific kind per user).
    concerned: BTreeMap<Uuid, NotificationKind>,
}

impl Event {
    /// Adds `user_id` as concerned by `kind`, keeping the most specific kind per user.
    fn concern(&mut self, user_id: Uuid, kind: NotificationKind) {
        let entry = self.concerned.entry(user_id).or_insert(kind);
        *entry = (*entry).max(kind);
    }
}

#[async_trait::async_trait]
impl JobHandler for Notifications {
    async fn perform(&self, job: &JobContext) -> Result<(), JobError> {
        let args: NotifyArgs = job.args()?;
        self.notify(args.source, args.id).await?;
        Ok(())
    }
}

impl Notifications {
    /// What a `notify` job does: works out who to tell about the source, writes their
    /// notifications (ignoring any already written for this event) and pushes the new ones.
    /// A source deleted meanwhile tells nobody. Returns how many notifications were new.
    pub async fn notify(&self, source: SourceKind, id: Uuid) -> Result<usize, DomainError> {
        let event = match source {
            SourceKind::Message => self.message_event(id).await?,
            SourceKind::Comment => self.comment_event(id).await?,
            SourceKind::PostComment => self.post_comment_event(id).await?,
        };
        let Some(mut event) = event else {
            return Ok(0);
        };
        let mentioned = mentioned_names(&event.text);
        if !mentioned.is_empty() {
            let named: Vec<Uuid> = user::Entity::find()
                .select_only()
                .column(user::Column::Id)
                .filter(user::Column::UsernameKey.is_in(mentioned))
                .into_tuple()
                .all(self.db.as_ref())
                .await?;
            for user_id in named {
                event.concern(user_id, NotificationKind::Mention);
            }
        }
        event.concerned.remove(&event.author_id);
        let recipients = self.who_may_read(&event).await?;
        self.deliver(&event, recipients).await
    }

    async fn message_event(&self, id: Uuid) -> Result<Option<Event>, DomainError> {
        let db = self.db.as_ref();
        let Some(row) = message::Entity::find_by_id(id)
            .filter(message::Column::DeletedAt.is_null())
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let Some(room) = room::Entity::find_by_id(row.room_id).one(db).await? else {
            return Ok(None);
        };
        Ok(Some(Event {
            key: format!("message:{id}"),
            source: SourceKind::Message,
            source_id: id,
            author_id: row.author_id,
            at: row.created_at,
            text: row.body,
            room: Some(room),
            post: None,
            video_id: None,
            concerned: BTreeMap::new(),
        }))
    }

    async fn comment_event(&self, id: Uuid) -> Result<Option<Event>, DomainError> {
        let Some(row) = comment::Entity::find_by_id(id)
            .one(self.db.as_ref())
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(Event {
            key: format!("comment:{id}"),
            source: SourceKind::Comment,
            source_id: id,
            author_id: row.author_id,
            at: row.created_at,
            text: row.content,
            room: None,
            post: None,
            video_id: Some(row.video_id),
            concerned: BTreeMap::new(),
        }))
    }

    /// A post comment concerns the post's author (`post_comment`) and, for a reply, whoever
    /// commented in that thread before it: the thread's first comment and the earlier replies
    /// (`thread_reply`).
    async fn post_comment_event(&self, id: Uuid) -> Result<Option<Event>, DomainError> {
        let db = self.db.as_ref();
        let Some(row) = post_comment::Entity::find_by_id(id).one(db).await? else {
            return Ok(None);
        };
        let Some(post) = post::Entity::find_by_id(row.post_id).one(db).await? else {
            return Ok(None);
        };
        let mut event = Event {
            key: format!("post_comment:{id}"),
            source: SourceKind::PostComment,
            source_id: id,
            author_id: row.author_id,
            at: row.created_at,
            text: row.body,
            room: None,
            post: None,
            video_id: None,
            concerned: BTreeMap::new(),
        };
        event.concern(post.author_id, NotificationKind::PostComment);
        if let Some(thread) = row.parent_id {
            let earlier: Vec<Uuid> = post_comment::Entity::find()
                .select_only()
                .column(post_comment::Column::AuthorId)
                .filter(
                    post_comment::Column::Id
                        .eq(thread)
                        .or(post_comment::Column::ParentId
                            .eq(thread)
                            .and(post_comment::Column::Id.lt(row.id))),
                )
                .into_tuple()
                .all(db)
                .await?;
            for user_id in earlier {
                event.concern(user_id, NotificationKind::ThreadReply);
            }
        }
        event.post = Some(post);
        Ok(Some(event))
    }

    /// The concerned users who are active and may read the source (a private room's members
    /// and admins; a draft's author and admins), with their kind.
    async fn who_may_read(
        &self,
        event: &Event,
    ) -> Result<Vec<(Uuid, NotificationKind)>, DomainError> {
        if event.concerned.is_empty() {
            return Ok(Vec::new());
        }
        let db = self.db.as_ref();
        let users = user::Entity::find()
            .filter(user::Column::Id.is_in(event.concerned.keys().copied()))
            .filter(user::Column::IsActive.eq(true))
            .all(db)
            .await?;
        let members: Vec<Uuid> = match &event.room {
            Some(room) if room.is_private => {
                room_member::Entity::find()
                    .select_only()
                    .column(room_member::Column::UserId)
                    .filter(room_member::Column::RoomId.eq(room.id))
                    .filter(room_member::Column::UserId.is_in(users.iter().map(|u| u.id)))
                    .into_tuple()
                    .all(db)
                    .await?
            }
            _ => Vec::new(),
        };
        let mut recipients = Vec::new();
        for user in users {
            // The recipient as an actor, so the readers' own policies decide.
            let reader = Actor::User(Identity {
                user_id: user.id,
                role: Role::parse(&user.role).unwrap_or(Role::User),
                session_id: Uuid::nil(),
                device_id: None,
            });
            let may_read = match (&event.room, &event.post) {
                (Some(room), _) => {
                    crate::messaging::may_enter(&reader, room, members.contains(&user.id))
                }
                (_, Some(post)) => crate::posts::may_read(&reader, post),
                // Every signed-in user reads video comments.
                _ => true,
            };
            if let (true, Some(&kind)) = (may_read, event.concerned.get(&user.id)) {
                recipients.push((user.id, kind));
            }
        }
        Ok(recipients)
    }

    /// Writes the notifications that do not exist yet, then pushes those.
    async fn deliver(
        &self,
        event: &Event,
        recipients: Vec<(Uuid, NotificationKind)>,
    ) -> Result<usize, DomainError> {
        if recipients.is_empty() {
            return Ok(0);
        }
        let preview = preview(&event.text);
        let rows: Vec<notification::ActiveModel> = recipients
            .iter()
            .map(|&(user_id, kind)| notification::ActiveModel {
                id: Set(id_at(event.source_id)),
                user_id: Set(user_id),
                kind: Set(kind.as_str().to_owned()),
                actor_id: Set(event.author_id),
                source_kind: Set(event.source.as_str().to_owned()),
                source_id: Set(event.source_id),
                room_slug: Set(event.room.as_ref().map(|r| r.slug.clone())),
                post_id: Set(event.post.as_ref().map(|p| p.id)),
                video_id: Set(event.video_id.clone()),
                preview: Set(preview.clone()),
                event_key: Set(event.key.clone()),
                read_at: Set(None),
                created_at: Set(event.at),
            })
            .collect();
        let ids: Vec<Uuid> = rows
            .iter()
            .filter_map(|row| match &row.id {
                Set(id) => Some(*id),
                _ => None,
            })
            .collect();
        let txn = begin_write(self.db.as_ref()).await?;
        // An existing (user_id, event_key) is skipped, not an error: on PostgreSQL an error
        // would abort the transaction. MySQL has no DO NOTHING; `id = id` is its no-op.
        notification::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([notification::Column::UserId, notification::Column::EventKey])
                    .do_nothing_on([notification::Column::Id])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        // Which rows are ours: MySQL counts a skipped duplicate as a found row, so the
        // affected-row count cannot tell; the ids we generated can.
        let inserted = notification::Entity::find()
            .filter(notification::Column::Id.is_in(ids))
            .all(&txn)
            .await?;
        txn.commit().await?;
        let authors: HashMap<Uuid, crate::Author> = self.authors.load([event.author_id]).await?;
        for row in &inserted {
            let recipient = row.user_id;
            let notification = Notification::new(row.clone(), author_of(&authors, row.actor_id));
            self.bus.broadcast(
                &notification_topic(recipient),
                "notification",
                serde_json::to_value(&notification).unwrap_or_default(),
            );
        }
        Ok(inserted.len())
    }
}

/// A notification's id: a UUIDv7 that begins as its source's id does (its millisecond and
/// what follows in the first 8 bytes), then random. Lists order by id, so notifications order
/// by when their events happened (to the millisecond), whenever and in whatever order their
/// jobs ran.
fn id_at(source_id: Uuid) -> Uuid {
    let mut bytes = *Uuid::new_v4().as_bytes();
    bytes[..8].copy_from_slice(&source_id.as_bytes()[..8]);
    // The RFC 4122 variant, as every v7 has; the version (7) came with the source's bytes.
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Uuid::from_bytes(bytes)
}

/// The start of a text for a notification: at most [`PREVIEW_CHARS`] characters, white space
/// runs as one space, an ellipsis where it was cut.
fn preview(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= PREVIEW_CHARS {
        return flat;
    }
    let mut cut: String = flat.chars().take(PREVIEW_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::{NotificationKind, PREVIEW_CHARS, id_at, preview};
    use uuid::Uuid;

    #[test]
    fn ids_are_v7_and_sort_as_their_sources() {
        let at = |ms: u64| {
            Uuid::new_v7(uuid::Timestamp::from_unix_time(
                ms / 1000,
                (ms % 1000) as u32 * 1_000_000,
                0,
                0,
            ))
        };
        let (first, second) = (at(1_764_000_000_000), at(1_764_000_000_001));
        let (a, b) = (id_at(first), id_at(second));
        assert_eq!(a.get_version_num(), 7);
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_eq!(a.get_timestamp(), first.get_timestamp());
        assert!(a < b, "{first} {second} → {a} {b}");
        assert_ne!(id_at(first), id_at(first), "each recipient's is their own");
    }

    #[test]
    fn previews_are_flat_and_at_most_200_characters() {
        assert_eq!(preview("  hello\n\n @ada  "), "hello @ada");
        let long = "é".repeat(500);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn a_mention_outranks_a_thread_reply_which_outranks_a_post_comment() {
        assert!(NotificationKind::Mention > NotificationKind::ThreadReply);
        assert!(NotificationKind::ThreadReply > NotificationKind::PostComment);
    }
}
