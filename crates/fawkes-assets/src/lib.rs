//! Fawkes' browser assets, built by `build.rs` from `assets/` and embedded in the binary: the
//! stylesheet (Tailwind + daisyUI), the `phoenix` and `phoenix_live_view` clients and our
//! `app.js`. Each is served at `/assets/<name>-<hash>.<ext>`; the name changes with the content,
//! so browsers may keep a file for a year without asking again.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One built file.
struct Asset {
    /// The content-hashed name under `/assets/`.
    file: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
    /// The same bytes, gzip-compressed once at build time.
    gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// `GET /assets/{file}` for the hashed names; anything else under it is a plain 404.
pub fn router() -> Router {
    Router::new().route("/assets/{file}", get(serve))
}

async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.file == file) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let gzip = accepts_gzip(&headers);
    let body = if gzip { asset.gzip } else { asset.bytes };
    let mut response = body.into_response();
    let out = response.headers_mut();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    out.insert(header::CACHE_CONTROL, IMMUTABLE);
    // Caches must keep the two encodings apart.
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// Whether `Accept-Encoding` lists gzip with a non-zero quality (RFC 9110 §12.5.3).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or_default().trim();
            if !name.eq_ignore_ascii_case("gzip") && !name.eq_ignore_ascii_case("x-gzip") {
                return false;
            }
            parts.all(|param| {
                let Some((key, value)) = param.split_once('=') else {
                    return true;
                };
                if !key.trim().eq_ignore_ascii_case("q") {
                    return true;
                }
                value.trim().parse::<f32>().is_ok_and(|q| q > 0.0)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn gzip_is_chosen_only_when_accepted() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("br, GZIP;q=0.5, deflate")));
        assert!(accepts_gzip(&with("deflate, gzip")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("gzip; q=0.000")));
        assert!(!accepts_gzip(&with("br, deflate")));
        assert!(!accepts_gzip(&with("gzipx")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_url_names_an_asset_in_the_table() {
        for url in [
            urls::APP_CSS,
            urls::APP_JS,
            urls::PHOENIX_JS,
            urls::LIVE_VIEW_JS,
        ] {
            let file = url.strip_prefix("/assets/").unwrap_or(url);
            assert!(ASSETS.iter().any(|a| a.file == file), "{url}");
        }
    }
}
