//! The `Checkpoint` Avro record (`schemas/checkpoint.avsc`), single-object encoded like
//! every record the service writes.

use std::sync::LazyLock;

use apache_avro::rabin::Rabin;
use apache_avro::types::Value;
use apache_avro::{GenericSingleObjectWriter, Schema};

use crate::rpc::hex::B256;
use crate::window::{LogId, Window, WindowBlock};

use super::{Checkpoint, CheckpointError};

/// The schema file's text, as shipped in `schemas/`.
pub const SCHEMA_JSON: &str = include_str!("../../../schemas/checkpoint.avsc");

static SCHEMA: LazyLock<Result<Schema, String>> =
    LazyLock::new(|| Schema::parse_str(SCHEMA_JSON).map_err(|e| e.to_string()));

fn schema() -> Result<&'static Schema, CheckpointError> {
    SCHEMA
        .as_ref()
        .map_err(|e| CheckpointError::Codec(format!("schemas/checkpoint.avsc: {e}")))
}

/// Encodes `cp` as a single-object Avro message.
pub fn encode(cp: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    encode_parts(
        cp.chain_id,
        cp.block_number,
        &cp.block_hash,
        cp.updated_at_ms,
        cp.window.iter(),
    )
}

/// An encoded checkpoint message.
#[derive(Debug)]
pub struct Encoded {
    /// The single-object Avro message.
    pub bytes: Vec<u8>,
    /// The checkpoint's block.
    pub block: u64,
    /// When it was encoded (ms since the Unix epoch).
    pub updated_at_ms: i64,
}

/// Encodes the checkpoint of a window (its tip is the checkpoint's block) without copying
/// the window; `None` for an empty window.
pub fn encode_window(chain_id: u64, window: &Window) -> Result<Option<Encoded>, CheckpointError> {
    let Some((block, hash)) = window.tip() else {
        return Ok(None);
    };
    let updated_at_ms = now_ms();
    let bytes = encode_parts(chain_id, block, &hash, updated_at_ms, window.blocks())?;
    Ok(Some(Encoded {
        bytes,
        block,
        updated_at_ms,
    }))
}

fn encode_parts<'a>(
    chain_id: u64,
    block_number: u64,
    block_hash: &B256,
    updated_at_ms: i64,
    blocks: impl Iterator<Item = &'a WindowBlock>,
) -> Result<Vec<u8>, CheckpointError> {
    let window = blocks
        .map(|b| {
            Value::Record(vec![
                ("number".into(), Value::Long(b.number as i64)),
                ("hash".into(), Value::Fixed(32, b.hash.0.to_vec())),
                (
                    "parent_hash".into(),
                    Value::Fixed(32, b.parent_hash.0.to_vec()),
                ),
                ("log_runs".into(), Value::Array(runs(&b.logs))),
            ])
        })
        .collect();
    let value = Value::Record(vec![
        ("chain_id".into(), Value::Long(chain_id as i64)),
        ("block_number".into(), Value::Long(block_number as i64)),
        ("block_hash".into(), Value::String(block_hash.to_string())),
        ("updated_at".into(), Value::TimestampMillis(updated_at_ms)),
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

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Log ids as runs of consecutive log indexes of one transaction.
fn runs(logs: &[LogId]) -> Vec<Value> {
    let mut out: Vec<(B256, u64, i32)> = Vec::new();
    for id in logs {
        match out.last_mut() {
            Some((tx, first, count)) if *tx == id.tx && *first + *count as u64 == id.log_index => {
                *count += 1;
            }
            _ => out.push((id.tx, id.log_index, 1)),
        }
    }
    out.into_iter()
        .map(|(tx, first, count)| {
            Value::Record(vec![
                ("transaction_hash".into(), Value::Fixed(32, tx.0.to_vec())),
                ("first_log_index".into(), Value::Long(first as i64)),
                ("count".into(), Value::Int(count)),
            ])
        })
        .collect()
}

/// Decodes a message written by [`encode`]; anything else is an error, never a default.
pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let bad = |what: &str| CheckpointError::Codec(format!("malformed checkpoint: {what}"));
    let schema = schema()?;
    let fp = schema.fingerprint::<Rabin>();
    if bytes.len() < 10 || bytes[..2] != [0xc3, 0x01] || bytes[2..10] != fp.bytes[..] {
        return Err(bad(
            "not a single-object Checkpoint (header or fingerprint differs)",
        ));
    }
    let value = apache_avro::from_avro_datum(schema, &mut &bytes[10..], None)
        .map_err(|e| CheckpointError::Codec(e.to_string()))?;
    let Value::Record(fields) = value else {
        return Err(bad("not a record"));
    };
    let mut chain_id = None;
    let mut block_number = None;
    let mut block_hash = None;
    let mut updated_at_ms = 0;
    let mut window = Vec::new();
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
    })
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
    fn round_trips_and_compresses_runs() {
        let tx = |b| B256::new([b; 32]);
        let block = |n: u64, logs: Vec<LogId>| WindowBlock {
            number: n,
            hash: tx(n as u8),
            parent_hash: tx(n as u8 - 1),
            logs,
        };
        let id = |t, i| LogId {
            tx: tx(t),
            log_index: i,
        };
        let cp = Checkpoint {
            chain_id: 31337,
            block_number: 11,
            block_hash: tx(11),
            updated_at_ms: 1_700_000_000_000,
            window: vec![
                block(10, vec![id(1, 0), id(1, 1), id(1, 2), id(2, 3), id(1, 4)]),
                block(11, vec![]),
            ],
        };
        let bytes = encode(&cp).expect("encode");
        assert_eq!(runs(&cp.window[0].logs).len(), 3);
        assert_eq!(decode(&bytes).expect("decode"), cp);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(decode(b"\xc3\x01garbage!!").is_err());
    }
}
