//! The fast path for events whose every parameter is one 32-byte word (`address`, `bool`,
//! integers, `bytesN`, `function`, and indexed dynamic parameters, which are only their
//! hash): ERC-20 and ERC-721 `Transfer`, `Approval`, most events in practice. Each word is
//! read in place and checked to be the canonical encoding of its value, with no decoded
//! value tree and no re-encoding.
//!
//! It only ever succeeds where [`super::write::body`]'s general path would write the same
//! bytes (the tests compare the two): anything it does not accept (another data length, a
//! word that is not canonical) goes to the general path, which says why.

use crate::encode::body::{hex_string, long};
use crate::rpc::types::Log;

use super::EventSpec;
use super::shape::Kind;
use super::write::{bytes, minimal};

/// Whether every parameter of `event` takes the fast path.
pub(super) fn applies(event: &EventSpec) -> bool {
    event.params.iter().all(|p| {
        matches!(
            p.kind,
            Kind::Address
                | Kind::Bool
                | Kind::Long { .. }
                | Kind::Decimal { .. }
                | Kind::FixedBytes(_)
                | Kind::Function
        ) || (p.indexed && p.kind == Kind::TopicHash)
    })
}

/// Appends each parameter of `log` decoded as `event` (which [`applies`]); `None`, with
/// `out` left as it was, when a word is not canonical or the log's shape is not the
/// event's.
pub(super) fn params(out: &mut Vec<u8>, event: &EventSpec, log: &Log) -> Option<()> {
    let indexed = event.params.iter().filter(|p| p.indexed).count();
    let unindexed = event.params.len() - indexed;
    if log.topics.len() != 1 + indexed || log.data.len() != 32 * unindexed {
        return None;
    }
    let start = out.len();
    let (mut topics, mut data) = (log.topics[1..].iter(), log.data.chunks_exact(32));
    for p in &event.params {
        let word: &[u8] = if p.indexed {
            &topics.next()?.0
        } else {
            data.next()?
        };
        let ok = word_value(out, &p.kind, word);
        if ok.is_none() {
            out.truncate(start);
            return None;
        }
    }
    Some(())
}

/// Appends one word as `kind` says, if it is the canonical encoding of a value of it.
fn word_value(out: &mut Vec<u8>, kind: &Kind, word: &[u8]) -> Option<()> {
    let zero = |range: std::ops::Range<usize>| word[range].iter().all(|b| *b == 0);
    match *kind {
        Kind::Address => {
            zero(0..12).then(|| hex_string(out, &word[12..]))?;
        }
        Kind::Bool => {
            (zero(0..31) && word[31] <= 1).then(|| out.push(word[31]))?;
        }
        Kind::Long { signed, bits } | Kind::Decimal { signed, bits } => {
            let high = 32 - bits / 8;
            let fits = if signed {
                let fill = if word[high] & 0x80 == 0 { 0x00 } else { 0xff };
                word[..high].iter().all(|b| *b == fill)
            } else {
                zero(0..high)
            };
            if !fits {
                return None;
            }
            match kind {
                Kind::Long { .. } => {
                    let mut low = [0u8; 8];
                    low.copy_from_slice(&word[24..]);
                    long(out, i64::from_be_bytes(low));
                }
                _ if signed => bytes(out, minimal(word)),
                _ => {
                    let mut wide = [0u8; 33];
                    wide[1..].copy_from_slice(word);
                    bytes(out, minimal(&wide));
                }
            }
        }
        Kind::FixedBytes(n) => {
            zero(n..32).then(|| bytes(out, &word[..n]))?;
        }
        Kind::Function => {
            zero(24..32).then(|| bytes(out, &word[..24]))?;
        }
        Kind::TopicHash => hex_string(out, word),
        _ => return None,
    }
    Some(())
}
