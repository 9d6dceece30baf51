//! The live runtime on the wire with a small app of its own: joins, events, navigation, hooks,
//! bus messages, crashes and rejoins, exactly as the phoenix_live_view client sees them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fawkes_channels::{Endpoint, SocketConfig};
use fawkes_live::{
    Event, Flash, Live, LiveApp, LiveConfig, LiveContext, LiveRoutes, LiveSocket, LiveView, Params,
    Refusal, Rendered, Signer, csrf_token, html,
};
use fawkes_pubsub::{Broadcast, PubSub};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

struct App;

#[async_trait]
impl LiveApp for App {
    type Session = ();

    async fn session(&self, claims: &Value) -> Result<(), Refusal> {
        match claims["user"].as_str() {
            Some("revoked") => Err(Refusal::Redirect("/login".into())),
            _ => Ok(()),
        }
    }

    fn disconnect_topics(&self, _claims: &Value) -> Vec<String> {
        vec!["session:1".into()]
    }
}

#[derive(Default)]
struct Counter {
    count: u64,
    page: String,
}

#[async_trait]
impl LiveView<()> for Counter {
    async fn mount(&mut self, _: &(), _: &Params, ctx: &mut LiveContext) -> Result<(), Refusal> {
        ctx.set_title("Count 0");
        ctx.subscribe("ticks");
        Ok(())
    }

    async fn handle_params(&mut self, params: &Params, _: &mut LiveContext) {
        self.page = params.text("page").to_owned();
    }

    async fn handle_event(&mut self, _: &(), event: Event, ctx: &mut LiveContext) {
        match event.name.as_str() {
            "inc" => {
                self.count += 1;
                ctx.set_title(format!("Count {}", self.count));
            }
            "patch" => ctx.push_patch("/counter?page=10"),
            "go" => ctx.push_navigate("/other"),
            "away" => {
                ctx.put_flash("info", "bye");
                ctx.redirect("/");
            }
            "ping" => {
                let n = event.value["n"].as_u64().unwrap_or(0);
                ctx.reply(json!({"pong": n + 1}));
                ctx.push_event("said", json!({"msg": "hello"}));
            }
            "crash" => panic!("a view crashes on purpose"),
            _ => {}
        }
    }

    async fn handle_info(&mut self, _: &(), info: &Broadcast, _: &mut LiveContext) {
        if &*info.event == "tick" {
            self.count += 10;
        }
    }

    fn render(&self, _flash: &Flash) -> Rendered {
        let (count, page) = (self.count, self.page.as_str());
        html!(r#"<p id="count">{count}</p><p id="page">{page}</p>"#)
    }
}

#[derive(Default)]
struct Other;

#[async_trait]
impl LiveView<()> for Other {
    async fn mount(&mut self, _: &(), _: &Params, _: &mut LiveContext) -> Result<(), Refusal> {
        Ok(())
    }

    async fn handle_event(&mut self, _: &(), _: Event, _: &mut LiveContext) {}

