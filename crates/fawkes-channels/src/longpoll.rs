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

use crate::SocketState;
use crate::connection::Connection;
use crate::endpoint::{ConnectionHandle, Inbox, Outbound};
use crate::handler::{ConnectRequest, SocketHandler};
use crate::handshake::{origin_allowed, parse_query};
use crate::message::Message;
use crate::serializer::{Frame, Serializer};

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
    /// The server's frames, taken by one GET at a time.
    frames: tokio::sync::Mutex<mpsc::Receiver<Outbound>>,
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
    match (method, token, session) {
        (Method::GET, Some(token), Some(session)) => poll(&state, &token, &session).await,
        (Method::POST, Some(_), Some(session)) => post(&state, &session, &headers, &body).await,
        // A session token of ours that is no longer live: the client must start over.
        (Method::GET, Some(_), None) | (Method::POST, _, _) => status_only(410),
        (Method::GET, None, _) => open(&state, params, &headers).await,
        _ => (axum::http::StatusCode::BAD_REQUEST, "").into_response(),
    }
}

/// A GET without a session: connect, and answer 410 with the new session's token.
async fn open<H: SocketHandler>(
    state: &Arc<SocketState<H>>,
    params: HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
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
        peer: None,
    };
    let Some(assigns) = state.handler.connect(&request).await else {
        return status_only(403);
    };
    let mut bytes = [0u8; 24];
    rand_fill(&mut bytes);
    let token = format!("{SESSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let (outbound, frames) = mpsc::channel(state.config.outbound_queue);
    let (posts, posts_rx) = mpsc::channel(16);
    let (inbox, inbox_rx) = mpsc::unbounded_channel();
    let session = Arc::new(Session {
        posts,
        frames: tokio::sync::Mutex::new(frames),
        last_poll: AtomicU64::new(0),
        started: Instant::now(),
    });
    state
        .sessions
        .live
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(token.clone(), session.clone());
    let handle = Arc::new(ConnectionHandle::new(
        serializer,
        outbound,
        inbox,
        state.endpoint.stats().clone(),
    ));
    tokio::spawn(run(
        state.clone(),
        token.clone(),
        session,
        Arc::new(assigns),
        handle,
        posts_rx,
        inbox_rx,
    ));
    json_response(json!({ "status": 410, "token": token, "messages": [] }))
}

/// The session's task: handles posted frames in order, like a WebSocket connection's reader.
async fn run<H: SocketHandler>(
    state: Arc<SocketState<H>>,
    token: String,
    session: Arc<Session>,
    assigns: Arc<H::Assigns>,
    handle: Arc<ConnectionHandle>,
    mut posts: mpsc::Receiver<(Vec<Message>, oneshot::Sender<()>)>,
    mut inbox: mpsc::UnboundedReceiver<Inbox>,
) {
    let endpoint = state.endpoint.clone();
    let expiry = state.config.longpoll_window.mul_f32(1.5);
    let disconnects =
        crate::disconnect::watch(&endpoint, state.handler.socket_ids(&assigns), &handle);
    let mut connection = Connection::new(
        state.handler.clone(),
        endpoint.clone(),
        assigns,
        handle,
        state.config.max_channels,
    );
    let mut check = tokio::time::interval(expiry / 3);
    loop {
        tokio::select! {
            posted = posts.recv() => {
                let Some((messages, done)) = posted else { break };
                session.touch();
                for message in messages {
                    connection.handle(message).await;
                }
                let _ = done.send(());
            }
            message = inbox.recv() => match message {
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
    disconnects.detach(&endpoint);
}

/// A GET on a live session: whatever is queued, or wait up to one window for something.
async fn poll<H: SocketHandler>(
    state: &Arc<SocketState<H>>,
    token: &str,
    session: &Arc<Session>,
) -> Response {
    session.touch();
    let mut frames = session.frames.lock().await;
    let first = tokio::time::timeout(state.config.longpoll_window, frames.recv()).await;
    session.touch();
    let first = match first {
        Err(_) => return json_response(json!({ "status": 204, "token": token, "messages": [] })),
        Ok(None) => return status_only(410),
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
            next = frames.try_recv().ok();
        }
    }
    json_response(json!({ "status": 200, "token": token, "messages": messages }))
}

/// A POST: ndjson frames (text, or base64 binary) handed to the session in order.
async fn post<H: SocketHandler>(
    state: &Arc<SocketState<H>>,
    session: &Arc<Session>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let serializer_of = |line: &str| -> Option<Message> {
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
    let Ok(text) = std::str::from_utf8(body) else {
        return status_only(400);
    };
    let ndjson = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-ndjson"));
    let lines: Vec<&str> = if ndjson {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .take(MAX_BATCH)
            .collect()
    } else {
        vec![text]
    };
    let mut messages = Vec::with_capacity(lines.len());
    for line in lines {
        match serializer_of(line) {
            Some(message) => messages.push(message),
            None => return status_only(400),
        }
    }
    let (done, handled) = oneshot::channel();
    if session.posts.send((messages, done)).await.is_err() {
        return status_only(410);
    }
    match tokio::time::timeout(state.config.longpoll_window, handled).await {
        Ok(Ok(())) => status_only(200),
        Ok(Err(_)) => status_only(410),
        Err(_) => status_only(408),
    }
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
