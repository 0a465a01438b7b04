//! An independent reader of the `blocks` and `transactions` datasets' topics: each value is
//! decoded with apache-avro and the schema *file* (`schemas/evm_block.avsc`,
//! `schemas/evm_transaction.avsc`), its single-object header (`C3 01` + the schema's
//! CRC-64-AVRO fingerprint as fastavro computes it) checked, and turned into JSON that
//! reads like the node's: strings as they are, `bytes` as `0x` hex, `decimal(78, 0)` as
//! decimal text, `null` for an empty union, `extra` as an object of strings.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use serde_json::{Value, json};

use crate::consumer::{Record, TopicReader};

/// The `blocks` dataset's schema file.
pub const BLOCK_SCHEMA_PATH: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/evm_block.avsc");
/// The `transactions` dataset's schema file.
pub const TRANSACTION_SCHEMA_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../schemas/evm_transaction.avsc"
);

/// A schema file and its fingerprint, to decode single-object values with.
pub struct Decoder {
    schema: Schema,
    fingerprint: Vec<u8>,
}

impl Decoder {
    /// Reads the schema file at `path` and asks fastavro for its fingerprint.
    pub fn new(path: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        Ok(Self {
            schema: Schema::parse_str(&text)?,
            fingerprint: crate::avro_ref::fingerprint_of(path)?,
        })
    }

    /// Decodes one single-object value into JSON.
    pub fn decode(&self, payload: &[u8]) -> anyhow::Result<Value> {
        ensure!(
            payload.len() >= 10 && payload[..2] == [0xc3, 0x01],
            "not Avro single-object encoding"
        );
        ensure!(
            payload[2..10] == self.fingerprint[..],
            "schema fingerprint {} is not the schema file's {} (fastavro)",
            hex::encode(&payload[2..10]),
            hex::encode(&self.fingerprint)
        );
        let mut rest = &payload[10..];
        let value = apache_avro::from_avro_datum(&self.schema, &mut rest, None)?;
        ensure!(rest.is_empty(), "{} bytes after the record", rest.len());
        to_json(value)
    }
}

/// The compacted view of a dataset topic: the latest value per key, a tombstone deleting
/// its key.
pub type View = BTreeMap<String, Value>;

/// Reads `topic` (decoding with the schema file at `schema_path`) until `done(view)` holds
/// or `deadline` passes, then to its end; returns the compacted view and every record read.
/// A value that does not decode is an error.
pub fn read_view(
    brokers: &str,
    topic: &str,
    schema_path: &str,
    deadline: Duration,
    mut done: impl FnMut(&View) -> bool,
) -> anyhow::Result<(View, Vec<Record>)> {
    let decoder = Decoder::new(schema_path)?;
    let mut reader = TopicReader::new(brokers, topic)?.undecoded();
    let mut records = Vec::new();
    let mut view = View::new();
    let mut applied = 0;
    let mut failure = None;
    let converged = reader.read_until(&mut records, deadline, |rs| {
        if failure.is_some() {
            return true;
        }
        if rs.len() == applied && applied > 0 {
            return false;
        }
        match apply(&decoder, topic, &rs[applied..], &mut view) {
            Ok(()) => {
                applied = rs.len();
                done(&view)
            }
            Err(e) => {
                failure = Some(e);
                true
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    // A wait that ends without `done` holding is not an error: the caller compares what
    // the topic holds and says how it differs.
    let _ = converged;
    reader.read_to_end(&mut records, deadline)?;
    apply(&decoder, topic, &records[applied..], &mut view)?;
    Ok((view, records))
}

/// Applies `records` (of `topic`) to `view` in order.
fn apply(
    decoder: &Decoder,
    topic: &str,
    records: &[Record],
    view: &mut View,
) -> anyhow::Result<()> {
    for r in records {
        match &r.raw {
            None => {
                view.remove(&r.key);
            }
            Some(bytes) => {
                let value = decoder
                    .decode(bytes)
                    .with_context(|| format!("{topic} record {}", r.key))?;
                view.insert(r.key.clone(), value);
            }
        }
    }
    Ok(())
}

/// A decoded Avro value as JSON (see the module's documentation).
fn to_json(v: Avro) -> anyhow::Result<Value> {
    Ok(match v {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => json!(b),
        Avro::Int(n) => json!(n),
        Avro::Long(n) | Avro::TimestampMillis(n) => json!(n),
        Avro::String(s) => json!(s),
        Avro::Bytes(b) | Avro::Fixed(_, b) => json!(format!("0x{}", hex::encode(b))),
        Avro::Decimal(d) => {
            let be = Vec::<u8>::try_from(d)?;
            ensure!(be.first().is_none_or(|b| b & 0x80 == 0), "negative decimal");
            json!(decimal(&be))
        }
        Avro::Union(_, inner) => to_json(*inner)?,
        Avro::Map(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        Avro::Record(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, to_json(v)?)))
                .collect::<anyhow::Result<_>>()?,
        ),
        other => bail!("a value of a type the dataset schemas do not use: {other:?}"),
    })
}

/// A big-endian unsigned integer in decimal, by long division.
pub fn decimal(be: &[u8]) -> String {
    let mut n = be.to_vec();
    let mut digits = Vec::new();
    while n.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// A node's hex quantity (`0x…`) in decimal.
pub fn quantity_decimal(hex_quantity: &str) -> anyhow::Result<String> {
    let digits = hex_quantity
        .strip_prefix("0x")
        .with_context(|| format!("quantity {hex_quantity} without 0x"))?;
    let padded = match digits.len() % 2 {
        0 => digits.to_owned(),
        _ => format!("0{digits}"),
    };
    Ok(decimal(&hex::decode(padded)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_of_any_width() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0, 0xff]), "255");
        assert_eq!(
            quantity_decimal("0x3b9aca00").expect("decimal"),
            "1000000000"
        );
        assert_eq!(quantity_decimal("0x0").expect("decimal"), "0");
        assert_eq!(
            decimal(&[0xff; 32]),
            "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        );
    }
}
