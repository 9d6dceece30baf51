//! CSRF protection for the live socket and for plain form posts: the page carries a token that
//! is valid only with the browser's own secret cookie, and the socket checks the Origin too
//! (cross-site WebSocket hijacking sends the victim's cookies, but not our token).

use std::time::Duration;

use axum::http::{HeaderMap, header};

use crate::token::Signer;

/// The cookie holding the browser's CSRF secret.
pub const CSRF_COOKIE: &str = "_fawkes_csrf";

/// A page token is good for as long as a page may stay open.
const MAX_AGE: Duration = Duration::from_secs(14 * 24 * 3600);

/// The token to put in a page for the browser whose secret cookie holds `secret`.
pub fn csrf_token(signer: &Signer, secret: &str) -> String {
    signer.sign("csrf", &secret)
}

/// True when `token` was made for the secret in the request's cookie.
pub fn csrf_valid(signer: &Signer, token: &str, headers: &HeaderMap) -> bool {
    let Some(secret) = cookie(headers, CSRF_COOKIE) else {
        return false;
    };
    signer
        .verify::<String>("csrf", token, MAX_AGE)
        .is_ok_and(|expected| expected == secret)
}

/// A cookie's value from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(cookie::Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// True when the request has no Origin (not a browser) or its Origin is this host or one of
/// `allowed`.
pub fn same_origin(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return !headers.contains_key(header::ORIGIN);
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn a_token_is_valid_only_with_its_browsers_cookie() {
        let signer = Signer::new(b"k");
        let token = csrf_token(&signer, "browser-a");
        let a = headers(&[(header::COOKIE, "x=1; _fawkes_csrf=browser-a")]);
        let b = headers(&[(header::COOKIE, "_fawkes_csrf=browser-b")]);
        assert!(csrf_valid(&signer, &token, &a));
        assert!(!csrf_valid(&signer, &token, &b));
        assert!(!csrf_valid(&signer, &token, &HeaderMap::new()));
        assert!(!csrf_valid(&signer, "forged", &a));
    }

    #[test]
    fn foreign_origins_are_refused() {
        let own = headers(&[
            (header::HOST, "chat.example:4000"),
            (header::ORIGIN, "http://chat.example:4000"),
        ]);
        let foreign = headers(&[
            (header::HOST, "chat.example:4000"),
            (header::ORIGIN, "https://evil.example"),
        ]);
        assert!(same_origin(&own, &[]));
        assert!(!same_origin(&foreign, &[]));
        assert!(same_origin(&foreign, &["https://evil.example".into()]));
        assert!(same_origin(&headers(&[(header::HOST, "a")]), &[]));
    }
}
