//! A browser as the live pages see it, without a browser: a cookie jar, the plain HTTP render,
//! the form posts, and a raw `/live` socket joined the way phoenix_live_view joins.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::{Value, json};

use super::socket::{RawSocket, connect_raw};
use super::{TestServer, password_of};

/// Cookies by name, as a browser keeps them for one site.
#[derive(Debug, Default, Clone)]
pub struct Browser {
    cookies: BTreeMap<String, String>,
    /// The cookies last set with the `Secure` attribute.
    secure: std::collections::BTreeSet<String>,
    client: Option<reqwest::Client>,
}

/// A live page as served over HTTP.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub html: String,
    pub location: Option<String>,
    pub view_id: String,
    pub session: String,
    pub csrf: String,
}

/// Text between `start` and the next `end` after it.
pub fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

impl Browser {
    fn client(&mut self) -> reqwest::Client {
        self.client
            .get_or_insert_with(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .expect("client")
            })
            .clone()
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn has_cookie(&self, name: &str) -> bool {
        self.cookies.contains_key(name)
    }

    /// Whether `name` was last set with `Secure` (this test browser sends it over HTTP anyway).
    pub fn is_secure(&self, name: &str) -> bool {
        self.secure.contains(name)
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let pair = value.split(';').next().unwrap_or_default();
            if let Some((name, content)) = pair.split_once('=') {
                let secure = value.split(';').any(|a| a.trim() == "Secure");
                if secure {
                    self.secure.insert(name.to_owned());
                } else {
                    self.secure.remove(name);
                }
                if value.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), content.to_owned());
                }
            }
        }
    }

    /// `GET path`, keeping cookies; redirects are not followed.
    pub async fn get(&mut self, server: &TestServer, path: &str) -> Page {
        let response = self
            .client()
            .get(format!("{}{path}", server.base))
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .expect("page request");
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let html = response.text().await.unwrap_or_default();
        Page {
            status,
            view_id: between(&html, "<div id=\"", "\"")
                .unwrap_or_default()
                .to_owned(),
            session: between(&html, "data-phx-session=\"", "\"")
                .unwrap_or_default()
                .to_owned(),
            csrf: between(&html, "<meta name=\"csrf-token\" content=\"", "\"")
                .unwrap_or_default()
                .to_owned(),
            html,
            location,
        }
    }

    /// Posts a form, keeping cookies; returns the status and the redirect target.
    pub async fn post_form(
        &mut self,
        server: &TestServer,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, Option<String>) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let response = self
            .client()
            .post(format!("{}{path}", server.base))
            .header(COOKIE, self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("form post");
        self.keep_cookies(&response);
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        (response.status().as_u16(), location)
    }

    /// Logs `name` in through the login form (the account must exist).
    pub async fn log_in(&mut self, server: &TestServer, name: &str) {
        let page = self.get(server, "/login").await;
        assert_eq!(page.status, 200, "login page: {}", page.html);
        let password = password_of(name);
        let (status, location) = self
            .post_form(
                server,
                "/login",
                &[
                    ("_csrf_token", &page.csrf),
                    ("login", name),
                    ("password", &password),
                ],
            )
            .await;
        assert_eq!(
            (status, location.as_deref()),
            (303, Some("/rooms")),
            "log-in redirects to the rooms"
        );
        assert!(
            self.has_cookie("fawkes_session"),
            "log-in sets the session cookie"
        );
    }

    /// Loads `path` and joins its live view over a fresh `/live` socket, as the client does.
    pub async fn join(&mut self, server: &TestServer, path: &str) -> (LiveView, Value) {
        let page = self.get(server, path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        let mut socket = self
            .live_socket(server, &page.csrf, None)
            .await
            .expect("live socket connects");
        let topic = format!("lv:{}", page.view_id);
        let url = format!("{}{path}", server.base);
        let reply = socket
            .join(&topic, "1", json!({"url": url, "params": {"_csrf_token": page.csrf, "_mounts": 0}, "session": page.session, "static": null}))
            .await;
        (
            LiveView {
                socket,
                topic,
                refs: 1,
            },
            reply,
        )
    }

    /// Opens `/live/websocket` with this browser's cookies.
    pub async fn live_socket(
        &self,
        server: &TestServer,
        csrf: &str,
        origin: Option<&str>,
    ) -> Result<RawSocket, super::socket::Refusal> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("_csrf_token", csrf)
            .append_pair("vsn", "2.0.0")
            .finish();
        let url = format!(
            "{}/live/websocket?{query}",
            server.base.replacen("http://", "ws://", 1)
        );
        let cookie = self.cookie_header();
        let own_origin = server.base.clone();
        let origin = origin.unwrap_or(&own_origin);
        connect_raw(&url, &[("cookie", &cookie), ("origin", origin)]).await
    }
}

/// A joined live view over a raw socket.
pub struct LiveView {
    pub socket: RawSocket,
    pub topic: String,
    refs: u64,
}

impl LiveView {
    /// Sends an event as phoenix_live_view does and returns the reply frame.
    pub async fn event(&mut self, kind: &str, name: &str, value: Value) -> Value {
        self.refs += 1;
        let msg_ref = self.refs.to_string();
        self.socket
            .send(json!(["1", msg_ref, self.topic, "event", {"type": kind, "event": name, "value": value}]))
            .await;
        loop {
            let frame = self.socket.next_json().await;
            if frame[1] == json!(msg_ref) {
                return frame;
            }
        }
    }

    /// The next `diff` push, as the raw text the client receives (for its size) and as JSON.
    pub async fn next_diff(&mut self) -> (usize, Value) {
        loop {
            let frame = self.socket.next_json().await;
            if frame[3] == "diff" {
                let size = serde_json::to_string(&frame).map_or(0, |t| t.len());
                return (size, frame[4].clone());
            }
        }
    }
}
