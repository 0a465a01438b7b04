//! Reading a published value's block without decoding it: the schema's first three fields
//! are `chain_id`, `block_number` and `block_hash`, so they are the body's first bytes in
//! both framings. Start-up reads the topic's tail this way.

use crate::rpc::hex::B256;

/// A value's chain id, block number and block hash; `None` when it is not one of ours.
pub fn peek_block(value: &[u8]) -> Option<(u64, u64, B256)> {
    let mut body = match value {
        [0xc3, 0x01, rest @ ..] if rest.len() >= 8 => &rest[8..],
        [0x00, _, _, _, _, rest @ ..] => rest,
        _ => return None,
    };
    let chain_id = long(&mut body)?;
    let number = long(&mut body)?;
    let len = usize::try_from(long(&mut body)?).ok()?;
    let text = std::str::from_utf8(body.get(..len)?).ok()?;
    let hash = B256::parse("block_hash", text).ok()?;
    Some((
        u64::try_from(chain_id).ok()?,
        u64::try_from(number).ok()?,
        hash,
    ))
}

/// An Avro `long`: a zigzag varint.
fn long(buf: &mut &[u8]) -> Option<i64> {
    let mut n: u64 = 0;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some((n >> 1) as i64 ^ -((n & 1) as i64));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::{Encoder, Framing};
    use crate::rpc::hex::Address;
    use crate::rpc::types::Log;

    #[test]
    fn reads_the_block_in_both_framings() {
        let log = Log {
            block_number: 1 << 40,
            block_hash: B256::new([0xab; 32]),
            transaction_hash: B256::new([2; 32]),
            transaction_index: 3,
            log_index: 4,
            address: Address::new([5; 20]),
            topics: vec![],
            data: vec![1, 2, 3],
        };
        for framing in [Framing::SingleObject, Framing::Registry { schema_id: 7 }] {
            let v = Encoder::new(framing)
                .expect("encoder")
                .encode(31337, 9, &log);
            assert_eq!(peek_block(&v), Some((31337, 1 << 40, log.block_hash)));
            assert_eq!(peek_block(&v[..20]), None, "truncated hash");
        }
        assert_eq!(peek_block(b"\x01junk"), None);
    }

    #[test]
    fn zigzag() {
        for (bytes, n) in [
            (&[0x00][..], 0),
            (&[0x01], -1),
            (&[0x02], 1),
            (&[0xfe, 0x01], 127),
            (&[0x80, 0x01], 64),
        ] {
            assert_eq!(long(&mut &bytes[..]), Some(n), "{bytes:?}");
        }
    }
}
