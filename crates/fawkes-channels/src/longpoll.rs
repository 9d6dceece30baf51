//! The LongPoll transport: `GET|POST|OPTIONS <mount>/longpoll` (spec §4).
//!
//! A session stands in for a WebSocket connection: POSTs bring client frames (ndjson), GETs
//! take the server's frames, holding up to one window when there are none. Every answer is HTTP
//! 200 with the real status in the JSON body, as phoenix.js expects. A session that sees no GET
//! for 1.5 windows ends, and its channels with it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::SocketState;
use crate::connection::{Connection, Flow};
use crate::endpoint::{ConnectionHandle, Inbox, Outbound};
use crate::handler::{ConnectRequest, SocketHandler};
use crate::handshake::{origin_allowed, parse_query};
use crate::message::Message;
use crate::serializer::{Frame, Serializer};
use fawkes_pubsub::Broadcast;

/// Frames one POST may carry (phoenix.js never sends more).
const MAX_BATCH: usize = 100;

/// Marks session tokens. phoenix.js sends the session token as a `token` query parameter, the
/// name apps also use for their own token; the prefix tells the two apart.
const SESSION_PREFIX: &str = "lp.";

/// The app's params (with its own `token`, if any) and the session token, if any.
fn split_session_token(
    query: Option<&str>,
    headers: &HeaderMap,
) -> (HashMap<String, String>, Option<String>) {
    let mut params = parse_query(query);
    let mut session = headers
        .get("x-phoenix-longpoll-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    params.remove("token");
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if key != "token" || value.is_empty() {
            continue;
        }
        if value.starts_with(SESSION_PREFIX) {
            session.get_or_insert_with(|| value.into_owned());
        } else {
            params.insert("token".to_owned(), value.into_owned());
        }
    }
    (params, session)
}

/// The sessions of one socket mount.
#[derive(Default)]
pub(crate) struct Sessions {
    live: Mutex<HashMap<String, Arc<Session>>>,
}

struct Session {
    /// Client frames for the session task, each acknowledged once handled.
    posts: mpsc::Sender<(Vec<Message>, oneshot::Sender<()>)>,
    /// The connection, whose queued frames the GETs take.
    connection: Arc<ConnectionHandle>,
    /// Held by the one GET that takes frames at a time.
    polling: tokio::sync::Mutex<()>,
    /// Milliseconds since `started` of the last GET.
    last_poll: AtomicU64,
    started: Instant,
}

impl Session {
    fn touch(&self) {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_poll.store(elapsed, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_poll.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }
}

pub(crate) async fn handle<H: SocketHandler>(
    State(state): State<Arc<SocketState<H>>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method == Method::OPTIONS {
        return preflight(&headers);
    }
    if !origin_allowed(&headers, &state.config.allowed_origins) {
        return status_only(403);
    }
    let (params, token) = split_session_token(query.as_deref(), &headers);
    let session = token.as_deref().and_then(|t| {
        state
            .sessions
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(t)
            .cloned()
    });
    let window = state.config.longpoll_window;
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-ndjson"));
    let elsewhere = token
        .as_deref()
        .and_then(node_of)
        .is_some_and(|node| node != state.endpoint.bus().node_id());
    let body = match (method, token, session) {
        (Method::GET, None, _) => return open(&state, params, &headers).await,
        (Method::GET, Some(token), Some(session)) => poll_body(window, &token, &session).await,
        (Method::POST, Some(_), Some(session)) => post_body(window, &session, ndjson, &body).await,
        (Method::GET, Some(token), None) if elsewhere => {
            forward(&state, &token, "poll", ndjson, &body).await
        }
        (Method::POST, Some(token), None) if elsewhere => {
            forward(&state, &token, "post", ndjson, &body).await
        }
        // A session token of ours that is no longer live: the client must start over.
        (Method::GET | Method::POST, _, _) => json!({ "status": 410 }),
        _ => return (axum::http::StatusCode::BAD_REQUEST, "").into_response(),
    };
    json_response(body)
}

/// A GET without a session: connect, and answer 410 with the new session's token.
async fn open<H: SocketHandler>(
    state: &Arc<SocketState<H>>,
    params: HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    if state.endpoint.is_draining() {
        // Phoenix's LongPoll client treats any other status as an error and retries.
        return status_only(503);
    }
    let Some(serializer) = Serializer::negotiate(params.get("vsn").map(String::as_str)) else {
        return status_only(403);
    };
    let auth_token = headers
        .get("x-phoenix-authtoken")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request = ConnectRequest {
        params,
        auth_token,
        headers: headers.clone(),
    };
    let assigns = match state.handler.connect(&request).await {
        Ok(assigns) => assigns,
        Err(refusal) => return status_only(refusal.status().as_u16()),
    };
    let mut bytes = [0u8; 24];
    rand_fill(&mut bytes);
    // The issuing node is part of the token, so any node can route a request to the session.
    let node = state.endpoint.bus().node_id().to_owned();
    let token = format!("{SESSION_PREFIX}{node}.{}", URL_SAFE_NO_PAD.encode(bytes));
    let (posts, posts_rx) = mpsc::channel(16);
    let handle = Arc::new(ConnectionHandle::new(
        serializer,
        state.config.outbound_queue,
        state.endpoint.stats().clone(),
    ));
    let session = Arc::new(Session {
        posts,
        connection: handle.clone(),
        polling: tokio::sync::Mutex::new(()),
        last_poll: AtomicU64::new(0),
        started: Instant::now(),
    });
    state
        .sessions
        .live
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token.clone(), session.clone());
    let live = state.endpoint.register_live(handle.clone());
    // Subscribed before the client learns the token, so a first request that lands on
    // another node and is forwarded here is never missed.
    let forwarded = state.endpoint.bus().subscribe(&session_topic(&token), 64);
    // The session outlives this request; its span names it by a socket id, not by its token.
    let span =
        tracing::info_span!("socket", socket_id = %crate::new_socket_id(), transport = "longpoll");
    tokio::spawn(
        run(
            state.clone(),
            token.clone(),
            session,
            Arc::new(assigns),
            handle,
            (posts_rx, forwarded),
            live,
        )
        .instrument(span),
    );
    json_response(json!({ "status": 410, "token": token, "messages": [] }))
}

