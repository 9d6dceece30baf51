//! The signed-in user's notifications, unread first, live: new ones appear as their jobs write
//! them, and marking read here or in another tab updates the list and the navbar's count.

use std::sync::Arc;

use async_trait::async_trait;
use fawkes_domain::notifications::{Notification, NotificationKind, SourceKind};
use fawkes_domain::{Domain, PageRequest};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;
use uuid::Uuid;

use super::{report, require_user};
use crate::live::header::Header;
use crate::live::layout::shell;
use crate::live::session::PageSession;

/// Notifications shown (the newest unread ones first).
const SHOWN: u64 = 100;

pub struct NotificationsView {
    domain: Arc<Domain>,
    header: Header,
    session: Option<PageSession>,
    notifications: Vec<Notification>,
}

impl NotificationsView {
    pub fn new(domain: Arc<Domain>) -> Self {
        Self {
            domain,
            header: Header::default(),
            session: None,
            notifications: Vec::new(),
        }
    }

    async fn load(&mut self, s: &PageSession) -> Result<(), fawkes_domain::DomainError> {
        let request = PageRequest {
            cursor: None,
            limit: Some(SHOWN),
        };
        self.notifications = self
            .domain
            .notifications
            .list_notifications(&s.actor, &request)
            .await?
            .items;
        Ok(())
    }
}

#[async_trait]
impl LiveView<PageSession> for NotificationsView {
    async fn mount(
        &mut self,
        s: &PageSession,
        _: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        require_user(s)?;
        ctx.set_title("Notifications");
        self.session = Some(s.clone());
        let loaded = self.load(s).await;
        report(ctx, loaded);
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, s: &PageSession, event: Event, ctx: &mut LiveContext) {
        let notifications = &self.domain.notifications;
        let done = match event.name.as_str() {
            "read" => match event
                .params
                .get("id")
                .and_then(|id| id.parse::<Uuid>().ok())
            {
                Some(id) => notifications
                    .mark_notification_read(&s.actor, id)
                    .await
                    .map(|_| ()),
                None => Ok(()),
            },
            "read_all" => notifications
                .mark_all_notifications_read(&s.actor)
                .await
                .map(|_| ()),
            _ => return,
        };
        report(ctx, done);
        let loaded = self.load(s).await;
        report(ctx, loaded);
    }

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, ctx: &mut LiveContext) {
        // New or newly read ones: this list changes as the header's count does.
        if self.header.handle_info(&self.domain, s, info).await {
            let loaded = self.load(s).await;
            report(ctx, loaded);
        }
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let Some(session) = &self.session else {
            return Rendered::empty();
        };
        let items = List::keyed(self.notifications.iter().map(|n| (n.id, item(n))));
        let unread = self.header.unread();
        let empty = self
            .notifications
            .is_empty()
            .then(|| html!(r#"<p class="opacity-60" id="no-notifications">Nothing yet. Mentions, comments on your posts and replies in your threads show up here.</p>"#));
        let read_all = (unread > 0).then(|| {
            html!(r#"<button class="btn btn-sm" phx-click="read_all" id="read-all">Mark all read</button>"#)
        });
        let content = html!(
            r#"<section class="card bg-base-100 shadow">
              <div class="card-body">
                <div class="flex items-center justify-between gap-2">
                  <h1 class="card-title">Notifications <span class="badge" id="unread-count">{unread}</span></h1>
                  {read_all}
                </div>
                {empty}
                <ul class="flex flex-col divide-y divide-base-200" id="notifications">{items}</ul>
              </div>
            </section>"#
        );
        shell(session, &self.header, flash, content)
    }
}

/// Where a notification's source is shown.
fn link(n: &Notification) -> String {
    let source = &n.source;
    match source.kind {
        SourceKind::Message => format!("/rooms/{}", source.room_slug.as_deref().unwrap_or("")),
        SourceKind::Comment => format!("/videos/{}", source.video_id.as_deref().unwrap_or("")),
        SourceKind::PostComment => match source.post_id {
            Some(post_id) => format!("/posts/{post_id}"),
            None => "/posts".to_owned(),
        },
    }
}

/// What happened, after the actor's name.
fn what(n: &Notification) -> String {
    let source = &n.source;
    match (n.kind, source.kind) {
        (NotificationKind::Mention, SourceKind::Message) => format!(
            "mentioned you in #{}",
            source.room_slug.as_deref().unwrap_or("")
        ),
        (NotificationKind::Mention, SourceKind::Comment) => format!(
            "mentioned you on video {}",
            source.video_id.as_deref().unwrap_or("")
        ),
        (NotificationKind::Mention, SourceKind::PostComment) => {
            "mentioned you in a comment".to_owned()
        }
        (NotificationKind::PostComment, _) => "commented on your post".to_owned(),
        (NotificationKind::ThreadReply, _) => "replied in a thread you commented in".to_owned(),
    }
}

fn item(n: &Notification) -> Rendered {
    let (id, actor, preview) = (n.id, n.actor.username.as_str(), n.preview.as_str());
    let (href, what) = (link(n), what(n));
    let when = n.created_at.format("%Y-%m-%d %H:%M").to_string();
    let ts = n.created_at.timestamp_millis();
    let (state, mark) = if n.is_unread() {
        (
            "unread font-medium",
            Some(html!(
                r#"<button class="btn btn-xs" phx-click="read" phx-value-id="{id}" id="read-{id}">Mark read</button>"#
            )),
        )
    } else {
        ("read opacity-70", None)
    };
    html!(
        r#"<li class="py-3 flex gap-3 items-start justify-between {state}" id="notification-{id}">
          <div class="min-w-0">
            <div class="text-sm"><span class="font-semibold">{actor}</span> {what} · <time class="opacity-50" phx-hook="LocalTime" id="notification-time-{id}" data-ts="{ts}">{when}</time></div>
            <a href="{href}" data-phx-link="redirect" data-phx-link-state="push" class="link link-hover break-words" id="notification-link-{id}">{preview}</a>
          </div>
          {mark}
        </li>"#
    )
}
