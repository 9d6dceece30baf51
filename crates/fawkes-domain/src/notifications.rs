//! Notifications: each user has a private topic, `notification:{user_id}`.

use uuid::Uuid;

use crate::{Actor, AuthFailure, DomainError};

/// The topic of a user's notifications.
pub fn notification_topic(user_id: Uuid) -> String {
    format!("notification:{user_id}")
}

/// Only the user themselves follows their notifications.
pub fn authorize_subscription(actor: &Actor, user_id: Uuid) -> Result<(), DomainError> {
    match actor.user_id() {
        None => Err(AuthFailure::Missing.into()),
        Some(id) if id == user_id => Ok(()),
        Some(_) => Err(DomainError::Forbidden(
            "only the user may follow their notifications",
        )),
    }
}
