//! The `CheckpointV2` Avro record (`schemas/checkpoint.avsc`), single-object encoded like
//! every record the service writes. Its size depends on the window's length and the
//! topic's partition count only: about 4.2 KB for 128 blocks and one partition.

use std::sync::LazyLock;

use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::{GenericSingleObjectWriter, Schema};

use crate::rpc::hex::B256;
use crate::window::WindowBlock;

use super::{Checkpoint, CheckpointError, PartitionOffsets};

/// The schema file's text, as shipped in `schemas/`.
pub const SCHEMA_JSON: &str = include_str!("../../../schemas/checkpoint.avsc");

static SCHEMA: LazyLock<Result<Schema, String>> =
    LazyLock::new(|| Schema::parse_str(SCHEMA_JSON).map_err(|e| e.to_string()));

fn schema() -> Result<&'static Schema, CheckpointError> {
    SCHEMA
        .as_ref()
        .map_err(|e| CheckpointError::Codec(format!("schemas/checkpoint.avsc: {e}")))
}

/// Whether `bytes` is a single-object message of `schema` (marker and Rabin fingerprint).
pub(super) fn has_header(bytes: &[u8], schema: &Schema) -> bool {
    let fp = schema.fingerprint::<Rabin>();
    bytes.len() >= 10 && bytes[..2] == [0xc3, 0x01] && bytes[2..10] == fp.bytes[..]
}

fn fixed(h: &B256) -> Value {
    Value::Fixed(32, h.0.to_vec())
}

