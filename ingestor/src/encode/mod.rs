//! The `EvmLog` Avro record: the schema, embedded at build time from `schemas/evm_log.avsc`,
//! and the Avro single-object encoding (`C3 01`, 8-byte little-endian
//! CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, then the binary body).
//! The fingerprint is the specification's (see [`fingerprint`]), not apache-avro's. With a
//! Schema Registry, values use its wire format instead ([`Framing::Registry`]).

pub mod block;
pub(crate) mod body;
pub mod datasets;
mod fields;
pub mod fingerprint;
pub mod peek;
pub mod transaction;

pub use datasets::DatasetEncoder;

use apache_avro::Schema;

use crate::rpc::types::Log;

/// The schema file's text, as shipped in `schemas/`.
pub const SCHEMA_JSON: &str = include_str!("../../../schemas/evm_log.avsc");

/// Encoding failed: a broken embedded schema or a record it refuses.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// `schemas/evm_log.avsc` does not parse (a build defect, reported at start-up).
    #[error("embedded schema schemas/evm_log.avsc is invalid: {0}")]
    Schema(String),
    /// A schema has no canonical form, so no fingerprint.
    #[error(transparent)]
    Fingerprint(#[from] fingerprint::CanonicalError),
    /// The embedded schema is not the record [`Encoder`] writes (a build defect).
    #[error("embedded schema schemas/evm_log.avsc does not match the encoder: {0}")]
    Mismatch(String),
}

/// The `EvmLog` schema, parsed (a value its holder keeps: each publisher's [`Encoder`]
/// holds the header made from it, as it holds each decoded event's).
pub fn schema() -> Result<Schema, EncodeError> {
    Schema::parse_str(SCHEMA_JSON).map_err(|e| EncodeError::Schema(e.to_string()))
}

/// The schema's CRC-64-AVRO fingerprint of its Parsing Canonical Form, as it appears in
/// every record's header.
pub fn fingerprint() -> Result<[u8; 8], EncodeError> {
    fingerprint::fingerprint(SCHEMA_JSON).map_err(|e| EncodeError::Schema(e.to_string()))
}

/// The fingerprint apache-avro 0.21 computed, which records written by earlier versions
/// carry (see `docs/records.md`: readers resolving schemas by fingerprint map it to the
/// same schema).
pub const LEGACY_FINGERPRINT: [u8; 8] = [0x52, 0x48, 0x3c, 0xb6, 0x00, 0x15, 0xe0, 0x82];

/// Builds the record value for one log, field by field in schema order: apache-avro's
/// `Value` tree, the reference the writer is tested against.
#[cfg(test)]
pub(crate) fn to_value(
    chain_id: u64,
    block_timestamp_s: u64,
    log: &Log,
) -> apache_avro::types::Value {
    use apache_avro::types::Value;
    Value::Record(vec![
        ("chain_id".into(), Value::Long(chain_id as i64)),
        ("block_number".into(), Value::Long(log.block_number as i64)),
        (
            "block_hash".into(),
            Value::String(log.block_hash.to_string()),
        ),
        (
            "block_timestamp".into(),
            Value::TimestampMillis(block_timestamp_s.saturating_mul(1000) as i64),
        ),
        (
            "transaction_hash".into(),
            Value::String(log.transaction_hash.to_string()),
        ),
        (
            "transaction_index".into(),
            Value::Long(log.transaction_index as i64),
        ),
        ("log_index".into(), Value::Long(log.log_index as i64)),
        ("address".into(), Value::String(log.address.to_string())),
        (
            "topics".into(),
            Value::Array(
                log.topics
                    .iter()
                    .map(|t| Value::String(t.to_string()))
                    .collect(),
            ),
        ),
        ("data".into(), Value::Bytes(log.data.clone())),
    ])
}

/// How each value announces its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Avro single-object encoding: `C3 01` + the schema's fingerprint (no registry).
    SingleObject,
    /// The Confluent Schema Registry wire format: `0x00` + the schema id (4 bytes,
    /// big-endian) the registry gave `schemas/evm_log.avsc` under the topic's subject.
    Registry {
        /// The registry's id.
        schema_id: u32,
    },
}

/// The bytes every value of `schema_json` starts with under `framing`: `C3 01` and the
/// schema's fingerprint, or `00` and the registry's id.
pub fn header(schema_json: &str, framing: Framing) -> Result<Vec<u8>, EncodeError> {
    Ok(match framing {
        Framing::SingleObject => {
            let mut h = vec![0xc3, 0x01];
            let fp = fingerprint::fingerprint(schema_json)?;
            h.extend_from_slice(&fp);
            h
        }
        Framing::Registry { schema_id } => {
            let mut h = vec![0x00];
            h.extend_from_slice(&schema_id.to_be_bytes());
            h
        }
    })
}

