//! A block header's `logsBloom`: the 2048-bit filter of every log's address and topics
//! (Yellow Paper §4.3.1: for each item, the low 11 bits of the first three byte pairs of
//! its Keccak-256 hash each set one bit, numbered from the filter's last byte).
//!
//! The follower uses it to tell a complete answer from a lagging provider's partial one:
//! the logs of a block must produce exactly the header's bloom.

use std::collections::HashSet;
use std::fmt;

use foldhash::fast::FixedState;

use tiny_keccak::{Hasher, Keccak};

use super::hex::HexError;
use super::types::Log;

/// Bytes in a bloom.
pub const BLOOM_BYTES: usize = 256;

/// A 2048-bit log bloom (boxed: headers travel through channels by value).
#[derive(Clone, PartialEq, Eq)]
pub struct Bloom(pub Box<[u8; BLOOM_BYTES]>);

impl fmt::Debug for Bloom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = self.0.iter().map(|b| b.count_ones()).sum::<u32>();
        write!(f, "Bloom({set} bits set)")
    }
}

impl Default for Bloom {
    fn default() -> Self {
        Self(Box::new([0; BLOOM_BYTES]))
    }
}

fn keccak(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut k = Keccak::v256();
    k.update(data);
    k.finalize(&mut out);
    out
}

/// The three (byte, mask) positions an item sets.
fn positions(item: &[u8]) -> [(usize, u8); 3] {
    let h = keccak(item);
    [0, 2, 4].map(|i| {
        let bit = (usize::from(h[i]) << 8 | usize::from(h[i + 1])) & 2047;
        (BLOOM_BYTES - 1 - bit / 8, 1u8 << (bit % 8))
    })
}

impl Bloom {
    /// Parses `0x` + 512 hex digits.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, HexError> {
        super::hex::decode_array(field, s).map(|arr| Self(Box::new(arr)))
    }

    /// Whether no bit is set (the block has no logs).
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|b| *b == 0)
    }

    /// Adds one item (an address or a topic).
    pub fn accrue(&mut self, item: &[u8]) {
        for (byte, mask) in positions(item) {
            self.0[byte] |= mask;
        }
    }

    /// Whether every bit `item` sets is set.
    pub fn contains(&self, item: &[u8]) -> bool {
        positions(item)
            .iter()
            .all(|(byte, mask)| self.0[*byte] & mask == *mask)
    }

    /// The bloom of `logs`. Each distinct address and topic is hashed once: a block's logs
    /// repeat them (one token contract, one event signature, the same senders), and adding
    /// an item twice sets no new bit.
    pub fn of_logs<'l>(logs: impl IntoIterator<Item = &'l Log>) -> Self {
        let logs = logs.into_iter();
        let mut seen: HashSet<&[u8], FixedState> =
            HashSet::with_capacity_and_hasher(logs.size_hint().0 * 2, FixedState::default());
        let mut bloom = Self::default();
        for log in logs {
            let items =
                std::iter::once(&log.address.0[..]).chain(log.topics.iter().map(|t| &t.0[..]));
            for item in items {
                if seen.insert(item) {
                    bloom.accrue(item);
                }
            }
        }
        bloom
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keccak-256 of the empty string, the published test vector.
    #[test]
    fn keccak_matches_the_published_vector() {
        assert_eq!(
            hex::encode(keccak(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn accrued_items_are_contained_and_others_almost_never() {
        let mut b = Bloom::default();
        assert!(b.is_zero());
        b.accrue(&[0x11; 20]);
        b.accrue(&[0x22; 32]);
        assert!(!b.is_zero() && b.contains(&[0x11; 20]) && b.contains(&[0x22; 32]));
        assert!(!b.contains(&[0x33; 32]));
        assert!(b.0.iter().map(|x| x.count_ones()).sum::<u32>() <= 6);
    }

    /// Hashing each distinct item once gives the bloom of adding every item.
    #[test]
    fn of_logs_equals_accruing_every_item() {
        use crate::rpc::hex::{Address, B256};
        let logs: Vec<Log> = (0..50u8)
            .map(|i| Log {
                block_number: 1,
                block_hash: B256::new([0; 32]),
                transaction_hash: B256::new([i; 32]),
                transaction_index: 0,
                log_index: u64::from(i),
                address: Address::new([i % 3; 20]),
                topics: (0..i % 5).map(|t| B256::new([t * (i % 7); 32])).collect(),
                data: vec![],
            })
            .collect();
        let mut every = Bloom::default();
        for log in &logs {
            every.accrue(&log.address.0);
            log.topics.iter().for_each(|t| every.accrue(&t.0));
        }
        assert_eq!(Bloom::of_logs(&logs), every);
        assert!(!every.is_zero());
    }
}