    fn render(&self, _flash: &Flash) -> Rendered {
        html!("<p>other</p>")
    }
}

struct Server {
    live: Arc<Live<App>>,
    bus: PubSub,
    base: String,
}

const SECRET: &str = "browser-secret";

async fn start() -> Server {
    let bus = PubSub::new();
    let routes = LiveRoutes::default()
        .live("/counter", Counter::default)
        .live("/other", Other::default);
    let config = LiveConfig {
        client_version: "1.2.12",
        session_max_age: Duration::from_secs(3600),
        allowed_origins: Vec::new(),
    };
    let live = Live::new(
        Arc::new(App),
        routes,
        Signer::new(b"k"),
        bus.clone(),
        config,
    );
    let socket = LiveSocket::new(live.clone());
    let router = axum::Router::new().nest(
        "/live",
        fawkes_channels::router(
            Endpoint::new(bus.clone()),
            Arc::new(socket),
            SocketConfig::default(),
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        live,
        bus,
        base: format!("127.0.0.1:{}", addr.port()),
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Client {
    ws: Ws,
    topic: String,
    session: String,
    join_ref: String,
}

impl Server {
    /// Renders `path` over "HTTP" for `user` and joins it over a new socket.
    async fn open(&self, path: &str, user: &str) -> (Client, Value) {
        let page = self
            .live
            .render_page(path, &(), json!({"user": user}), Flash::new())
            .await
            .expect("renders");
        let id = between(&page.html, "id=\"", "\"");
        let session = between(&page.html, "data-phx-session=\"", "\"");
        let csrf = csrf_token(self.live.signer(), SECRET);
        let url = format!(
            "ws://{}/live/websocket?_csrf_token={csrf}&vsn=2.0.0",
            self.base
        );
        let mut request = url.into_client_request().expect("request");
        let headers = request.headers_mut();
        headers.insert(
            "cookie",
            format!("_fawkes_csrf={SECRET}").parse().expect("header"),
        );
        headers.insert(
            "origin",
            format!("http://{}", self.base).parse().expect("header"),
        );
        headers.insert("host", self.base.parse().expect("header"));
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("connects");
        let mut client = Client {
            ws,
            topic: format!("lv:{id}"),
            session,
            join_ref: String::new(),
        };
        let reply = client
            .join("1", &format!("http://{}{path}", self.base), "url")
            .await;
        (client, reply)
    }
}

fn between(text: &str, start: &str, end: &str) -> String {
    let from = text.find(start).expect("start") + start.len();
    let len = text[from..].find(end).expect("end");
    text[from..from + len].to_owned()
}

impl Client {
    async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .expect("sent");
    }

    async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.ws.next())
                .await
                .expect("a frame in time")
                .expect("open")
                .expect("frame");
            if let Message::Text(text) = frame {
                let frame: Value = serde_json::from_str(&text).expect("json");
                // The close of a join the client already replaced or left: it ignores those.
                if frame[3] != "phx_close" {
                    return frame;
                }
            }
        }
    }

    async fn join(&mut self, join_ref: &str, url: &str, key: &str) -> Value {
        self.join_ref = join_ref.to_owned();
        let payload =
            json!({key: url, "params": {"_mounts": 0}, "session": self.session, "static": null});
        self.send(json!([join_ref, join_ref, self.topic, "phx_join", payload]))
            .await;
        self.next().await
    }

    async fn push(&mut self, msg_ref: &str, event: &str, payload: Value) {
        let (topic, join_ref) = (self.topic.clone(), self.join_ref.clone());
        self.send(json!([join_ref, msg_ref, topic, event, payload]))
            .await;
    }

    async fn click(&mut self, msg_ref: &str, name: &str) -> Value {
        self.push(
            msg_ref,
            "event",
            json!({"type": "click", "event": name, "value": {}}),
        )
        .await;
        self.next().await
    }
}

fn response(frame: &Value) -> &Value {
    assert_eq!(frame[3], "phx_reply", "{frame}");
    assert_eq!(frame[4]["status"], "ok", "{frame}");
    &frame[4]["response"]
}

#[tokio::test]
async fn a_join_renders_the_view_and_events_send_only_what_changed() {
    let server = start().await;
    let (mut client, reply) = server.open("/counter?page=1", "ada").await;
    let joined = response(&reply);
    assert_eq!(joined["liveview_version"], "1.2.12");
    assert_eq!(
        joined["rendered"]["s"],
        json!(["<p id=\"count\">", "</p><p id=\"page\">", "</p>"])
    );
    assert_eq!(joined["rendered"]["t"], "Count 0");
    assert_eq!(joined["rendered"]["1"], "1");
    let reply = client.click("2", "inc").await;
    assert_eq!(
        response(&reply),
        &json!({"diff": {"0": "1", "t": "Count 1"}})
    );
    let reply = client.click("3", "nothing").await;
    assert_eq!(
        response(&reply),
        &json!({}),
        "nothing changed, nothing sent"
    );
    client
        .push("4", "cids_destroyed", json!({"cids": []}))
        .await;
    assert_eq!(
        response(&client.next().await),
        &json!({}),
        "unknown messages get their reply"
    );
}

