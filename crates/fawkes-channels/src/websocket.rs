//! The WebSocket transport: `GET <mount>/websocket`.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tracing::Instrument;

use crate::SocketState;
use crate::connection::{Connection, Flow};
use crate::endpoint::{ConnectionHandle, Inbox, Outbound};
use crate::handler::{ConnectRequest, SocketHandler};
use crate::handshake::{auth_token_from_protocols, origin_allowed, parse_query};
use crate::mailbox::Mailbox;
use crate::serializer::{Frame, Serializer};

/// How long a connection the server closes may take to flush its last frames.
const CLOSE_FLUSH: Duration = Duration::from_secs(5);

pub(crate) async fn upgrade<H: SocketHandler>(
    State(state): State<Arc<SocketState<H>>>,
    ws: WebSocketUpgrade,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if state.endpoint.is_draining() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !origin_allowed(&headers, &state.config.allowed_origins) {
        return StatusCode::FORBIDDEN.into_response();
    }
    let params = parse_query(query.as_deref());
    let Some(serializer) = Serializer::negotiate(params.get("vsn").map(String::as_str)) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let request = ConnectRequest {
        params,
        auth_token: auth_token_from_protocols(&headers),
        headers,
    };
    let assigns = match state.handler.connect(&request).await {
        Ok(assigns) => assigns,
        Err(refusal) => return refusal.status().into_response(),
    };
    let config = &state.config;
    // Made here, inside the upgrade request's span, so the connection's lines carry both its own
    // socket id and the id of the request that opened it.
    let span =
        tracing::info_span!("socket", socket_id = %crate::new_socket_id(), transport = "websocket");
    // On the heap before the closure captures it: whatever the closure holds stays in the
    // connection's task for its whole life, beside the connection's own future.
    let assigns = Arc::new(assigns);
    ws.protocols(["phoenix"])
        // tungstenite reserves its read buffer up front (128 KiB by default) and keeps it for the
        // connection's life, so it is per-connection memory. It is also the most one read takes,
        // so a frame of n bytes costs n / 128 reads: client frames are small (a heartbeat is
        // about 50 bytes), and 512 cost 0.3 KiB per idle connection more (19,000, idle bench).
        .read_buffer_size(128)
        .write_buffer_size(16 * 1024)
        .max_message_size(config.max_frame_bytes)
        .max_frame_size(config.max_frame_bytes)
        .on_upgrade(move |socket| run(socket, state, assigns, serializer).instrument(span))
}

