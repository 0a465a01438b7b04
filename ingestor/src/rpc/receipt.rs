//! Transaction receipts (`eth_getBlockReceipts`, `eth_getTransactionReceipt`), validated:
//! the members the completeness proof needs and the logs each receipt lists, and what the
//! receipts root covers besides ([`Consensus`]: type, outcome, bloom, an OP-stack deposit's
//! nonce and version). Everything else a receipt carries (gas price, fees) is skipped unread.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::bloom::Bloom;
use super::hex::{B256, decode_quantity};
use super::json::{Field, Obj, kind_of};
use super::types::{Log, LogList, TypeError, hash_field, quantity_field, str_field};

/// One transaction's receipt, as far as the completeness proof reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The transaction.
    pub transaction_hash: B256,
    /// Its index in the block.
    pub transaction_index: u64,
    /// The block it names.
    pub block_hash: B256,
    /// The block's number.
    pub block_number: u64,
    /// Gas used by this and every earlier transaction of the block.
    pub cumulative_gas_used: u64,
    /// Every log the transaction emitted, in order.
    pub logs: Vec<Log>,
    /// What the receipts root covers besides the gas and the logs, or the first field that
    /// kept it from being read (a failure of the receipts-root proof only).
    pub consensus: Result<Consensus, TypeError>,
    /// Its outcome as the `transactions` dataset publishes it, read only when asked for.
    pub fields: Option<Box<super::outcome::ReceiptFields>>,
}

/// The members of a receipt its consensus encoding holds besides the gas and the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consensus {
    /// The EIP-2718 transaction type (`type`; absent on nodes older than typed
    /// transactions: legacy, 0).
    pub tx_type: u8,
    /// Whether the transaction succeeded, or the state root after it.
    pub outcome: Outcome,
    /// The bloom of the receipt's logs (`logsBloom`).
    pub logs_bloom: Bloom,
    /// An OP-stack deposit's `depositNonce` (Regolith and later).
    pub deposit_nonce: Option<u64>,
    /// An OP-stack deposit's `depositReceiptVersion` (Canyon and later).
    pub deposit_receipt_version: Option<u64>,
}

/// A receipt's outcome as its encoding holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `status` (EIP-658, Byzantium and later): success.
    Status(bool),
    /// `root` (before Byzantium): the state root after the transaction.
    PostState(B256),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawReceipt<'a> {
    #[serde(borrow, default)]
    transaction_hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    transaction_index: Option<Field<'a>>,
    #[serde(borrow, default)]
    block_hash: Option<Field<'a>>,
    #[serde(borrow, default)]
    block_number: Option<Field<'a>>,
    #[serde(borrow, default)]
    cumulative_gas_used: Option<Field<'a>>,
    #[serde(default)]
    logs: Option<LogList>,
    #[serde(borrow, default, rename = "type")]
    tx_type: Option<Field<'a>>,
    #[serde(borrow, default)]
    status: Option<Field<'a>>,
    #[serde(borrow, default)]
    root: Option<Field<'a>>,
    #[serde(borrow, default)]
    logs_bloom: Option<Field<'a>>,
    #[serde(borrow, default)]
    deposit_nonce: Option<Field<'a>>,
    #[serde(borrow, default)]
    deposit_receipt_version: Option<Field<'a>>,
}

impl RawReceipt<'_> {
    /// The consensus members: a 32-byte `root` (before Byzantium; some nodes send a
    /// `status` beside it) is the outcome, else `status`.
    fn consensus(&self) -> Result<Consensus, TypeError> {
        let tx_type = match &self.tx_type {
            None => 0,
            v => u8::try_from(quantity_field(v, "type")?).map_err(|_| {
                TypeError::Hex(super::hex::HexError::new("type", "not a transaction type"))
            })?,
        };
        let root = self.root.as_ref().and_then(Field::as_str);
        let outcome = match root {
            Some(r) if r.len() == 66 => Outcome::PostState(B256::parse("root", r)?),
            _ => match decode_quantity("status", str_field(&self.status, "status")?)? {
                0 => Outcome::Status(false),
                1 => Outcome::Status(true),
                _ => {
                    return Err(TypeError::Hex(super::hex::HexError::new(
                        "status",
                        "neither 0x0 nor 0x1",
                    )));
                }
            },
        };
        let optional = |v: &Option<Field<'_>>, field| match v {
            None => Ok(None),
            v => quantity_field(v, field).map(Some),
        };
        Ok(Consensus {
            tx_type,
            outcome,
            logs_bloom: Bloom::parse("logsBloom", str_field(&self.logs_bloom, "logsBloom")?)?,
            deposit_nonce: optional(&self.deposit_nonce, "depositNonce")?,
            deposit_receipt_version: optional(
                &self.deposit_receipt_version,
                "depositReceiptVersion",
            )?,
        })
    }
}

