//! The asset router as a browser meets it.

use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use fawkes_assets::{LIVEVIEW_VERSION, router, urls};
use tower::ServiceExt;

const ALL: [(&str, &str); 4] = [
    (urls::APP_CSS, "text/css; charset=utf-8"),
    (urls::APP_JS, "text/javascript; charset=utf-8"),
    (urls::PHOENIX_JS, "text/javascript; charset=utf-8"),
    (urls::LIVE_VIEW_JS, "text/javascript; charset=utf-8"),
];

async fn get(path: &str, accept_encoding: Option<&str>) -> axum::response::Response {
    let mut request = Request::get(path);
    if let Some(value) = accept_encoding {
        request = request.header(header::ACCEPT_ENCODING, value);
    }
    router()
        .oneshot(request.body(Body::empty()).expect("a valid request"))
        .await
        .expect("the router is infallible")
}

async fn body(response: axum::response::Response) -> Vec<u8> {
    to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("an in-memory body")
        .to_vec()
}

fn header_of(response: &axum::response::Response, name: header::HeaderName) -> &str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test]
async fn every_asset_is_served_with_its_type_and_a_year_of_caching() {
    for (url, content_type) in ALL {
        assert!(url.starts_with("/assets/"), "{url}");
        let response = get(url, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(header_of(&response, header::CONTENT_TYPE), content_type);
        assert_eq!(
            header_of(&response, header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header_of(&response, header::CONTENT_ENCODING), "");
        assert!(!body(response).await.is_empty(), "{url} is empty");
    }
}

#[tokio::test]
async fn names_carry_a_ten_digit_content_hash() {
    for (url, _) in ALL {
        let name = url.rsplit('/').next().unwrap_or_default();
        let (stem, _) = name.split_once('.').unwrap_or((name, ""));
        let hash = stem.rsplit('-').next().unwrap_or_default();
        assert_eq!(hash.len(), 10, "{url}");
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{url}");
    }
}

#[tokio::test]
async fn gzip_is_served_to_clients_that_accept_it() {
    for (url, content_type) in ALL {
        let plain = body(get(url, None).await).await;
        let response = get(url, Some("br, gzip")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header_of(&response, header::CONTENT_ENCODING), "gzip");
        assert_eq!(header_of(&response, header::CONTENT_TYPE), content_type);
        assert_eq!(header_of(&response, header::VARY), "accept-encoding");
        let gzipped = body(response).await;
        // The gzip magic number, and smaller than the original.
        assert_eq!(gzipped.get(..2), Some(&[0x1f, 0x8b][..]), "{url}");
        assert!(gzipped.len() < plain.len(), "{url}");
    }
}

#[tokio::test]
async fn anything_else_is_a_plain_404() {
    for path in [
        "/assets/app.css",
        "/assets/app-0000000000.css",
        "/assets/..%2FCargo.toml",
        "/assets/phoenix.min.js",
    ] {
        let response = get(path, None).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            header_of(&response, header::CONTENT_TYPE).starts_with("text/plain"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_stylesheet_has_tailwind_and_both_daisyui_themes() {
    let css = String::from_utf8(body(get(urls::APP_CSS, None).await).await).expect("UTF-8 CSS");
    // daisyUI emits component classes (.btn, …) only once a template uses them; its theme
    // variables are always there, for the default light theme and the dark one alike.
    assert!(css.contains("--color-base-100"), "no daisyUI theme");
    assert!(css.contains("[data-theme=dark]"), "no dark theme");
    assert!(
        css.contains("prefers-color-scheme:dark"),
        "dark is not preferred"
    );
    assert!(css.contains("tailwindcss"), "no Tailwind banner");
}

#[tokio::test]
async fn the_scripts_define_the_globals_app_js_expects() {
    let phoenix = String::from_utf8(body(get(urls::PHOENIX_JS, None).await).await).expect("JS");
    let live = String::from_utf8(body(get(urls::LIVE_VIEW_JS, None).await).await).expect("JS");
    let app = String::from_utf8(body(get(urls::APP_JS, None).await).await).expect("JS");
    assert!(phoenix.starts_with("var Phoenix="));
    assert!(live.starts_with("var LiveView="));
    assert!(app.contains("new LiveView.LiveSocket(\"/live\", Phoenix.Socket"));
}

#[test]
fn the_liveview_version_is_the_pinned_one() {
    let lock = include_str!("../../../assets/package-lock.json");
    let pinned = format!(
        "\"node_modules/phoenix_live_view\": {{\n      \"version\": \"{LIVEVIEW_VERSION}\""
    );
    assert!(lock.contains(&pinned), "{LIVEVIEW_VERSION} is not pinned");
}
