//! What an application implements for a live page, and what its callbacks can ask of the
//! runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use fawkes_pubsub::{Broadcast, PubSub};
use serde_json::Value;

use crate::params::{Event, Params};
use crate::rendered::Rendered;

/// One live page. The runtime keeps one per connected browser tab in a task of its own, calls
/// these one at a time, and after each call sends the client what changed in [`LiveView::render`].
#[async_trait]
pub trait LiveView<S: Send + Sync + 'static>: Send + 'static {
    /// Loads the page's state. `params` holds the path parameters and the query string. Runs for
    /// the plain HTTP render and again when the socket joins (then `ctx.connected()` is true:
    /// the place to subscribe to topics).
    async fn mount(
        &mut self,
        session: &S,
        params: &Params,
        ctx: &mut LiveContext,
    ) -> Result<(), Refusal>;

    /// The URL changed without leaving the page (a patch link, Back, or `push_patch`); also
    /// runs after mount.
    async fn handle_params(&mut self, _params: &Params, _ctx: &mut LiveContext) {}

    /// A user event (`phx-click`, `phx-change`, `phx-submit`, keys, hooks).
    async fn handle_event(&mut self, session: &S, event: Event, ctx: &mut LiveContext);

    /// A broadcast on a topic the view subscribed to, or a message it scheduled with
    /// [`LiveContext::send_after`] (topic `""`).
    async fn handle_info(&mut self, _session: &S, _info: &Broadcast, _ctx: &mut LiveContext) {}

    fn render(&self, flash: &Flash) -> Rendered;

    /// The view ends (tab closed, navigation, connection lost).
    async fn terminate(&mut self) {}
}

/// Why a page cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Send the browser elsewhere (e.g. to the login page).
    #[error("redirect to {0}")]
    Redirect(String),
    #[error("not found")]
    NotFound,
}

/// Messages for the user, by kind (`info`, `error`), shown until cleared or the next page.
pub type Flash = BTreeMap<String, String>;

/// A change of URL asked by a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Navigation {
    /// Same view, new URL: `handle_params` runs, the browser's history gets an entry.
    Patch(String),
    /// Another live view over the same socket.
    Navigate(String),
    /// A full page load.
    Redirect(String),
}

/// What a callback may do besides changing its own state.
pub struct LiveContext {
    pub(crate) connected: bool,
    pub(crate) bus: PubSub,
    pub(crate) uri: String,
    pub(crate) title: Option<String>,
    pub(crate) flash: Flash,
    pub(crate) navigation: Option<Navigation>,
    pub(crate) events: Vec<(String, Value)>,
    pub(crate) reply: Option<Value>,
    pub(crate) subscribe: Vec<String>,
    pub(crate) timers: Vec<(Duration, String, Value)>,
}

impl LiveContext {
    pub(crate) fn new(bus: PubSub, uri: String, connected: bool) -> Self {
        Self {
            connected,
            bus,
            uri,
            title: None,
            flash: Flash::new(),
            navigation: None,
            events: Vec::new(),
            reply: None,
            subscribe: Vec::new(),
            timers: Vec::new(),
        }
    }

    /// False during the plain HTTP render, true once the socket joined.
    pub fn connected(&self) -> bool {
        self.connected
    }

    /// The bus, to broadcast to other views and channels.
    pub fn bus(&self) -> &PubSub {
        &self.bus
    }

    /// The page's current path and query.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    pub fn set_title(&mut self, title: impl Into<String>) {
        self.title = Some(title.into());
    }

    pub fn put_flash(&mut self, kind: &str, message: impl Into<String>) {
        self.flash.insert(kind.to_owned(), message.into());
    }

    pub fn clear_flash(&mut self, kind: &str) {
        self.flash.remove(kind);
    }

    /// Receive the topic's broadcasts in `handle_info` (only when connected).
    pub fn subscribe(&mut self, topic: impl Into<String>) {
        if self.connected {
            self.subscribe.push(topic.into());
        }
    }

    /// Calls `handle_info` with `event` and `payload` (topic `""`) after `delay`.
    pub fn send_after(&mut self, delay: Duration, event: &str, payload: Value) {
        if self.connected {
            self.timers.push((delay, event.to_owned(), payload));
        }
    }

    /// Dispatches `phx:<name>` in the browser, for hooks (`this.handleEvent`).
    pub fn push_event(&mut self, name: &str, payload: Value) {
        self.events.push((name.to_owned(), payload));
    }

    /// The answer to a hook's `pushEvent` promise.
    pub fn reply(&mut self, payload: Value) {
        self.reply = Some(payload);
    }

    pub fn push_patch(&mut self, to: impl Into<String>) {
        self.navigation = Some(Navigation::Patch(to.into()));
    }

    pub fn push_navigate(&mut self, to: impl Into<String>) {
        self.navigation = Some(Navigation::Navigate(to.into()));
    }

    pub fn redirect(&mut self, to: impl Into<String>) {
        self.navigation = Some(Navigation::Redirect(to.into()));
    }
}
