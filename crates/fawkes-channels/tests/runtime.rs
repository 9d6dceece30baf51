//! The channel runtime with a small test app of its own: the protocol rules that the Fawkes
//! app's channels never trigger (crashes, stops, intercepts, async replies), checked on the wire.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fawkes_channels::{
    Channel, ChannelContext, ConnectRefusal, ConnectRequest, Endpoint, HandleIn, HandleOut,
    Payload, Reply, SocketConfig, SocketHandler,
};
use fawkes_pubsub::PubSub;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

struct TestApp;

#[async_trait]
impl SocketHandler for TestApp {
    type Assigns = String;

    async fn connect(&self, request: &ConnectRequest) -> Result<String, ConnectRefusal> {
        request
            .params
            .get("user")
            .cloned()
            .ok_or(ConnectRefusal::Forbidden)
    }

    fn socket_ids(&self, user: &String) -> Vec<String> {
        vec![format!("user_socket:{user}")]
    }

    fn channel(&self, topic: &str) -> Option<Box<dyn Channel<String>>> {
        topic
            .starts_with("test:")
            .then(|| Box::new(TestChannel) as Box<dyn Channel<String>>)
    }
}

struct TestChannel;

#[async_trait]
impl Channel<String> for TestChannel {
    async fn join(
        &mut self,
        payload: Payload,
        ctx: &mut ChannelContext<String>,
    ) -> Result<Value, Value> {
        match payload.as_json().and_then(|p| p["mode"].as_str()) {
            Some("crash") => panic!("join crashes on purpose"),
            Some("refuse") => Err(json!({"reason": "refused"})),
            _ => Ok(json!({"user": ctx.assigns()})),
        }
    }

    async fn handle_in(
        &mut self,
        event: &str,
        payload: Payload,
        ctx: &mut ChannelContext<String>,
    ) -> HandleIn {
        match event {
            "echo" => HandleIn::Reply(Reply::ok(payload)),
            "later" => {
                let reply = ctx.reply_later();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    reply.send(Reply::ok(json!({"late": true})));
                });
                HandleIn::NoReply
            }
            "push" => {
                ctx.push("pushed", json!({"n": 1}));
                HandleIn::NoReply
            }
            "shout" => {
                ctx.broadcast("shout", payload);
                HandleIn::NoReply
            }
            "censored" => {
                ctx.broadcast("censored", payload);
                HandleIn::NoReply
            }
            "stop" => HandleIn::Stop(Some(Reply::ok(json!({"bye": true})))),
            "crash" => panic!("handle_in crashes on purpose"),
            _ => HandleIn::Reply(Reply::reason("unknown_event")),
        }
    }

    fn intercepts(&self) -> &'static [&'static str] {
        &["censored"]
    }

    async fn handle_out(
        &mut self,
        _event: &str,
        payload: Payload,
        _ctx: &mut ChannelContext<String>,
    ) -> HandleOut {
        if payload.as_json().is_some_and(|p| p["secret"].is_string()) {
            HandleOut::Drop
        } else {
            HandleOut::Push(json!({"intercepted": true}).into())
        }
    }
}

struct Server {
    url: String,
    bus: PubSub,
}

async fn start() -> Server {
    let bus = PubSub::new();
    let router = axum::Router::new().nest(
        "/socket",
        fawkes_channels::router(
            Endpoint::new(bus.clone()),
            Arc::new(TestApp),
            SocketConfig::default(),
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        url: format!("ws://{addr}/socket/websocket?user=ada&vsn=2.0.0"),
        bus,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &Server) -> Ws {
    tokio_tungstenite::connect_async(server.url.as_str())
        .await
        .expect("connects")
        .0
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string()))
        .await
        .expect("sent");
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time");
        match frame {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).expect("JSON"),
            Some(Ok(Message::Close(frame))) => {
                return json!({"closed": frame.map(|f| u16::from(f.code))});
            }
            Some(Ok(_)) => continue,
            other => panic!("connection ended: {other:?}"),
        }
    }
}

async fn joined(ws: &mut Ws, topic: &str) {
    send(ws, json!(["1", "1", topic, "phx_join", {}])).await;
    assert_eq!(next(ws).await[4]["status"], "ok");
}

