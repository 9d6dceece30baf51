//! Who may do what to which account, device or session.

use fawkes_data::entity::user_device;
use uuid::Uuid;

use crate::{Actor, AuthFailure, DomainError, Identity};

/// The actor must be signed in.
pub(super) fn signed_in(actor: &Actor) -> Result<&Identity, DomainError> {
    actor
        .identity()
        .ok_or(DomainError::Unauthenticated(AuthFailure::Missing))
}

/// A user changes their own name and password, nobody else's: the account is the actor's, so
/// being signed in as a user is the whole rule (services and the operator have no account).
pub(super) fn change_own_account(actor: &Actor) -> Result<&Identity, DomainError> {
    signed_in(actor)
}

/// Creating accounts with a chosen role, listing accounts and changing them: admins only.
pub(super) fn manage_users(actor: &Actor) -> Result<(), DomainError> {
    match actor {
        Actor::Anonymous => Err(AuthFailure::Missing.into()),
        _ if actor.is_admin() => Ok(()),
        _ => Err(DomainError::Forbidden("only admins may manage users")),
    }
}

/// An admin may not demote or deactivate themselves: there would be no one left to undo it.
pub(super) fn change_user(actor: &Actor, target: Uuid) -> Result<(), DomainError> {
    manage_users(actor)?;
    if actor.is(target) {
        return Err(DomainError::Forbidden(
            "admins cannot change their own role or deactivate themselves",
        ));
    }
    Ok(())
}

/// A device is seen and revoked by its owner and by admins; to anyone else it does not exist.
pub(super) fn manage_device(actor: &Actor, device: &user_device::Model) -> Result<(), DomainError> {
    signed_in(actor)?;
    if actor.is(device.user_id) || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::NotFound("device"))
    }
}
