//! Logging in and out, refreshing, and turning an access token back into an [`Actor`].

use fawkes_data::entity::{refresh_token, session, user, user_device};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DatabaseTransaction, TransactionTrait};

use super::cache::{CachedSession, CachedUser};
use super::tokens::{new_refresh_token, secret_hash};
use super::users::normalize_email;
use super::{Accounts, AuthTokens, LoginInput, RefreshInput, RegisterInput, User, policy};
use crate::store::begin_write;
use crate::time::now;
use crate::validation::validate;
use crate::{Actor, AuthFailure, DomainError, Identity, Role};

/// The device a login names.
pub(super) struct DeviceLogin {
    pub device_id: String,
    pub name: Option<String>,
    pub info: Option<serde_json::Value>,
}

impl Accounts {
    /// `register`: creates a `user` account and signs it in.
    pub async fn register(&self, input: RegisterInput) -> Result<AuthTokens, DomainError> {
        validate(&input)?;
        let device = input.device_id.map(|device_id| DeviceLogin {
            device_id,
            name: input.device_name,
            info: None,
        });
        let user = self
            .insert_user(input.email, input.username, input.password, Role::User)
            .await?;
        self.start_session(user, device).await
    }

    /// `login`: checks the password and opens a session, registering the device if named.
    ///
    /// An unknown login costs the same hashing time as a wrong password, so the answer's timing
    /// does not reveal which accounts exist.
    pub async fn login(&self, input: LoginInput) -> Result<AuthTokens, DomainError> {
        validate(&input)?;
        let found = self.find_by_login(&input.login).await?;
        let Some(user) = found else {
            self.passwords.verify_decoy(input.password).await?;
            return Err(AuthFailure::InvalidCredentials.into());
        };
        if !self
            .passwords
            .verify(input.password, user.password_hash.clone())
            .await?
        {
            return Err(AuthFailure::InvalidCredentials.into());
        }
        if !user.is_active {
            return Err(AuthFailure::AccountDisabled.into());
        }
        let device = input.device_id.map(|device_id| DeviceLogin {
            device_id,
            name: input.device_name,
            info: input.device_info,
        });
        self.start_session(user, device).await
    }

