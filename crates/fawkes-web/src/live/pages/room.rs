//! A room: its messages live (new ones arrive for everyone), older ones on scrolling up, send
//! with Enter, edit and delete one's own, who is typing, and who is online (room presence).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use fawkes_domain::messaging::{Message, MessageBody, Room, room_topic};
use fawkes_domain::{Author, Domain, PageRequest};
use fawkes_live::{Event, Flash, List, LiveContext, LiveView, Params, Refusal, Rendered, html};
use fawkes_pubsub::Broadcast;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{report, require_user};
use crate::live::header::Header;
use crate::live::layout::shell;
use crate::live::session::PageSession;

/// How long "is typing" shows after the last keystroke.
const TYPING_SHOWN: Duration = Duration::from_secs(3);
/// A typing notice is sent at most this often per user.
const TYPING_EVERY: Duration = Duration::from_secs(2);
const PAGE: u64 = 50;

/// A message as the page shows it; also what `new_msg` broadcasts carry.
#[derive(Debug, Clone, Deserialize)]
struct Line {
    id: Uuid,
    author: Author,
    body: String,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
}

impl From<Message> for Line {
    fn from(m: Message) -> Self {
        Self {
            id: m.id,
            author: m.author,
            body: m.body,
            created_at: m.created_at,
            edited_at: m.edited_at,
        }
    }
}

pub struct RoomView {
    domain: Arc<Domain>,
    header: Header,
    session: Option<PageSession>,
    room: Option<Room>,
    /// Oldest first, as shown.
    lines: Vec<Line>,
    older: Option<String>,
    draft_error: String,
    editing: Option<Uuid>,
    typing: BTreeMap<String, Instant>,
    typing_sent: Option<Instant>,
    online: Vec<(String, String)>,
    presence_owner: Option<u64>,
}

impl RoomView {
    pub fn new(domain: Arc<Domain>) -> Self {
        Self {
            domain,
            header: Header::default(),
            session: None,
            room: None,
            lines: Vec::new(),
            older: None,
            draft_error: String::new(),
            editing: None,
            typing: BTreeMap::new(),
            typing_sent: None,
            online: Vec::new(),
            presence_owner: None,
        }
    }

    fn topic(&self) -> String {
        self.room
            .as_ref()
            .map(|r| room_topic(&r.slug))
            .unwrap_or_default()
    }

    fn slug(&self) -> &str {
        self.room.as_ref().map_or("", |r| r.slug.as_str())
    }

    fn refresh_online(&mut self) {
        let list = self.domain.presence.list(&self.topic());
        let mut online: Vec<(String, String)> = list
            .as_object()
            .into_iter()
            .flatten()
            .map(|(key, entry)| {
                let name = entry
                    .pointer("/metas/0/username")
                    .and_then(Value::as_str)
                    .unwrap_or("someone")
                    .to_owned();
                (key.clone(), name)
            })
            .collect();
        online.sort_by(|a, b| a.1.cmp(&b.1));
        self.online = online;
    }

    async fn load_older(&mut self, s: &PageSession) -> Result<(), fawkes_domain::DomainError> {
        let request = PageRequest {
            cursor: self.older.clone(),
            limit: Some(PAGE),
        };
        let page = self
            .domain
            .messaging
            .list_messages(&s.actor, self.slug(), &request)
            .await?;
        self.older = page.next_cursor;
        let mut older: Vec<Line> = page.items.into_iter().rev().map(Line::from).collect();
        older.append(&mut self.lines);
        self.lines = older;
        Ok(())
    }

