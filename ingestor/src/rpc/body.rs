//! A block's body for the `blocks` and `transactions` datasets: the block object of
//! `eth_getBlockByHash` (with its transaction objects when the transactions are
//! published), validated into [`BlockFields`] and [`TxFields`]. Only chains that publish
//! those datasets parse it: the logs-only path never reads more than the header.
//!
//! Members the records do not name are kept in `extra`, as text (a JSON string as is,
//! anything else as its compact JSON), so nothing the node said is lost.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use serde_json::{Map, Value};

use super::hex::{Address, B256, HexError, decode_bytes, decode_quantity};
use super::types::TypeError;

/// The block members an `EvmBlock` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockFields {
    /// `number`.
    pub number: u64,
    /// `hash`.
    pub hash: B256,
    /// `parentHash`.
    pub parent_hash: B256,
    /// `timestamp`, in seconds.
    pub timestamp_s: u64,
    /// `miner`.
    pub miner: Address,
    /// `gasUsed`.
    pub gas_used: u64,
    /// `gasLimit`.
    pub gas_limit: u64,
    /// `baseFeePerGas` (London and later).
    pub base_fee_per_gas: Option<U256>,
    /// How many transactions `transactions` lists.
    pub transaction_count: u64,
    /// `logsBloom`, raw.
    pub logs_bloom: Vec<u8>,
    /// `stateRoot`.
    pub state_root: B256,
    /// `transactionsRoot`.
    pub transactions_root: B256,
    /// `receiptsRoot`.
    pub receipts_root: B256,
    /// `extraData`, raw.
    pub extra_data: Vec<u8>,
    /// `size`, in bytes.
    pub size: Option<u64>,
    /// `withdrawalsRoot` (Shanghai and later).
    pub withdrawals_root: Option<B256>,
    /// `blobGasUsed` (Cancun and later).
    pub blob_gas_used: Option<u64>,
    /// `excessBlobGas` (Cancun and later).
    pub excess_blob_gas: Option<u64>,
    /// `parentBeaconBlockRoot` (Cancun and later).
    pub parent_beacon_block_root: Option<B256>,
    /// Every other member but `transactions`.
    pub extra: BTreeMap<String, String>,
}

/// The members of a transaction object an `EvmTransaction` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxFields {
    /// `hash`.
    pub hash: B256,
    /// `transactionIndex`.
    pub transaction_index: u64,
    /// `from`.
    pub from: Address,
    /// `to` (`None` for a contract creation, and for a type without one).
    pub to: Option<Address>,
    /// `value` (0 for a type without one, such as Tempo's batched calls).
    pub value: U256,
    /// `nonce` (absent on OP-stack deposits).
    pub nonce: Option<u64>,
    /// `gas`: the gas limit.
    pub gas: u64,
    /// `gasPrice`.
    pub gas_price: Option<U256>,
    /// `maxFeePerGas` (EIP-1559 types).
    pub max_fee_per_gas: Option<U256>,
    /// `maxPriorityFeePerGas` (EIP-1559 types).
    pub max_priority_fee_per_gas: Option<U256>,
    /// `input` (empty for a type without one).
    pub input: Vec<u8>,
    /// `type` (0 when the node does not say).
    pub tx_type: u64,
    /// Every other member.
    pub extra: BTreeMap<String, String>,
}

/// A block object, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The block's members.
    pub block: BlockFields,
    /// Its transactions, in order; empty unless the objects were asked for.
    pub transactions: Vec<TxFields>,
}

/// The members of a block object [`BlockFields`] reads.
const BLOCK_NAMED: &[&str] = &[
    "number",
    "hash",
    "parentHash",
    "timestamp",
    "miner",
    "gasUsed",
    "gasLimit",
    "baseFeePerGas",
    "transactions",
    "logsBloom",
    "stateRoot",
    "transactionsRoot",
    "receiptsRoot",
    "extraData",
    "size",
    "withdrawalsRoot",
    "blobGasUsed",
    "excessBlobGas",
    "parentBeaconBlockRoot",
];