const RECEIPT_OBJECT: &str = "a receipt object";

impl Receipt {
    fn from_raw(obj: Obj<RawReceipt<'_>>) -> Result<Self, TypeError> {
        let raw = match obj {
            Obj::Object(raw) => raw,
            Obj::Other(got) => {
                return Err(TypeError::Shape {
                    expected: RECEIPT_OBJECT,
                    got,
                });
            }
        };
        let consensus = raw.consensus();
        let logs = match raw.logs {
            Some(LogList(logs)) => logs?,
            None => return Err(TypeError::Missing("logs")),
        };
        Ok(Self {
            transaction_hash: hash_field(&raw.transaction_hash, "transactionHash")?,
            transaction_index: quantity_field(&raw.transaction_index, "transactionIndex")?,
            block_hash: hash_field(&raw.block_hash, "blockHash")?,
            block_number: quantity_field(&raw.block_number, "blockNumber")?,
            cumulative_gas_used: quantity_field(&raw.cumulative_gas_used, "cumulativeGasUsed")?,
            logs,
            consensus,
            fields: None,
        })
    }

    /// [`Receipt::parse_list`], and with `fields` each receipt's [`Receipt::fields`] too.
    pub fn parse_list_with(json: &str, fields: bool) -> Result<Vec<Self>, TypeError> {
        let mut receipts = Self::parse_list(json)?;
        if fields {
            let outcomes = super::outcome::ReceiptFields::parse_list(json)?;
            for (r, f) in receipts.iter_mut().zip(outcomes) {
                r.fields = Some(Box::new(f));
            }
        }
        Ok(receipts)
    }

    /// [`Receipt::parse`], and with `fields` its [`Receipt::fields`] too.
    pub fn parse_with(json: &str, fields: bool) -> Result<Self, TypeError> {
        let mut receipt = Self::parse(json)?;
        if fields {
            let v: serde_json::Value =
                serde_json::from_str(json).map_err(|_| TypeError::Missing("receipt"))?;
            receipt.fields = Some(Box::new(super::outcome::ReceiptFields::read(&v)?));
        }
        Ok(receipt)
    }

    /// Parses one receipt object (`eth_getTransactionReceipt`), given as JSON text.
    pub fn parse(json: &str) -> Result<Self, TypeError> {
        match serde_json::from_str::<Obj<RawReceipt>>(json) {
            Ok(obj) => Self::from_raw(obj),
            Err(_) => Err(TypeError::Shape {
                expected: RECEIPT_OBJECT,
                got: kind_of(json),
            }),
        }
    }

    /// Parses an `eth_getBlockReceipts` result array, given as JSON text, element by element.
    pub fn parse_list(json: &str) -> Result<Vec<Self>, TypeError> {
        const EXPECTED: &str = "an array of receipts";
        match serde_json::from_str::<ReceiptList>(json) {
            Ok(ReceiptList(receipts)) => receipts,
            Err(_) => Err(TypeError::Shape {
                expected: EXPECTED,
                got: match kind_of(json) {
                    "an array" => "a malformed array",
                    got => got,
                },
            }),
        }
    }
}

struct ReceiptList(Result<Vec<Receipt>, TypeError>);

impl<'de> Deserialize<'de> for ReceiptList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ReceiptListVisitor)
    }
}

struct ReceiptListVisitor;

