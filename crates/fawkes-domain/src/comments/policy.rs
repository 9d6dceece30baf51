//! Who may do what to which comment.

use fawkes_data::entity::comment;
use uuid::Uuid;

use crate::{Actor, AuthFailure, DomainError};

/// Anyone signed in reads comments.
pub(super) fn read(actor: &Actor) -> Result<(), DomainError> {
    actor
        .identity()
        .map(|_| ())
        .ok_or(AuthFailure::Missing.into())
}

/// Anyone signed in comments; returns the author.
pub(super) fn write(actor: &Actor) -> Result<Uuid, DomainError> {
    actor.user_id().ok_or(AuthFailure::Missing.into())
}

/// Only the author edits a comment.
pub(super) fn edit(actor: &Actor, comment: &comment::Model) -> Result<(), DomainError> {
    if actor.is(comment.author_id) {
        Ok(())
    } else {
        Err(DomainError::Forbidden("only the author may edit a comment"))
    }
}

/// The author or an admin deletes a comment.
pub(super) fn delete(actor: &Actor, comment: &comment::Model) -> Result<(), DomainError> {
    if actor.is(comment.author_id) || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only the author or an admin may delete a comment",
        ))
    }
}
