//! Fixed-size byte values (hashes, addresses) and quantity parsing for JSON-RPC hex strings.

use std::fmt;

/// A hex string from the node that is not what the field requires.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("field `{field}`: {reason}")]
pub struct HexError {
    /// The JSON field that held the bad value.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl HexError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

fn strip_0x<'s>(field: &'static str, s: &'s str) -> Result<&'s str, HexError> {
    s.strip_prefix("0x")
        .ok_or_else(|| HexError::new(field, "missing 0x prefix"))
}

fn not_hex(field: &'static str, e: hex::FromHexError) -> HexError {
    HexError::new(field, format!("not hex bytes: {e}"))
}

/// Decodes a `0x`-prefixed hex string of any even length into bytes.
pub fn decode_bytes(field: &'static str, s: &str) -> Result<Vec<u8>, HexError> {
    let body = strip_0x(field, s)?;
    if body.len() % 2 != 0 {
        return Err(not_hex(field, hex::FromHexError::OddLength));
    }
    let mut out = vec![0; body.len() / 2];
    hex::decode_to_slice(body, &mut out).map_err(|e| not_hex(field, e))?;
    Ok(out)
}

/// Decodes a `0x`-prefixed hex string of exactly `N` bytes, without allocating.
pub fn decode_array<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], HexError> {
    let body = strip_0x(field, s)?;
    if body.len() != 2 * N {
        return Err(match body.len() % 2 {
            0 => HexError::new(field, format!("expected {N} bytes, got {}", body.len() / 2)),
            _ => not_hex(field, hex::FromHexError::OddLength),
        });
    }
    let mut out = [0; N];
    hex::decode_to_slice(body, &mut out).map_err(|e| not_hex(field, e))?;
    Ok(out)
}

/// Appends `0x` and the lowercase hex of `bytes` to `out`.
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 + 2 * bytes.len());
    out.extend_from_slice(b"0x");
    for b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]);
    }
}

/// Decodes a JSON-RPC quantity (`0x`-prefixed, no leading zeros required) into a `u64`.
pub fn decode_quantity(field: &'static str, s: &str) -> Result<u64, HexError> {
    let body = s
        .strip_prefix("0x")
        .ok_or_else(|| HexError::new(field, "missing 0x prefix"))?;
    if body.is_empty() || body.len() > 16 {
        return Err(HexError::new(
            field,
            format!("not a 64-bit quantity: {s:?}"),
        ));
    }
    u64::from_str_radix(body, 16)
        .map_err(|_| HexError::new(field, format!("not a quantity: {s:?}")))
}

/// Formats a `u64` as a JSON-RPC quantity.
pub fn quantity(n: u64) -> String {
    format!("{n:#x}")
}

/// A fixed-size byte string that prints as `0x`-prefixed lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FixedBytes<const N: usize>(pub [u8; N]);

/// A 32-byte hash (block, transaction, topic).
pub type B256 = FixedBytes<32>;
/// A 20-byte account address.
pub type Address = FixedBytes<20>;

impl<const N: usize> FixedBytes<N> {
    /// Wraps raw bytes.
    pub const fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// Parses exactly `N` bytes of `0x`-prefixed hex (either case).
    pub fn parse(field: &'static str, s: &str) -> Result<Self, HexError> {
        decode_array(field, s).map(Self)
    }
}

impl<const N: usize> fmt::Display for FixedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("0x")?;
        // 32 bytes at a time through a stack buffer, not an allocated String.
        let mut buf = [0u8; 64];
        for chunk in self.0.chunks(32) {
            let hex = &mut buf[..2 * chunk.len()];
            hex::encode_to_slice(chunk, hex).map_err(|_| fmt::Error)?;
            f.write_str(std::str::from_utf8(hex).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

impl<const N: usize> fmt::Debug for FixedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(decode_quantity("n", "0x0"), Ok(0));
        assert_eq!(decode_quantity("n", "0x1f"), Ok(31));
        assert_eq!(decode_quantity("n", "0xffffffffffffffff"), Ok(u64::MAX));
        assert!(decode_quantity("n", "0x").is_err());
        assert!(decode_quantity("n", "1f").is_err());
        assert!(decode_quantity("n", "0x1_0").is_err());
        assert!(decode_quantity("n", "0x10000000000000000").is_err());
        assert_eq!(quantity(255), "0xff");
    }

    #[test]
    fn fixed_bytes_normalise_to_lowercase() {
        let a =
            Address::parse("address", "0xABCDEF0123456789abcdef0123456789ABCDEF01").expect("valid");
        assert_eq!(a.to_string(), "0xabcdef0123456789abcdef0123456789abcdef01");
        assert_eq!(
            Address::parse("address", "0xabcd").map_err(|e| e.reason),
            Err("expected 20 bytes, got 2".into())
        );
        assert_eq!(
            B256::parse("hash", "0xzz").map_err(|e| e.reason),
            Err("expected 32 bytes, got 1".into()),
            "the length is checked first"
        );
        assert_eq!(
            B256::parse("hash", "0xabc").map_err(|e| e.reason),
            Err("not hex bytes: Odd number of digits".into())
        );
        assert_eq!(
            B256::parse("hash", &format!("0x{}zz", "ab".repeat(31))).map_err(|e| e.reason),
            Err("not hex bytes: Invalid character 'z' at position 62".into())
        );
        assert!(B256::parse("hash", &"ab".repeat(32)).is_err(), "no 0x");
        assert_eq!(decode_bytes("data", "0x"), Ok(vec![]));
        assert_eq!(decode_bytes("data", "0x0aFf"), Ok(vec![0x0a, 0xff]));
        assert!(decode_bytes("data", "0x0").is_err());
        let mut out = Vec::new();
        push_hex(&mut out, &[0x00, 0x9f, 0xa0]);
        assert_eq!(out, b"0x009fa0");
        let long = FixedBytes::<40>::new([0xc4; 40]).to_string();
        assert_eq!(
            long,
            format!("0x{}", "c4".repeat(40)),
            "more than one chunk"
        );
    }
}