impl<'de> Visitor<'de> for ReceiptListVisitor {
    type Value = ReceiptList;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of receipts")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ReceiptList, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element::<Obj<RawReceipt<'de>>>()? {
            match Receipt::from_raw(item) {
                Ok(r) => out.push(r),
                Err(e) => {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Ok(ReceiptList(Err(e)));
                }
            }
        }
        Ok(ReceiptList(Ok(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn receipt(index: u64, logs: usize) -> serde_json::Value {
        let block = format!("0x{}", "11".repeat(32));
        let tx = format!("0x{:064x}", index + 1);
        json!({
            "transactionHash": tx, "transactionIndex": format!("{index:#x}"),
            "blockHash": block, "blockNumber": "0x10",
            "cumulativeGasUsed": "0x5208", "gasUsed": "0x5208", "status": "0x1",
            "logsBloom": format!("0x{}", "00".repeat(256)), "type": "0x2",
            "logs": (0..logs).map(|i| json!({
                "address": format!("0x{}", "aa".repeat(20)), "topics": [], "data": "0x",
                "blockHash": block, "blockNumber": "0x10", "transactionHash": tx,
                "transactionIndex": format!("{index:#x}"), "logIndex": format!("{i:#x}"),
                "removed": false,
            })).collect::<Vec<_>>(),
        })
    }

    #[test]
    fn parses_receipts_with_their_logs() {
        let list = json!([receipt(0, 2), receipt(1, 0)]).to_string();
        let receipts = Receipt::parse_list(&list).expect("valid");
        assert_eq!(receipts.len(), 2);
        assert_eq!(receipts[0].logs.len(), 2);
        assert_eq!(
            (
                receipts[1].transaction_index,
                receipts[1].cumulative_gas_used
            ),
            (1, 21_000)
        );
        assert_eq!(
            Receipt::parse(&receipt(3, 1).to_string()).map(|r| r.logs.len()),
            Ok(1)
        );
    }

    #[test]
    fn reads_what_the_receipts_root_covers_without_failing_the_receipt() {
        let parsed = |r: serde_json::Value| Receipt::parse(&r.to_string()).expect("receipt");
        let c = parsed(receipt(0, 1)).consensus.expect("consensus");
        assert_eq!((c.tx_type, c.outcome), (2, Outcome::Status(true)));
        assert_eq!((c.deposit_nonce, c.deposit_receipt_version), (None, None));
        // Before Byzantium: the state root (some nodes send a status beside it); before
        // typed transactions: no type, legacy.
        let mut old = receipt(0, 0);
        let root = format!("0x{}", "cd".repeat(32));
        old["root"] = json!(root);
        old.as_object_mut().expect("object").remove("type");
        let c = parsed(old).consensus.expect("consensus");
        assert_eq!(c.tx_type, 0);
        assert_eq!(
            c.outcome,
            Outcome::PostState(B256::parse("root", &root).expect("hash"))
        );
        // An OP-stack deposit's nonce and version.
        let mut deposit = receipt(0, 0);
        deposit["type"] = json!("0x7e");
        deposit["depositNonce"] = json!("0x10");
        deposit["depositReceiptVersion"] = json!("0x1");
        let c = parsed(deposit).consensus.expect("consensus");
        assert_eq!(
            (c.tx_type, c.deposit_nonce, c.deposit_receipt_version),
            (0x7e, Some(16), Some(1))
        );
        // A receipt without them still serves the receipts' checks.
        let mut bare = receipt(0, 1);
        bare.as_object_mut().expect("object").remove("status");
        let r = parsed(bare);
        assert_eq!(r.logs.len(), 1);
        assert_eq!(r.consensus, Err(TypeError::Missing("status")));
        let mut odd = receipt(0, 0);
        odd["type"] = json!("0x100");
        assert!(parsed(odd).consensus.is_err());
    }

    #[test]
    fn refuses_malformed_receipts() {
        let mut no_logs = receipt(0, 1);
        no_logs.as_object_mut().expect("object").remove("logs");
        assert_eq!(
            Receipt::parse_list(&json!([no_logs]).to_string()),
            Err(TypeError::Missing("logs"))
        );
        let mut bad_log = receipt(0, 1);
        bad_log["logs"][0]["data"] = json!("0x1");
        assert!(Receipt::parse_list(&json!([bad_log]).to_string()).is_err());
        assert_eq!(
            Receipt::parse_list("null"),
            Err(TypeError::Shape {
                expected: "an array of receipts",
                got: "null"
            })
        );
        assert!(Receipt::parse("7").is_err());
    }
}