/// What a session's task listens to besides its connection's inbox: posted frames, and polls
/// and posts forwarded from other nodes.
type SessionInputs = (
    mpsc::Receiver<(Vec<Message>, oneshot::Sender<()>)>,
    fawkes_pubsub::Subscription,
);

/// The session's task: handles posted frames in order, like a WebSocket connection's reader.
async fn run<H: SocketHandler>(
    state: Arc<SocketState<H>>,
    token: String,
    session: Arc<Session>,
    assigns: Arc<H::Assigns>,
    handle: Arc<ConnectionHandle>,
    (mut posts, mut forwarded): SessionInputs,
    live: crate::endpoint::LiveGuard,
) {
    let endpoint = state.endpoint.clone();
    let stats = endpoint.stats().clone();
    stats.longpoll_sessions.fetch_add(1, Ordering::Relaxed);
    tracing::debug!("longpoll session opened");
    let expiry = state.config.longpoll_window.mul_f32(1.5);
    let disconnects =
        crate::disconnect::watch(&endpoint, state.handler.socket_ids(&assigns), &handle);
    let mut connection = Connection::new(
        state.handler.clone(),
        endpoint.clone(),
        assigns,
        handle.clone(),
        &state.config,
    );
    let mut check = tokio::time::interval(expiry / 3);
    let bus = endpoint.bus().clone();
    loop {
        tokio::select! {
            request = forwarded.recv() => {
                if let Some(request) = request {
                    let window = state.config.longpoll_window;
                    tokio::spawn(answer_forwarded(bus.clone(), window, token.clone(), session.clone(), request).in_current_span());
                }
            }
            posted = posts.recv() => {
                let Some((messages, done)) = posted else { break };
                session.touch();
                let mut flow = Flow::Continue;
                for message in messages {
                    flow = connection.handle(message).await;
                    if flow != Flow::Continue {
                        break;
                    }
                }
                let _ = done.send(());
                if flow != Flow::Continue {
                    break;
                }
            }
            message = handle.mailbox.next_inbox() => match message {
                Some(Inbox::Intercepted { channel_id, message }) => connection.intercepted(channel_id, message).await,
                Some(Inbox::Close(..)) | None => break,
            },
            _ = check.tick() => {
                if session.idle_for() > expiry {
                    break;
                }
            }
        }
    }
    state
        .sessions
        .live
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&token);
    connection.close_all().await;
    // A GET waiting on the session now answers 410.
    handle.mailbox.close();
    disconnects.detach(&endpoint);
    stats.longpoll_sessions.fetch_sub(1, Ordering::Relaxed);
    drop(live);
    tracing::debug!("longpoll session ended");
}

/// A GET on a live session: whatever is queued, or wait up to one window for something.
/// A GET's answer: whatever is queued, or whatever arrives within one window.
async fn poll_body(window: Duration, token: &str, session: &Session) -> Value {
    session.touch();
    let _turn = session.polling.lock().await;
    let mailbox = &session.connection.mailbox;
    let first = tokio::time::timeout(window, mailbox.next_frame()).await;
    session.touch();
    let first = match first {
        Err(_) => return json!({ "status": 204, "token": token, "messages": [] }),
        Ok(None) => return json!({ "status": 410 }),
        Ok(Some(frame)) => frame,
    };
    let mut messages = Vec::new();
    let mut next = Some(first);
    while let Some(item) = next.take() {
        match item {
            Outbound::Frame(Frame::Text(text)) => messages.push(Value::String(text.to_string())),
            // Binary frames cannot travel in a JSON string array; Phoenix does not support them here either.
            Outbound::Frame(Frame::Binary(_)) => {
                tracing::debug!("binary frame dropped on LongPoll")
            }
            Outbound::Close(..) => break,
        }
        if messages.len() < MAX_BATCH {
            next = mailbox.try_next_frame();
        }
    }
    json!({ "status": 200, "token": token, "messages": messages })
}

