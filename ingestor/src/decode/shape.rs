//! Each event parameter's Avro shape and name, and an event's record schema.
//!
//! Types: `address` → `string` (`0x` + 40 lowercase hex); `bool` → `boolean`; `intN`
//! (N ≤ 64) and `uintN` (N ≤ 56) → `long`; wider integers → `bytes` with logical type
//! `decimal` (precision 78, scale 0: the two's-complement big-endian integer); `bytesN`,
//! `bytes`, `function` → `bytes`; `string` → `string`; `T[]` and `T[k]` → `array`; a tuple
//! → a nested record named after its struct (from `internalType`) or `<Record>_<field>`.
//! An indexed `string`, `bytes`, array or tuple is only its keccak-256 hash in the log: a
//! `string` of `0x` + 64 hex.
//!
//! Names: Avro allows `[A-Za-z_][A-Za-z0-9_]*`. Any other character (Solidity allows `$`)
//! becomes `_`, a leading digit gets a `_` in front, an unnamed parameter is `arg<i>` (its
//! position, from 0), and a name already taken in its record (by a log field such as
//! `address`, or an earlier parameter) gets `_` appended until it is free.

use alloy_dyn_abi::DynSolType;
use serde_json::{Value, json};

/// One parameter (or tuple member) with its Avro name.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The Avro field name.
    pub name: String,
    /// The name in the ABI (may be empty).
    pub abi_name: String,
    /// Its Solidity type, as the ABI writes it (`uint256`, `tuple(address,uint8)[]`).
    pub solidity: String,
    /// Whether it is an indexed event parameter (always false inside a tuple).
    pub indexed: bool,
    /// How it is written.
    pub kind: Kind,
}

/// The Avro shape of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `address`: a `0x` hex string.
    Address,
    /// `bool`.
    Bool,
    /// An integer that fits an Avro `long`.
    Long {
        /// `intN` rather than `uintN`.
        signed: bool,
        /// N.
        bits: usize,
    },
    /// A wider integer: Avro decimal bytes.
    Decimal {
        /// `intN` rather than `uintN`.
        signed: bool,
        /// N.
        bits: usize,
    },
    /// `bytesN`: N bytes.
    FixedBytes(usize),
    /// `function`: 24 bytes (address and selector).
    Function,
    /// `bytes`.
    Bytes,
    /// `string`.
    String,
    /// `T[]`.
    Array(Box<Kind>),
    /// `T[k]`.
    FixedArray(Box<Kind>, usize),
    /// A tuple: a nested record.
    Record {
        /// The record's Avro name (unique within its event's schema).
        name: String,
        /// Its members.
        fields: Vec<Param>,
    },
    /// An indexed dynamic parameter: only its hash is in the log.
    TopicHash,
}

impl Kind {
    /// The ABI type it decodes as.
    pub fn sol_type(&self) -> DynSolType {
        match self {
            Kind::Address => DynSolType::Address,
            Kind::Bool => DynSolType::Bool,
            Kind::Long { signed: true, bits } | Kind::Decimal { signed: true, bits } => {
                DynSolType::Int(*bits)
            }
            Kind::Long { bits, .. } | Kind::Decimal { bits, .. } => DynSolType::Uint(*bits),
            Kind::FixedBytes(n) => DynSolType::FixedBytes(*n),
            Kind::Function => DynSolType::Function,
            Kind::Bytes => DynSolType::Bytes,
            Kind::String => DynSolType::String,
            Kind::Array(k) => DynSolType::Array(Box::new(k.sol_type())),
            Kind::FixedArray(k, n) => DynSolType::FixedArray(Box::new(k.sol_type()), *n),
            Kind::Record { fields, .. } => {
                DynSolType::Tuple(fields.iter().map(|f| f.kind.sol_type()).collect())
            }
            Kind::TopicHash => DynSolType::FixedBytes(32),
        }
    }
}

/// An Avro name made of `raw`: other characters become `_`, a leading digit gets `_`.
pub fn avro_name(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// `name`, with `_` appended until `taken` does not hold it; then taken.
pub fn free_name(mut name: String, taken: &mut Vec<String>) -> String {
    while taken.contains(&name) {
        name.push('_');
    }
    taken.push(name.clone());
    name
}

/// The log fields every decoded record starts with, as in `schemas/evm_log.avsc`.
pub const LOG_FIELDS: [&str; 8] = [
    "chain_id",
    "block_number",
    "block_hash",
    "block_timestamp",
    "transaction_hash",
    "transaction_index",
    "log_index",
    "address",
];

/// Names a schema's nested records: the struct's name when known, unique per schema.
#[derive(Default)]
pub struct RecordNames {
    /// Names given so far, with the members of each (the same struct met twice is the
    /// same record).
    given: Vec<(String, Vec<Param>)>,
}

impl RecordNames {
    /// Starts with the top-level record's name taken.
    pub fn new(top: &str) -> Self {
        Self {
            given: vec![(top.to_owned(), Vec::new())],
        }
    }

    /// The name for a record of `fields` wanting `want`.
    pub fn name(&mut self, want: String, fields: &[Param]) -> String {
        let mut name = want;
        loop {
            match self.given.iter().find(|(n, _)| *n == name) {
                None => {
                    self.given.push((name.clone(), fields.to_vec()));
                    return name;
                }
                Some((_, f)) if f == fields && !f.is_empty() => return name,
                Some(_) => name.push('_'),
            }
        }
    }
}

/// The Avro JSON of `kind`; `defined` holds the records already written in this schema
/// (a record is defined once, then referred to by name).
pub fn avro_type(kind: &Kind, defined: &mut Vec<String>) -> Value {
    match kind {
        Kind::Address | Kind::String | Kind::TopicHash => json!("string"),
        Kind::Bool => json!("boolean"),
        Kind::Long { .. } => json!("long"),
        Kind::Decimal { .. } => {
            json!({"type": "bytes", "logicalType": "decimal", "precision": 78, "scale": 0})
        }
        Kind::FixedBytes(_) | Kind::Function | Kind::Bytes => json!("bytes"),
        Kind::Array(k) | Kind::FixedArray(k, _) => {
            json!({"type": "array", "items": avro_type(k, defined)})
        }
        Kind::Record { name, fields } => {
            if defined.contains(name) {
                return json!(name);
            }
            defined.push(name.clone());
            let fields: Vec<Value> = fields.iter().map(|f| field(f, defined)).collect();
            json!({"type": "record", "name": name, "fields": fields})
        }
    }
}

/// One field's Avro JSON, with a `doc` naming its Solidity type.
pub fn field(p: &Param, defined: &mut Vec<String>) -> Value {
    let doc = match (&p.kind, p.indexed) {
        (Kind::TopicHash, _) => format!(
            "Indexed `{}` parameter `{}`: the log holds only its keccak-256 hash, 0x-prefixed lowercase hex, 32 bytes.",
            p.solidity, p.abi_name
        ),
        (_, true) => format!("Indexed `{}` parameter `{}`.", p.solidity, p.abi_name),
        (_, false) => format!("`{}` parameter `{}`.", p.solidity, p.abi_name),
    };
    json!({"name": p.name, "type": avro_type(&p.kind, defined), "doc": doc})
}
