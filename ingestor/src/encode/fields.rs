//! Avro binary writers for the field types of `EvmBlock` and `EvmTransaction` beyond
//! [`super::body`]'s: bytes, `decimal(78, 0)`, unions with `null`, maps of strings.

use std::collections::BTreeMap;

use alloy_primitives::U256;

use super::body::long;

/// Bytes: the length, then the bytes.
pub(super) fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// An unsigned integer as `decimal(78, 0)`: the shortest two's-complement big-endian
/// bytes (a leading zero byte where the top bit is set).
pub(super) fn decimal(out: &mut Vec<u8>, n: &U256) {
    let be = n.to_be_bytes::<32>();
    let first = be.iter().position(|b| *b != 0).unwrap_or(31);
    let digits = &be[first..];
    if digits[0] & 0x80 != 0 {
        long(out, digits.len() as i64 + 1);
        out.push(0);
    } else {
        long(out, digits.len() as i64);
    }
    out.extend_from_slice(digits);
}

/// A `["null", T]` union: branch 0, or branch 1 and the value as `write` writes it.
pub(super) fn optional<T>(out: &mut Vec<u8>, v: Option<T>, write: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        None => long(out, 0),
        Some(v) => {
            long(out, 1);
            write(out, v);
        }
    }
}

/// A string.
pub(super) fn string(out: &mut Vec<u8>, s: &str) {
    bytes(out, s.as_bytes());
}

/// A map of strings: one block of entries, then a zero count.
pub(super) fn map<'a>(
    out: &mut Vec<u8>,
    len: usize,
    entries: impl Iterator<Item = (&'a str, &'a str)>,
) {
    if len > 0 {
        long(out, len as i64);
        for (k, v) in entries {
            string(out, k);
            string(out, v);
        }
    }
    long(out, 0);
}

/// [`map`] of one `BTreeMap`.
pub(super) fn string_map(out: &mut Vec<u8>, m: &BTreeMap<String, String>) {
    map(
        out,
        m.len(),
        m.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
}
