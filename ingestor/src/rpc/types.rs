//! Validated chain data parsed from JSON-RPC results: block headers and logs.
//!
//! Everything the node says is checked here once: a field that is missing or malformed is a
//! [`TypeError`], never a panic and never a default.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::bloom::Bloom;
use super::hex::{Address, B256, HexError, decode_bytes, decode_quantity};
use super::json::{Field, Obj, kind_of};
use super::sealed::Sealed;

/// A result that is not the shape the method promises.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
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

pub(super) fn str_field<'f>(
    v: &'f Option<Field<'_>>,
    field: &'static str,
) -> Result<&'f str, TypeError> {
    v.as_ref()
        .and_then(Field::as_str)
        .ok_or(TypeError::Missing(field))
}

pub(super) fn quantity_field(v: &Option<Field<'_>>, field: &'static str) -> Result<u64, TypeError> {
    Ok(decode_quantity(field, str_field(v, field)?)?)
}

pub(super) fn hash_field(v: &Option<Field<'_>>, field: &'static str) -> Result<B256, TypeError> {
    Ok(B256::parse(field, str_field(v, field)?)?)
}

/// A JSON text that did not read as `expected`: its kind, or a malformed object.
fn shape(expected: &'static str, text: &str) -> TypeError {
    TypeError::Shape {
        expected,
        got: match kind_of(text) {
            "an object" => "a malformed object (a member given twice?)",
            other => other,
        },
    }
}

/// The members of a header we read, borrowed from the answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawHeader<'a> {
    #[serde(borrow, default)]
    number: Option<Field<'a>>,
    #[serde(borrow, default)]
    hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    parent_hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    timestamp: Option<Field<'a>>,
    #[serde(borrow, default)]
    logs_bloom: Option<Field<'a>>,
    #[serde(borrow, default)]
    gas_used: Option<Field<'a>>,
    #[serde(borrow, default)]
    transactions: Option<Field<'a>>,
    /// The rest of the fields the block hash covers (see [`Sealed`]).
    #[serde(borrow, default)]
    pub(super) sha3_uncles: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) miner: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) state_root: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) transactions_root: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) receipts_root: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) difficulty: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) gas_limit: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) extra_data: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) mix_hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) nonce: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) base_fee_per_gas: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) withdrawals_root: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) blob_gas_used: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) excess_blob_gas: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) parent_beacon_block_root: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) requests_hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) block_access_list_hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    pub(super) slot_number: Option<Field<'a>>,
    /// Members of a chain's own header whose hash covers more than Ethereum's fields.
    #[serde(borrow, default)]
    pub(super) timestamp_millis_part: Option<Field<'a>>,
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
    /// Gas used by all of the block's transactions: the last receipt's `cumulativeGasUsed`.
    pub gas_used: u64,
    /// How many transactions the block has, when the answer listed them
    /// (`eth_getBlockBy*`; a `newHeads` header does not).
    pub transactions: Option<u64>,
    /// The header as its hash covers it, and its `receiptsRoot`: what the proofs by the
    /// block hash read. A field missing here fails those proofs only, never the header.
    pub sealed: Sealed,
}

impl Header {
    /// Parses an `eth_getBlockBy*` or `newHeads` result, given as JSON text. `null` (unknown
    /// block) is an error here; callers that expect it check for null first.
    pub fn parse(json: &str) -> Result<Self, TypeError> {
        const EXPECTED: &str = "a block object";
        let raw = match serde_json::from_str::<Obj<RawHeader>>(json) {
            Ok(Obj::Object(raw)) => raw,
            Ok(Obj::Other(got)) => {
                return Err(TypeError::Shape {
                    expected: EXPECTED,
                    got,
                });
            }
            Err(_) => return Err(shape(EXPECTED, json)),
        };
        let mut header = Self {
            number: quantity_field(&raw.number, "number")?,
            hash: hash_field(&raw.hash, "hash")?,
            parent_hash: hash_field(&raw.parent_hash, "parentHash")?,
            timestamp_s: quantity_field(&raw.timestamp, "timestamp")?,
            logs_bloom: Bloom::parse("logsBloom", str_field(&raw.logs_bloom, "logsBloom")?)?,
            gas_used: quantity_field(&raw.gas_used, "gasUsed")?,
            transactions: match &raw.transactions {
                Some(Field::List(txs)) => Some(txs.len() as u64),
                _ => None,
            },
            sealed: Sealed::default(),
        };
        header.sealed = Sealed::read(&raw, &header);
        Ok(header)
    }
}

#[derive(Deserialize)]
struct RawTransactions<'a> {
    #[serde(borrow, default)]
    transactions: Option<Field<'a>>,
}

/// The transaction hashes of an `eth_getBlockBy*(…, false)` result, given as JSON text.
pub fn transaction_hashes(json: &str) -> Result<Vec<B256>, TypeError> {
    let Ok(Obj::Object(raw)) = serde_json::from_str::<Obj<RawTransactions>>(json) else {
        return Err(shape("a block object", json));
    };
    let Some(Field::List(items)) = &raw.transactions else {
        return Err(TypeError::Missing("transactions"));
    };
    items
        .iter()
        .map(|t| {
            let s = t.as_str().ok_or(TypeError::Missing("transactions"))?;
            Ok(B256::parse("transactions", s)?)
        })
        .collect()
}

/// The members of a log we read, borrowed from the answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RawLog<'a> {
    #[serde(borrow, default)]
    address: Option<Field<'a>>,
    #[serde(borrow, default)]
    topics: Option<Field<'a>>,
    #[serde(borrow, default)]
    data: Option<Field<'a>>,
    #[serde(borrow, default)]
    block_hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    block_number: Option<Field<'a>>,
    #[serde(borrow, default)]
    transaction_hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    transaction_index: Option<Field<'a>>,
    #[serde(borrow, default)]
    log_index: Option<Field<'a>>,
    #[serde(borrow, default)]
    removed: Option<Field<'a>>,
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

