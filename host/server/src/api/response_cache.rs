//! A read-through cache of finished response bodies (the envelope's `data`), bounded by
//! size, for the hot read routes (scene view, scene list).
//!
//! Validity is decided by generations from the store (`Database::changes`), noted before
//! the database is read and compared on every hit: any write of the scene after that
//! (committed by this process) makes the entry a miss, so a read after a write always sees
//! the write. Servers sharing PostgreSQL also compare the stored version on each hit
//! (`check_database`), one indexed lookup, so a write made by another server is never
//! hidden by this one's cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use serde::Deserialize;

/// `[cache]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Most bytes of response bodies kept; `0` turns the cache off.
    pub max_bytes: usize,
    /// Check the stored version on every hit. Default: on with PostgreSQL (several servers
    /// may write), off with SQLite (only this server writes).
    pub check_database: Option<bool>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            max_bytes: 64 << 20,
            check_database: None,
        }
    }
}

/// What an entry is the answer to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// `GET /api/scenes/{id}`.
    Scene(String),
    /// `GET /api/scenes` for one owner (`None`: everyone's, as admins see it).
    List(Option<String>),
}

/// A cached body and what it was built from.
#[derive(Debug, Clone)]
pub struct Entry {
    pub body: Bytes,
    /// The store generation noted before the database was read.
    pub generation: u64,
    /// The stored version(s) read with it (scene: `(version, 0)`; list: `(count, max)`).
    pub stored: (i64, i64),
    /// Who may see it (scene views); lists are keyed by owner instead.
    pub owner: Option<String>,
}

pub struct ResponseCache {
    max_bytes: usize,
    pub check_database: bool,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, Entry>,
    /// Insertion order, oldest first (may hold keys replaced or removed since).
    order: VecDeque<Key>,
    bytes: usize,
}

impl ResponseCache {
    pub fn new(config: &CacheConfig, postgres: bool) -> ResponseCache {
        ResponseCache {
            max_bytes: config.max_bytes,
            check_database: config.check_database.unwrap_or(postgres),
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The entry for `key` if it was built at `generation` (the current one).
    pub fn get(&self, key: &Key, generation: u64) -> Option<Entry> {
        if self.max_bytes == 0 {
            return None;
        }
        self.lock()
            .entries
            .get(key)
            .filter(|e| e.generation == generation)
            .cloned()
    }

    /// Keep `entry` for `key`, evicting the oldest entries beyond the size bound.
    pub fn put(&self, key: Key, entry: Entry) {
        let size = entry.body.len();
        if size > self.max_bytes / 4 || self.max_bytes == 0 {
            // One huge view must not evict everything else.
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.entries.insert(key.clone(), entry) {
            inner.bytes -= old.body.len();
        } else {
            inner.order.push_back(key);
        }
        inner.bytes += size;
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(evicted) = inner.entries.remove(&oldest) {
                inner.bytes -= evicted.body.len();
            }
        }
    }

    /// Bytes held now.
    pub fn size(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &str, generation: u64) -> Entry {
        Entry {
            body: Bytes::from(body.to_string()),
            generation,
            stored: (0, 0),
            owner: None,
        }
    }

    #[test]
    fn entries_of_another_generation_are_misses() {
        let cache = ResponseCache::new(&CacheConfig::default(), false);
        let key = Key::Scene("s1".into());
        cache.put(key.clone(), entry("{}", 3));
        assert!(cache.get(&key, 3).is_some());
        assert!(cache.get(&key, 4).is_none());
        assert!(cache.get(&Key::Scene("s2".into()), 3).is_none());
    }

    #[test]
    fn size_is_bounded_oldest_first() {
        let cache = ResponseCache::new(
            &CacheConfig {
                max_bytes: 100,
                check_database: None,
            },
            false,
        );
        for i in 0..10 {
            cache.put(Key::Scene(format!("s{i}")), entry(&"x".repeat(20), 1));
        }
        assert!(cache.size() <= 100, "{}", cache.size());
        assert!(cache.get(&Key::Scene("s0".into()), 1).is_none(), "evicted");
        assert!(cache.get(&Key::Scene("s9".into()), 1).is_some());
        // Replacing an entry does not count it twice.
        cache.put(Key::Scene("s9".into()), entry(&"y".repeat(20), 2));
        assert!(cache.size() <= 100);
        // Too large for the bound: not kept.
        cache.put(Key::Scene("big".into()), entry(&"z".repeat(60), 1));
        assert!(cache.get(&Key::Scene("big".into()), 1).is_none());
        let off = ResponseCache::new(
            &CacheConfig {
                max_bytes: 0,
                check_database: None,
            },
            false,
        );
        off.put(Key::Scene("s".into()), entry("{}", 1));
        assert!(off.get(&Key::Scene("s".into()), 1).is_none());
    }
}
