//! Fixed-size byte values (hashes, addresses) and quantity parsing for JSON-RPC hex strings.

use std::fmt;

/// A hex string from the node that is not what the field requires.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
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

/// Decodes a `0x`-prefixed hex string of any even length into bytes.
pub fn decode_bytes(field: &'static str, s: &str) -> Result<Vec<u8>, HexError> {
    let body = s
        .strip_prefix("0x")
        .ok_or_else(|| HexError::new(field, "missing 0x prefix"))?;
    hex::decode(body).map_err(|e| HexError::new(field, format!("not hex bytes: {e}")))
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
        let bytes = decode_bytes(field, s)?;
        let arr: [u8; N] = bytes.try_into().map_err(|v: Vec<u8>| {
            HexError::new(field, format!("expected {N} bytes, got {}", v.len()))
        })?;
        Ok(Self(arr))
    }
}

impl<const N: usize> fmt::Display for FixedBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
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
        assert!(Address::parse("address", "0xabcd").is_err());
        assert!(B256::parse("hash", "0xzz").is_err());
    }
}