#[tokio::test]
async fn patches_navigation_and_redirects() {
    let server = start().await;
    let base = server.base.clone();
    let (mut client, _) = server.open("/counter?page=1", "ada").await;
    client
        .push(
            "2",
            "live_patch",
            json!({"url": format!("http://{base}/counter?page=2")}),
        )
        .await;
    assert_eq!(response(&client.next().await), &json!({"diff": {"1": "2"}}));
    client
        .push(
            "3",
            "live_patch",
            json!({"url": format!("http://{base}/other")}),
        )
        .await;
    assert_eq!(
        response(&client.next().await),
        &json!({"link_redirect": true})
    );

    let pushed = client.click("4", "patch").await;
    assert_eq!(
        pushed[3], "live_patch",
        "the patch is pushed before the reply: {pushed}"
    );
    assert_eq!(pushed[4], json!({"to": "/counter?page=10", "kind": "push"}));
    assert_eq!(
        response(&client.next().await),
        &json!({"diff": {"1": "10"}})
    );

    let reply = client.click("5", "go").await;
    assert_eq!(
        response(&reply),
        &json!({"live_redirect": {"to": "/other", "kind": "push"}})
    );
    let reply = client.click("6", "away").await;
    let redirect = &response(&reply)["redirect"];
    assert_eq!(redirect["to"], "/");
    let flash = redirect["flash"]
        .as_str()
        .expect("the flash travels with the redirect");
    assert_eq!(
        server
            .live
            .flash_from_token(flash)
            .get("info")
            .map(String::as_str),
        Some("bye")
    );

    // live_redirect: the client leaves and joins the same topic with the new URL.
    let topic = client.topic.clone();
    client.send(json!(["1", "7", topic, "phx_leave", {}])).await;
    response(&client.next().await);
    let reply = client
        .join("8", &format!("http://{base}/other"), "redirect")
        .await;
    assert_eq!(response(&reply)["rendered"]["s"], json!(["<p>other</p>"]));
}

#[tokio::test]
async fn hooks_get_replies_and_events_and_bus_messages_push_diffs() {
    let server = start().await;
    let (mut client, _) = server.open("/counter", "ada").await;
    client
        .push(
            "2",
            "event",
            json!({"type": "hook", "event": "ping", "value": {"n": 41}}),
        )
        .await;
    let reply = client.next().await;
    let diff = &response(&reply)["diff"];
    assert_eq!(diff["r"], json!({"pong": 42}));
    assert_eq!(diff["e"], json!([["said", {"msg": "hello"}]]));
    server.bus.broadcast("ticks", "tick", json!({}));
    let pushed = client.next().await;
    assert_eq!(
        (pushed[1].clone(), pushed[3].clone()),
        (Value::Null, json!("diff"))
    );
    assert_eq!(pushed[4], json!({"0": "10"}));
}

#[tokio::test]
async fn a_crashed_view_tells_the_client_to_rejoin_and_a_rejoin_mounts_afresh() {
    let server = start().await;
    let base = server.base.clone();
    let (mut client, _) = server.open("/counter", "ada").await;
    client.click("2", "inc").await;
    client
        .push(
            "3",
            "event",
            json!({"type": "click", "event": "crash", "value": {}}),
        )
        .await;
    let frame = client.next().await;
    assert_eq!(frame[3], "phx_error", "{frame}");
    let reply = client
        .join("4", &format!("http://{base}/counter"), "url")
        .await;
    assert_eq!(
        response(&reply)["rendered"]["0"],
        "0",
        "mounted again from scratch"
    );
    let reply = client.click("5", "inc").await;
    assert_eq!(response(&reply)["diff"]["0"], "1");
}

#[tokio::test]
async fn a_revoked_session_is_sent_to_log_in_and_a_disconnect_reloads_the_page() {
    let server = start().await;
    let (_, reply) = server.open("/counter", "revoked").await;
    assert_eq!(reply[4]["status"], "error");
    assert_eq!(reply[4]["response"], json!({"redirect": {"to": "/login"}}));
    let (mut client, _) = server.open("/counter?page=3", "ada").await;
    server.bus.broadcast("session:1", "disconnect", json!({}));
    let pushed = client.next().await;
    assert_eq!(pushed[3], "redirect");
    assert_eq!(pushed[4]["to"], "/counter?page=3");
}
