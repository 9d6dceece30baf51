//! What a connection presents before it is accepted: query parameters, the `vsn`, the
//! `authToken` subprotocol and the Origin.

use std::collections::HashMap;

use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// The subprotocol prefix under which phoenix.js sends its `authToken`.
const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

/// Query parameters as a flat map; the last of a repeated key wins.
pub fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect()
}

/// The token phoenix.js put in `Sec-WebSocket-Protocol`. It is `btoa(token)` without padding
/// (standard base64, despite the prefix's name); padded and URL-safe forms are accepted too.
pub fn auth_token_from_protocols(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .find_map(|protocol| protocol.strip_prefix(AUTH_TOKEN_PREFIX))
        .and_then(|encoded| {
            [STANDARD_NO_PAD, STANDARD, URL_SAFE_NO_PAD, URL_SAFE]
                .iter()
                .find_map(|engine| engine.decode(encoded).ok())
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Phoenix's rule: a request without Origin is accepted; one with an Origin must be allowed.
/// An empty list allows every origin.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    if allowed.is_empty() || allowed.iter().any(|a| a == "*") {
        return true;
    }
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn the_auth_token_is_read_from_the_subprotocols() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("phoenix, base64url.bearer.phx.bXktdG9rZW4"),
        );
        assert_eq!(
            auth_token_from_protocols(&headers).as_deref(),
            Some("my-token")
        );
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("phoenix"),
        );
        assert_eq!(auth_token_from_protocols(&headers), None);
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("base64url.bearer.phx.!!!"),
        );
        assert_eq!(auth_token_from_protocols(&headers), None);
    }

    #[test]
    fn query_strings_are_decoded() {
        let params = parse_query(Some("token=a%2Bb&nested%5Ba%5D=1&vsn=2.0.0&"));
        assert_eq!(params.get("token").map(String::as_str), Some("a+b"));
        assert_eq!(params.get("nested[a]").map(String::as_str), Some("1"));
        assert_eq!(params.get("vsn").map(String::as_str), Some("2.0.0"));
    }

    #[test]
    fn origins_are_checked_only_when_present_and_configured() {
        let mut headers = HeaderMap::new();
        let allowed = vec!["https://app.example".to_owned()];
        assert!(origin_allowed(&headers, &allowed));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!origin_allowed(&headers, &allowed));
        assert!(origin_allowed(&headers, &[]));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://app.example"),
        );
        assert!(origin_allowed(&headers, &allowed));
    }
}
