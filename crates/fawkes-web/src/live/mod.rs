//! The live pages: sign-up and log-in, rooms and chat, video comments, posts, notifications,
//! profile and admin.
//! Views call the same domain actions as the REST API; this module adds only the browser's
//! concerns (cookies, CSRF, the HTML document).

mod form;
mod handlers;
mod header;
mod layout;
mod pages;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use fawkes_domain::Domain;
use fawkes_live::{Live, LiveConfig, LiveRoutes, LiveSocket, Signer};

use crate::AppState;
use pages::{admin, auth, notifications, post, post_editor, posts, profile, room, rooms, video};
pub use session::Pages;

/// The live runtime of the app's pages.
pub type PagesLive = Live<Pages>;

/// Every live page; the same list serves the plain HTTP render and the socket's routing.
const PAGES: [&str; 13] = [
    "/",
    "/login",
    "/signup",
    "/rooms",
    "/rooms/{slug}",
    "/videos/{video_id}",
    "/profile",
    "/admin",
    "/posts",
    "/posts/new",
    "/posts/{id}",
    "/posts/{id}/edit",
    "/notifications",
];

pub fn runtime(state: &AppState, signer: Signer, allowed_origins: Vec<String>) -> Arc<PagesLive> {
    let domain = state.domain.clone();
    let endpoint = state.endpoint.clone();
    let d2 = domain.clone();
    let d = &domain;
    let routes = LiveRoutes::default()
        .live(PAGES[0], factory(d, rooms::RoomsView::new))
        .live(PAGES[1], auth::AuthView::login)
        .live(PAGES[2], auth::AuthView::signup)
        .live(PAGES[3], factory(d, rooms::RoomsView::new))
        .live(PAGES[4], factory(d, room::RoomView::new))
        .live(PAGES[5], factory(d, video::VideoView::new))
        .live(PAGES[6], factory(d, profile::ProfileView::new))
        .live(PAGES[7], move || {
            admin::AdminView::new(d2.clone(), endpoint.clone())
        })
        .live(PAGES[8], factory(d, posts::PostsView::new))
        .live(PAGES[9], factory(d, post_editor::PostEditorView::new))
        .live(PAGES[10], factory(d, post::PostView::new))
        .live(PAGES[11], factory(d, post_editor::PostEditorView::new))
        .live(PAGES[12], factory(d, notifications::NotificationsView::new));
    Live::new(
        Arc::new(Pages {
            domain: domain.clone(),
        }),
        routes,
        signer,
        state.endpoint.bus().clone(),
        LiveConfig {
            client_version: fawkes_assets::LIVEVIEW_VERSION,
            session_max_age: session::SESSION_MAX_AGE,
            allowed_origins,
        },
    )
}

/// A view maker that hands each new view the domain.
fn factory<V: 'static>(
    domain: &Arc<Domain>,
    make: fn(Arc<Domain>) -> V,
) -> impl Fn() -> V + Send + Sync + 'static {
    let domain = domain.clone();
    move || make(domain.clone())
}

/// The pages, their form posts, the `/live` socket and the static assets.
pub fn router(
    state: &AppState,
    live: Arc<PagesLive>,
    socket: fawkes_channels::SocketConfig,
    secure_cookies: bool,
) -> Router {
    let mut pages = Router::new();
    for path in PAGES {
        pages = pages.route(path, get(handlers::page));
    }
    let pages = pages
        .route("/login", post(handlers::login))
        .route("/signup", post(handlers::signup))
        .route("/logout", post(handlers::logout))
        .with_state(handlers::PagesState {
            live: live.clone(),
            domain: state.domain.clone(),
            secure_cookies,
        });
    let live_socket = fawkes_channels::router(
        state.endpoint.clone(),
        Arc::new(LiveSocket::new(live)),
        socket,
    );
    pages
        .nest("/live", live_socket)
        .merge(fawkes_assets::router())
}