/// The members of a transaction object [`TxFields`] reads, or that repeat its block's.
const TX_NAMED: &[&str] = &[
    "hash",
    "transactionIndex",
    "from",
    "to",
    "value",
    "nonce",
    "gas",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "input",
    "type",
    "blockHash",
    "blockNumber",
    "blockTimestamp",
];

impl Body {
    /// Reads an `eth_getBlockBy*` result given as JSON text; with `full`, its
    /// `transactions` must be objects and each is read.
    pub fn parse(json: &str, full: bool) -> Result<Self, TypeError> {
        let Value::Object(obj) =
            serde_json::from_str::<Value>(json).map_err(|_| TypeError::Shape {
                expected: "a block object",
                got: "something else",
            })?
        else {
            return Err(TypeError::Shape {
                expected: "a block object",
                got: "something else",
            });
        };
        let o = Obj(&obj);
        let txs = match obj.get("transactions") {
            Some(Value::Array(txs)) => txs.as_slice(),
            _ => return Err(TypeError::Missing("transactions")),
        };
        let block = BlockFields {
            number: o.quantity("number")?,
            hash: o.hash("hash")?,
            parent_hash: o.hash("parentHash")?,
            timestamp_s: o.quantity("timestamp")?,
            miner: o.address("miner")?,
            gas_used: o.quantity("gasUsed")?,
            gas_limit: o.quantity("gasLimit")?,
            base_fee_per_gas: o.opt(Obj::wide, "baseFeePerGas")?,
            transaction_count: txs.len() as u64,
            logs_bloom: o.bytes("logsBloom")?,
            state_root: o.hash("stateRoot")?,
            transactions_root: o.hash("transactionsRoot")?,
            receipts_root: o.hash("receiptsRoot")?,
            extra_data: o.bytes("extraData")?,
            size: o.opt(Obj::quantity, "size")?,
            withdrawals_root: o.opt(Obj::hash, "withdrawalsRoot")?,
            blob_gas_used: o.opt(Obj::quantity, "blobGasUsed")?,
            excess_blob_gas: o.opt(Obj::quantity, "excessBlobGas")?,
            parent_beacon_block_root: o.opt(Obj::hash, "parentBeaconBlockRoot")?,
            extra: extra(&obj, BLOCK_NAMED),
        };
        let transactions = match full {
            false => Vec::new(),
            true => txs
                .iter()
                .map(|t| match t {
                    Value::Object(t) => TxFields::read(t),
                    _ => Err(TypeError::Shape {
                        expected: "a transaction object",
                        got: "something else",
                    }),
                })
                .collect::<Result<_, _>>()?,
        };
        Ok(Self {
            block,
            transactions,
        })
    }
}

impl TxFields {
    fn read(obj: &Map<String, Value>) -> Result<Self, TypeError> {
        let o = Obj(obj);
        Ok(Self {
            hash: o.hash("hash")?,
            transaction_index: o.quantity("transactionIndex")?,
            from: o.address("from")?,
            to: o.opt(Obj::address, "to")?,
            value: o.opt(Obj::wide, "value")?.unwrap_or_default(),
            nonce: o.opt(Obj::quantity, "nonce")?,
            gas: o.quantity("gas")?,
            gas_price: o.opt(Obj::wide, "gasPrice")?,
            max_fee_per_gas: o.opt(Obj::wide, "maxFeePerGas")?,
            max_priority_fee_per_gas: o.opt(Obj::wide, "maxPriorityFeePerGas")?,
            input: o.opt(Obj::bytes, "input")?.unwrap_or_default(),
            tx_type: o.opt(Obj::quantity, "type")?.unwrap_or_default(),
            extra: extra(obj, TX_NAMED),
        })
    }
}

/// The members of `obj` not in `named`, as text.
pub(super) fn extra(obj: &Map<String, Value>, named: &[&str]) -> BTreeMap<String, String> {
    obj.iter()
        .filter(|(k, _)| !named.contains(&k.as_str()))
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// A JSON object's members, read as chain types.
#[derive(Clone, Copy)]
pub(super) struct Obj<'a>(pub(super) &'a Map<String, Value>);