/// One task per connection: it reads client frames, handles its inbox, and writes what the
/// mailbox holds, so an idle connection costs one task, not a reader and a writer.
async fn run<H: SocketHandler>(
    socket: WebSocket,
    state: Arc<SocketState<H>>,
    assigns: Arc<H::Assigns>,
    serializer: Serializer,
) {
    let config = &state.config;
    let endpoint = state.endpoint.clone();
    let stats = endpoint.stats().clone();
    stats
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Split so reading and writing can wait at the same time in this one task.
    let (mut sink, mut stream) = socket.split();
    let handle = Arc::new(ConnectionHandle::new(
        serializer,
        config.outbound_queue,
        stats.clone(),
    ));
    let _live = endpoint.register_live(handle.clone());
    tracing::debug!("socket connected");
    let disconnects =
        crate::disconnect::watch(&endpoint, state.handler.socket_ids(&assigns), &handle);
    let mut connection = Connection::new(
        state.handler.clone(),
        endpoint.clone(),
        assigns,
        handle.clone(),
        config,
    );
    let mailbox = &handle.mailbox;

    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    // Whether frames were queued and are not yet all flushed.
    let mut writing = false;
    let close: Option<(u16, &'static str)> = loop {
        tokio::select! {
            biased;
            message = mailbox.next_inbox() => match message {
                Some(Inbox::Close(code, reason)) => break Some((code, reason)),
                Some(Inbox::Intercepted { channel_id, message }) => {
                    Box::pin(connection.intercepted(channel_id, message)).await
                }
                None => break None,
            },
            () = mailbox.frames_waiting(), if !writing => writing = true,
            written = poll_fn(|cx| write_queued(&mut sink, mailbox, cx)), if writing => match written {
                Ok(Written::AllFlushed) => writing = false,
                // A close frame is only queued below, after this loop.
                Ok(Written::Closed) | Err(_) => break None,
            },
            frame = stream.next() => {
                idle.as_mut().reset(Instant::now() + config.idle_timeout);
                let decoded = match frame {
                    Some(Ok(WsMessage::Text(text))) => serializer.decode_text(&text),
                    Some(Ok(WsMessage::Binary(bytes))) => serializer.decode_binary(&bytes),
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                    Some(Ok(WsMessage::Close(_))) | None => break None,
                    Some(Err(error)) => break Some(read_error_close(&error)),
                };
                stats.frames_in.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match decoded {
                    Ok(message) => {
                        // Boxed, so this task's idle state does not reserve room for the
                        // largest handler future (idle memory per connection).
                        if let Flow::Close(code, reason) = Box::pin(connection.handle(message)).await {
                            break Some((code, reason));
                        }
                    }
                    Err(error) => {
                        tracing::debug!(%error, "malformed frame; closing");
                        break Some((1007, "malformed frame"));
                    }
                }
            }
            () = &mut idle => break Some((1001, "idle timeout")),
        }
    };
    Box::pin(connection.close_all()).await;
    disconnects.detach(&endpoint);
    stats
        .connections
        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    match close {
        Some((code, reason)) => tracing::debug!(code, reason, "socket closed by the server"),
        None => tracing::debug!("socket closed by the client"),
    }
    if let Some((code, reason)) = close
        && mailbox.push_frame(Outbound::Close(code, reason)).is_ok()
    {
        // Flush what is queued and the close frame, then read until the client answers it (the
        // closing handshake): closing the TCP socket with its frames unread would reset the
        // connection, and the client could lose the close frame and the replies before it. Not
        // forever, though.
        let _ = tokio::time::timeout(CLOSE_FLUSH, async {
            poll_fn(|cx| write_queued(&mut sink, mailbox, cx)).await?;
            while let Some(Ok(frame)) = stream.next().await {
                if matches!(frame, WsMessage::Close(_)) {
                    break;
                }
            }
            Ok::<_, axum::Error>(())
        })
        .await;
    }
    // Frees what is still queued; the fan-out may hold the handle a moment longer.
    mailbox.close();
}

/// Too large a frame gets a close with 1009 so the client knows why; other read errors mean the
/// connection is already broken.
fn read_error_close(error: &axum::Error) -> (u16, &'static str) {
    let text = error.to_string();
    if text.contains("too long") || text.contains("Space limit") || text.contains("size") {
        (1009, "frame too large")
    } else {
        (1011, "read error")
    }
}

/// How far [`write_queued`] got.
enum Written {
    /// The mailbox is empty and everything taken from it is on the socket.
    AllFlushed,
    /// A close frame was written: the connection is over.
    Closed,
}

/// Moves queued frames into the socket and flushes them: whatever is waiting goes out in one
/// write. Takes a frame from the mailbox only once the socket has room for it, so dropping the
/// future between polls (another branch of the connection's `select!` won) loses nothing: the
/// frames written so far wait in the socket's buffer and the rest in the mailbox.
fn write_queued(
    sink: &mut SplitSink<WebSocket, WsMessage>,
    mailbox: &Mailbox,
    cx: &mut Context<'_>,
) -> Poll<Result<Written, axum::Error>> {
    loop {
        ready!(sink.poll_ready_unpin(cx))?;
        match mailbox.try_next_frame() {
            Some(Outbound::Frame(frame)) => sink.start_send_unpin(ws_message(frame))?,
            Some(Outbound::Close(code, reason)) => {
                let close = WsMessage::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }));
                sink.start_send_unpin(close)?;
                ready!(sink.poll_flush_unpin(cx))?;
                return Poll::Ready(Ok(Written::Closed));
            }
            None => break,
        }
    }
    ready!(sink.poll_flush_unpin(cx))?;
    Poll::Ready(Ok(Written::AllFlushed))
}

fn ws_message(frame: Frame) -> WsMessage {
    match frame {
        Frame::Text(text) => WsMessage::Text(text),
        Frame::Binary(bytes) => WsMessage::Binary(bytes),
    }
}
