//! Accounts: users, devices and login sessions.

mod api_keys;
mod cache;
mod devices;
mod password;
mod policy;
mod sessions;
mod tokens;
mod users;
mod views;

use std::sync::Arc;
use std::time::Duration;

use fawkes_pubsub::PubSub;
use sea_orm::DatabaseConnection;

use crate::authors::Authors;

pub use crate::coherent::{CacheSettings, CacheStats};
pub use api_keys::{API_KEY_PREFIX, ApiKey, CreatedApiKey, NewApiKey};
pub use cache::AuthCache;
pub use password::PasswordHasher;
pub use tokens::{AccessClaims, TokenSigner};
pub use views::{
    AuthTokens, ChangePassword, ChangeUsername, CreateUser, Device, LoginInput, PublicUser,
    RefreshInput, RegisterInput, UpdateUser, User,
};

/// Token lifetimes and signing material.
#[derive(Clone)]
pub struct AuthSettings {
    /// Signs and checks access tokens (HS256).
    pub secret: Vec<u8>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// The in-memory cache of sessions and users that authentication reads.
    pub cache: CacheSettings,
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field("secret", &"***")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish()
    }
}

/// The accounts context.
#[derive(Clone, Debug)]
pub struct Accounts {
    db: Arc<DatabaseConnection>,
    bus: PubSub,
    tokens: TokenSigner,
    passwords: PasswordHasher,
    refresh_ttl: Duration,
    cache: AuthCache,
    authors: Authors,
}

impl Accounts {
    pub(crate) fn new(
        db: Arc<DatabaseConnection>,
        bus: PubSub,
        settings: AuthSettings,
        authors: Authors,
    ) -> Self {
        Self {
            db,
            cache: AuthCache::new(bus.clone(), settings.cache),
            authors,
            bus,
            refresh_ttl: settings.refresh_ttl,
            tokens: TokenSigner::new(&settings),
            passwords: PasswordHasher::default(),
        }
    }

    /// How many password verifications (Argon2, a real hash or the decoy) have run: a login
    /// attempt costs one whether or not its account exists.
    pub fn password_verifications(&self) -> u64 {
        self.passwords.verifications()
    }

    /// The authentication cache's counters, for metrics.
    pub fn cache_stats(&self) -> &Arc<CacheStats> {
        self.cache.stats()
    }

    /// The signer of access tokens, for transports that check tokens themselves (sockets).
    pub fn tokens(&self) -> &TokenSigner {
        &self.tokens
    }
}

/// The topic on which every socket of a user is told to disconnect (account deactivated).
pub fn user_socket_topic(user_id: uuid::Uuid) -> String {
    format!("user_socket:{user_id}")
}

/// The topic on which the sockets of one login session are told to disconnect (logout, token
/// reuse, device revoked).
pub fn session_socket_topic(session_id: uuid::Uuid) -> String {
    format!("session_socket:{session_id}")
}
