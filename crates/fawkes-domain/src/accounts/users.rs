//! Creating, reading and changing accounts.

use fawkes_data::entity::{session, user};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QuerySelect};

use super::{Accounts, CreateUser, PublicUser, UpdateUser, User, policy};
use crate::page::oldest_first;
use crate::time::now;
use crate::validation::validate;
use crate::{Actor, DomainError, Page, PageRequest, Role};

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
        let updated = row.update(self.db.as_ref()).await?;
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
        match row
            .insert(self.db.as_ref())
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
        let taken = user::Entity::find()
            .filter(user::Column::UsernameKey.eq(username_key))
            .one(db)
            .await?;
        if taken.is_some() {
            return Err(DomainError::Conflict {
                field: "username",
                message: "this username is taken".to_owned(),
            });
        }
        Ok(())
    }
}
