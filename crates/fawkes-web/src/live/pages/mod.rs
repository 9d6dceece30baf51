//! One module per page.

pub mod admin;
pub mod auth;
pub mod notifications;
pub mod post;
pub mod post_editor;
pub mod posts;
pub mod profile;
pub mod room;
pub mod rooms;
pub mod video;

use fawkes_live::LiveContext;

use super::session::PageSession;

/// Pages for signed-in users send guests to the login page.
pub fn require_user(session: &PageSession) -> Result<(), fawkes_live::Refusal> {
    match session.user {
        Some(_) => Ok(()),
        None => Err(fawkes_live::Refusal::Redirect("/login".into())),
    }
}

/// Shows a failed action to the user.
pub fn report(ctx: &mut LiveContext, result: Result<(), fawkes_domain::DomainError>) {
    if let Err(error) = result {
        ctx.put_flash("error", error.to_string());
    }
}
