//! A raw Phoenix-protocol client over a real WebSocket, for protocol tests that need to see
//! every frame exactly as sent.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestServer;

/// How long a test waits for a frame the server must send. Generous: it only bounds a failure.
const FRAME_WAIT: Duration = Duration::from_secs(10);

pub struct RawSocket {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub response_protocol: Option<String>,
    /// Rooms send presence frames after every join; most tests are about something else and
    /// skip them. Presence tests turn this off.
    pub skip_presence: bool,
}

/// What the server did with a connection attempt.
#[derive(Debug)]
pub enum Refusal {
    Status(u16),
    Other(String),
}

impl TestServer {
    pub fn socket_url(&self, query: &str) -> String {
        format!(
            "{}/socket/websocket?{query}",
            self.base.replacen("http://", "ws://", 1)
        )
    }

    /// Connects with `token` using the V2 serializer.
    pub async fn socket(&self, token: &str) -> RawSocket {
        self.socket_with(&format!("token={token}&vsn=2.0.0"), &[])
            .await
            .expect("socket connects")
    }

    pub async fn socket_with(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> Result<RawSocket, Refusal> {
        connect_raw(&self.socket_url(query), headers).await
    }
}

/// Opens a raw socket to a full `ws://…/socket/websocket?…` URL.
pub async fn connect_raw(url: &str, headers: &[(&str, &str)]) -> Result<RawSocket, Refusal> {
    {
        let mut request = url.into_client_request().expect("request");
        for (name, value) in headers {
            request.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("name"),
                value.parse().expect("value"),
            );
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, response)) => {
                let response_protocol = response
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                Ok(RawSocket {
                    stream,
                    response_protocol,
                    skip_presence: true,
                })
            }
            Err(Error::Http(response)) => Err(Refusal::Status(response.status().as_u16())),
            Err(other) => Err(Refusal::Other(other.to_string())),
        }
    }
}

impl Refusal {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Refusal::Status(code) => StatusCode::from_u16(*code).ok(),
            Refusal::Other(_) => None,
        }
    }
}

/// What arrived from the server.
#[derive(Debug, PartialEq)]
pub enum Received {
    Text(Value),
    Binary(Vec<u8>),
    Closed(Option<u16>),
}

impl RawSocket {
    pub async fn send(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .expect("frame sent");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text.to_owned()))
            .await
            .expect("frame sent");
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.stream
            .send(Message::binary(bytes))
            .await
            .expect("frame sent");
    }

    /// The next frame, skipping pings; fails the test if none comes within the bound.
    pub async fn next(&mut self) -> Received {
        loop {
            let frame = tokio::time::timeout(FRAME_WAIT, self.stream.next())
                .await
                .expect("a frame within the bound");
            return match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON frame");
                    let presence = frame[3] == "presence_diff" || frame[3] == "presence_state";
                    if self.skip_presence && presence {
                        continue;
                    }
                    Received::Text(frame)
                }
                Some(Ok(Message::Binary(bytes))) => Received::Binary(bytes.to_vec()),
                Some(Ok(Message::Close(frame))) => {
                    Received::Closed(frame.map(|f| u16::from(f.code)))
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Err(_)) | None => Received::Closed(None),
            };
        }
    }

    /// The next text frame, as JSON.
    pub async fn next_json(&mut self) -> Value {
        match self.next().await {
            Received::Text(value) => value,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Waits for the close frame and returns its code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Received::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// Joins `topic` with `join_ref` as both refs and returns the reply frame.
    pub async fn join(&mut self, topic: &str, join_ref: &str, params: Value) -> Value {
        self.send(json!([join_ref, join_ref, topic, "phx_join", params]))
            .await;
        self.next_json().await
    }

    /// Sends a heartbeat and waits for its reply, skipping nothing: whatever arrives first is
    /// returned, so a test can prove that nothing else was sent before it.
    pub async fn heartbeat(&mut self, msg_ref: &str) -> Value {
        self.send(json!([null, msg_ref, "phoenix", "heartbeat", {}]))
            .await;
        self.next_json().await
    }

    pub async fn close(mut self) {
        let _ = self
            .stream
            .close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    }
}
