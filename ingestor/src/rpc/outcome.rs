//! What a receipt says of its transaction's outcome, for the `transactions` dataset:
//! status, gas, fee, created contract, and every member the record does not name (an
//! L2's fee fields) in `extra`. Read only when the dataset is published; the completeness
//! proof reads its own members ([`super::receipt`]).

use std::collections::BTreeMap;

use alloy_primitives::U256;
use serde_json::Value;

use super::body::{Obj, extra};
use super::hex::{Address, HexError};
use super::types::TypeError;

/// The members of a receipt an `EvmTransaction` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFields {
    /// `status` (absent before Byzantium, whose receipts carry a `root`).
    pub status: Option<bool>,
    /// `gasUsed`.
    pub gas_used: u64,
    /// `cumulativeGasUsed`.
    pub cumulative_gas_used: u64,
    /// `effectiveGasPrice` (absent on older nodes).
    pub effective_gas_price: Option<U256>,
    /// `contractAddress`: the contract a creation made.
    pub contract_address: Option<Address>,
    /// How many logs `logs` lists.
    pub logs_count: u64,
    /// Every other member.
    pub extra: BTreeMap<String, String>,
}

/// The members [`ReceiptFields`] reads, or that repeat the transaction's or the block's.
const NAMED: &[&str] = &[
    "status",
    "gasUsed",
    "cumulativeGasUsed",
    "effectiveGasPrice",
    "contractAddress",
    "logs",
    "logsBloom",
    "transactionHash",
    "transactionIndex",
    "blockHash",
    "blockNumber",
    "from",
    "to",
    "type",
];

impl ReceiptFields {
    /// Reads one receipt object.
    pub fn read(v: &Value) -> Result<Self, TypeError> {
        let Value::Object(obj) = v else {
            return Err(TypeError::Shape {
                expected: "a receipt object",
                got: "something else",
            });
        };
        let o = Obj(obj);
        let status = match o.opt(Obj::quantity, "status")? {
            None => None,
            Some(0) => Some(false),
            Some(1) => Some(true),
            Some(_) => return Err(HexError::new("status", "neither 0x0 nor 0x1").into()),
        };
        Ok(Self {
            status,
            gas_used: o.quantity("gasUsed")?,
            cumulative_gas_used: o.quantity("cumulativeGasUsed")?,
            effective_gas_price: o.opt(Obj::wide, "effectiveGasPrice")?,
            contract_address: o.opt(Obj::address, "contractAddress")?,
            logs_count: match obj.get("logs") {
                Some(Value::Array(logs)) => logs.len() as u64,
                _ => return Err(TypeError::Missing("logs")),
            },
            extra: extra(obj, NAMED),
        })
    }

    /// Reads an `eth_getBlockReceipts` result given as JSON text.
    pub fn parse_list(json: &str) -> Result<Vec<Self>, TypeError> {
        match serde_json::from_str::<Value>(json) {
            Ok(Value::Array(items)) => items.iter().map(Self::read).collect(),
            _ => Err(TypeError::Shape {
                expected: "a list of receipts",
                got: "something else",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_outcome_and_keeps_l2_fees() {
        let r = serde_json::json!({
            "status": "0x0", "gasUsed": "0x5208", "cumulativeGasUsed": "0xa410",
            "contractAddress": null, "logs": [], "logsBloom": "0x00", "l1Fee": "0x10",
            "transactionHash": "0x01", "root": null,
        });
        let f = ReceiptFields::read(&r).expect("valid");
        assert_eq!(f.status, Some(false));
        assert_eq!(f.effective_gas_price, None);
        assert_eq!(f.cumulative_gas_used, 0xa410);
        assert_eq!(f.extra.keys().collect::<Vec<_>>(), ["l1Fee", "root"]);
        assert_eq!(f.extra["root"], "null");
        let mut bad = r.clone();
        bad["status"] = "0x2".into();
        assert!(ReceiptFields::read(&bad).is_err());
    }
}
