//! The live runtime: the plain HTTP render of a page, and the `lv:` channels of the `/live`
//! socket, each joined view running in a task of its own (spec: shared/specs/liveview.md).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fawkes_channels::{
    Channel, ChannelContext, ConnectRefusal, ConnectRequest, HandleIn, Payload, PushHandle, Reply,
    SocketHandler, StopReason,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::Rendered;
use crate::csrf::{csrf_valid, same_origin};
use crate::routes::{LiveRoutes, local_uri};
use crate::task::{Inbox, ViewTask};
use crate::token::Signer;
use crate::view::{Flash, LiveContext, Navigation, Refusal};

/// What the application provides besides its views: who the session of a page is.
#[async_trait]
pub trait LiveApp: Send + Sync + 'static {
    type Session: Send + Sync + 'static;

    /// Re-establishes the session from the claims the page was rendered with (checked again on
    /// every join, so a revoked sign-in stops working on reconnect).
    async fn session(&self, claims: &Value) -> Result<Self::Session, Refusal>;

    /// Topics on which a `disconnect` broadcast ends this session's views (sign-out,
    /// deactivation): the browser reloads and meets the login page.
    fn disconnect_topics(&self, claims: &Value) -> Vec<String>;
}

/// Settings of the runtime.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Reported in join replies; must equal the version of the served client bundle.
    pub client_version: &'static str,
    /// A page older than this reloads on reconnect instead of rejoining.
    pub session_max_age: Duration,
    /// Origins besides the page's own host allowed to open the live socket.
    pub allowed_origins: Vec<String>,
}

/// The live pages of an application.
pub struct Live<A: LiveApp> {
    pub(crate) app: Arc<A>,
    pub(crate) routes: LiveRoutes<A::Session>,
    pub(crate) signer: Signer,
    pub(crate) bus: fawkes_pubsub::PubSub,
    pub(crate) config: LiveConfig,
}

/// A page rendered over plain HTTP.
#[derive(Debug, Clone)]
pub struct PageRender {
    pub title: Option<String>,
    /// The live container with the view inside; put it in the page layout's body.
    pub html: String,
}

/// What a view's session token holds.
#[derive(Serialize, Deserialize)]
struct ViewSession {
    id: String,
    claims: Value,
}

const SESSION_PURPOSE: &str = "lv-session";
const FLASH_PURPOSE: &str = "lv-flash";
/// A flash survives one redirect; it need not last long.
const FLASH_MAX_AGE: Duration = Duration::from_secs(60);

impl<A: LiveApp> Live<A> {
    pub fn new(
        app: Arc<A>,
        routes: LiveRoutes<A::Session>,
        signer: Signer,
        bus: fawkes_pubsub::PubSub,
        config: LiveConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            app,
            routes,
            signer,
            bus,
            config,
        })
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// True when `uri` is a live page.
    pub fn serves(&self, uri: &str) -> bool {
        self.routes.pattern_of(uri).is_some()
    }

    /// The flash carried by a redirect (the `__phoenix_flash__` cookie the client sets).
    pub fn flash_from_token(&self, token: &str) -> Flash {
        self.signer
            .verify(FLASH_PURPOSE, token, FLASH_MAX_AGE)
            .unwrap_or_default()
    }

    /// A token carrying `flash` across a redirect (`None` when there is nothing to carry).
    pub fn flash_token(&self, flash: &Flash) -> Option<String> {
        (!flash.is_empty()).then(|| self.signer.sign(FLASH_PURPOSE, flash))
    }

    /// Renders `uri` for `session` over plain HTTP: the page a browser sees before its socket
    /// connects. `claims` is what the view's token carries to re-establish the session on join.
    pub async fn render_page(
        &self,
        uri: &str,
        session: &A::Session,
        claims: Value,
        flash: Flash,
    ) -> Result<PageRender, Refusal> {
        let mut matched = self.routes.find(uri).ok_or(Refusal::NotFound)?;
        let mut ctx = LiveContext::new(self.bus.clone(), uri.to_owned(), false);
        ctx.flash = flash;
        matched
            .view
            .mount(session, &matched.params, &mut ctx)
            .await?;
        if let Some(Navigation::Redirect(to) | Navigation::Navigate(to)) = ctx.navigation.take() {
            return Err(Refusal::Redirect(to));
        }
        matched.view.handle_params(&matched.params, &mut ctx).await;
        let inner = matched.view.render(&ctx.flash).to_html();
        let id = view_id();
        let token = self.signer.sign(
            SESSION_PURPOSE,
            &ViewSession {
                id: id.clone(),
                claims,
            },
        );
        Ok(PageRender {
            title: ctx.title,
            html: format!(
                r#"<div id="{id}" data-phx-main data-phx-session="{token}" data-phx-static="">{inner}</div>"#
            ),
        })
    }
}

