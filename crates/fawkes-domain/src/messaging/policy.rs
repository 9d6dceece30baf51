//! Who may do what to which room, membership or message.

use fawkes_data::entity::{message, room};
use uuid::Uuid;

use crate::{Actor, AuthFailure, DomainError};

fn signed_in(actor: &Actor) -> Result<(), DomainError> {
    match actor.identity() {
        Some(_) => Ok(()),
        None => Err(AuthFailure::Missing.into()),
    }
}

pub(super) fn create_room(actor: &Actor) -> Result<(), DomainError> {
    signed_in(actor)
}

/// Posting needs a signed-in author who may enter the room.
pub(super) fn post_message(actor: &Actor) -> Result<uuid::Uuid, DomainError> {
    actor.user_id().ok_or(AuthFailure::Missing.into())
}

/// Read marks belong to a user: the actor must be a signed-in user (whose id this is).
pub(super) fn track_reads(actor: &Actor) -> Result<Uuid, DomainError> {
    actor.user_id().ok_or(AuthFailure::Missing.into())
}

/// Figures about the whole deployment (how many messages lately): admins only.
pub(super) fn view_activity(actor: &Actor) -> Result<(), DomainError> {
    match actor {
        Actor::Anonymous => Err(AuthFailure::Missing.into()),
        _ if actor.is_admin() => Ok(()),
        _ => Err(DomainError::Forbidden(
            "only admins may see the message activity",
        )),
    }
}

/// Public rooms are open to everyone (guests read only, where a transport admits guests); a
/// private room exists only for its members and admins.
pub(super) fn enter_room(
    actor: &Actor,
    room: &room::Model,
    is_member: bool,
) -> Result<(), DomainError> {
    if !room.is_private || is_member || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::NotFound("room"))
    }
}

/// Only the author edits a message.
pub(super) fn edit_message(actor: &Actor, message: &message::Model) -> Result<(), DomainError> {
    if actor.is(message.author_id) {
        Ok(())
    } else {
        Err(DomainError::Forbidden("only the author may edit a message"))
    }
}

/// The author, the room's owner or an admin deletes a message.
pub(super) fn delete_message(
    actor: &Actor,
    message: &message::Model,
    room: &room::Model,
) -> Result<(), DomainError> {
    let owns_room = room.owner_id.is_some_and(|owner| actor.is(owner));
    if actor.is(message.author_id) || owns_room || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only the author, the room owner or an admin may delete a message",
        ))
    }
}

/// The room's owner and admins add members.
pub(super) fn add_member(actor: &Actor, room: &room::Model) -> Result<(), DomainError> {
    let owns_room = room.owner_id.is_some_and(|owner| actor.is(owner));
    if owns_room || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only the room owner or an admin may add members",
        ))
    }
}

/// Members leave by themselves; the owner and admins remove others. The owner stays.
pub(super) fn remove_member(
    actor: &Actor,
    room: &room::Model,
    user_id: Uuid,
) -> Result<(), DomainError> {
    if room.owner_id == Some(user_id) {
        return Err(DomainError::Forbidden("the owner cannot leave their room"));
    }
    let owns_room = room.owner_id.is_some_and(|owner| actor.is(owner));
    if actor.is(user_id) || owns_room || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only the member, the room owner or an admin may remove a member",
        ))
    }
}
