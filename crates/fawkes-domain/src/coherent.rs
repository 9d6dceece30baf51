//! A per-node cache of values read from the database, kept coherent across the nodes of a
//! cluster: what every hot read path (authentication, authors, rooms, a room's newest page) asks
//! the database again and again, answered from memory (moka), and dropped on every node the
//! moment it changes.
//!
//! Correctness comes first, in three layers:
//! - whatever changes a cached value drops it here at once and tells every other node over the
//!   bus (each cache has its own topic); the other nodes drop it as the message arrives;
//! - a value read from the database is not kept if an invalidation happened while it was being
//!   read (it may be the old value);
//! - the bus is at most once: an entry cached before the bus last went down or came back is
//!   treated as absent, since invalidations may have been lost meanwhile; and every entry
//!   expires after the configured time-to-live whatever happens.

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fawkes_pubsub::{Broadcast, Payload, PubSub, Sink};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

/// How long entries live and how many there may be; a zero TTL turns the caches off.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub ttl: Duration,
    /// Entries per cache; a cached list counts one per item.
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

/// Hits and misses, for metrics.
#[derive(Debug, Default)]
pub struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    /// Entries dropped because another node (or this one) said they changed.
    pub invalidations: AtomicU64,
}

/// A marker taken before reading from the database: [`CoherentCache::keep`] stores the value
/// read only if no invalidation came in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadStarted(u64);

#[derive(Clone)]
struct Entry<V> {
    value: V,
    /// The bus generation when it was read; a different one now means it may be stale.
    bus_generation: u64,
}

struct Inner<K, V> {
    entries: moka::sync::Cache<K, Entry<V>>,
    /// Bumped by every invalidation: a read that straddles one is not kept.
    epoch: AtomicU64,
    stats: Arc<CacheStats>,
}

/// One cache of `K → V`, invalidated over the bus topic it was made with. Cheap to clone.
pub(crate) struct CoherentCache<K, V> {
    inner: Option<Arc<Inner<K, V>>>,
    bus: PubSub,
    topic: &'static str,
    stats: Arc<CacheStats>,
}

impl<K, V> Clone for CoherentCache<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            bus: self.bus.clone(),
            topic: self.topic,
            stats: self.stats.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for CoherentCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoherentCache")
            .field("topic", &self.topic)
            .field("enabled", &self.inner.is_some())
            .finish_non_exhaustive()
    }
}

/// Hears a cache's invalidations from every node (this one's included).
struct Listener<K, V> {
    inner: std::sync::Weak<Inner<K, V>>,
}

impl<K, V> Sink for Listener<K, V>
where
    K: Hash + Eq + Send + Sync + DeserializeOwned + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn deliver(&self, message: &Arc<Broadcast>) {
        let (Some(inner), Payload::Json(payload)) = (self.inner.upgrade(), &message.payload) else {
            return;
        };
        // Bumped before the entries go, so a database read that straddles this is not kept
        // (`keep`), and again after, so what was built from the old entries, tagged with the
        // epoch of before (`read_started`), does not pass for current.
        inner.epoch.fetch_add(1, Ordering::SeqCst);
        let keys: Vec<K> = payload["keys"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|key| K::deserialize(key).ok())
            .collect();
        for key in &keys {
            inner.entries.invalidate(key);
        }
        inner.epoch.fetch_add(1, Ordering::SeqCst);
        inner
            .stats
            .invalidations
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
    }
}

