//! What a connection presents: the query string (bracketed keys included), the `authToken`
//! subprotocol, the Origin, and the cookies and CSRF token of the live socket.
#![no_main]

use axum::http::{HeaderMap, HeaderValue, header};
use fawkes_channels::handshake::{auth_token_from_protocols, origin_allowed, parse_query};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_query(Some(&text));
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value.clone());
        headers.insert(header::ORIGIN, value.clone());
        headers.insert(header::HOST, value.clone());
        headers.insert(header::COOKIE, value);
    }
    let _ = auth_token_from_protocols(&headers);
    let _ = origin_allowed(&headers, &["https://example.com".to_owned()]);
    let _ = fawkes_live::same_origin(&headers, &[]);
    let signer = fawkes_live::Signer::new(b"fuzz");
    let _ = fawkes_live::csrf_valid(&signer, &text, &headers);
});
