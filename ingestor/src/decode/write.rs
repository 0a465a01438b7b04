//! Decoding one log against an event and writing the Avro binary body of its record: the
//! log fields as `EvmLog` writes them, then each parameter in ABI order.
//!
//! A log decodes only if re-encoding its values gives back exactly its topics and data:
//! this refuses a wrong number of topics (an ERC-721 `Transfer` met by an ERC-20 ABI),
//! data too short or too long, and values out of their type's range or with dirty padding.

use alloy_dyn_abi::{DynSolType, DynSolValue};

use crate::encode::body::{hex_string, long};
use crate::rpc::types::Log;

use super::EventSpec;
use super::shape::Kind;

/// Why a log does not decode as an event. The variant is the metric's `reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Another number of topics than the event's indexed parameters need.
    #[error("{found} topics where the event has {expected}")]
    TopicCount {
        /// Topics the event needs (its selector included).
        expected: usize,
        /// Topics the log has.
        found: usize,
    },
    /// The data does not decode as the non-indexed parameters.
    #[error("data of {len} bytes does not decode: {reason}")]
    Data {
        /// The data's length.
        len: usize,
        /// The decoder's reason.
        reason: String,
    },
    /// A value is out of its type's range, has dirty padding, or the data has bytes the
    /// values do not account for.
    #[error("{0} is not the canonical encoding of its values")]
    NotCanonical(&'static str),
    /// A decoded value is not of the type the schema has (a defect, never expected).
    #[error("a value does not match its schema type")]
    Mismatch,
}

impl DecodeError {
    /// A low-cardinality label.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TopicCount { .. } => "topic_count",
            Self::Data { .. } => "data",
            Self::NotCanonical(_) => "value",
            Self::Mismatch => "mismatch",
        }
    }
}

/// Appends the Avro body of `log` decoded as `event` to `out`; on error `out` may hold a
/// partial body.
/// `fields` are the log's fields, already written (see `write_log_fields`).
pub fn body(
    out: &mut Vec<u8>,
    event: &EventSpec,
    fields: &[u8],
    log: &Log,
) -> Result<(), DecodeError> {
    if event.one_word {
        out.extend_from_slice(fields);
        if super::words::params(out, event, log).is_some() {
            return Ok(());
        }
        out.truncate(out.len() - fields.len());
    }
    let expected = event.topic_count();
    if log.topics.len() != expected {
        return Err(DecodeError::TopicCount {
            expected,
            found: log.topics.len(),
        });
    }
    let data_types: Vec<DynSolType> = event
        .params
        .iter()
        .filter(|p| !p.indexed)
        .map(|p| p.kind.sol_type())
        .collect();
    let decoded = DynSolType::Tuple(data_types)
        .abi_decode_sequence(&log.data)
        .map_err(|e| DecodeError::Data {
            len: log.data.len(),
            reason: e.to_string(),
        })?;
    let again = decoded.abi_encode_sequence();
    if again.as_deref() != Some(&log.data[..]) {
        return Err(DecodeError::NotCanonical("data"));
    }
    let DynSolValue::Tuple(data_values) = decoded else {
        return Err(DecodeError::Mismatch);
    };
    out.extend_from_slice(fields);
    let mut topics = log.topics.iter().skip(1);
    let mut data = data_values.iter();
    for p in &event.params {
        if p.indexed {
            let topic = topics.next().ok_or(DecodeError::Mismatch)?;
            if p.kind == Kind::TopicHash {
                hex_string(out, &topic.0);
                continue;
            }
            let v = p
                .kind
                .sol_type()
                .abi_decode(&topic.0)
                .map_err(|_| DecodeError::NotCanonical("an indexed topic"))?;
            if v.abi_encode() != topic.0 {
                return Err(DecodeError::NotCanonical("an indexed topic"));
            }
            value(out, &p.kind, &v)?;
        } else {
            value(out, &p.kind, data.next().ok_or(DecodeError::Mismatch)?)?;
        }
    }
    Ok(())
}

/// Appends one value as `kind` says.
fn value(out: &mut Vec<u8>, kind: &Kind, v: &DynSolValue) -> Result<(), DecodeError> {
    match (kind, v) {
        (Kind::Address, DynSolValue::Address(a)) => hex_string(out, a.as_slice()),
        (Kind::Bool, DynSolValue::Bool(b)) => out.push(u8::from(*b)),
        (Kind::Long { signed: true, .. }, DynSolValue::Int(i, _)) => {
            long(out, i64::from_be_bytes(low8(&i.to_be_bytes::<32>())));
        }
        (Kind::Long { signed: false, .. }, DynSolValue::Uint(u, _)) => {
            long(out, i64::from_be_bytes(low8(&u.to_be_bytes::<32>())));
        }
        (Kind::Decimal { signed: true, .. }, DynSolValue::Int(i, _)) => {
            bytes(out, minimal(&i.to_be_bytes::<32>()));
        }
        (Kind::Decimal { signed: false, .. }, DynSolValue::Uint(u, _)) => {
            let mut wide = [0u8; 33];
            wide[1..].copy_from_slice(&u.to_be_bytes::<32>());
            bytes(out, minimal(&wide));
        }
        (Kind::FixedBytes(n), DynSolValue::FixedBytes(word, _)) => {
            bytes(out, word.get(..*n).ok_or(DecodeError::Mismatch)?);
        }
        (Kind::Function, DynSolValue::Function(f)) => bytes(out, f.as_slice()),
        (Kind::Bytes, DynSolValue::Bytes(b)) => bytes(out, b),
        (Kind::String, DynSolValue::String(s)) => bytes(out, s.as_bytes()),
        (Kind::Array(k), DynSolValue::Array(items))
        | (Kind::FixedArray(k, _), DynSolValue::FixedArray(items)) => {
            if !items.is_empty() {
                long(out, items.len() as i64);
                for item in items {
                    value(out, k, item)?;
                }
            }
            long(out, 0);
        }
        (Kind::Record { fields, .. }, DynSolValue::Tuple(items)) if fields.len() == items.len() => {
            for (f, item) in fields.iter().zip(items) {
                value(out, &f.kind, item)?;
            }
        }
        _ => return Err(DecodeError::Mismatch),
    }
    Ok(())
}

/// The last 8 bytes of a 32-byte word.
fn low8(word: &[u8; 32]) -> [u8; 8] {
    let mut b = [0u8; 8];
    b.copy_from_slice(&word[24..]);
    b
}

/// Avro bytes: the length, then the bytes.
pub(super) fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// The shortest two's-complement big-endian form of `be` (at least one byte): leading
/// bytes that only repeat the sign are dropped.
pub(super) fn minimal(be: &[u8]) -> &[u8] {
    let mut s = be;
    while s.len() > 1 && ((s[0] == 0x00 && s[1] & 0x80 == 0) || (s[0] == 0xff && s[1] & 0x80 != 0))
    {
        s = &s[1..];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::minimal;

    #[test]
    fn decimals_are_minimal_twos_complement() {
        assert_eq!(minimal(&[0, 0, 0]), [0]);
        assert_eq!(minimal(&[0, 0, 0x80]), [0, 0x80]);
        assert_eq!(minimal(&[0xff, 0xff, 0xff]), [0xff]);
        assert_eq!(minimal(&[0xff, 0xff, 0x7f]), [0xff, 0x7f]);
        assert_eq!(minimal(&[0, 0x12, 0x34]), [0x12, 0x34]);
    }
}
