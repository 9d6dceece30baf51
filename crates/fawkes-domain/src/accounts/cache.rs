//! What every authenticated request asks the database: is this session still open, is this
//! account active, what is its role. Kept in coherent caches (see [`crate::coherent`]) so a
//! request costs no query, and dropped on every node the moment it changes.

use std::sync::Arc;

use fawkes_pubsub::PubSub;
use uuid::Uuid;

use crate::coherent::{CacheSettings, CacheStats, CoherentCache};

/// A session as authentication needs it.
#[derive(Debug, Clone)]
pub(super) struct CachedSession {
    pub user_id: Uuid,
    pub device_id: Option<Uuid>,
    pub revoked: bool,
    pub expires_at: i64,
}

/// A user as authentication needs it.
#[derive(Debug, Clone)]
pub(super) struct CachedUser {
    pub is_active: bool,
    pub role: String,
}

/// The per-node cache of sessions and users. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AuthCache {
    pub(super) sessions: CoherentCache<Uuid, CachedSession>,
    pub(super) users: CoherentCache<Uuid, CachedUser>,
}

impl AuthCache {
    pub fn new(bus: PubSub, settings: CacheSettings) -> Self {
        let stats = Arc::new(CacheStats::default());
        Self {
            sessions: CoherentCache::new(
                bus.clone(),
                "fawkes:cache:sessions",
                settings,
                stats.clone(),
            ),
            users: CoherentCache::new(bus, "fawkes:cache:users", settings, stats),
        }
    }

    /// Sessions' and users' lookups together, for metrics.
    pub fn stats(&self) -> &Arc<CacheStats> {
        self.sessions.stats()
    }

    /// Drops sessions and users here and on every other node, after the change is written.
    pub(super) fn invalidate(&self, sessions: &[Uuid], users: &[Uuid]) {
        self.sessions.invalidate(sessions);
        self.users.invalidate(users);
    }
}
