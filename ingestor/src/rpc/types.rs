//! Validated chain data parsed from JSON-RPC results: block headers and logs.
//!
//! Everything the node says is checked here once: a field that is missing or malformed is a
//! [`TypeError`], never a panic and never a default.

use serde_json::Value;

use super::bloom::Bloom;
use super::hex::{Address, B256, HexError, decode_bytes, decode_quantity};

/// A result that is not the shape the method promises.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TypeError {
    /// A required field is absent or not a string.
    #[error("field `{0}` is missing or not a string")]
    Missing(&'static str),
    /// A field has the wrong hex form.
    #[error(transparent)]
    Hex(#[from] HexError),
    /// The value is not the JSON type the method returns.
    #[error("expected {expected}, got {got}")]
    Shape {
        /// What was expected.
        expected: &'static str,
        /// A short description of what came.
        got: &'static str,
    },
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn str_field<'a>(v: &'a Value, field: &'static str) -> Result<&'a str, TypeError> {
    v.get(field)
        .and_then(Value::as_str)
        .ok_or(TypeError::Missing(field))
}

fn quantity_field(v: &Value, field: &'static str) -> Result<u64, TypeError> {
    Ok(decode_quantity(field, str_field(v, field)?)?)
}

fn hash_field(v: &Value, field: &'static str) -> Result<B256, TypeError> {
    Ok(B256::parse(field, str_field(v, field)?)?)
}

/// The parts of a block header the follower needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Hash of the parent block.
    pub parent_hash: B256,
    /// Header timestamp, seconds since the Unix epoch.
    pub timestamp_s: u64,
    /// The bloom of every log in the block.
    pub logs_bloom: Bloom,
}

impl Header {
    /// Parses an `eth_getBlockBy*` or `newHeads` result. `null` (unknown block) is an error
    /// here; callers that expect it check for null first.
    pub fn from_json(v: &Value) -> Result<Self, TypeError> {
        if !v.is_object() {
            return Err(TypeError::Shape {
                expected: "a block object",
                got: kind(v),
            });
        }
        Ok(Self {
            number: quantity_field(v, "number")?,
            hash: hash_field(v, "hash")?,
            parent_hash: hash_field(v, "parentHash")?,
            timestamp_s: quantity_field(v, "timestamp")?,
            logs_bloom: Bloom::parse("logsBloom", str_field(v, "logsBloom")?)?,
        })
    }
}

/// One event log as `eth_getLogs` returns it, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Number of the containing block.
    pub block_number: u64,
    /// Hash of the containing block.
    pub block_hash: B256,
    /// Hash of the emitting transaction.
    pub transaction_hash: B256,
    /// Index of the transaction in the block.
    pub transaction_index: u64,
    /// Index of the log in the block.
    pub log_index: u64,
    /// Emitting contract.
    pub address: Address,
    /// 0 to 4 indexed topics.
    pub topics: Vec<B256>,
    /// Non-indexed data.
    pub data: Vec<u8>,
}

impl Log {
    /// Parses one log object. A log marked `removed` or carrying more than 4 topics is refused.
    pub fn from_json(v: &Value) -> Result<Self, TypeError> {
        if !v.is_object() {
            return Err(TypeError::Shape {
                expected: "a log object",
                got: kind(v),
            });
        }
        if v.get("removed").and_then(Value::as_bool) == Some(true) {
            return Err(TypeError::Hex(HexError::new(
                "removed",
                "log is marked removed",
            )));
        }
        let topics = v
            .get("topics")
            .and_then(Value::as_array)
            .ok_or(TypeError::Missing("topics"))?;
        if topics.len() > 4 {
            return Err(TypeError::Hex(HexError::new(
                "topics",
                format!("{} topics, at most 4", topics.len()),
            )));
        }
        let topics = topics
            .iter()
            .map(|t| {
                let s = t.as_str().ok_or(TypeError::Missing("topics"))?;
                Ok(B256::parse("topics", s)?)
            })
            .collect::<Result<Vec<_>, TypeError>>()?;
        Ok(Self {
            block_number: quantity_field(v, "blockNumber")?,
            block_hash: hash_field(v, "blockHash")?,
            transaction_hash: hash_field(v, "transactionHash")?,
            transaction_index: quantity_field(v, "transactionIndex")?,
            log_index: quantity_field(v, "logIndex")?,
            address: Address::parse("address", str_field(v, "address")?)?,
            topics,
            data: decode_bytes("data", str_field(v, "data")?)?,
        })
    }

    /// Parses an `eth_getLogs` result array.
    pub fn list_from_json(v: &Value) -> Result<Vec<Self>, TypeError> {
        v.as_array()
            .ok_or(TypeError::Shape {
                expected: "an array of logs",
                got: kind(v),
            })?
            .iter()
            .map(Self::from_json)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log_json() -> Value {
        json!({
            "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "topics": ["0x00000000000000000000000000000000000000000000000000000000000000AA"],
            "data": "0x0102",
            "blockHash": "0x1111111111111111111111111111111111111111111111111111111111111111",
            "blockNumber": "0x10",
            "transactionHash": "0x2222222222222222222222222222222222222222222222222222222222222222",
            "transactionIndex": "0x0",
            "logIndex": "0x3",
            "removed": false
        })
    }

    #[test]
    fn parses_and_normalises_a_log() {
        let log = Log::from_json(&log_json()).expect("valid log");
        assert_eq!(
            log.address.to_string(),
            "0x5fbdb2315678afecb367f032d93f642f64180aa3"
        );
        assert_eq!(log.topics[0].to_string(), format!("0x{}aa", "0".repeat(62)));
        assert_eq!(log.data, vec![1, 2]);
        assert_eq!((log.block_number, log.log_index), (16, 3));
    }

    #[test]
    fn refuses_bad_logs() {
        let mut removed = log_json();
        removed["removed"] = json!(true);
        assert!(Log::from_json(&removed).is_err());
        let mut five = log_json();
        five["topics"] = json!(vec![format!("0x{}", "0".repeat(64)); 5]);
        assert!(Log::from_json(&five).is_err());
        let mut odd = log_json();
        odd["data"] = json!("0x123");
        assert!(Log::from_json(&odd).is_err());
        let mut missing = log_json();
        missing.as_object_mut().expect("object").remove("blockHash");
        assert_eq!(
            Log::from_json(&missing),
            Err(TypeError::Missing("blockHash"))
        );
        assert!(Log::list_from_json(&json!({"not": "a list"})).is_err());
    }

    #[test]
    fn parses_a_header() {
        let h = Header::from_json(&json!({
            "number": "0x2", "timestamp": "0x64",
            "hash": format!("0x{}", "ab".repeat(32)),
            "parentHash": format!("0x{}", "cd".repeat(32)),
            "logsBloom": format!("0x{}", "00".repeat(256)),
        }))
        .expect("valid header");
        assert_eq!((h.number, h.timestamp_s), (2, 100));
        assert!(Header::from_json(&Value::Null).is_err());
    }
}