/// Encodes `cp` as a single-object Avro message (`cp.window`'s logs are not stored).
pub fn encode(cp: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let parent = cp
        .window
        .first()
        .map_or(B256::new([0; 32]), |b| b.parent_hash);
    let partitions = cp
        .partitions
        .iter()
        .map(|p| {
            Value::Record(vec![
                ("partition".into(), Value::Int(p.partition)),
                ("window_start".into(), Value::Long(p.window_start)),
                ("next".into(), Value::Long(p.next)),
            ])
        })
        .collect();
    let value = Value::Record(vec![
        ("chain_id".into(), Value::Long(cp.chain_id as i64)),
        ("block_number".into(), Value::Long(cp.block_number as i64)),
        ("block_hash".into(), fixed(&cp.block_hash)),
        (
            "updated_at".into(),
            Value::TimestampMillis(cp.updated_at_ms),
        ),
        ("window_parent_hash".into(), fixed(&parent)),
        (
            "window_hashes".into(),
            Value::Array(cp.window.iter().map(|b| fixed(&b.hash)).collect()),
        ),
        ("partitions".into(), Value::Array(partitions)),
    ]);
    let mut writer = GenericSingleObjectWriter::new_with_capacity(schema()?, 256)
        .map_err(|e| CheckpointError::Codec(e.to_string()))?;
    let mut out = Vec::new();
    writer
        .write_value(value, &mut out)
        .map_err(|e| CheckpointError::Codec(e.to_string()))?;
    Ok(out)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Decodes a checkpoint message: this format, or the first one (migrated, see `legacy`).
/// Anything else is an error, never a default.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let schema = schema()?;
    if !has_header(bytes, schema) {
        return super::legacy::decode_legacy(bytes);
    }
    let bad = |what: &str| CheckpointError::Codec(format!("malformed checkpoint: {what}"));
    let value = apache_avro::from_avro_datum(schema, &mut &bytes[10..], None)
        .map_err(|e| CheckpointError::Codec(e.to_string()))?;
    let Value::Record(fields) = value else {
        return Err(bad("not a record"));
    };
    let hash = |v: &Value| match v {
        Value::Fixed(32, b) => b.as_slice().try_into().ok().map(B256::new),
        _ => None,
    };
    let (mut chain_id, mut block_number, mut block_hash) = (None, None, None);
    let (mut updated_at_ms, mut parent, mut hashes, mut partitions) = (0, None, None, Vec::new());
    for (name, v) in fields {
        match (name.as_str(), v) {
            ("chain_id", Value::Long(n)) => chain_id = Some(n as u64),
            ("block_number", Value::Long(n)) => block_number = Some(n as u64),
            ("block_hash", v) => block_hash = hash(&v),
            ("updated_at", Value::TimestampMillis(t)) => updated_at_ms = t,
            ("window_parent_hash", v) => parent = hash(&v),
            ("window_hashes", Value::Array(items)) => {
                hashes = items.iter().map(hash).collect::<Option<Vec<_>>>();
            }
            ("partitions", Value::Array(items)) => {
                for item in items {
                    let Value::Record(f) = item else {
                        return Err(bad("partitions"));
                    };
                    let [
                        (_, Value::Int(partition)),
                        (_, Value::Long(window_start)),
                        (_, Value::Long(next)),
                    ] = f.as_slice()
                    else {
                        return Err(bad("partitions"));
                    };
                    partitions.push(PartitionOffsets {
                        partition: *partition,
                        window_start: *window_start,
                        next: *next,
                    });
                }
            }
            (other, _) => return Err(bad(other)),
        }
    }
    let block_number = block_number.ok_or_else(|| bad("block_number"))?;
    let block_hash = block_hash.ok_or_else(|| bad("block_hash"))?;
    let hashes = hashes.ok_or_else(|| bad("window_hashes"))?;
    if hashes.last() != Some(&block_hash) || hashes.len() as u64 > block_number + 1 {
        return Err(bad("window_hashes do not end with block_hash"));
    }
    let first = block_number + 1 - hashes.len() as u64;
    let mut parent_hash = parent.ok_or_else(|| bad("window_parent_hash"))?;
    let window = hashes
        .into_iter()
        .enumerate()
        .map(|(i, hash)| {
            let b = WindowBlock {
                number: first + i as u64,
                hash,
                parent_hash,
                logs: Vec::new(),
            };
            parent_hash = hash;
            b
        })
        .collect();
    Ok(Checkpoint {
        chain_id: chain_id.ok_or_else(|| bad("chain_id"))?,
        block_number,
        block_hash,
        updated_at_ms,
        window,
        partitions,
        migrated: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::LogId;

    fn h(b: u8) -> B256 {
        B256::new([b; 32])
    }

    fn checkpoint(blocks: u64, logs_per_block: u64) -> Checkpoint {
        let window: Vec<WindowBlock> = (1..=blocks)
            .map(|n| WindowBlock {
                number: 100 + n,
                hash: h(n as u8),
                parent_hash: h(n as u8 - 1),
                logs: (0..logs_per_block)
                    .map(|i| LogId {
                        tx: h(200),
                        log_index: i,
                    })
                    .collect(),
            })
            .collect();
        Checkpoint {
            chain_id: 31337,
            block_number: 100 + blocks,
            block_hash: h(blocks as u8),
            updated_at_ms: 1_700_000_000_000,
            window,
            partitions: vec![PartitionOffsets {
                partition: 0,
                window_start: 12,
                next: 9000,
            }],
            migrated: false,
        }
    }

    #[test]
    fn round_trips_without_the_keys() {
        let cp = checkpoint(3, 150);
        let bytes = encode(&cp).expect("encode");
        let mut expected = cp.clone();
        for b in &mut expected.window {
            b.logs.clear();
        }
        assert_eq!(decode(&bytes).expect("decode"), expected);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"\xc3\x01garbage!!").is_err());
    }

    #[test]
    fn its_size_does_not_depend_on_the_logs() {
        let small = encode(&checkpoint(128, 1)).expect("encode").len();
        let dense = encode(&checkpoint(128, 5000)).expect("encode").len();
        assert_eq!(small, dense);
        assert!(small < 4_400, "{small} bytes");
    }
}
