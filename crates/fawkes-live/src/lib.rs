//! Live pages for the official `phoenix_live_view` JavaScript client: server-rendered views
//! whose state lives on the server, one task per connected view, updated by minimal diffs.
//!
//! The crate knows nothing of the application. The app writes [`LiveView`]s, lists them in
//! [`LiveRoutes`], says who a page's session is ([`LiveApp`]), and mounts the `/live` socket
//! ([`LiveSocket`], on the fawkes-channels runtime). Templates are compiled by [`html!`] into
//! statics (sent once) and dynamics (sent when they change); lists are keyed comprehensions.
//! Wire format: shared/specs/liveview.md.

mod csrf;
mod diff;
mod params;
mod rendered;
mod routes;
mod runtime;
mod task;
mod token;
mod view;

pub use csrf::{CSRF_COOKIE, cookie, csrf_token, csrf_valid, same_origin};
pub use diff::diff;
pub use fawkes_live_macros::html;
pub use params::{Event, Params};
pub use rendered::{Dynamic, IntoDynamic, List, Rendered};
pub use routes::LiveRoutes;
pub use runtime::{Live, LiveApp, LiveConfig, LiveSocket, PageRender};
pub use token::{Signer, TokenError};
pub use view::{Flash, LiveContext, LiveView, Navigation, Refusal};