/// `phx-` and 16 random letters and digits: a valid, unguessable element id.
fn view_id() -> String {
    let suffix: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect();
    format!("phx-{suffix}")
}

/// The `/live` socket: checks the CSRF token and Origin, then serves `lv:` topics.
pub struct LiveSocket<A: LiveApp> {
    live: Arc<Live<A>>,
}

impl<A: LiveApp> LiveSocket<A> {
    pub fn new(live: Arc<Live<A>>) -> Self {
        Self { live }
    }
}

#[async_trait]
impl<A: LiveApp> SocketHandler for LiveSocket<A> {
    type Assigns = ();

    async fn connect(&self, request: &ConnectRequest) -> Result<(), ConnectRefusal> {
        if !same_origin(&request.headers, &self.live.config.allowed_origins) {
            tracing::info!("live socket refused: foreign Origin");
            return Err(ConnectRefusal::Forbidden);
        }
        let token = request
            .params
            .get("_csrf_token")
            .ok_or(ConnectRefusal::Forbidden)?;
        if !csrf_valid(&self.live.signer, token, &request.headers) {
            tracing::info!("live socket refused: CSRF token does not match the browser");
            return Err(ConnectRefusal::Forbidden);
        }
        Ok(())
    }

    fn socket_ids(&self, _assigns: &()) -> Vec<String> {
        Vec::new()
    }

    fn channel(&self, topic: &str) -> Option<Box<dyn Channel<()>>> {
        topic.starts_with("lv:").then(|| {
            Box::new(LiveChannel {
                live: self.live.clone(),
                joined: None,
                inbox: None,
            }) as Box<dyn Channel<()>>
        })
    }
}

/// One `lv:` topic of one socket: mounts on join, then hands the view to its task.
struct LiveChannel<A: LiveApp> {
    live: Arc<Live<A>>,
    /// The mounted view, between the join and the task's start.
    joined: Option<ViewTask<A>>,
    inbox: Option<mpsc::Sender<Inbox>>,
}

/// How many client events and broadcasts may wait for a busy view.
const INBOX_CAPACITY: usize = 256;

#[async_trait]
impl<A: LiveApp> Channel<()> for LiveChannel<A> {
    async fn join(
        &mut self,
        payload: Payload,
        ctx: &mut ChannelContext<()>,
    ) -> Result<Value, Value> {
        let Payload::Json(payload) = payload else {
            return Err(json!({"reason": "unauthorized"}));
        };
        let (task, reply) = Self::mount(&self.live, &payload, ctx).await?;
        self.joined = Some(task);
        Ok(reply)
    }

