//! Creating, reading and changing accounts.

use fawkes_data::entity::{session, user};
use sea_orm::prelude::*;
use sea_orm::sea_query::LikeExpr;
use sea_orm::{ActiveValue::Set, Condition, QueryOrder, QuerySelect};

use super::{
    Accounts, ChangePassword, ChangeUsername, CreateUser, PublicUser, UpdateUser, User, policy,
};
use crate::page::oldest_first;
use crate::store::{insert_row, update_row};
use crate::time::now;
use crate::validation::validate;
use crate::{Actor, DomainError, Page, PageRequest, Role};

/// The most accounts one search returns.
const MAX_SEARCH_RESULTS: u64 = 100;

/// The longest search text worth sending to the database: no email or username is longer.
const MAX_SEARCH_CHARS: usize = 254;

/// The escape character of search patterns. Not a backslash, which MySQL also treats as an
/// escape inside string literals, so one pattern means the same on every backend.
const LIKE_ESCAPE: char = '!';

/// Emails are compared and stored lowercased.
pub(super) fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl Accounts {
    /// `create_user`: an account with a chosen role, by the operator or an admin.
    pub async fn create_user(&self, actor: &Actor, input: CreateUser) -> Result<User, DomainError> {
        validate(&input)?;
        policy::manage_users(actor)?;
        let role = input.role.unwrap_or(Role::User);
        let row = self
            .insert_user(input.email, input.username, input.password, role)
            .await?;
        Ok(User::from(row))
    }

    /// The signed-in user's own account.
    pub async fn me(&self, actor: &Actor) -> Result<User, DomainError> {
        let identity = policy::signed_in(actor)?;
        self.find_user(identity.user_id).await.map(User::from)
    }

    /// Another user's public profile.
    pub async fn profile(&self, actor: &Actor, user_id: Uuid) -> Result<PublicUser, DomainError> {
        policy::signed_in(actor)?;
        self.find_user(user_id).await.map(PublicUser::from)
    }

    /// Every account, oldest first; admins only.
    pub async fn list_users(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<User>, DomainError> {
        policy::manage_users(actor)?;
        let (cursor, limit) = page.parse()?;
        let rows = oldest_first(user::Entity::find(), user::Column::Id, (cursor, limit))
            .all(self.db.as_ref())
            .await?;
        Ok(Page::from_rows(rows, limit, |row| row.id, User::from))
    }

    /// Accounts whose username or email contains `query`, ignoring case, newest first; an empty
    /// query lists the newest accounts. At most `limit` (1 to 100) of them; admins only.
    ///
    /// Case is ignored by comparing the lowercased query with `username_key` and `email`, which
    /// hold the lowercased name and address (lowercased by the same Rust function at every
    /// write). Lowering the columns in SQL instead would differ per backend: SQLite's `LOWER`
    /// folds ASCII only, and it does nothing to MySQL binary strings.
    pub async fn search_users(
        &self,
        actor: &Actor,
        query: &str,
        limit: u64,
    ) -> Result<Vec<User>, DomainError> {
        policy::manage_users(actor)?;
        if !(1..=MAX_SEARCH_RESULTS).contains(&limit) {
            return Err(DomainError::invalid(
                "limit",
                format!("must be between 1 and {MAX_SEARCH_RESULTS}"),
            ));
        }
        let needle = query.trim().to_lowercase();
        if needle.contains('\0') {
            return Err(DomainError::invalid(
                "query",
                "must not contain the character U+0000",
            ));
        }
        if needle.chars().count() > MAX_SEARCH_CHARS {
            return Err(DomainError::invalid(
                "query",
                format!("must be at most {MAX_SEARCH_CHARS} characters"),
            ));
        }
        let mut select = user::Entity::find();
        if !needle.is_empty() {
            let pattern = format!("%{}%", escape_like(&needle));
            let contains = || LikeExpr::new(pattern.clone()).escape(LIKE_ESCAPE);
            select = select.filter(
                Condition::any()
                    .add(user::Column::UsernameKey.like(contains()))
                    .add(user::Column::Email.like(contains())),
            );
        }
        let rows = select
            .order_by_desc(user::Column::Id)
            .limit(limit)
            .all(self.db.as_ref())
            .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// `change_username`: the signed-in user renames their own account. Names are unique
    /// regardless of case, as at sign-up; changing only the case of one's own name is allowed.
    ///
    /// Nothing is broadcast to clients: no topic carries account details (messages keep the name
    /// they were sent under in their broadcasts). Every node drops the cached name, so lists show
    /// the new one.
    pub async fn change_username(
        &self,
        actor: &Actor,
        input: ChangeUsername,
    ) -> Result<User, DomainError> {
        validate(&input)?;
        let identity = policy::change_own_account(actor)?;
        let username_key = input.username.to_lowercase();
        self.ensure_username_free(&username_key, Some(identity.user_id))
            .await?;
        let renamed = user::ActiveModel {
            id: Set(identity.user_id),
            username: Set(input.username),
            username_key: Set(username_key),
            updated_at: Set(now()),
            ..Default::default()
        };
        let updated = update_row(self.db.as_ref(), renamed)
            .await
            .map_err(|e| match e {
                DbErr::RecordNotUpdated => DomainError::NotFound("user"),
                // Someone took the name between the check and the update.
                other => match DomainError::from(other) {
                    DomainError::Conflict { .. } => username_taken(),
                    other => other,
                },
            })?;
        self.authors.renamed(updated.id);
        Ok(User::from(updated))
    }

    /// `change_password`: the signed-in user sets a new password after proving they know the
    /// current one. Every other session of the account ends (its sockets are disconnected), so
    /// whoever else held the old password or a token is out; the actor's own session stays.
    pub async fn change_password(
        &self,
        actor: &Actor,
        input: ChangePassword,
    ) -> Result<(), DomainError> {
        validate(&input)?;
        let identity = policy::change_own_account(actor)?;
        let user = self.find_user(identity.user_id).await?;
        if !self
            .passwords
            .verify(input.current_password, user.password_hash)
            .await?
        {
            return Err(DomainError::invalid(
                "current_password",
                "is not the current password",
            ));
        }
        let password_hash = self.passwords.hash(input.new_password).await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .col_expr(user::Column::UpdatedAt, Expr::value(now()))
            .filter(user::Column::Id.eq(user.id))
            .exec(self.db.as_ref())
            .await?;
        let others: Vec<Uuid> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::UserId.eq(user.id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::Id.ne(identity.session_id))
            .into_tuple()
            .all(self.db.as_ref())
            .await?;
        self.revoke_sessions(others, "password_changed").await
    }

    /// `update_user`: an admin changes a role or (de)activates an account. Deactivation ends
    /// every session of the user at once and disconnects their sockets.
    pub async fn update_user(
        &self,
        actor: &Actor,
        user_id: Uuid,
        change: UpdateUser,
    ) -> Result<User, DomainError> {
        validate(&change)?;
        policy::change_user(actor, user_id)?;
        let current = self.find_user(user_id).await?;
        let mut row = user::ActiveModel {
            id: Set(user_id),
            updated_at: Set(now()),
            ..Default::default()
        };
        if let Some(role) = change.role {
            row.role = Set(role.as_str().to_owned());
        }
        if let Some(is_active) = change.is_active {
            row.is_active = Set(is_active);
        }
        let updated = update_row(self.db.as_ref(), row).await?;
        // Role and activity are what authentication reads: every node drops its copy.
        self.cache.invalidate(&[], &[user_id]);
        if current.is_active && !updated.is_active {
            let open: Vec<Uuid> = session::Entity::find()
                .select_only()
                .column(session::Column::Id)
                .filter(session::Column::UserId.eq(user_id))
                .filter(session::Column::RevokedAt.is_null())
                .into_tuple()
                .all(self.db.as_ref())
                .await?;
            self.revoke_sessions(open, "deactivated").await?;
            self.bus.broadcast(
                &super::user_socket_topic(user_id),
                "disconnect",
                serde_json::json!({}),
            );
        }
        Ok(User::from(updated))
    }

    pub(super) async fn find_user(&self, user_id: Uuid) -> Result<user::Model, DomainError> {
        user::Entity::find_by_id(user_id)
            .one(self.db.as_ref())
            .await?
            .ok_or(DomainError::NotFound("user"))
    }

    /// Stores a new account. Email and username are unique regardless of case.
    pub(super) async fn insert_user(
        &self,
        email: String,
        username: String,
        password: String,
        role: Role,
    ) -> Result<user::Model, DomainError> {
        let email = normalize_email(&email);
        let username_key = username.to_lowercase();
        self.ensure_unique(&email, &username_key).await?;
        let password_hash = self.passwords.hash(password).await?;
        let at = now();
        let row = user::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email.clone()),
            username: Set(username),
            username_key: Set(username_key.clone()),
            password_hash: Set(password_hash),
            role: Set(role.as_str().to_owned()),
            is_active: Set(true),
            last_login_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
        };
        match insert_row(self.db.as_ref(), row)
            .await
            .map_err(DomainError::from)
        {
            Ok(row) => Ok(row),
            // Someone took the name between the check and the insert.
            Err(DomainError::Conflict { .. }) => {
                self.ensure_unique(&email, &username_key).await?;
                Err(DomainError::Conflict {
                    field: "email",
                    message: "already registered".to_owned(),
                })
            }
            Err(other) => Err(other),
        }
    }

    async fn ensure_unique(&self, email: &str, username_key: &str) -> Result<(), DomainError> {
        let db = self.db.as_ref();
        if user::Entity::find()
            .filter(user::Column::Email.eq(email))
            .one(db)
            .await?
            .is_some()
        {
            return Err(DomainError::Conflict {
                field: "email",
                message: "an account with this email already exists".to_owned(),
            });
        }
        self.ensure_username_free(username_key, None).await
    }

    /// Fails with the `username` conflict when another account than `except` has the name.
    async fn ensure_username_free(
        &self,
        username_key: &str,
        except: Option<Uuid>,
    ) -> Result<(), DomainError> {
        let mut taken = user::Entity::find().filter(user::Column::UsernameKey.eq(username_key));
        if let Some(user_id) = except {
            taken = taken.filter(user::Column::Id.ne(user_id));
        }
        if taken.one(self.db.as_ref()).await?.is_some() {
            return Err(username_taken());
        }
        Ok(())
    }
}

fn username_taken() -> DomainError {
    DomainError::Conflict {
        field: "username",
        message: "this username is taken".to_owned(),
    }
}

/// `text` with the pattern characters of `LIKE` (and the escape character) escaped, so a
/// search for `a_b` or `50%` finds those characters literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_') || c == LIKE_ESCAPE {
            escaped.push(LIKE_ESCAPE);
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::escape_like;

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("a_b%c!d"), "a!_b!%c!!d");
        assert_eq!(escape_like("plain"), "plain");
    }
}