const LOG_OBJECT: &str = "a log object";

impl Log {
    /// Parses one log object, given as JSON text. A log marked `removed` or carrying more
    /// than 4 topics is refused.
    pub fn parse(json: &str) -> Result<Self, TypeError> {
        match serde_json::from_str::<Obj<RawLog>>(json) {
            Ok(obj) => Self::from_raw(obj),
            Err(_) => Err(shape(LOG_OBJECT, json)),
        }
    }

    /// Parses an `eth_getLogs` result array, given as JSON text: each log is validated as
    /// it is read, so no more than one element's members are held besides the logs.
    pub fn parse_list(json: &str) -> Result<Vec<Self>, TypeError> {
        match serde_json::from_str::<LogList>(json) {
            Ok(LogList(logs)) => logs,
            Err(_) => Err(match kind_of(json) {
                "an array" => TypeError::Shape {
                    expected: "an array of logs",
                    got: "a malformed array",
                },
                got => TypeError::Shape {
                    expected: "an array of logs",
                    got,
                },
            }),
        }
    }

    pub(super) fn from_raw(obj: Obj<RawLog<'_>>) -> Result<Self, TypeError> {
        let v = match obj {
            Obj::Object(v) => v,
            Obj::Other(got) => {
                return Err(TypeError::Shape {
                    expected: LOG_OBJECT,
                    got,
                });
            }
        };
        if matches!(v.removed, Some(Field::Bool(true))) {
            return Err(TypeError::Hex(HexError::new(
                "removed",
                "log is marked removed",
            )));
        }
        let Some(Field::List(topics)) = &v.topics else {
            return Err(TypeError::Missing("topics"));
        };
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
            block_number: quantity_field(&v.block_number, "blockNumber")?,
            block_hash: hash_field(&v.block_hash, "blockHash")?,
            transaction_hash: hash_field(&v.transaction_hash, "transactionHash")?,
            transaction_index: quantity_field(&v.transaction_index, "transactionIndex")?,
            log_index: quantity_field(&v.log_index, "logIndex")?,
            address: Address::parse("address", str_field(&v.address, "address")?)?,
            topics,
            data: decode_bytes("data", str_field(&v.data, "data")?)?,
        })
    }
}

/// An `eth_getLogs` array read element by element: the logs, or the first element's error
/// (the rest of the array is then skipped, not held).
pub(super) struct LogList(pub(super) Result<Vec<Log>, TypeError>);

impl<'de> Deserialize<'de> for LogList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(LogListVisitor)
    }
}

struct LogListVisitor;

impl<'de> Visitor<'de> for LogListVisitor {
    type Value = LogList;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of logs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<LogList, A::Error> {
        let mut logs = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Obj<RawLog<'de>>>()? {
            match Log::from_raw(item) {
                Ok(log) => logs.push(log),
                Err(e) => {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Ok(LogList(Err(e)));
                }
            }
        }
        Ok(LogList(Ok(logs)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
        let log = Log::parse(&log_json().to_string()).expect("valid log");
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
        assert!(Log::parse(&removed.to_string()).is_err());
        let mut five = log_json();
        five["topics"] = json!(vec![format!("0x{}", "0".repeat(64)); 5]);
        assert!(Log::parse(&five.to_string()).is_err());
        let mut odd = log_json();
        odd["data"] = json!("0x123");
        assert!(Log::parse(&odd.to_string()).is_err());
        let mut missing = log_json();
        missing.as_object_mut().expect("object").remove("blockHash");
        assert_eq!(
            Log::parse(&missing.to_string()),
            Err(TypeError::Missing("blockHash"))
        );
        assert_eq!(
            Log::parse_list(r#"{"not": "a list"}"#),
            Err(TypeError::Shape {
                expected: "an array of logs",
                got: "an object"
            })
        );
        let list = format!("[{}, 7]", log_json());
        assert_eq!(
            Log::parse_list(&list),
            Err(TypeError::Shape {
                expected: "a log object",
                got: "a number"
            })
        );
        let mut number = log_json();
        number["logIndex"] = json!(3);
        assert_eq!(
            Log::parse(&number.to_string()),
            Err(TypeError::Missing("logIndex"))
        );
        assert_eq!(
            Log::parse_list(&format!("[{}]", log_json())).map(|l| l.len()),
            Ok(1)
        );
    }

    #[test]
    fn parses_a_header() {
        let h = Header::parse(
            &json!({
                "number": "0x2", "timestamp": "0x64",
                "hash": format!("0x{}", "ab".repeat(32)),
                "parentHash": format!("0x{}", "cd".repeat(32)),
                "logsBloom": format!("0x{}", "00".repeat(256)),
                "gasUsed": "0x5208",
            })
            .to_string(),
        )
        .expect("valid header");
        assert_eq!((h.number, h.timestamp_s, h.gas_used), (2, 100, 21_000));
        // Without the fields the block hash covers, the header serves; only the proofs by
        // the block hash cannot use it, and say which field is missing.
        assert_eq!(h.sealed.consensus, Err(TypeError::Missing("sha3Uncles")));
        assert_eq!(
            h.sealed.receipts_root,
            Err(TypeError::Missing("receiptsRoot"))
        );
        assert_eq!(
            Header::parse("null"),
            Err(TypeError::Shape {
                expected: "a block object",
                got: "null"
            })
        );
    }
}
