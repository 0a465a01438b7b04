//! The first checkpoint format (`schemas/checkpoint-v1.avsc`, record `Checkpoint`), which
//! listed every key of the window's blocks. It is still read, so an upgrade resumes where
//! the previous version stopped: the next checkpoint is written in the current format.

use std::sync::LazyLock;

use apache_avro::types::Value;
use apache_avro::{GenericSingleObjectWriter, Schema};

use crate::rpc::hex::B256;
use crate::window::{LogId, WindowBlock};

use super::codec::has_header;
use super::{Checkpoint, CheckpointError};

/// The first format's schema, as shipped in `schemas/`.
pub const LEGACY_SCHEMA_JSON: &str = include_str!("../../../schemas/checkpoint-v1.avsc");

static SCHEMA: LazyLock<Result<Schema, String>> =
    LazyLock::new(|| Schema::parse_str(LEGACY_SCHEMA_JSON).map_err(|e| e.to_string()));

fn schema() -> Result<&'static Schema, CheckpointError> {
    SCHEMA
        .as_ref()
        .map_err(|e| CheckpointError::Codec(format!("schemas/checkpoint-v1.avsc: {e}")))
}

/// Decodes a first-format checkpoint; `migrated` is set and `partitions` is empty.
pub fn decode_legacy(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let bad = |what: &str| CheckpointError::Codec(format!("malformed checkpoint: {what}"));
    let schema = schema()?;
    if !has_header(bytes, schema) {
        return Err(bad(
            "neither format's single-object header (the record was not written by this service)",
        ));
    }
    let value = apache_avro::from_avro_datum(schema, &mut &bytes[10..], None)
        .map_err(|e| CheckpointError::Codec(e.to_string()))?;
    let Value::Record(fields) = value else {
        return Err(bad("not a record"));
    };
    let (mut chain_id, mut block_number, mut block_hash) = (None, None, None);
    let (mut updated_at_ms, mut window) = (0, Vec::new());
    for (name, v) in fields {
        match (name.as_str(), v) {
            ("chain_id", Value::Long(n)) => chain_id = Some(n as u64),
            ("block_number", Value::Long(n)) => block_number = Some(n as u64),
            ("block_hash", Value::String(s)) => {
                block_hash = Some(B256::parse("block_hash", &s).map_err(|e| bad(&e.to_string()))?)
            }
            ("updated_at", Value::TimestampMillis(t)) => updated_at_ms = t,
            ("window", Value::Array(items)) => {
                for item in items {
                    window.push(window_block(item).ok_or_else(|| bad("window block"))?);
                }
            }
            (other, _) => return Err(bad(other)),
        }
    }
    Ok(Checkpoint {
        chain_id: chain_id.ok_or_else(|| bad("chain_id"))?,
        block_number: block_number.ok_or_else(|| bad("block_number"))?,
        block_hash: block_hash.ok_or_else(|| bad("block_hash"))?,
        updated_at_ms,
        window,
        partitions: Vec::new(),
        migrated: true,
    })
}

/// Encodes `cp` in the first format, keys included. Only for tests of the migration.
pub fn encode_legacy(cp: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let fixed = |h: &B256| Value::Fixed(32, h.0.to_vec());
    let window = cp
        .window
        .iter()
        .map(|b| {
            // Runs of consecutive log indexes of one transaction, as the first version wrote.
            let mut runs: Vec<(B256, u64, i32)> = Vec::new();
            for id in &b.logs {
                match runs.last_mut() {
                    Some((tx, first, count))
                        if *tx == id.tx && *first + *count as u64 == id.log_index =>
                    {
                        *count += 1
                    }
                    _ => runs.push((id.tx, id.log_index, 1)),
                }
            }
            let runs = runs
                .into_iter()
                .map(|(tx, first, count)| {
                    Value::Record(vec![
                        ("transaction_hash".into(), fixed(&tx)),
                        ("first_log_index".into(), Value::Long(first as i64)),
                        ("count".into(), Value::Int(count)),
                    ])
                })
                .collect();
            Value::Record(vec![
                ("number".into(), Value::Long(b.number as i64)),
                ("hash".into(), fixed(&b.hash)),
                ("parent_hash".into(), fixed(&b.parent_hash)),
                ("log_runs".into(), Value::Array(runs)),
            ])
        })
        .collect();
    let value = Value::Record(vec![
        ("chain_id".into(), Value::Long(cp.chain_id as i64)),
        ("block_number".into(), Value::Long(cp.block_number as i64)),
        (
            "block_hash".into(),
            Value::String(cp.block_hash.to_string()),
        ),
        (
            "updated_at".into(),
            Value::TimestampMillis(cp.updated_at_ms),
        ),
        ("window".into(), Value::Array(window)),
    ]);
    let mut writer = GenericSingleObjectWriter::new_with_capacity(schema()?, 1024)
        .map_err(|e| CheckpointError::Codec(e.to_string()))?;
    let mut out = Vec::new();
    writer
        .write_value(value, &mut out)
        .map_err(|e| CheckpointError::Codec(e.to_string()))?;
    Ok(out)
}

