//! Who may see and mark which notification: a user their own, nobody else's (not even admins:
//! `notification:{user_id}` is the user's own topic too).

use uuid::Uuid;

use crate::{Actor, AuthFailure, DomainError};

/// The notifications of a signed-in user; returns whose.
pub(super) fn own(actor: &Actor) -> Result<Uuid, DomainError> {
    actor.user_id().ok_or(AuthFailure::Missing.into())
}
