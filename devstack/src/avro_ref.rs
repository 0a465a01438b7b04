//! fastavro (through `scripts/avro_ref.py`) as the reference Avro implementation: the
//! fingerprint every record's header must carry, and an independent decoder of values.
//! `FASTAVRO_PYTHON` (set by `scripts/deps.sh env`) is the venv's interpreter.

use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, bail, ensure};
use serde_json::Value;

use crate::consumer::{DecodedLog, SCHEMA_PATH};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/avro_ref.py");

fn run(args: &[&str]) -> anyhow::Result<String> {
    let python = crate::tool("FASTAVRO_PYTHON")?;
    let out = Command::new(&python)
        .arg(SCRIPT)
        .args(args)
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    ensure!(
        out.status.success(),
        "avro_ref.py {}: {}",
        args.first().copied().unwrap_or_default(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// fastavro's CRC-64-AVRO fingerprint of `schemas/evm_log.avsc`, in header byte order.
pub fn fingerprint() -> anyhow::Result<Vec<u8>> {
    static FP: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    FP.get_or_init(|| fingerprint_of(SCHEMA_PATH).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// fastavro's CRC-64-AVRO fingerprint of the schema file at `path`, in header byte order.
pub fn fingerprint_of(path: &str) -> anyhow::Result<Vec<u8>> {
    let hex_fp = run(&["fingerprint", path])?;
    Ok(hex::decode(hex_fp.trim())?)
}

/// Decodes single-object values with fastavro (header and fingerprint checked there too).
pub fn decode(values: &[Vec<u8>]) -> anyhow::Result<Vec<DecodedLog>> {
    let file = tempfile::NamedTempFile::new()?;
    let lines: Vec<String> = values.iter().map(hex::encode).collect();
    std::fs::write(file.path(), lines.join("\n") + "\n")?;
    let path = file.path().to_str().context("temp path")?;
    let text = run(&["decode", SCHEMA_PATH, path])?;
    let decoded = text
        .lines()
        .map(|line| log_from_json(&serde_json::from_str(line)?))
        .collect::<anyhow::Result<Vec<_>>>()?;
    ensure!(
        decoded.len() == values.len(),
        "fastavro decoded {} of {} values",
        decoded.len(),
        values.len()
    );
    Ok(decoded)
}

/// A decoded `EvmLog` from its JSON form: the schema's field names, `block_timestamp` in
/// milliseconds, `data` as hex (with or without `0x`). Both fastavro's output here and
/// `ingestor tail --format json` print it so.
pub fn log_from_json(v: &Value) -> anyhow::Result<DecodedLog> {
    let long = |n: &str| v[n].as_i64().with_context(|| format!("{n}: {}", v[n]));
    let string = |n: &str| {
        v[n].as_str()
            .map(str::to_owned)
            .with_context(|| format!("{n}: {}", v[n]))
    };
    let topics = match v["topics"].as_array() {
        Some(t) => t
            .iter()
            .map(|t| t.as_str().map(str::to_owned).context("topic"))
            .collect::<anyhow::Result<_>>()?,
        None => bail!("topics: {}", v["topics"]),
    };
    Ok(DecodedLog {
        chain_id: long("chain_id")?,
        block_number: long("block_number")?,
        block_hash: string("block_hash")?,
        block_timestamp_ms: long("block_timestamp")?,
        transaction_hash: string("transaction_hash")?,
        transaction_index: long("transaction_index")?,
        log_index: long("log_index")?,
        address: string("address")?,
        topics,
        data: hex::decode(string("data")?.trim_start_matches("0x"))?,
    })
}
