//! The task of one joined view: it owns the view's state, handles the client's events and the
//! broadcasts the view subscribed to one at a time, and sends each change as a diff against
//! exactly what the client holds.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use fawkes_channels::{Reply, ReplyHandle};
use fawkes_pubsub::{Broadcast, Sink};
use futures_util::FutureExt;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::diff::diff;
use crate::params::Event;
use crate::rendered::Rendered;
use crate::runtime::{Live, LiveApp, Pusher};
use crate::view::{LiveContext, LiveView, Navigation};

pub(crate) enum Inbox {
    Client {
        event: String,
        payload: Value,
        reply: ReplyHandle,
    },
    Info(Arc<Broadcast>),
    Stop,
}

/// Where a change goes: the reply owed to a client event, or a push.
enum Answer {
    Reply(ReplyHandle),
    Push,
}

pub(crate) struct ViewTask<A: LiveApp> {
    live: Arc<Live<A>>,
    view: Box<dyn LiveView<A::Session>>,
    session: A::Session,
    claims: Value,
    pattern: Arc<str>,
    ctx: LiveContext,
    /// What the client holds.
    sent: Rendered,
    sent_title: Option<String>,
    subscriptions: Vec<(String, u64)>,
    disconnect_topics: Vec<String>,
}

/// Delivers a topic's broadcasts into a view's inbox.
struct InboxSink(mpsc::Sender<Inbox>);

impl Sink for InboxSink {
    fn deliver(&self, message: &Arc<Broadcast>) {
        if self.0.try_send(Inbox::Info(message.clone())).is_err() {
            tracing::warn!(topic = %message.topic, "live view inbox full; broadcast dropped");
        }
    }
}

impl<A: LiveApp> ViewTask<A> {
    pub fn new(
        live: Arc<Live<A>>,
        view: Box<dyn LiveView<A::Session>>,
        session: A::Session,
        claims: Value,
        pattern: Arc<str>,
        ctx: LiveContext,
        sent: Rendered,
    ) -> Self {
        let sent_title = ctx.title.clone();
        Self {
            live,
            view,
            session,
            claims,
            pattern,
            ctx,
            sent,
            sent_title,
            subscriptions: Vec::new(),
            disconnect_topics: Vec::new(),
        }
    }

    pub fn start(
        mut self,
        sender: mpsc::Sender<Inbox>,
        receiver: mpsc::Receiver<Inbox>,
        pusher: Pusher,
    ) {
        self.disconnect_topics = self.live.app.disconnect_topics(&self.claims);
        for topic in self.disconnect_topics.clone() {
            self.attach(&topic, &sender);
        }
        self.apply_requests(&sender);
        tokio::spawn(async move {
            let crashed = AssertUnwindSafe(self.run(sender, receiver, &pusher))
                .catch_unwind()
                .await
                .is_err();
            if crashed {
                tracing::error!("live view crashed; the client rejoins");
                pusher.push("phx_error", json!({}));
            }
        });
    }

    async fn run(
        mut self,
        sender: mpsc::Sender<Inbox>,
        mut receiver: mpsc::Receiver<Inbox>,
        pusher: &Pusher,
    ) {
        while let Some(message) = receiver.recv().await {
            match message {
                Inbox::Stop => break,
                Inbox::Client {
                    event,
                    payload,
                    reply,
                } => {
                    self.client(&event, &payload, reply, pusher).await;
                }
                Inbox::Info(info) => {
                    if self.disconnect_topics.iter().any(|t| **t == *info.topic)
                        && &*info.event == "disconnect"
                    {
                        pusher.push("redirect", json!({"to": self.ctx.uri}));
                        break;
                    }
                    self.view
                        .handle_info(&self.session, &info, &mut self.ctx)
                        .await;
                    self.finish(Answer::Push, pusher).await;
                }
            }
            self.apply_requests(&sender);
        }
        self.view.terminate().await;
        for (topic, id) in &self.subscriptions {
            self.live.bus.detach(topic, *id);
        }
    }