fn hash(v: &Value) -> Option<B256> {
    match v {
        Value::Fixed(32, b) => Some(B256::new(b.as_slice().try_into().ok()?)),
        _ => None,
    }
}

fn window_block(v: Value) -> Option<WindowBlock> {
    let Value::Record(f) = v else { return None };
    let [
        (_, Value::Long(number)),
        (_, h),
        (_, p),
        (_, Value::Array(runs)),
    ] = f.as_slice()
    else {
        return None;
    };
    let mut logs = Vec::new();
    for run in runs {
        let Value::Record(r) = run else { return None };
        let [(_, tx), (_, Value::Long(first)), (_, Value::Int(count))] = r.as_slice() else {
            return None;
        };
        let tx = hash(tx)?;
        logs.extend((0..*count as u64).map(|i| LogId {
            tx,
            log_index: *first as u64 + i,
        }));
    }
    Some(WindowBlock {
        number: *number as u64,
        hash: hash(h)?,
        parent_hash: hash(p)?,
        logs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_format_checkpoint_is_read_and_marked_migrated() {
        let h = |b| B256::new([b; 32]);
        let cp = Checkpoint {
            chain_id: 31337,
            block_number: 11,
            block_hash: h(11),
            updated_at_ms: 1_700_000_000_000,
            window: vec![WindowBlock {
                number: 11,
                hash: h(11),
                parent_hash: h(10),
                logs: vec![LogId {
                    tx: h(1),
                    log_index: 4,
                }],
            }],
            partitions: Vec::new(),
            migrated: true,
        };
        let bytes = encode_legacy(&cp).expect("encode");
        assert_eq!(super::super::decode(&bytes).expect("decode"), cp);
        assert!(decode_legacy(b"\xc3\x01garbage!!").is_err());
    }
}

#[cfg(test)]
mod size {
    use super::*;
    use crate::checkpoint::{PartitionOffsets, encode};

    /// The checkpoint of a chain whose blocks each hold 150 transactions with logs, in
    /// both formats (`docs/operations.md` quotes the current one).
    #[test]
    fn bytes_per_write_for_blocks_of_150_transactions() {
        let h = |n: u64, i: u64| {
            let mut b = [0u8; 32];
            b[..8].copy_from_slice(&n.to_be_bytes());
            b[8..16].copy_from_slice(&i.to_be_bytes());
            B256::new(b)
        };
        let window: Vec<WindowBlock> = (1..=128u64)
            .map(|n| WindowBlock {
                number: n,
                hash: h(n, 0),
                parent_hash: h(n - 1, 0),
                logs: (0..150u64)
                    .flat_map(|t| {
                        (0..2).map(move |j| LogId {
                            tx: h(n, t + 1),
                            log_index: 2 * t + j,
                        })
                    })
                    .collect(),
            })
            .collect();
        let cp = Checkpoint {
            chain_id: 1,
            block_number: 128,
            block_hash: h(128, 0),
            updated_at_ms: 1_700_000_000_000,
            window,
            partitions: vec![PartitionOffsets {
                partition: 0,
                window_start: 1 << 30,
                next: 1 << 31,
            }],
            migrated: false,
        };
        let before = encode_legacy(&cp).expect("legacy").len();
        let after = encode(&cp).expect("current").len();
        eprintln!(
            "checkpoint bytes per write, 128-block window of 150-tx blocks: first format {before}, current {after}"
        );
        assert!(after < 4_400 && before > 100 * after, "{before} vs {after}");
    }
}