impl<K, V> CoherentCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache of at most `settings.max_entries` values, each counted as one.
    pub fn new(
        bus: PubSub,
        topic: &'static str,
        settings: CacheSettings,
        stats: Arc<CacheStats>,
    ) -> Self {
        Self::weighted(bus, topic, settings, stats, |_, _| 1)
    }

    /// A cache whose values count as `weight` entries each against `settings.max_entries`.
    pub fn weighted(
        bus: PubSub,
        topic: &'static str,
        settings: CacheSettings,
        stats: Arc<CacheStats>,
        weight: fn(&K, &V) -> u32,
    ) -> Self {
        let inner = (!settings.ttl.is_zero()).then(|| {
            let inner = Arc::new(Inner {
                entries: moka::sync::Cache::builder()
                    .max_capacity(settings.max_entries)
                    .weigher(move |key: &K, entry: &Entry<V>| weight(key, &entry.value))
                    .time_to_live(settings.ttl)
                    .build(),
                epoch: AtomicU64::new(0),
                stats: stats.clone(),
            });
            bus.attach(
                topic,
                Arc::new(Listener {
                    inner: Arc::downgrade(&inner),
                }),
            );
            inner
        });
        Self {
            inner,
            bus,
            topic,
            stats,
        }
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

    /// The cached value, if fresh. `None` also counts a miss.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: moka::Equivalent<K> + Hash + ?Sized,
    {
        let inner = self.inner.as_ref()?;
        match inner
            .entries
            .get(key)
            .filter(|entry| entry.bus_generation == self.bus_generation())
        {
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

    /// The cached value of `key`, or else what `load` reads, kept unless an invalidation came
    /// in while it was read.
    pub async fn get_or_load<Q, E, Fut>(&self, key: &Q, load: impl FnOnce() -> Fut) -> Result<V, E>
    where
        Q: moka::Equivalent<K> + Hash + ToOwned<Owned = K> + ?Sized,
        Fut: std::future::Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(key) {
            return Ok(value);
        }
        let started = self.read_started();
        let value = load().await?;
        self.keep(started, key.to_owned(), value.clone());
        Ok(value)
    }

    /// Take before reading the value from the database, and hand to [`CoherentCache::keep`]
    /// (for loads that [`CoherentCache::get_or_load`] cannot express, such as batches). Equal
    /// markers mean no invalidation came in between: what was built from this cache's values
    /// under the first is still good under the second. With the cache off, always equal.
    pub fn read_started(&self) -> ReadStarted {
        ReadStarted(
            self.inner
                .as_ref()
                .map_or(0, |inner| inner.epoch.load(Ordering::SeqCst)),
        )
    }

    /// Stores a value read from the database, unless an invalidation came in since `started`.
    pub fn keep(&self, started: ReadStarted, key: K, value: V) {
        if let Some(inner) = self.inner.as_ref()
            && inner.epoch.load(Ordering::SeqCst) == started.0
        {
            let bus_generation = self.bus_generation();
            inner.entries.insert(
                key,
                Entry {
                    value,
                    bus_generation,
                },
            );
        }
    }

    /// Drops `keys` here and on every other node. Call after the change is written, so a node
    /// that reads again reads the new value.
    pub fn invalidate(&self, keys: &[K]) {
        if self.inner.is_some() && !keys.is_empty() {
            // Delivered to this node's listener at once, and to the others over the bus.
            self.bus
                .broadcast(self.topic, "invalidate", json!({ "keys": keys }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn cache() -> CoherentCache<Uuid, String> {
        CoherentCache::new(
            PubSub::new(),
            "test:cache",
            CacheSettings::default(),
            Arc::default(),
        )
    }

    #[test]
    fn an_invalidation_drops_the_entry_and_a_straddling_read_is_not_kept() {
        let cache = cache();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        assert!(cache.get(&a).is_none());
        cache.keep(cache.read_started(), a, "one".into());
        cache.keep(cache.read_started(), b, "two".into());
        assert_eq!(cache.get(&a).as_deref(), Some("one"));

        cache.invalidate(&[a]);
        assert!(cache.get(&a).is_none(), "dropped at once on this node");
        assert_eq!(cache.get(&b).as_deref(), Some("two"), "others stay");

        // Read began before an invalidation and finished after it: not kept.
        let started = cache.read_started();
        cache.invalidate(&[a]);
        cache.keep(started, a, "stale".into());
        assert!(cache.get(&a).is_none());
        assert_eq!(cache.stats().hits.load(Ordering::Relaxed), 2);
        assert_eq!(cache.stats().misses.load(Ordering::Relaxed), 3);
        assert_eq!(cache.stats().invalidations.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn get_or_load_reads_once_and_drops_a_load_that_straddles_an_invalidation() {
        let cache = cache();
        let id = Uuid::now_v7();
        let loads = std::cell::Cell::new(0);
        let load = |value: &'static str| {
            loads.set(loads.get() + 1);
            async move { Ok::<_, ()>(value.to_owned()) }
        };
        assert_eq!(
            cache.get_or_load(&id, || load("one")).await.as_deref(),
            Ok("one")
        );
        assert_eq!(
            cache.get_or_load(&id, || load("two")).await.as_deref(),
            Ok("one")
        );
        assert_eq!(loads.get(), 1, "the second answer came from the cache");

        cache.invalidate(&[id]);
        let straddled = cache
            .get_or_load(&id, || {
                cache.invalidate(&[id]);
                load("stale")
            })
            .await;
        assert_eq!(
            straddled.as_deref(),
            Ok("stale"),
            "the caller gets what it read"
        );
        assert!(cache.get(&id).is_none(), "but it is not kept");
        assert_eq!(
            cache.get_or_load(&id, || load("fresh")).await.as_deref(),
            Ok("fresh")
        );
        assert_eq!(loads.get(), 3);
    }

    #[test]
    fn a_zero_ttl_turns_the_cache_off() {
        let cache: CoherentCache<Uuid, String> = CoherentCache::new(
            PubSub::new(),
            "test:off",
            CacheSettings {
                ttl: Duration::ZERO,
                max_entries: 10,
            },
            Arc::default(),
        );
        let id = Uuid::now_v7();
        cache.keep(cache.read_started(), id, "admin".into());
        assert!(cache.get(&id).is_none());
    }
}
