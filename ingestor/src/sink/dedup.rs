//! A bounded LRU of log ids to value digests: a record whose exact value is already on the
//! topic is skipped. It is seeded at start-up from what the topic's tail holds (see
//! `resume`), so the blocks replayed after a crash, past the last checkpoint, publish
//! nothing twice; afterwards it remembers what this process produced.
//!
//! Memory: a key is held as a 64-bit digest of the log id, not the id itself (32 bytes per
//! entry in the LRU's node instead of 64), and the table grows with use rather than being
//! allocated at full capacity for every chain. Two log ids sharing a digest (odds about
//! 1 in 3·10⁹ for 100,000 keys) cost at most one missed skip, which publishes a record the
//! topic already has, never a lost one: a hit also needs the value's digest to match, and
//! a value carries its own transaction hash and log index.

use std::hash::BuildHasher;
use std::num::NonZeroUsize;

use lru::LruCache;

use crate::window::LogId;

/// The digest of a record value: 64-bit foldhash with a fixed seed (several times faster
/// than SipHash over a few hundred bytes; the digest only ever meets digests of the same
/// key made by this build, so a 64-bit non-cryptographic hash is enough).
pub fn digest(value: &[u8]) -> u64 {
    foldhash::quality::FixedState::with_seed(0x6574_6868_6f6f_6b21).hash_one(value)
}

/// The digest of a log id, from which its key on each of the chain's topics is derived.
#[derive(Debug, Clone, Copy)]
pub struct IdKey(u64);

impl IdKey {
    /// `id`'s digest.
    pub fn of(id: &LogId) -> Self {
        Self(foldhash::quality::FixedState::with_seed(0x6c6f_6769_6473_2121).hash_one(id))
    }

    /// The key on topic `lane` (0: the chain topic; `1 + i`: decoded event `i`'s): the id's
    /// digest, mixed with the lane for the others.
    fn on(self, lane: usize) -> u64 {
        match lane {
            0 => self.0,
            l => (self.0 ^ (l as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(23),
        }
    }
}

/// The key of `id` on topic `lane`.
fn key(lane: usize, id: &LogId) -> u64 {
    IdKey::of(id).on(lane)
}

/// Per-chain dedup cache. Capacity 0 disables it.
pub struct Dedup {
    cache: Option<LruCache<u64, u64>>,
}

impl Dedup {
    /// A cache holding at most `capacity` keys. Its table starts empty and grows with use
    /// (an unbounded cache, then bounded: `resize` keeps the empty table); once full, a new
    /// key takes the least recently used key's node rather than allocating one.
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: NonZeroUsize::new(capacity).map(|cap| {
                let mut cache = LruCache::unbounded();
                cache.resize(cap);
                cache
            }),
        }
    }

    /// Remembers that `id` is on the topic with a value of digest `digest` (oldest first:
    /// the last seeded keys are the last evicted).
    pub fn seed(&mut self, id: LogId, digest: u64) {
        self.seed_on(0, id, digest);
    }

    /// [`Dedup::seed`] for topic `lane` of the chain's topics.
    pub fn seed_on(&mut self, lane: usize, id: LogId, digest: u64) {
        if let Some(cache) = self.cache.as_mut() {
            cache.put(key(lane, &id), digest);
        }
    }

    /// Whether `id` was already published with exactly `value` (a hit: the caller counts
    /// it). Otherwise remembers it and returns false.
    pub fn seen(&mut self, id: LogId, value: &[u8]) -> bool {
        self.seen_on(0, id, value)
    }

    /// [`Dedup::seen`] for topic `lane` of the chain's topics.
    pub fn seen_on(&mut self, lane: usize, id: LogId, value: &[u8]) -> bool {
        self.seen_at(IdKey::of(&id), lane, value)
    }

    /// [`Dedup::seen_on`] with the id's digest made once for all its topics.
    pub fn seen_at(&mut self, id: IdKey, lane: usize, value: &[u8]) -> bool {
        let Some(cache) = self.cache.as_mut() else {
            return false;
        };
        let (key, digest) = (id.on(lane), digest(value));
        // One lookup: a known key is promoted and takes the new value's digest in place.
        if let Some(held) = cache.get_mut(&key) {
            let hit = *held == digest;
            *held = digest;
            return hit;
        }
        cache.put(key, digest);
        false
    }

    /// Forgets `id` (it was retracted: producing it again is not a duplicate).
    pub fn forget(&mut self, id: &LogId) {
        self.forget_on(0, id);
    }

    /// [`Dedup::forget`] for topic `lane` of the chain's topics.
    pub fn forget_on(&mut self, lane: usize, id: &LogId) {
        if let Some(cache) = self.cache.as_mut() {
            cache.pop(&key(lane, id));
        }
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.cache.as_ref().map_or(0, LruCache::len)
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::{Dedup, digest};
    use crate::rpc::hex::B256;
    use crate::window::LogId;

    fn id(i: u64) -> LogId {
        LogId {
            tx: B256::new([7; 32]),
            log_index: i,
        }
    }

    #[test]
    fn skips_same_value_only_and_is_bounded() {
        let mut d = Dedup::new(2);
        assert!(!d.seen(id(0), b"1"));
        assert!(d.seen(id(0), b"1"));
        assert!(!d.seen(id(0), b"2"), "a new value for a key is published");
        assert!(!d.seen(id(1), b"1"));
        assert!(!d.seen(id(2), b"1"));
        assert!(!d.seen(id(0), b"2"), "evicted: capacity 2");
        assert_eq!(d.len(), 2);
        let mut off = Dedup::new(0);
        assert!(!off.seen(id(0), b"1") && !off.seen(id(0), b"1"));
    }

    #[test]
    fn a_seeded_value_is_a_hit_and_a_forgotten_one_is_not() {
        let mut d = Dedup::new(8);
        d.seed(id(3), digest(b"v"));
        assert!(d.seen(id(3), b"v"));
        d.forget(&id(3));
        assert!(!d.seen(id(3), b"v"));
    }
}
