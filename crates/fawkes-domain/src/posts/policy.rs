//! Who may do what to which post or post comment.
//!
//! A draft exists only for its author and admins: to anyone else it is `NotFound`, as a private
//! room is. On a post they can see, a refused action is `Forbidden`.

use fawkes_data::entity::{post, post_comment};
use uuid::Uuid;

use super::PostStatus;
use crate::{Actor, AuthFailure, DomainError};

fn is_published(post: &post::Model) -> bool {
    PostStatus::parse(&post.status) == PostStatus::Published
}

/// Published posts are for everyone, guests included; drafts for their author and admins.
pub(super) fn read(actor: &Actor, post: &post::Model) -> Result<(), DomainError> {
    if may_read(actor, post.author_id, PostStatus::parse(&post.status)) {
        Ok(())
    } else {
        Err(DomainError::NotFound("post"))
    }
}

/// [`read`] for a post known only by its author and status (as a broadcast carries them).
pub(super) fn may_read(actor: &Actor, author_id: Uuid, status: PostStatus) -> bool {
    status == PostStatus::Published || actor.is(author_id) || actor.is_admin()
}

/// Anyone signed in writes posts; returns the author.
pub(super) fn create(actor: &Actor) -> Result<Uuid, DomainError> {
    actor.user_id().ok_or(AuthFailure::Missing.into())
}

/// Only the author edits a post, draft or published.
pub(super) fn update(actor: &Actor, post: &post::Model) -> Result<(), DomainError> {
    signed_in(actor)?;
    if actor.is(post.author_id) {
        Ok(())
    } else {
        Err(DomainError::Forbidden("only the author may edit a post"))
    }
}

/// The author or an admin publishes a post.
pub(super) fn publish(actor: &Actor, post: &post::Model) -> Result<(), DomainError> {
    signed_in(actor)?;
    if actor.is(post.author_id) || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only the author or an admin may publish a post",
        ))
    }
}

/// Only admins take a post back to draft.
pub(super) fn unpublish(actor: &Actor) -> Result<(), DomainError> {
    signed_in(actor)?;
    if actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden("only an admin may unpublish a post"))
    }
}

/// The author or an admin deletes a post.
pub(super) fn delete(actor: &Actor, post: &post::Model) -> Result<(), DomainError> {
    signed_in(actor)?;
    if actor.is(post.author_id) || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only the author or an admin may delete a post",
        ))
    }
}

/// Any signed-in user comments on a published post (the account is active: the actor was
/// authenticated just now); returns the comment's author.
pub(super) fn comment(actor: &Actor, post: &post::Model) -> Result<Uuid, DomainError> {
    let author = actor.user_id().ok_or(AuthFailure::Missing)?;
    if is_published(post) {
        Ok(author)
    } else {
        Err(DomainError::Forbidden(
            "comments are open on published posts only",
        ))
    }
}

/// The comment's author or an admin deletes a comment.
pub(super) fn delete_comment(
    actor: &Actor,
    comment: &post_comment::Model,
) -> Result<(), DomainError> {
    signed_in(actor)?;
    if actor.is(comment.author_id) || actor.is_admin() {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "only the author or an admin may delete a comment",
        ))
    }
}

/// Anonymous actors are told to sign in rather than that they are not allowed.
fn signed_in(actor: &Actor) -> Result<(), DomainError> {
    match actor {
        Actor::Anonymous => Err(AuthFailure::Missing.into()),
        _ => Ok(()),
    }
}
