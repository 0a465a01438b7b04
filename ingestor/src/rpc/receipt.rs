//! Transaction receipts (`eth_getBlockReceipts`, `eth_getTransactionReceipt`), validated:
//! the members the completeness proof needs and the logs each receipt lists. Everything
//! else a receipt carries (its own bloom, gas price, status) is skipped unread.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};

use super::hex::B256;
use super::json::{Field, Obj, kind_of};
use super::types::{Log, LogList, TypeError, hash_field, quantity_field};

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
        })
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