    /// `refresh`: exchanges a refresh token for a new pair. Each token works once; presenting
    /// a used one means it was copied, so the whole session is revoked.
    pub async fn refresh(&self, input: RefreshInput) -> Result<AuthTokens, DomainError> {
        validate(&input)?;
        let hash = secret_hash(&input.refresh_token);
        let db = self.db.as_ref();
        let token = refresh_token::Entity::find()
            .filter(refresh_token::Column::TokenHash.eq(hash))
            .one(db)
            .await?
            .ok_or(AuthFailure::InvalidToken)?;
        let session = session::Entity::find_by_id(token.session_id)
            .one(db)
            .await?
            .ok_or(AuthFailure::InvalidToken)?;
        if session.revoked_at.is_some() {
            return Err(AuthFailure::SessionRevoked.into());
        }
        if token.used_at.is_some() {
            self.revoke_sessions(vec![session.id], "reuse").await?;
            return Err(AuthFailure::RefreshTokenReused.into());
        }
        let at = now();
        if token.expires_at <= at || session.expires_at <= at {
            return Err(AuthFailure::TokenExpired.into());
        }
        let user = user::Entity::find_by_id(session.user_id)
            .one(db)
            .await?
            .ok_or(AuthFailure::InvalidToken)?;
        if !user.is_active {
            return Err(AuthFailure::AccountDisabled.into());
        }

        let txn = begin_write(db).await?;
        // Claiming the token is one conditional UPDATE, so of two concurrent refreshes with the
        // same token exactly one wins; the loser is treated as reuse.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(at))
            .filter(refresh_token::Column::Id.eq(token.id))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?;
        if claimed.rows_affected != 1 {
            txn.rollback().await?;
            self.revoke_sessions(vec![session.id], "reuse").await?;
            return Err(AuthFailure::RefreshTokenReused.into());
        }
        let expires_at = at.saturating_add(self.refresh_ttl_ms());
        session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(at))
            .col_expr(session::Column::ExpiresAt, Expr::value(expires_at))
            .filter(session::Column::Id.eq(session.id))
            .exec(&txn)
            .await?;
        let refresh_token = insert_refresh_token(&txn, session.id, at, expires_at).await?;
        txn.commit().await?;
        // The session's expiry moved.
        self.cache.invalidate(&[session.id], &[]);
        self.tokens_for(user, session.id, session.device_id, refresh_token)
    }

    /// `logout`: ends the actor's session; its refresh token and access tokens stop working.
    pub async fn logout(&self, actor: &Actor) -> Result<(), DomainError> {
        let identity = policy::signed_in(actor)?;
        self.revoke_sessions(vec![identity.session_id], "logout")
            .await
    }

    /// Establishes who holds `access_token`. Besides the signature and expiry, the session must
    /// still be open and the account active, and the role is the one stored now.
    pub async fn authenticate(&self, access_token: &str) -> Result<Actor, DomainError> {
        if access_token.starts_with(super::API_KEY_PREFIX) {
            return self.authenticate_api_key(access_token).await;
        }
        let claims = self.tokens.verify(access_token)?;
        let (actor, _) = self.open_session(claims.sub, claims.sid).await?;
        Ok(actor)
    }

    /// Establishes who holds a page cookie, which carries a `(user, session)` pair the server
    /// signed at login instead of a JWT. The checks are those of [`Accounts::authenticate`], so
    /// logout, device revocation, deactivation and role changes reach pages at once.
    ///
    /// A cookie has no expiry of its own that the domain could check, so the session's does: once
    /// the session's refresh lifetime is over the page must sign in again, as an API client
    /// would.
    pub async fn authenticate_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<Actor, DomainError> {
        let (actor, expires_at) = self.open_session(user_id, session_id).await?;
        if expires_at <= now() {
            return Err(AuthFailure::SessionRevoked.into());
        }
        Ok(actor)
    }

    /// The actor of `session_id`, if that session belongs to `user_id`, is still open and the
    /// account is active; the role is the one stored now. Also the session's expiry.
    async fn open_session(
        &self,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<(Actor, i64), DomainError> {
        let db = self.db.as_ref();
        let session = self
            .cache
            .sessions
            .get_or_load(&session_id, || async {
                let row = session::Entity::find_by_id(session_id)
                    .one(db)
                    .await?
                    .ok_or(AuthFailure::InvalidToken)?;
                Ok::<_, DomainError>(CachedSession {
                    user_id: row.user_id,
                    device_id: row.device_id,
                    revoked: row.revoked_at.is_some(),
                    expires_at: row.expires_at,
                })
            })
            .await?;
        if session.user_id != user_id {
            return Err(AuthFailure::InvalidToken.into());
        }
        if session.revoked {
            return Err(AuthFailure::SessionRevoked.into());
        }
        let user = self
            .cache
            .users
            .get_or_load(&user_id, || async {
                let row = user::Entity::find_by_id(user_id)
                    .one(db)
                    .await?
                    .ok_or(AuthFailure::InvalidToken)?;
                Ok::<_, DomainError>(CachedUser {
                    is_active: row.is_active,
                    role: row.role,
                })
            })
            .await?;
        if !user.is_active {
            return Err(AuthFailure::AccountDisabled.into());
        }
        let actor = Actor::User(Identity {
            user_id,
            role: Role::parse(&user.role).unwrap_or(Role::User),
            session_id,
            device_id: session.device_id,
        });
        Ok((actor, session.expires_at))
    }

    /// Revokes open sessions and tells their sockets to disconnect.
    pub(super) async fn revoke_sessions(
        &self,
        session_ids: Vec<Uuid>,
        reason: &str,
    ) -> Result<(), DomainError> {
        if session_ids.is_empty() {
            return Ok(());
        }
        session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(now()))
            .col_expr(session::Column::RevokedReason, Expr::value(reason))
            .filter(session::Column::Id.is_in(session_ids.clone()))
            .filter(session::Column::RevokedAt.is_null())
            .exec(self.db.as_ref())
            .await?;
        self.cache.invalidate(&session_ids, &[]);
        for id in session_ids {
            self.bus.broadcast(
                &super::session_socket_topic(id),
                "disconnect",
                serde_json::json!({}),
            );
        }
        Ok(())
    }

    /// Opens a session for `user` (and its device), and issues the first token pair.
    pub(super) async fn start_session(
        &self,
        user: user::Model,
        device: Option<DeviceLogin>,
    ) -> Result<AuthTokens, DomainError> {
        let at = now();
        let expires_at = at.saturating_add(self.refresh_ttl_ms());
        let txn = begin_write(self.db.as_ref()).await?;
        let device_row = match device {
            Some(device) => Some(upsert_device(&txn, user.id, device, at).await?),
            None => None,
        };
        let session_id = Uuid::now_v7();
        session::ActiveModel {
            id: Set(session_id),
            user_id: Set(user.id),
            device_id: Set(device_row),
            created_at: Set(at),
            last_used_at: Set(at),
            expires_at: Set(expires_at),
            revoked_at: Set(None),
            revoked_reason: Set(None),
        }
        .insert(&txn)
        .await?;
        let refresh_token = insert_refresh_token(&txn, session_id, at, expires_at).await?;
        user::Entity::update_many()
            .col_expr(user::Column::LastLoginAt, Expr::value(at))
            .filter(user::Column::Id.eq(user.id))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        let user = user::Model {
            last_login_at: Some(at),
            ..user
        };
        self.tokens_for(user, session_id, device_row, refresh_token)
    }

    fn tokens_for(
        &self,
        user: user::Model,
        session_id: Uuid,
        device_id: Option<Uuid>,
        refresh_token: String,
    ) -> Result<AuthTokens, DomainError> {
        let role = Role::parse(&user.role).unwrap_or(Role::User);
        let access_token = self.tokens.issue(user.id, role, session_id, device_id)?;
        Ok(AuthTokens {
            user: User::from(user),
            access_token,
            refresh_token,
            token_type: "Bearer".to_owned(),
            expires_in: self.tokens.access_ttl_secs(),
        })
    }

    fn refresh_ttl_ms(&self) -> i64 {
        i64::try_from(self.refresh_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// The account a login string names: an email address if it has an `@`, else a username.
    async fn find_by_login(&self, login: &str) -> Result<Option<user::Model>, DomainError> {
        let query = if login.contains('@') {
            user::Entity::find().filter(user::Column::Email.eq(normalize_email(login)))
        } else {
            user::Entity::find().filter(user::Column::UsernameKey.eq(login.trim().to_lowercase()))
        };
        Ok(query.one(self.db.as_ref()).await?)
    }
}

async fn insert_refresh_token(
    txn: &DatabaseTransaction,
    session_id: Uuid,
    at: i64,
    expires_at: i64,
) -> Result<String, DomainError> {
    let token = new_refresh_token();
    refresh_token::ActiveModel {
        id: Set(Uuid::now_v7()),
        session_id: Set(session_id),
        token_hash: Set(secret_hash(&token)),
        created_at: Set(at),
        expires_at: Set(expires_at),
        used_at: Set(None),
    }
    .insert(txn)
    .await?;
    Ok(token)
}

/// Registers the device, or marks a known one active and seen now.
async fn upsert_device<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    user_id: Uuid,
    device: DeviceLogin,
    at: i64,
) -> Result<Uuid, DomainError> {
    let existing = user_device::Entity::find()
        .filter(user_device::Column::UserId.eq(user_id))
        .filter(user_device::Column::DeviceId.eq(device.device_id.as_str()))
        .one(db)
        .await?;
    if let Some(row) = existing {
        let mut update = user_device::ActiveModel {
            id: Set(row.id),
            last_seen_at: Set(at),
            is_active: Set(true),
            ..Default::default()
        };
        if device.name.is_some() {
            update.name = Set(device.name);
        }
        if device.info.is_some() {
            update.info = Set(device.info);
        }
        update.update(db).await?;
        return Ok(row.id);
    }
    let id = Uuid::now_v7();
    user_device::ActiveModel {
        id: Set(id),
        user_id: Set(user_id),
        device_id: Set(device.device_id),
        name: Set(device.name),
        info: Set(device.info),
        last_seen_at: Set(at),
        is_active: Set(true),
        created_at: Set(at),
    }
    .insert(db)
    .await?;
    Ok(id)
}