    async fn client(&mut self, event: &str, payload: &Value, reply: ReplyHandle, pusher: &Pusher) {
        match event {
            "event" => {
                let Some(event) = Event::from_payload(payload) else {
                    reply.send(Reply::reason("malformed event"));
                    return;
                };
                if event.name == "lv:clear-flash" {
                    match event.params.get("key") {
                        Some(key) => self.ctx.clear_flash(key),
                        None => self.ctx.flash.clear(),
                    }
                } else {
                    self.view
                        .handle_event(&self.session, event, &mut self.ctx)
                        .await;
                }
                self.finish(Answer::Reply(reply), pusher).await;
            }
            "live_patch" => {
                let url = payload
                    .get("url")
                    .and_then(Value::as_str)
                    .and_then(crate::routes::local_uri);
                let Some(url) = url else {
                    reply.send(Reply::reason("malformed url"));
                    return;
                };
                match self.live.routes.pattern_of(&url) {
                    Some((pattern, params)) if pattern == self.pattern => {
                        self.ctx.uri = url;
                        self.view.handle_params(&params, &mut self.ctx).await;
                        self.finish(Answer::Reply(reply), pusher).await;
                    }
                    _ => reply.send(Reply::ok(json!({"link_redirect": true}))),
                }
            }
            // Component and upload lifecycle messages: this runtime has neither, but every
            // client message needs its reply or the client locks the element.
            _ => reply.send(Reply::ok(json!({}))),
        }
    }

    /// Sends what the callback changed: navigation, then the diff with title, events and reply.
    async fn finish(&mut self, answer: Answer, pusher: &Pusher) {
        match self.ctx.navigation.take() {
            Some(Navigation::Redirect(to)) => {
                let body = self.navigation_body(&to, None);
                return self.send(answer, pusher, "redirect", body);
            }
            Some(Navigation::Navigate(to)) => {
                let body = self.navigation_body(&to, Some("push"));
                return self.send(answer, pusher, "live_redirect", body);
            }
            Some(Navigation::Patch(to)) => {
                if let Some((pattern, params)) = self.live.routes.pattern_of(&to)
                    && pattern == self.pattern
                {
                    pusher.push("live_patch", json!({"to": to, "kind": "push"}));
                    self.ctx.uri = to;
                    self.view.handle_params(&params, &mut self.ctx).await;
                    self.ctx.navigation = None;
                } else {
                    let body = self.navigation_body(&to, Some("push"));
                    return self.send(answer, pusher, "live_redirect", body);
                }
            }
            None => {}
        }
        let rendered = self.view.render(&self.ctx.flash);
        let mut changes = diff(&self.sent, &rendered).unwrap_or_default();
        self.sent = rendered;
        if self.ctx.title != self.sent_title
            && let Some(title) = &self.ctx.title
        {
            changes.insert("t".into(), Value::String(title.clone()));
            self.sent_title = Some(title.clone());
        }
        let events = std::mem::take(&mut self.ctx.events);
        if !events.is_empty() {
            let events = events
                .into_iter()
                .map(|(name, payload)| json!([name, payload]))
                .collect();
            changes.insert("e".into(), Value::Array(events));
        }
        match answer {
            Answer::Reply(reply) => {
                if let Some(payload) = self.ctx.reply.take() {
                    changes.insert("r".into(), payload);
                }
                let body = if changes.is_empty() {
                    json!({})
                } else {
                    json!({"diff": Value::Object(changes)})
                };
                reply.send(Reply::ok(body));
            }
            Answer::Push => {
                self.ctx.reply = None;
                if !changes.is_empty() {
                    pusher.push("diff", Value::Object(changes));
                }
            }
        }
    }

    fn navigation_body(&mut self, to: &str, kind: Option<&str>) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("to".into(), json!(to));
        if let Some(kind) = kind {
            body.insert("kind".into(), json!(kind));
        }
        if let Some(flash) = self.live.flash_token(&self.ctx.flash) {
            body.insert("flash".into(), json!(flash));
        }
        body
    }

    fn send(&mut self, answer: Answer, pusher: &Pusher, event: &str, body: Map<String, Value>) {
        match answer {
            Answer::Reply(reply) => reply.send(Reply::ok(json!({ event: Value::Object(body) }))),
            Answer::Push => pusher.push(event, Value::Object(body)),
        }
    }

    /// Subscriptions and timers the last callback asked for.
    fn apply_requests(&mut self, sender: &mpsc::Sender<Inbox>) {
        for topic in std::mem::take(&mut self.ctx.subscribe) {
            if !self.subscriptions.iter().any(|(t, _)| *t == topic) {
                self.attach(&topic, sender);
            }
        }
        for (delay, event, payload) in std::mem::take(&mut self.ctx.timers) {
            let sender = sender.downgrade();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Some(sender) = sender.upgrade() {
                    let info = Broadcast {
                        topic: Arc::from(""),
                        event: Arc::from(event.as_str()),
                        payload: fawkes_pubsub::Payload::Json(payload),
                        origin: None,
                    };
                    let _ = sender.try_send(Inbox::Info(Arc::new(info)));
                }
            });
        }
    }

    fn attach(&mut self, topic: &str, sender: &mpsc::Sender<Inbox>) {
        let id = self
            .live
            .bus
            .attach(topic, Arc::new(InboxSink(sender.clone())));
        self.subscriptions.push((topic.to_owned(), id));
    }
}
