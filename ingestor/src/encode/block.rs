//! The `EvmBlock` record (`schemas/evm_block.avsc`): one canonical block, written field
//! by field in the schema's order.

use crate::rpc::body::BlockFields;

use super::body::{hex_string, long};
use super::fields::{bytes, decimal, optional, string_map};

/// The schema file's text, as shipped in `schemas/`.
pub const BLOCK_SCHEMA_JSON: &str = include_str!("../../../schemas/evm_block.avsc");

/// Appends the body of `b`'s record on chain `chain_id`.
pub(crate) fn write(out: &mut Vec<u8>, chain_id: u64, b: &BlockFields) {
    long(out, chain_id as i64);
    long(out, b.number as i64);
    hex_string(out, &b.hash.0);
    hex_string(out, &b.parent_hash.0);
    long(out, b.timestamp_s.saturating_mul(1000) as i64);
    hex_string(out, &b.miner.0);
    long(out, b.gas_used as i64);
    long(out, b.gas_limit as i64);
    optional(out, b.base_fee_per_gas.as_ref(), decimal);
    long(out, b.transaction_count as i64);
    bytes(out, &b.logs_bloom);
    hex_string(out, &b.state_root.0);
    hex_string(out, &b.transactions_root.0);
    hex_string(out, &b.receipts_root.0);
    bytes(out, &b.extra_data);
    optional(out, b.size, |o, n| long(o, n as i64));
    optional(out, b.withdrawals_root.as_ref(), |o, h| hex_string(o, &h.0));
    optional(out, b.blob_gas_used, |o, n| long(o, n as i64));
    optional(out, b.excess_blob_gas, |o, n| long(o, n as i64));
    optional(out, b.parent_beacon_block_root.as_ref(), |o, h| {
        hex_string(o, &h.0)
    });
    string_map(out, &b.extra);
}
