//! The demo's reader of decoded-event topics: each topic's schema comes from `ingestor
//! schemas` (the service's own view of the configuration), and each record prints as its
//! event with its parameters by name, as `ingestor tail --event` prints them.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, ensure};
use apache_avro::Schema;
use apache_avro::types::Value;

use crate::consumer::TopicReader;

/// A decoded-event topic of the configuration.
#[derive(Debug, Clone)]
pub struct EventTopic {
    /// The chain's name.
    pub chain: String,
    /// The topic.
    pub topic: String,
    /// Its records' schema.
    pub schema: Schema,
}

/// Every decoded-event topic of the configuration at `config`, from `ingestor schemas`.
pub fn topics(ingestor: &Path, config: &Path) -> anyhow::Result<Vec<EventTopic>> {
    let out = Command::new(ingestor)
        .arg("schemas")
        .arg("--config")
        .arg(config)
        .output()
        .context("running `ingestor schemas`")?;
    ensure!(
        out.status.success(),
        "ingestor schemas: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8(out.stdout)?
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let field = |f: &str| v[f].as_str().map(str::to_owned).context(f.to_owned());
            Ok(EventTopic {
                chain: field("chain")?,
                topic: field("topic")?,
                schema: Schema::parse_str(&v["schema"].to_string())?,
            })
        })
        .collect()
}

/// Prints every record of `t.topic` as it arrives, until `stop`.
pub fn tail(brokers: &str, t: &EventTopic, stop: &AtomicBool) {
    let mut reader = match TopicReader::new(brokers, &t.topic) {
        Ok(r) => r.undecoded(),
        Err(e) => return eprintln!("devstack: cannot read {}: {e:#}", t.topic),
    };
    // The part of the topic's name after `evm.events.<chain_id>.`, to tell topics apart.
    let label = t.topic.splitn(4, '.').last().unwrap_or(&t.topic);
    while !stop.load(Ordering::SeqCst) {
        let line = match reader.poll() {
            Ok(None) => continue,
            Ok(Some(r)) => match r.raw.as_deref().map(|v| decode(&t.schema, v)) {
                None => format!("[{}] {label}: tombstone {}", t.chain, r.key),
                Some(Ok(fields)) => format!(
                    "[{}] {label}: {}  (offset {})",
                    t.chain,
                    render(&t.schema, &fields),
                    r.offset
                ),
                Some(Err(e)) => format!("[{}] {label}: undecodable {}: {e:#}", t.chain, r.key),
            },
            Err(e) => format!("[{}] {label}: {e:#}", t.chain),
        };
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// The fields of a single-object encoded value (`C3 01`, fingerprint, body).
fn decode(schema: &Schema, value: &[u8]) -> anyhow::Result<Vec<(String, Value)>> {
    ensure!(
        value.len() >= 10 && value[..2] == [0xc3, 0x01],
        "not Avro single-object encoding"
    );
    match apache_avro::from_avro_datum(schema, &mut &value[10..], None)? {
        Value::Record(fields) => Ok(fields),
        other => anyhow::bail!("not a record: {other:?}"),
    }
}

/// The fields every record about a log starts with.
const LOG_FIELDS: [&str; 8] = [
    "chain_id",
    "block_number",
    "block_hash",
    "block_timestamp",
    "transaction_hash",
    "transaction_index",
    "log_index",
    "address",
];

/// `Transfer from=0x… to=0x… value=1000  block 12 log 3 contract 0x…`.
fn render(schema: &Schema, fields: &[(String, Value)]) -> String {
    let name = match schema {
        Schema::Record(r) => r.name.name.as_str(),
        _ => "",
    };
    let params: Vec<String> = fields
        .iter()
        .filter(|(k, _)| !LOG_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect();
    let field = |f: &str| {
        fields
            .iter()
            .find(|(k, _)| k == f)
            .map(|(_, v)| text(v))
            .unwrap_or_default()
    };
    format!(
        "{name} {}  block {} log {} contract {}",
        params.join(" "),
        field("block_number"),
        field("log_index"),
        field("address"),
    )
}

/// A parameter's value: strings (addresses) shortened, integers in decimal.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => crate::demo::short(s),
        Value::Long(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Bytes(b) => crate::demo::short(&format!("0x{}", hex::encode(b))),
        Value::Decimal(d) => <Vec<u8>>::try_from(d)
            .map(|be| decimal(&be))
            .unwrap_or_else(|e| e.to_string()),
        other => format!("{other:?}"),
    }
}

/// A two's-complement big-endian integer in decimal (negative ones in hex).
fn decimal(be: &[u8]) -> String {
    if be.first().is_some_and(|b| b & 0x80 != 0) {
        return format!("0x{}", hex::encode(be));
    }
    let mut n = be.to_vec();
    let mut digits = Vec::new();
    while n.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(char::from(b'0' + rem as u8));
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.iter().rev().collect()
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0x00, 0xff]), "255");
        assert_eq!(decimal(&[0x02, 0x54, 0x0b, 0xe4, 0x00]), "10000000000");
        let max = [[0u8].as_slice(), &[0xff; 32]].concat();
        assert_eq!(
            decimal(&max),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
    }
}
