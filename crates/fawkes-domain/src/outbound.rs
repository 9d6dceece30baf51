//! The domain's side of the outbound sinks (`fawkes-sync`): which events exist, what each
//! carries, and what a Firebase mirror holds.
//!
//! Actions emit through [`fawkes_sync::Router::emit`] in their own transaction, so a sink
//! delivery exists exactly when the action committed (one `sink_deliver` job per sink that
//! wants the event). Webhook events and their `data`:
//!
//! | event | when | data |
//! |---|---|---|
//! | `comment.created` | `add_comment` on a video | `{id, video_id, author_id, content, created_at, updated_at}` |
//! | `comment.updated` | `edit_comment` | the same |
//! | `comment.deleted` | `delete_comment` | `{id, video_id}` |
//! | `message.created` | `post_message` | `{id, room, room_id, author_id, body, created_at}` |
//! | `post.published` | `publish_post` (the first time a draft becomes published) | `{id, author_id, title, published_at}` |
//!
//! Firebase sinks mirror `comments` (the `comment.*` events) at `comments/{video_id}/{id}` and
//! `presence` at `presence/{topic}/{user_id}`. Presence changes come from the tracker
//! ([`fawkes_presence::Tracker::observe`]) as `presence.changed` (never sent to webhooks),
//! coalesced per user and topic over a second. A mirror's write is read when it is sent (the
//! comment as it is now, present or gone; whether the user is on the topic now), so late,
//! retried or reconciled deliveries leave the mirror as the source is.

use std::sync::Arc;
use std::time::Duration;

use fawkes_data::entity::comment;
use fawkes_sync::{DeliveryArgs, Event, FirebaseWrite, Router};
use sea_orm::prelude::*;
use serde_json::{Value, json};

use crate::DomainError;
use crate::authors::Authors;
use crate::time::to_datetime;

/// The mirror group of comments.
pub const MIRROR_COMMENTS: &str = "comments";
/// The mirror group of presence.
pub const MIRROR_PRESENCE: &str = "presence";
/// Presence changes of one user on one topic within this window make one delivery.
const PRESENCE_COALESCE: Duration = Duration::from_secs(1);

/// The webhook events, for documentation and configuration checks.
pub const WEBHOOK_EVENTS: [&str; 5] = [
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "message.created",
    "post.published",
];

/// Emits `event` through `conn` (the action's transaction).
pub(crate) async fn emit<C: ConnectionTrait>(
    router: &Router,
    conn: &C,
    event: Event,
) -> Result<(), DomainError> {
    router.emit(conn, event).await.map_err(|e| match e {
        fawkes_sync::Error::Jobs(fawkes_jobs::Error::Db(e)) => DomainError::from(e),
        other => DomainError::Internal(other.to_string()),
    })?;
    Ok(())
}

/// The data of a comment event.
pub(crate) fn comment_data(row: &comment::Model) -> Value {
    json!({
        "id": row.id,
        "video_id": row.video_id,
        "author_id": row.author_id,
        "content": row.content,
        "created_at": to_datetime(row.created_at),
        "updated_at": to_datetime(row.updated_at),
    })
}

pub fn comment_path(video_id: &str, id: Uuid) -> String {
    format!("comments/{video_id}/{id}")
}

pub fn presence_path(topic: &str, user_id: &str) -> String {
    format!("presence/{topic}/{user_id}")
}

/// What Firebase sinks hold: read from the database and the presence tracker at send time.
#[derive(Clone, Debug)]
pub struct Mirror {
    db: Arc<DatabaseConnection>,
    presence: fawkes_presence::Tracker,
    authors: Authors,
}

impl Mirror {
    pub(crate) fn new(
        db: Arc<DatabaseConnection>,
        presence: fawkes_presence::Tracker,
        authors: Authors,
    ) -> Self {
        Self {
            db,
            presence,
            authors,
        }
    }

    async fn comment(&self, data: &Value) -> Result<Option<FirebaseWrite>, String> {
        let id = data["id"]
            .as_str()
            .and_then(|id| Uuid::parse_str(id).ok())
            .ok_or("a comment event without an id")?;
        let video_id = data["video_id"]
            .as_str()
            .ok_or("a comment event without a video_id")?;
        let path = comment_path(video_id, id);
        let row = comment::Entity::find_by_id(id)
            .one(self.db.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        let Some(row) = row else {
            return Ok(Some(FirebaseWrite::Delete { path }));
        };
        let authors = self
            .authors
            .load([row.author_id])
            .await
            .map_err(|e| e.to_string())?;
        let mut value = comment_data(&row);
        value["author"] = json!(authors.get(&row.author_id).map(|a| a.username.as_str()));
        Ok(Some(FirebaseWrite::Put { path, value }))
    }

    fn presence(&self, data: &Value) -> Result<Option<FirebaseWrite>, String> {
        let topic = data["topic"]
            .as_str()
            .ok_or("a presence event without a topic")?;
        let user_id = data["user_id"]
            .as_str()
            .ok_or("a presence event without a user_id")?;
        let path = presence_path(topic, user_id);
        let listed = self.presence.list(topic);
        let metas = listed[user_id]["metas"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let Some(first) = metas.first() else {
            return Ok(Some(FirebaseWrite::Delete { path }));
        };
        let value = json!({
            "user_id": user_id,
            "username": first["username"],
            "online_at": first["online_at"],
            "connections": metas.len(),
        });
        Ok(Some(FirebaseWrite::Put { path, value }))
    }
}

#[async_trait::async_trait]
impl fawkes_sync::Mirror for Mirror {
    async fn firebase(&self, delivery: &DeliveryArgs) -> Result<Option<FirebaseWrite>, String> {
        match delivery.mirror.as_deref() {
            Some(MIRROR_COMMENTS) => self.comment(&delivery.data).await,
            Some(MIRROR_PRESENCE) => self.presence(&delivery.data),
            _ => Ok(None),
        }
    }
}

/// Mirrors presence: every change the tracker reports becomes a coalesced `presence.changed`
/// delivery to the sinks that mirror presence. Enqueued on a task of its own (the tracker calls
/// from inside a channel's join or leave); presence is in memory anyway, so a node that dies
/// between the change and the enqueue loses nothing durable, and the surviving nodes report its
/// users' leaves.
pub(crate) fn follow_presence(
    router: Router,
    db: Arc<DatabaseConnection>,
    tracker: &fawkes_presence::Tracker,
) {
    tracker.observe(move |topic, key| {
        let event = Event::new(
            "presence.changed",
            json!({ "topic": topic, "user_id": key }),
        )
        .mirror_only(MIRROR_PRESENCE)
        .coalesced(format!("presence:{topic}:{key}"), PRESENCE_COALESCE);
        if !router.any_wants(&event) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let router = router.clone();
        let db = db.clone();
        runtime.spawn(async move {
            if let Err(e) = router.emit(db.as_ref(), event).await {
                tracing::warn!(error = %e, "cannot enqueue a presence delivery");
            }
        });
    });
}