#[tokio::test]
async fn a_crashing_join_answers_join_crashed_r6() {
    let server = start().await;
    let mut ws = connect(&server).await;
    send(
        &mut ws,
        json!(["1", "1", "test:a", "phx_join", {"mode": "crash"}]),
    )
    .await;
    assert_eq!(
        next(&mut ws).await,
        json!(["1", "1", "test:a", "phx_reply", {"status": "error", "response": {"reason": "join crashed"}}])
    );
    send(
        &mut ws,
        json!(["2", "2", "test:a", "phx_join", {"mode": "refuse"}]),
    )
    .await;
    assert_eq!(
        next(&mut ws).await,
        json!(["2", "2", "test:a", "phx_reply", {"status": "error", "response": {"reason": "refused"}}])
    );
    joined(&mut ws, "test:a").await;
}

#[tokio::test]
async fn a_crashing_handler_sends_phx_error_and_the_connection_lives_on() {
    let server = start().await;
    let mut ws = connect(&server).await;
    joined(&mut ws, "test:a").await;
    send(&mut ws, json!(["1", "2", "test:a", "crash", {}])).await;
    assert_eq!(
        next(&mut ws).await,
        json!(["1", "1", "test:a", "phx_error", {"reason": "channel_crash"}])
    );
    send(&mut ws, json!(["1", "3", "test:a", "echo", {}])).await;
    assert_eq!(
        next(&mut ws).await[4]["response"]["reason"],
        "unmatched topic",
        "the crashed channel is gone"
    );
    joined(&mut ws, "test:a").await;
}

#[tokio::test]
async fn a_stopping_channel_replies_then_closes() {
    let server = start().await;
    let mut ws = connect(&server).await;
    joined(&mut ws, "test:a").await;
    send(&mut ws, json!(["1", "2", "test:a", "stop", {}])).await;
    assert_eq!(
        next(&mut ws).await,
        json!(["1", "2", "test:a", "phx_reply", {"status": "ok", "response": {"bye": true}}])
    );
    assert_eq!(
        next(&mut ws).await,
        json!(["1", "1", "test:a", "phx_close", {}])
    );
}

#[tokio::test]
async fn async_replies_and_pushes_carry_the_join_ref() {
    let server = start().await;
    let mut ws = connect(&server).await;
    joined(&mut ws, "test:a").await;
    send(&mut ws, json!(["1", "7", "test:a", "later", {}])).await;
    assert_eq!(
        next(&mut ws).await,
        json!(["1", "7", "test:a", "phx_reply", {"status": "ok", "response": {"late": true}}])
    );
    send(&mut ws, json!(["1", "8", "test:a", "push", {}])).await;
    assert_eq!(
        next(&mut ws).await,
        json!(["1", null, "test:a", "pushed", {"n": 1}])
    );
}

#[tokio::test]
async fn intercepted_broadcasts_go_through_handle_out() {
    let server = start().await;
    let mut ws = connect(&server).await;
    joined(&mut ws, "test:a").await;
    send(
        &mut ws,
        json!(["1", "2", "test:a", "censored", {"secret": "x"}]),
    )
    .await;
    send(
        &mut ws,
        json!(["1", "3", "test:a", "censored", {"public": 1}]),
    )
    .await;
    // The first is dropped by handle_out; the second is rewritten and pushed with the join_ref.
    assert_eq!(
        next(&mut ws).await,
        json!(["1", null, "test:a", "censored", {"intercepted": true}])
    );
    send(&mut ws, json!(["1", "4", "test:a", "shout", {"x": 1}])).await;
    assert_eq!(
        next(&mut ws).await,
        json!([null, null, "test:a", "shout", {"x": 1}])
    );
}

#[tokio::test]
async fn a_disconnect_broadcast_to_the_socket_id_closes_with_1001() {
    let server = start().await;
    let mut ws = connect(&server).await;
    joined(&mut ws, "test:a").await;
    server
        .bus
        .broadcast("user_socket:someone-else", "disconnect", json!({}));
    server.bus.broadcast("user_socket:ada", "ping", json!({}));
    send(&mut ws, json!([null, "5", "phoenix", "heartbeat", {}])).await;
    assert_eq!(
        next(&mut ws).await[1],
        "5",
        "other events and other ids leave the socket alone"
    );
    server
        .bus
        .broadcast("user_socket:ada", "disconnect", json!({}));
    assert_eq!(next(&mut ws).await, json!({"closed": 1001}));
}
