//! The `EvmTransaction` record (`schemas/evm_transaction.avsc`): one transaction of a
//! canonical block with its receipt's outcome, written field by field in the schema's
//! order.

use std::collections::BTreeMap;

use crate::rpc::body::{BlockFields, TxFields};
use crate::rpc::outcome::ReceiptFields;

use super::body::{hex_string, long};
use super::fields::{bytes, decimal, map, optional};

/// The schema file's text, as shipped in `schemas/`.
pub const TRANSACTION_SCHEMA_JSON: &str = include_str!("../../../schemas/evm_transaction.avsc");

/// The record's `extra`: the transaction object's unnamed members, then the receipt's; a
/// receipt member named like one of the transaction's, with another value, is prefixed
/// `receipt.`.
pub fn extra(tx: &TxFields, receipt: &ReceiptFields) -> BTreeMap<String, String> {
    let mut out = tx.extra.clone();
    for (k, v) in &receipt.extra {
        match out.get(k) {
            Some(same) if same == v => {}
            Some(_) => {
                out.insert(format!("receipt.{k}"), v.clone());
            }
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Appends the body of `tx`'s record, of block `block` on chain `chain_id`.
pub(crate) fn write(
    out: &mut Vec<u8>,
    chain_id: u64,
    block: &BlockFields,
    tx: &TxFields,
    receipt: &ReceiptFields,
) {
    long(out, chain_id as i64);
    long(out, block.number as i64);
    hex_string(out, &block.hash.0);
    long(out, block.timestamp_s.saturating_mul(1000) as i64);
    long(out, tx.transaction_index as i64);
    hex_string(out, &tx.hash.0);
    hex_string(out, &tx.from.0);
    optional(out, tx.to.as_ref(), |o, a| hex_string(o, &a.0));
    decimal(out, &tx.value);
    optional(out, tx.nonce, |o, n| long(o, n as i64));
    long(out, tx.gas as i64);
    optional(out, tx.gas_price.as_ref(), decimal);
    optional(out, tx.max_fee_per_gas.as_ref(), decimal);
    optional(out, tx.max_priority_fee_per_gas.as_ref(), decimal);
    bytes(out, &tx.input);
    long(out, tx.tx_type as i64);
    optional(out, receipt.status, |o, s| o.push(u8::from(s)));
    long(out, receipt.gas_used as i64);
    long(out, receipt.cumulative_gas_used as i64);
    optional(out, receipt.effective_gas_price.as_ref(), decimal);
    optional(out, receipt.contract_address.as_ref(), |o, a| {
        hex_string(o, &a.0)
    });
    long(out, receipt.logs_count as i64);
    let extra = extra(tx, receipt);
    map(
        out,
        extra.len(),
        extra.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    );
}