/// A reusable encoder (one per chain; not shared between tasks).
pub struct Encoder {
    header: Vec<u8>,
}

impl Encoder {
    /// Creates an encoder for the embedded schema, framing values as `framing` says.
    /// Fails if the schema is not the record the writer writes.
    pub fn new(framing: Framing) -> Result<Self, EncodeError> {
        body::matches(&schema()?).map_err(EncodeError::Mismatch)?;
        Ok(Self {
            header: header(SCHEMA_JSON, framing)?,
        })
    }

    /// Encodes one log as a complete message (header and body).
    pub fn encode(&self, chain_id: u64, block_timestamp_s: u64, log: &Log) -> Vec<u8> {
        self.encode_with_fields(chain_id, block_timestamp_s, log).0
    }

    /// [`Encoder::encode`], and where in the value the log's fields (`EvmLog`'s first
    /// eight, which decoded records share) are.
    pub fn encode_with_fields(
        &self,
        chain_id: u64,
        block_timestamp_s: u64,
        log: &Log,
    ) -> (Vec<u8>, std::ops::Range<usize>) {
        let mut out = Vec::with_capacity(self.header.len() + body::size_hint(log));
        out.extend_from_slice(&self.header);
        let fields_end = body::write(&mut out, chain_id, block_timestamp_s, log);
        let fields = self.header.len()..fields_end;
        (out, fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::hex::{Address, B256};

    #[test]
    fn single_object_framing_and_round_trip() {
        let log = Log {
            block_number: 7,
            block_hash: B256::new([1; 32]),
            transaction_hash: B256::new([2; 32]),
            transaction_index: 3,
            log_index: 4,
            address: Address::new([0xab; 20]),
            topics: vec![B256::new([5; 32]), B256::new([6; 32])],
            data: vec![9; 1500],
        };
        let bytes =
            Encoder::new(Framing::SingleObject)
                .expect("schema")
                .encode(31337, 1_700_000_000, &log);
        assert_eq!(&bytes[..2], &[0xc3, 0x01]);
        assert_eq!(
            hex::encode(&bytes[2..10]),
            "d3c398dc20ff3cf9",
            "fastavro's fingerprint"
        );
        let value =
            apache_avro::from_avro_datum(&schema().expect("schema"), &mut &bytes[10..], None)
                .expect("decode");
        assert_eq!(value, to_value(31337, 1_700_000_000, &log));
    }

    #[test]
    fn registry_wire_format() {
        let log = Log {
            block_number: 1,
            block_hash: B256::new([1; 32]),
            transaction_hash: B256::new([2; 32]),
            transaction_index: 0,
            log_index: 0,
            address: Address::new([3; 20]),
            topics: vec![],
            data: vec![],
        };
        let bytes = Encoder::new(Framing::Registry { schema_id: 258 })
            .expect("schema")
            .encode(1, 2, &log);
        assert_eq!(&bytes[..5], &[0, 0, 0, 1, 2], "magic 0, id 258 big-endian");
        let value =
            apache_avro::from_avro_datum(&schema().expect("schema"), &mut &bytes[5..], None)
                .expect("body");
        assert_eq!(value, to_value(1, 2, &log));
    }

    /// What records written before the fix carry: apache-avro 0.21's fingerprint, which
    /// keeps `{"type":"long"}` for the timestamp-millis field in its canonical form.
    #[test]
    fn the_legacy_fingerprint_is_apache_avros() {
        let legacy = schema()
            .expect("schema")
            .fingerprint::<apache_avro::rabin::Rabin>()
            .bytes;
        assert_eq!(legacy, LEGACY_FINGERPRINT);
        assert_ne!(LEGACY_FINGERPRINT, fingerprint().expect("fp"));
    }

    #[test]
    fn schema_documents_every_field() {
        let json: serde_json::Value = serde_json::from_str(SCHEMA_JSON).expect("json");
        let fields = json["fields"].as_array().expect("fields");
        let names: Vec<_> = fields
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "chain_id",
                "block_number",
                "block_hash",
                "block_timestamp",
                "transaction_hash",
                "transaction_index",
                "log_index",
                "address",
                "topics",
                "data"
            ]
        );
        assert!(
            fields
                .iter()
                .all(|f| f["doc"].as_str().is_some_and(|d| !d.is_empty()))
        );
    }
}