impl Obj<'_> {
    fn str(&self, field: &'static str) -> Result<&str, TypeError> {
        self.0
            .get(field)
            .and_then(Value::as_str)
            .ok_or(TypeError::Missing(field))
    }

    /// A member that may be absent or `null`; present, it must be well-formed.
    pub(super) fn opt<T>(
        &self,
        read: impl FnOnce(&Self, &'static str) -> Result<T, TypeError>,
        field: &'static str,
    ) -> Result<Option<T>, TypeError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => read(self, field).map(Some),
        }
    }

    pub(super) fn quantity(&self, field: &'static str) -> Result<u64, TypeError> {
        Ok(decode_quantity(field, self.str(field)?)?)
    }

    /// A quantity up to 256 bits.
    pub(super) fn wide(&self, field: &'static str) -> Result<U256, TypeError> {
        let s = self.str(field)?;
        let digits = s
            .strip_prefix("0x")
            .filter(|d| !d.is_empty())
            .ok_or_else(|| HexError::new(field, "not a 0x quantity"))?;
        Ok(U256::from_str_radix(digits, 16)
            .map_err(|_| HexError::new(field, "not a quantity of at most 256 bits"))?)
    }

    pub(super) fn hash(&self, field: &'static str) -> Result<B256, TypeError> {
        Ok(B256::parse(field, self.str(field)?)?)
    }

    pub(super) fn address(&self, field: &'static str) -> Result<Address, TypeError> {
        Ok(Address::parse(field, self.str(field)?)?)
    }

    pub(super) fn bytes(&self, field: &'static str) -> Result<Vec<u8>, TypeError> {
        Ok(decode_bytes(field, self.str(field)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_block_and_keeps_unnamed_members() {
        let json = serde_json::json!({
            "number": "0x10", "hash": format!("0x{}", "AB".repeat(32)),
            "parentHash": format!("0x{}", "01".repeat(32)), "timestamp": "0x5",
            "miner": format!("0x{}", "02".repeat(20)), "gasUsed": "0x5208",
            "gasLimit": "0x1c9c380", "logsBloom": format!("0x{}", "00".repeat(256)),
            "stateRoot": format!("0x{}", "03".repeat(32)),
            "transactionsRoot": format!("0x{}", "04".repeat(32)),
            "receiptsRoot": format!("0x{}", "05".repeat(32)), "extraData": "0x",
            "l1BlockNumber": "0x7", "uncles": [],
            "transactions": [{
                "hash": format!("0x{}", "06".repeat(32)), "transactionIndex": "0x0",
                "from": format!("0x{}", "07".repeat(20)), "to": null,
                "value": "0xffffffffffffffffffffffffffffffff", "gas": "0x5208",
                "input": "0x6001", "type": "0x7e", "sourceHash": "0x09", "mint": "0x1",
                "isSystemTx": false,
            }],
        })
        .to_string();
        let body = Body::parse(&json, true).expect("valid");
        assert_eq!(body.block.number, 16);
        assert_eq!(
            body.block.hash.to_string(),
            format!("0x{}", "ab".repeat(32))
        );
        assert_eq!(body.block.transaction_count, 1);
        assert_eq!(body.block.base_fee_per_gas, None);
        assert_eq!(body.block.extra["l1BlockNumber"], "0x7");
        assert_eq!(body.block.extra["uncles"], "[]");
        let tx = &body.transactions[0];
        assert_eq!(tx.to, None);
        assert_eq!(tx.nonce, None, "a deposit has none");
        assert_eq!(tx.value, U256::from(u128::MAX));
        assert_eq!(tx.tx_type, 0x7e);
        assert_eq!(tx.extra["sourceHash"], "0x09");
        assert_eq!(tx.extra["isSystemTx"], "false");
        assert_eq!(tx.extra.len(), 3);
        assert!(
            Body::parse(&json, false)
                .expect("valid")
                .transactions
                .is_empty()
        );
        let bad = json.replace("\"gas\":\"0x5208\"", "\"gas\":\"52\"");
        assert!(Body::parse(&bad, true).is_err());
    }
}
