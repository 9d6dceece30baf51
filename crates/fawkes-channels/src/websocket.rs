//! The WebSocket transport: `GET <mount>/websocket`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument;

use crate::SocketState;
use crate::connection::{Connection, Flow};
use crate::endpoint::{ConnectionHandle, Inbox, Outbound};
use crate::handler::{ConnectRequest, SocketHandler};
use crate::handshake::{auth_token_from_protocols, origin_allowed, parse_query};
use crate::serializer::{Frame, Serializer};

/// How many queued frames one write may coalesce before flushing.
const MAX_COALESCED: usize = 64;

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
    ws.protocols(["phoenix"])
        // tungstenite reserves its read buffer up front (128 KiB by default): per-connection memory.
        .read_buffer_size(512)
        .write_buffer_size(16 * 1024)
        .max_message_size(config.max_frame_bytes)
        .max_frame_size(config.max_frame_bytes)
        .on_upgrade(move |socket| {
            run(socket, state, Arc::new(assigns), serializer).instrument(span)
        })
}

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
    let (sink, mut stream) = socket.split();
    let (outbound, outbound_rx) = mpsc::channel(config.outbound_queue);
    let (inbox, mut inbox_rx) = mpsc::unbounded_channel();
    let _live = endpoint.register_live(inbox.clone());
    let handle = Arc::new(ConnectionHandle::new(
        serializer,
        outbound.clone(),
        inbox,
        stats.clone(),
    ));
    tracing::debug!("socket connected");
    let writer = tokio::spawn(write_frames(sink, outbound_rx).in_current_span());
    let disconnects =
        crate::disconnect::watch(&endpoint, state.handler.socket_ids(&assigns), &handle);
    let mut connection = Connection::new(
        state.handler.clone(),
        endpoint.clone(),
        assigns,
        handle,
        config,
    );

    let idle = tokio::time::sleep(config.idle_timeout);
    tokio::pin!(idle);
    let close: Option<(u16, &'static str)> = loop {
        tokio::select! {
            biased;
            message = inbox_rx.recv() => match message {
                Some(Inbox::Close(code, reason)) => break Some((code, reason)),
                Some(Inbox::Intercepted { channel_id, message }) => {
                    Box::pin(connection.intercepted(channel_id, message)).await
                }
                None => break None,
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
    match close {
        Some((code, reason)) if outbound.try_send(Outbound::Close(code, reason)).is_ok() => {
            // Let the writer flush what is queued and the close frame, but not forever.
            let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
        }
        _ => writer.abort(),
    }
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

/// Writes queued frames, coalescing whatever is already waiting into one flush.
async fn write_frames(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut queue: mpsc::Receiver<Outbound>,
) {
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(item) = next.take() {
            match item {
                Outbound::Frame(frame) => {
                    if sink.feed(ws_message(frame)).await.is_err() {
                        return;
                    }
                }
                Outbound::Close(code, reason) => {
                    let close = WsMessage::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    }));
                    let _ = sink.send(close).await;
                    return;
                }
            }
            written += 1;
            if written < MAX_COALESCED {
                next = queue.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}

fn ws_message(frame: Frame) -> WsMessage {
    match frame {
        Frame::Text(text) => WsMessage::Text(text),
        Frame::Binary(bytes) => WsMessage::Binary(bytes),
    }
}