    async fn handle(
        &mut self,
        s: &PageSession,
        event: Event,
        ctx: &mut LiveContext,
    ) -> Result<(), fawkes_domain::DomainError> {
        let messaging = &self.domain.messaging;
        let id = || {
            event
                .params
                .get("id")
                .and_then(|id| id.parse::<Uuid>().ok())
        };
        match event.name.as_str() {
            "send" => {
                let body = MessageBody {
                    body: event.params.text("body").to_owned(),
                };
                match messaging.post_message(&s.actor, self.slug(), body).await {
                    Ok(_) => {
                        self.draft_error.clear();
                        self.typing_sent = None;
                        ctx.push_event("clear-input", json!({"id": "message-input"}));
                    }
                    Err(fawkes_domain::DomainError::Validation(fields)) => {
                        self.draft_error = fields
                            .values()
                            .flatten()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ");
                    }
                    Err(other) => return Err(other),
                }
            }
            "typing" => {
                let due = self
                    .typing_sent
                    .is_none_or(|at| at.elapsed() >= TYPING_EVERY);
                if due && !event.params.text("body").is_empty() {
                    self.typing_sent = Some(Instant::now());
                    ctx.bus().broadcast(
                        &self.topic(),
                        "typing",
                        json!({"user_id": s.actor.user_id(), "username": s.username()}),
                    );
                }
            }
            "load_more" if self.older.is_some() => self.load_older(s).await?,
            "edit" => self.editing = id(),
            "cancel_edit" => self.editing = None,
            "save_edit" => {
                if let Some(id) = id() {
                    let body = MessageBody {
                        body: event.params.text("body").to_owned(),
                    };
                    messaging.edit_message(&s.actor, id, body).await?;
                    self.editing = None;
                }
            }
            "delete" => {
                if let Some(id) = id() {
                    messaging.delete_message(&s.actor, id).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[async_trait]
impl LiveView<PageSession> for RoomView {
    async fn mount(
        &mut self,
        s: &PageSession,
        params: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal> {
        require_user(s)?;
        let slug = params.text("slug");
        let room = match self.domain.messaging.get_room(&s.actor, slug).await {
            Ok(room) => room,
            Err(_) => return Err(Refusal::Redirect("/rooms".into())),
        };
        ctx.set_title(room.name.clone());
        self.room = Some(room);
        self.session = Some(s.clone());
        let loaded = self.load_older(s).await;
        report(ctx, loaded);
        if ctx.connected() {
            let topic = self.topic();
            ctx.subscribe(topic.clone());
            if let (Some(user_id), Value::Object(meta)) = (
                s.actor.user_id(),
                json!({"username": s.username(), "online_at": Utc::now().timestamp().to_string(), "status": "online"}),
            ) {
                let owner = ctx.bus().next_id();
                self.domain
                    .presence
                    .track(owner, &topic, &user_id.to_string(), meta);
                self.presence_owner = Some(owner);
            }
            self.refresh_online();
            let _ = self.domain.messaging.mark_read(&s.actor, self.slug()).await;
        }
        self.header.mount(&self.domain, s, ctx).await;
        Ok(())
    }

    async fn handle_event(&mut self, s: &PageSession, event: Event, ctx: &mut LiveContext) {
        let result = self.handle(s, event, ctx).await;
        report(ctx, result);
    }

    async fn handle_info(&mut self, s: &PageSession, info: &Broadcast, ctx: &mut LiveContext) {
        if self.header.handle_info(&self.domain, s, info).await {
            return;
        }
        let fawkes_pubsub::Payload::Json(payload) = &info.payload else {
            return;
        };
        match &*info.event {
            "new_msg" => {
                if let Ok(line) = serde_json::from_value::<Line>(payload.clone()) {
                    self.typing.remove(&line.author.username);
                    self.lines.push(line);
                }
            }
            "msg_edited" => {
                if let Ok(edited) = serde_json::from_value::<Line>(payload.clone())
                    && let Some(line) = self.lines.iter_mut().find(|l| l.id == edited.id)
                {
                    *line = edited;
                }
            }
            "msg_deleted" => {
                let id = payload
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| id.parse::<Uuid>().ok());
                self.lines.retain(|l| Some(l.id) != id);
            }
            "typing" => {
                let from_me = payload.get("user_id").and_then(Value::as_str)
                    == s.actor.user_id().map(|u| u.to_string()).as_deref();
                if let (false, Some(name)) =
                    (from_me, payload.get("username").and_then(Value::as_str))
                {
                    self.typing.insert(name.to_owned(), Instant::now());
                    ctx.send_after(TYPING_SHOWN, "typing_expired", json!({}));
                }
            }
            "typing_expired" => self.typing.retain(|_, at| at.elapsed() < TYPING_SHOWN),
            fawkes_presence::DIFF_EVENT => self.refresh_online(),
            _ => {}
        }
    }

    async fn terminate(&mut self) {
        if let Some(owner) = self.presence_owner.take() {
            self.domain.presence.untrack(owner, &self.topic());
        }
        if let Some(session) = &self.session {
            let _ = self
                .domain
                .messaging
                .mark_read(&session.actor, self.slug())
                .await;
        }
    }

    fn render(&self, flash: &Flash) -> Rendered {
        let (Some(session), Some(room)) = (&self.session, &self.room) else {
            return Rendered::empty();
        };
        let me = session.actor.user_id();
        let lines = List::keyed(self.lines.iter().map(|line| (line.id, self.line(line, me))));
        let typing = typing_text(&self.typing);
        let online = List::keyed(self.online.iter().map(|(key, name)| {
            let name = name.as_str();
            (key.clone(), html!(r#"<li class="flex items-center gap-2"><span class="status status-success"></span>{name}</li>"#))
        }));
        let online_count = self.online.len();
        let has_more = self.older.is_some();
        let name = room.name.as_str();
        let slug = room.slug.as_str();
        let draft_error = self.draft_error.as_str();
        let content = html!(
            r#"<div class="grid gap-4 md:grid-cols-4 flex-1 min-h-0">
              <section class="card bg-base-100 shadow md:col-span-3 flex flex-col h-[70vh] md:h-[78vh]">
                <div class="card-body p-3 sm:p-5 flex flex-col min-h-0 flex-1">
                  <h1 class="card-title">{name} <span class="opacity-50 text-sm">#{slug}</span></h1>
                  <div id="messages" class="flex-1 overflow-y-auto min-h-0" phx-hook="ScrollBottom" data-has-more="{has_more}">
                    <ul id="message-list">{lines}</ul>
                  </div>
                  <p id="typing" class="text-sm italic opacity-70 h-5 flex-none">{typing}</p>
                  <form id="send-form" phx-submit="send" phx-change="typing" class="flex gap-2 items-end">
                    <textarea id="message-input" name="body" rows="1" class="textarea w-full min-h-0 h-12" placeholder="Message #{slug} (Enter sends, Shift+Enter for a new line)" phx-hook="EnterSubmit"></textarea>
                    <button type="submit" class="btn btn-primary" id="send">Send</button>
                  </form>
                  <p class="text-error text-sm flex-none" id="send-error">{draft_error}</p>
                </div>
              </section>
              <aside class="card bg-base-100 shadow">
                <div class="card-body p-4">
                  <h2 class="card-title text-base">Online <span class="badge" id="online-count">{online_count}</span></h2>
                  <ul id="online" class="flex flex-col gap-1">{online}</ul>
                </div>
              </aside>
            </div>"#
        );
        shell(session, &self.header, flash, content)
    }
}

impl RoomView {
    fn line(&self, line: &Line, me: Option<Uuid>) -> Rendered {
        let mine = me == Some(line.author.id);
        let side = if mine { "chat-end" } else { "chat-start" };
        let id = line.id;
        let author = line.author.username.as_str();
        let time = line.created_at.format("%H:%M").to_string();
        let ts = line.created_at.timestamp_millis();
        let edited = line
            .edited_at
            .is_some()
            .then(|| html!(r#"<span class="opacity-50 text-xs">(edited)</span>"#));
        let body = if self.editing == Some(id) {
            let text = line.body.as_str();
            html!(
                r#"<form phx-submit="save_edit" class="flex flex-col gap-1" id="edit-form-{id}">
                  <input type="hidden" name="id" value="{id}">
                  <textarea name="body" class="textarea textarea-sm text-base-content" id="edit-input-{id}">{text}</textarea>
                  <div class="flex gap-1"><button class="btn btn-xs btn-primary" type="submit">Save</button>
                  <button class="btn btn-xs" type="button" phx-click="cancel_edit">Cancel</button></div>
                </form>"#
            )
        } else {
            let text = line.body.as_str();
            html!(r#"<span class="whitespace-pre-wrap break-words">{text}</span>"#)
        };
        let actions = (mine && self.editing != Some(id)).then(|| {
            html!(
                r#"<div class="chat-footer opacity-70 flex gap-2">
                  <button class="link text-xs" phx-click="edit" phx-value-id="{id}" id="edit-{id}">edit</button>
                  <button class="link text-xs" phx-click="delete" phx-value-id="{id}" id="delete-{id}" data-confirm="Delete this message?">delete</button>
                </div>"#
            )
        });
        html!(
            r#"<li id="msg-{id}" class="chat {side}">
              <div class="chat-header">{author} <time class="text-xs opacity-50" id="time-{id}" phx-hook="LocalTime" data-ts="{ts}">{time}</time> {edited}</div>
              <div class="chat-bubble" id="body-{id}">{body}</div>
              {actions}
            </li>"#
        )
    }
}

fn typing_text(typing: &BTreeMap<String, Instant>) -> String {
    let names: Vec<&str> = typing
        .iter()
        .filter(|(_, at)| at.elapsed() < TYPING_SHOWN)
        .map(|(name, _)| name.as_str())
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => format!("{one} is typing…"),
        [a, b] => format!("{a} and {b} are typing…"),
        _ => "Several people are typing…".to_owned(),
    }
}
