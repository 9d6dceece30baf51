//! Sending one request to a sink and judging the answer.

use std::time::Duration;

use reqwest::{Method, StatusCode};

/// A request to a sink, already mapped from its event.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    pub url: url::Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Delivered,
    /// A 4xx other than 408 and 429: the sink refused this request and would refuse it again.
    Refused(String),
    /// No answer, a timeout, 408, 429, 5xx or anything else: worth retrying.
    Failed(String),
}

/// The status rule shared by every sink.
pub fn judge(status: StatusCode) -> Outcome {
    if status.is_success() {
        Outcome::Delivered
    } else if status.is_client_error()
        && status != StatusCode::REQUEST_TIMEOUT
        && status != StatusCode::TOO_MANY_REQUESTS
    {
        Outcome::Refused(format!("HTTP {status}"))
    } else {
        Outcome::Failed(format!("HTTP {status}"))
    }
}

/// reqwest is built without a default crypto provider (feature unification gives every
/// reqwest client in the process that build); ring is the one the tree already uses. Call this
/// before building any reqwest client in a process; it does nothing once one is installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTP client of every sink: rustls with ring, no redirects followed (a sink that moved
/// must be reconfigured, not followed blindly), the per-sink timeout set on each request.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("fawkes-sync/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sends `request`, giving up after `timeout`.
pub async fn send(client: &reqwest::Client, request: Outgoing, timeout: Duration) -> Outcome {
    let mut builder = client.request(request.method, request.url).timeout(timeout);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    if let Some(body) = request.body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
    }
    match builder.send().await {
        Ok(response) => {
            let status = response.status();
            match judge(status) {
                Outcome::Refused(error) => {
                    // The receiver's reason helps whoever reads the discarded job; bounded.
                    let text = response.text().await.unwrap_or_default();
                    let reason: String = text.chars().take(200).collect();
                    Outcome::Refused(if reason.is_empty() {
                        error
                    } else {
                        format!("{error}: {reason}")
                    })
                }
                other => other,
            }
        }
        // `without_url`: a Firebase URL carries its auth token in the query.
        Err(e) if e.is_timeout() => Outcome::Failed(format!("timed out after {timeout:?}")),
        Err(e) => Outcome::Failed(e.without_url().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_judged_like_the_major_providers() {
        assert_eq!(judge(StatusCode::OK), Outcome::Delivered);
        assert_eq!(judge(StatusCode::NO_CONTENT), Outcome::Delivered);
        assert!(matches!(
            judge(StatusCode::BAD_REQUEST),
            Outcome::Refused(_)
        ));
        assert!(matches!(judge(StatusCode::GONE), Outcome::Refused(_)));
        assert!(matches!(
            judge(StatusCode::REQUEST_TIMEOUT),
            Outcome::Failed(_)
        ));
        assert!(matches!(
            judge(StatusCode::TOO_MANY_REQUESTS),
            Outcome::Failed(_)
        ));
        assert!(matches!(judge(StatusCode::BAD_GATEWAY), Outcome::Failed(_)));
        assert!(matches!(
            judge(StatusCode::MOVED_PERMANENTLY),
            Outcome::Failed(_)
        ));
    }
}
