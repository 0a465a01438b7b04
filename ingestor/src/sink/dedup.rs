//! A bounded in-process LRU of record keys to value digests: a record this process already
//! produced with the same value is skipped (it would only be a duplicate for consumers).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::num::NonZeroUsize;

use lru::LruCache;

/// Per-chain dedup cache. Capacity 0 disables it.
pub struct Dedup {
    cache: Option<LruCache<String, u64>>,
    hits: u64,
}

impl Dedup {
    /// A cache holding at most `capacity` keys.
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: NonZeroUsize::new(capacity).map(LruCache::new),
            hits: 0,
        }
    }

    /// Whether `key` was already produced with exactly `value` (counts a hit). Otherwise
    /// remembers it and returns false.
    pub fn seen(&mut self, key: &str, value: &[u8]) -> bool {
        let Some(cache) = self.cache.as_mut() else {
            return false;
        };
        let mut h = DefaultHasher::new();
        value.hash(&mut h);
        let digest = h.finish();
        if cache.get(key) == Some(&digest) {
            self.hits += 1;
            return true;
        }
        cache.put(key.to_owned(), digest);
        false
    }

    /// Forgets `key` (it was retracted: producing it again is not a duplicate).
    pub fn forget(&mut self, key: &str) {
        if let Some(cache) = self.cache.as_mut() {
            cache.pop(key);
        }
    }

    /// Hits since creation.
    pub fn hits(&self) -> u64 {
        self.hits
    }
}

#[cfg(test)]
mod tests {
    use super::Dedup;

    #[test]
    fn skips_same_value_only_and_is_bounded() {
        let mut d = Dedup::new(2);
        assert!(!d.seen("a", b"1"));
        assert!(d.seen("a", b"1"));
        assert!(!d.seen("a", b"2"), "a new value for a key is published");
        assert!(!d.seen("b", b"1"));
        assert!(!d.seen("c", b"1"));
        assert!(!d.seen("a", b"2"), "evicted: capacity 2");
        assert_eq!(d.hits(), 1);
        let mut off = Dedup::new(0);
        assert!(!off.seen("a", b"1") && !off.seen("a", b"1"));
    }
}
