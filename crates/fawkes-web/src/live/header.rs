//! The page header's live part: the signed-in user's unread notification count, shown as a
//! badge in the navbar. Every view holds a [`Header`]: `mount` loads the count and, once
//! connected, subscribes to the user's `notification:{user_id}`; `handle_info` takes what
//! arrives there and keeps the count current, so a mention anywhere updates every open page.

use fawkes_domain::Domain;
use fawkes_domain::notifications::notification_topic;
use fawkes_live::LiveContext;
use fawkes_pubsub::{Broadcast, Payload};

use super::session::PageSession;

#[derive(Debug, Default)]
pub struct Header {
    /// The signed-in user's notification topic (none for guests).
    topic: Option<String>,
    unread: u64,
}

impl Header {
    /// Loads the unread count; when connected, subscribes to the user's notifications.
    pub async fn mount(&mut self, domain: &Domain, session: &PageSession, ctx: &mut LiveContext) {
        let Some(user) = &session.user else {
            return;
        };
        let topic = notification_topic(user.id);
        if ctx.connected() {
            ctx.subscribe(topic.clone());
        }
        self.topic = Some(topic);
        self.reload(domain, session).await;
    }

    /// Takes a broadcast on the user's notification topic (returns true: the view need not
    /// look at it, unless it shows notifications itself); anything else is the view's.
    pub async fn handle_info(
        &mut self,
        domain: &Domain,
        session: &PageSession,
        info: &Broadcast,
    ) -> bool {
        if self.topic.as_deref() != Some(&*info.topic) {
            return false;
        }
        let told = match &info.payload {
            Payload::Json(payload) if &*info.event == "notifications_read" => {
                payload.get("unread_count").and_then(|n| n.as_u64())
            }
            _ => None,
        };
        match told {
            Some(unread) => self.unread = unread,
            None if &*info.event == "notification" => self.reload(domain, session).await,
            None => {}
        }
        true
    }

    /// Unread notifications of the signed-in user.
    pub fn unread(&self) -> u64 {
        self.unread
    }

    async fn reload(&mut self, domain: &Domain, session: &PageSession) {
        // A failed count keeps the last one: the badge is a hint, the page still works.
        if let Ok(unread) = domain
            .notifications
            .unread_notification_count(&session.actor)
            .await
        {
            self.unread = unread;
        }
    }
}