    async fn after_join(&mut self, ctx: &mut ChannelContext<()>) {
        if let Some(task) = self.joined.take() {
            let (sender, receiver) = mpsc::channel(INBOX_CAPACITY);
            task.start(sender.clone(), receiver, ctx.pusher());
            self.inbox = Some(sender);
        }
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        ctx: &mut ChannelContext<()>,
    ) -> HandleIn {
        let Payload::Json(payload) = payload else {
            return HandleIn::Reply(Reply::ok(json!({})));
        };
        let Some(inbox) = &self.inbox else {
            return HandleIn::Reply(Reply::reason("not joined"));
        };
        let message = Inbox::Client {
            event: event.to_owned(),
            payload,
            reply: ctx.reply_later(),
        };
        if inbox.try_send(message).is_err() {
            // The view is gone (it crashed) or hopelessly behind: the client rejoins afresh.
            return HandleIn::Stop(Some(Reply::reason("view unavailable")));
        }
        HandleIn::NoReply
    }

    async fn terminate(&mut self, _reason: StopReason, _ctx: &mut ChannelContext<()>) {
        if let Some(inbox) = self.inbox.take() {
            let _ = inbox.try_send(Inbox::Stop);
        }
    }
}

impl<A: LiveApp> LiveChannel<A> {
    /// Verifies the session token, routes by the URL, mounts and renders.
    async fn mount(
        live: &Arc<Live<A>>,
        payload: &Value,
        ctx: &ChannelContext<()>,
    ) -> Result<(ViewTask<A>, Value), Value> {
        let unauthorized = || json!({"reason": "unauthorized"});
        let token = payload
            .get("session")
            .and_then(Value::as_str)
            .ok_or_else(unauthorized)?;
        let session: ViewSession = live
            .signer
            .verify(SESSION_PURPOSE, token, live.config.session_max_age)
            .map_err(|_| json!({"reason": "stale"}))?;
        if ctx.topic().strip_prefix("lv:") != Some(session.id.as_str()) {
            return Err(unauthorized());
        }
        let url = payload
            .get("redirect")
            .or_else(|| payload.get("url"))
            .and_then(Value::as_str)
            .and_then(local_uri)
            .ok_or_else(unauthorized)?;
        let app_session = live
            .app
            .session(&session.claims)
            .await
            .map_err(refusal_reply)?;
        let mut matched = live
            .routes
            .find(&url)
            .ok_or_else(|| refusal_reply(Refusal::NotFound))?;
        let mut lctx = LiveContext::new(live.bus.clone(), url.clone(), true);
        if let Some(flash) = payload.get("flash").and_then(Value::as_str) {
            lctx.flash = live.flash_from_token(flash);
        }
        matched
            .view
            .mount(&app_session, &matched.params, &mut lctx)
            .await
            .map_err(refusal_reply)?;
        let mut response = Map::new();
        match lctx.navigation.take() {
            Some(Navigation::Redirect(to)) => {
                return Err(json!({"redirect": {"to": to}}));
            }
            Some(Navigation::Navigate(to)) => {
                return Err(json!({"live_redirect": {"to": to, "kind": "push"}}));
            }
            Some(Navigation::Patch(to)) => {
                response.insert("live_patch".into(), json!({"to": to, "kind": "replace"}));
            }
            None => {}
        }
        matched.view.handle_params(&matched.params, &mut lctx).await;
        let rendered: Rendered = matched.view.render(&lctx.flash);
        let mut tree = match rendered.to_json() {
            Value::Object(tree) => tree,
            _ => Map::new(),
        };
        if let Some(title) = &lctx.title {
            tree.insert("t".into(), Value::String(title.clone()));
        }
        response.insert("rendered".into(), Value::Object(tree));
        response.insert("liveview_version".into(), json!(live.config.client_version));
        let task = ViewTask::new(
            live.clone(),
            matched.view,
            app_session,
            session.claims,
            matched.pattern,
            lctx,
            rendered,
        );
        Ok((task, Value::Object(response)))
    }
}

fn refusal_reply(refusal: Refusal) -> Value {
    match refusal {
        Refusal::Redirect(to) => json!({"redirect": {"to": to}}),
        Refusal::NotFound => json!({"redirect": {"to": "/"}}),
    }
}

/// Pushes to a view's client: the channel's handle, kept by the task.
pub(crate) type Pusher = PushHandle;
