//! What every authenticated request asks the database: is this session still open, is this
//! account active, what is its role. Kept in memory (moka) so a request costs no query, and
//! dropped on every node the moment it changes.
//!
//! Correctness comes first, in three layers:
//! - whatever changes a session or a user drops it here at once and tells every other node over
//!   the bus (topic [`INVALIDATION_TOPIC`]); the other nodes drop it as the message arrives;
//! - a value read from the database is not cached if an invalidation happened while it was
//!   being read (it may be the old value);
//! - the bus is at most once: an entry cached before the bus last went down or came back is
//!   treated as absent, since invalidations may have been lost meanwhile; and every entry
//!   expires after the configured time-to-live whatever happens.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fawkes_pubsub::{Broadcast, PubSub, Sink};
use serde_json::{Value, json};
use uuid::Uuid;

/// The bus topic on which nodes announce what to drop.
pub const INVALIDATION_TOPIC: &str = "fawkes:auth_cache";

/// How long entries live and how many there may be; a zero TTL turns the cache off.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub ttl: Duration,
    pub max_entries: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            max_entries: 100_000,
        }
    }
}

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

/// Hits and misses, for metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    /// Entries dropped because another node (or this one) said they changed.
    pub invalidations: AtomicU64,
}

#[derive(Clone)]
struct Entry<T> {
    value: T,
    /// The bus generation when it was read; a different one now means it may be stale.
    bus_generation: u64,
}

struct Inner {
    sessions: moka::sync::Cache<Uuid, Entry<CachedSession>>,
    users: moka::sync::Cache<Uuid, Entry<CachedUser>>,
    /// Bumped by every invalidation: a read that straddles one is not cached.
    epoch: AtomicU64,
    stats: Arc<CacheStats>,
}

