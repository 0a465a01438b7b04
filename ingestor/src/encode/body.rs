//! The Avro binary body of an `EvmLog`, written straight into the output buffer: no
//! `apache_avro::types::Value` tree, no owned hex strings. It follows the specification's
//! encodings (a long is a zig-zag varint; a string or bytes, its length then its bytes; an
//! array, one block of items then a zero count) for the fields of `schemas/evm_log.avsc`
//! in its order, which [`matches`] checks against the parsed schema at start-up.

use apache_avro::Schema;

use crate::rpc::hex::push_hex;
use crate::rpc::types::Log;

/// The schema's fields, in order, with the types this writer gives them.
const FIELDS: [(&str, &str); 10] = [
    ("chain_id", "long"),
    ("block_number", "long"),
    ("block_hash", "string"),
    ("block_timestamp", "timestamp-millis"),
    ("transaction_hash", "string"),
    ("transaction_index", "long"),
    ("log_index", "long"),
    ("address", "string"),
    ("topics", "array<string>"),
    ("data", "bytes"),
];

/// Whether `schema` is the record this writer writes: the same fields, in the same order,
/// of the same types. `Err` names the first difference.
pub(super) fn matches(schema: &Schema) -> Result<(), String> {
    let Schema::Record(record) = schema else {
        return Err("not a record".into());
    };
    let found: Vec<(&str, String)> = record
        .fields
        .iter()
        .map(|f| (f.name.as_str(), type_name(&f.schema)))
        .collect();
    if found.len() != FIELDS.len() {
        return Err(format!(
            "{} fields, the writer has {}",
            found.len(),
            FIELDS.len()
        ));
    }
    for ((name, ty), (want_name, want_ty)) in found.iter().zip(FIELDS) {
        if *name != want_name || ty != want_ty {
            return Err(format!(
                "field `{name}` ({ty}) where the writer has `{want_name}` ({want_ty})"
            ));
        }
    }
    Ok(())
}

fn type_name(schema: &Schema) -> String {
    match schema {
        Schema::Long => "long".into(),
        Schema::String => "string".into(),
        Schema::Bytes => "bytes".into(),
        Schema::TimestampMillis => "timestamp-millis".into(),
        Schema::Array(a) => format!("array<{}>", type_name(&a.items)),
        other => format!("{other:?}"),
    }
}

/// Bytes the body of `log` takes, near enough to allocate once.
pub(super) fn size_hint(log: &Log) -> usize {
    // Four longs and a timestamp (up to 10 bytes each), 2 + 3 hashes/addresses as hex with
    // their lengths, topics as hex, data with its length, and the array's end.
    5 * 10 + 2 * (2 + 66) + (2 + 42) + log.topics.len() * (2 + 66) + 2 + 10 + log.data.len() + 1
}

/// Appends the Avro binary body of `log` to `out`; returns where its log fields (the
/// first eight, see [`write_log_fields`]) end in `out`.
pub(super) fn write(out: &mut Vec<u8>, chain_id: u64, block_timestamp_s: u64, log: &Log) -> usize {
    write_log_fields(out, chain_id, block_timestamp_s, log);
    let fields_end = out.len();
    if !log.topics.is_empty() {
        long(out, log.topics.len() as i64);
        for topic in &log.topics {
            hex_string(out, &topic.0);
        }
    }
    long(out, 0);
    long(out, log.data.len() as i64);
    out.extend_from_slice(&log.data);
    fields_end
}

/// Appends the fields every record about a log starts with (`EvmLog`'s first eight, which
/// decoded events share): `chain_id` to `address`.
pub(crate) fn write_log_fields(
    out: &mut Vec<u8>,
    chain_id: u64,
    block_timestamp_s: u64,
    log: &Log,
) {
    long(out, chain_id as i64);
    long(out, log.block_number as i64);
    hex_string(out, &log.block_hash.0);
    long(out, block_timestamp_s.saturating_mul(1000) as i64);
    hex_string(out, &log.transaction_hash.0);
    long(out, log.transaction_index as i64);
    long(out, log.log_index as i64);
    hex_string(out, &log.address.0);
}

/// A long: zig-zag, then 7 bits per byte, low bits first, high bit set on all but the last.
pub(crate) fn long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A string holding `0x` and the lowercase hex of `bytes`.
pub(crate) fn hex_string(out: &mut Vec<u8>, bytes: &[u8]) {
    long(out, 2 + 2 * bytes.len() as i64);
    push_hex(out, bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::hex::{Address, B256};

    /// apache-avro's own encoding (through its `Value` tree), the reference.
    fn reference(chain_id: u64, ts: u64, log: &Log) -> Vec<u8> {
        let schema = super::super::schema().expect("schema");
        let value = super::super::to_value(chain_id, ts, log)
            .resolve(&schema)
            .expect("resolve");
        apache_avro::to_avro_datum(&schema, value).expect("encode")
    }

    fn log(seed: u64) -> Log {
        let byte = |k: u64| (seed.wrapping_mul(31).wrapping_add(k) % 251) as u8;
        Log {
            block_number: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (seed % 64),
            block_hash: B256::new([byte(1); 32]),
            transaction_hash: B256::new([byte(2); 32]),
            transaction_index: seed % 300,
            log_index: seed.wrapping_mul(7919) >> (seed % 50),
            address: Address::new([byte(3); 20]),
            topics: (0..seed % 5).map(|t| B256::new([byte(t); 32])).collect(),
            data: (0..(seed * 37) % 300).map(|i| byte(i) ^ 0x5a).collect(),
        }
    }

    #[test]
    fn bodies_are_byte_for_byte_apache_avros() {
        let chains = [0, 1, 63, 64, 8191, 8192, 31337, u64::MAX, i64::MAX as u64];
        let stamps = [0, 1, 1_700_000_000, u64::MAX];
        for seed in 0..400u64 {
            let log = log(seed);
            let chain = chains[(seed % chains.len() as u64) as usize];
            let ts = stamps[(seed % stamps.len() as u64) as usize];
            let mut out = Vec::new();
            write(&mut out, chain, ts, &log);
            assert_eq!(out, reference(chain, ts, &log), "seed {seed}");
            assert!(out.len() <= size_hint(&log), "seed {seed}: hint too small");
        }
    }

    #[test]
    fn the_embedded_schema_is_what_the_writer_writes() {
        assert_eq!(matches(&super::super::schema().expect("schema")), Ok(()));
        let renamed = super::super::SCHEMA_JSON.replace("\"log_index\"", "\"logIndex\"");
        let schema = Schema::parse_str(&renamed).expect("parses");
        let err = matches(&schema).expect_err("renamed field");
        assert!(err.contains("logIndex"), "{err}");
    }
}