/// The frames of a LongPoll POST body: one frame, or with `ndjson` one per line (text frames as
/// JSON, binary ones base64-encoded), at most `MAX_BATCH`. `None` when any of them is malformed.
pub fn decode_body(ndjson: bool, body: &[u8]) -> Option<Vec<Message>> {
    let decode = |line: &str| -> Option<Message> {
        let serializer = Serializer::V2;
        if line.starts_with('[') || line.starts_with('{') {
            serializer.decode_text(line).ok()
        } else {
            STANDARD
                .decode(line)
                .ok()
                .and_then(|bytes| serializer.decode_binary(&bytes).ok())
        }
    };
    let text = std::str::from_utf8(body).ok()?;
    if !ndjson {
        return decode(text).map(|message| vec![message]);
    }
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .take(MAX_BATCH)
        .map(decode)
        .collect()
}

/// A POST's answer: its ndjson frames (text, or base64 binary) handed to the session in order.
async fn post_body(window: Duration, session: &Session, ndjson: bool, body: &[u8]) -> Value {
    let Some(messages) = decode_body(ndjson, body) else {
        return json!({ "status": 400 });
    };
    let (done, handled) = oneshot::channel();
    if session.posts.send((messages, done)).await.is_err() {
        return json!({ "status": 410 });
    }
    match tokio::time::timeout(window, handled).await {
        Ok(Ok(())) => json!({ "status": 200 }),
        Ok(Err(_)) => json!({ "status": 410 }),
        Err(_) => json!({ "status": 408 }),
    }
}

/// A request for a session that lives on another node: sent to it over the bus, and its answer
/// awaited here. Without a remote bus, or when the owner does not answer, the session is gone.
async fn forward<H: SocketHandler>(
    state: &SocketState<H>,
    token: &str,
    kind: &str,
    ndjson: bool,
    body: &[u8],
) -> Value {
    let bus = state.endpoint.bus();
    if bus.remote_status().is_none() {
        return json!({ "status": 410 });
    }
    let reply_to = format!("lp_reply:{}:{}", bus.node_id(), bus.next_id());
    let mut replies = bus.subscribe(&reply_to, 1);
    let request = json!({
        "reply_to": reply_to,
        "ndjson": ndjson,
        "body": String::from_utf8_lossy(body),
    });
    bus.broadcast(&session_topic(token), kind, request);
    let wait = state.config.longpoll_window + Duration::from_secs(5);
    match tokio::time::timeout(wait, replies.recv()).await {
        Ok(Some(reply)) => match &reply.payload {
            fawkes_pubsub::Payload::Json(value) => value.clone(),
            fawkes_pubsub::Payload::Binary(_) => json!({ "status": 410 }),
        },
        _ => json!({ "status": 410 }),
    }
}

/// Answers a request another node forwarded to one of this node's sessions.
async fn answer_forwarded(
    bus: fawkes_pubsub::PubSub,
    window: Duration,
    token: String,
    session: Arc<Session>,
    request: Arc<Broadcast>,
) {
    let fawkes_pubsub::Payload::Json(payload) = &request.payload else {
        return;
    };
    let Some(reply_to) = payload["reply_to"].as_str() else {
        return;
    };
    let body = match &*request.event {
        "poll" => poll_body(window, &token, &session).await,
        "post" => {
            let text = payload["body"].as_str().unwrap_or_default();
            post_body(
                window,
                &session,
                payload["ndjson"].as_bool().unwrap_or(true),
                text.as_bytes(),
            )
            .await
        }
        _ => return,
    };
    bus.broadcast(reply_to, "reply", body);
}

/// The bus topic on which other nodes reach the session `token`.
fn session_topic(token: &str) -> String {
    format!("lp:{token}")
}

/// The node a session token was issued by.
fn node_of(token: &str) -> Option<&str> {
    token.strip_prefix(SESSION_PREFIX)?.split('.').next()
}

fn preflight(headers: &HeaderMap) -> Response {
    let mut response = axum::http::StatusCode::OK.into_response();
    let out = response.headers_mut();
    out.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("get, post, options"),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("3600"),
    );
    if let Some(requested) = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
        out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, requested.clone());
    }
    response
}

fn status_only(status: u16) -> Response {
    json_response(json!({ "status": status }))
}

/// Always HTTP 200: the client reads the status from the body.
fn json_response(body: Value) -> Response {
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn rand_fill(bytes: &mut [u8]) {
    use rand::RngCore;
    rand::rng().fill_bytes(bytes);
}