/// The per-node cache of sessions and users. Cheap to clone.
#[derive(Clone)]
pub struct AuthCache {
    inner: Option<Arc<Inner>>,
    bus: PubSub,
    stats: Arc<CacheStats>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("enabled", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

/// Hears invalidations from every node (this one's included).
struct Listener {
    inner: std::sync::Weak<Inner>,
}

impl Sink for Listener {
    fn deliver(&self, message: &Arc<Broadcast>) {
        let (Some(inner), fawkes_pubsub::Payload::Json(payload)) =
            (self.inner.upgrade(), &message.payload)
        else {
            return;
        };
        let ids = |key: &str| -> Vec<Uuid> {
            payload[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
                .collect()
        };
        inner.drop_entries(&ids("sessions"), &ids("users"));
    }
}

impl Inner {
    fn drop_entries(&self, sessions: &[Uuid], users: &[Uuid]) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        for id in sessions {
            self.sessions.invalidate(id);
        }
        for id in users {
            self.users.invalidate(id);
        }
        self.stats
            .invalidations
            .fetch_add((sessions.len() + users.len()) as u64, Ordering::Relaxed);
    }
}

impl AuthCache {
    pub fn new(bus: PubSub, settings: CacheSettings) -> Self {
        let stats = Arc::new(CacheStats::default());
        let inner = (!settings.ttl.is_zero()).then(|| {
            let inner = Arc::new(Inner {
                sessions: moka::sync::Cache::builder()
                    .max_capacity(settings.max_entries)
                    .time_to_live(settings.ttl)
                    .build(),
                users: moka::sync::Cache::builder()
                    .max_capacity(settings.max_entries)
                    .time_to_live(settings.ttl)
                    .build(),
                epoch: AtomicU64::new(0),
                stats: stats.clone(),
            });
            bus.attach(
                INVALIDATION_TOPIC,
                Arc::new(Listener {
                    inner: Arc::downgrade(&inner),
                }),
            );
            inner
        });
        Self { inner, bus, stats }
    }

    pub fn stats(&self) -> &Arc<CacheStats> {
        &self.stats
    }

    /// Changes with the bus connection's state: one number per "connected" or "down" period.
    fn bus_generation(&self) -> u64 {
        self.bus.remote_status().map_or(0, |status| {
            status.reconnects.load(Ordering::Relaxed) * 2 + u64::from(status.is_connected())
        })
    }

    /// The cached session, if fresh. `None` also counts a miss.
    pub(super) fn session(&self, id: Uuid) -> Option<CachedSession> {
        let inner = self.inner.as_ref()?;
        self.fresh(inner.sessions.get(&id))
    }

    pub(super) fn user(&self, id: Uuid) -> Option<CachedUser> {
        let inner = self.inner.as_ref()?;
        self.fresh(inner.users.get(&id))
    }

    fn fresh<T>(&self, entry: Option<Entry<T>>) -> Option<T> {
        match entry.filter(|e| e.bus_generation == self.bus_generation()) {
            Some(entry) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(entry.value)
            }
            None => {
                self.stats.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// A marker to take before reading from the database; [`AuthCache::keep_session`] and
    /// [`AuthCache::keep_user`] store only if no invalidation came in between.
    pub(super) fn read_started(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |inner| inner.epoch.load(Ordering::SeqCst))
    }

    pub(super) fn keep_session(&self, started: u64, id: Uuid, value: CachedSession) {
        if let Some(inner) = self.inner.as_ref()
            && inner.epoch.load(Ordering::SeqCst) == started
        {
            let bus_generation = self.bus_generation();
            inner.sessions.insert(
                id,
                Entry {
                    value,
                    bus_generation,
                },
            );
        }
    }

    pub(super) fn keep_user(&self, started: u64, id: Uuid, value: CachedUser) {
        if let Some(inner) = self.inner.as_ref()
            && inner.epoch.load(Ordering::SeqCst) == started
        {
            let bus_generation = self.bus_generation();
            inner.users.insert(
                id,
                Entry {
                    value,
                    bus_generation,
                },
            );
        }
    }

    /// Drops sessions and users here and on every other node. Called after the change is
    /// written, so a node that reads again reads the new value.
    pub(super) fn invalidate(&self, sessions: &[Uuid], users: &[Uuid]) {
        if self.inner.is_none() || (sessions.is_empty() && users.is_empty()) {
            return;
        }
        let payload: Value = json!({ "sessions": sessions, "users": users });
        // Delivered to this node's listener at once, and to the others over the bus.
        self.bus
            .broadcast(INVALIDATION_TOPIC, "invalidate", payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalidation_drops_the_entry_and_a_straddling_read_is_not_kept() {
        let cache = AuthCache::new(PubSub::new(), CacheSettings::default());
        let (session, user) = (Uuid::now_v7(), Uuid::now_v7());
        let value = CachedUser {
            is_active: true,
            role: "user".into(),
        };
        assert!(cache.user(user).is_none());
        let started = cache.read_started();
        cache.keep_user(started, user, value.clone());
        assert_eq!(cache.user(user).map(|u| u.role), Some("user".to_owned()));

        cache.invalidate(&[session], &[user]);
        assert!(cache.user(user).is_none(), "dropped at once on this node");

        // Read began before an invalidation and finished after it: not kept.
        let started = cache.read_started();
        cache.invalidate(&[], &[user]);
        cache.keep_user(started, user, value);
        assert!(cache.user(user).is_none());
        assert_eq!(cache.stats().hits.load(Ordering::Relaxed), 1);
        assert_eq!(cache.stats().invalidations.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_zero_ttl_turns_the_cache_off() {
        let cache = AuthCache::new(
            PubSub::new(),
            CacheSettings {
                ttl: Duration::ZERO,
                max_entries: 10,
            },
        );
        let id = Uuid::now_v7();
        cache.keep_user(
            cache.read_started(),
            id,
            CachedUser {
                is_active: true,
                role: "admin".into(),
            },
        );
        assert!(cache.user(id).is_none());
    }
}
