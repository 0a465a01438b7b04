//! The header fields the block hash covers, read from an `eth_getBlockBy*` or `newHeads`
//! result into alloy's consensus header, for the proofs by the block hash
//! ([`crate::proof`]).
//!
//! Not every chain's node sends every field: a field that is missing or malformed here is
//! recorded, not raised, so the header still serves a chain that does not use those proofs.
//! Each fork's optional field (`baseFeePerGas`, `withdrawalsRoot`, `blobGasUsed`,
//! `excessBlobGas`, `parentBeaconBlockRoot`, `requestsHash`, `blockAccessListHash`,
//! `slotNumber`) is taken when present, and encoded after the others in that order.

use alloy_primitives::{Address as AlloyAddress, B64, B256 as AlloyB256, Bytes, U256};

use super::hex::{B256, decode_array, decode_bytes, decode_quantity};
use super::json::Field;
use super::types::{Header, RawHeader, TypeError, str_field};

/// What the proofs by the block hash read from a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The header as its hash covers it, or the first field that kept it from being read.
    pub consensus: Result<Box<alloy_consensus::Header>, TypeError>,
    /// The root of the block's receipts trie (`receiptsRoot`).
    pub receipts_root: Result<B256, TypeError>,
}

impl Default for Sealed {
    /// A header read without those fields (as a test builds one).
    fn default() -> Self {
        Self {
            consensus: Err(TypeError::Missing("stateRoot")),
            receipts_root: Err(TypeError::Missing("receiptsRoot")),
        }
    }
}

impl Sealed {
    /// Reads the fields of `raw` beyond the ones `header` already holds.
    pub(super) fn read(raw: &RawHeader<'_>, header: &Header) -> Self {
        Self {
            consensus: consensus(raw, header).map(Box::new),
            receipts_root: hash(&raw.receipts_root, "receiptsRoot").map(|h| B256::new(h.0)),
        }
    }
}

fn hash(v: &Option<Field<'_>>, field: &'static str) -> Result<AlloyB256, TypeError> {
    Ok(AlloyB256::new(decode_array(field, str_field(v, field)?)?))
}

fn quantity(v: &Option<Field<'_>>, field: &'static str) -> Result<u64, TypeError> {
    Ok(decode_quantity(field, str_field(v, field)?)?)
}

/// A field that may be absent (a fork's addition); present, it must be well-formed.
fn optional<T>(
    v: &Option<Field<'_>>,
    read: impl FnOnce(&Option<Field<'_>>) -> Result<T, TypeError>,
) -> Result<Option<T>, TypeError> {
    match v {
        None => Ok(None),
        Some(_) => read(v).map(Some),
    }
}

/// A 256-bit quantity (`difficulty`).
fn big(v: &Option<Field<'_>>, field: &'static str) -> Result<U256, TypeError> {
    let s = str_field(v, field)?;
    let body = s
        .strip_prefix("0x")
        .filter(|b| !b.is_empty() && b.len() <= 64)
        .ok_or_else(|| super::hex::HexError::new(field, format!("not a quantity: {s:?}")))?;
    U256::from_str_radix(body, 16)
        .map_err(|_| super::hex::HexError::new(field, format!("not a quantity: {s:?}")).into())
}

fn consensus(raw: &RawHeader<'_>, h: &Header) -> Result<alloy_consensus::Header, TypeError> {
    // Tempo's header: Ethereum's fields and its own (general and shared gas limits, the
    // timestamp's milliseconds), hashed together in an encoding of its own.
    if raw.timestamp_millis_part.is_some() {
        return Err(TypeError::Hex(super::hex::HexError::new(
            "timestampMillisPart",
            "a Tempo header, whose hash covers fields beyond Ethereum's",
        )));
    }
    Ok(alloy_consensus::Header {
        parent_hash: AlloyB256::new(h.parent_hash.0),
        ommers_hash: hash(&raw.sha3_uncles, "sha3Uncles")?,
        beneficiary: AlloyAddress::new(decode_array("miner", str_field(&raw.miner, "miner")?)?),
        state_root: hash(&raw.state_root, "stateRoot")?,
        transactions_root: hash(&raw.transactions_root, "transactionsRoot")?,
        receipts_root: hash(&raw.receipts_root, "receiptsRoot")?,
        logs_bloom: alloy_primitives::Bloom::new(*h.logs_bloom.0),
        difficulty: big(&raw.difficulty, "difficulty")?,
        number: h.number,
        gas_limit: quantity(&raw.gas_limit, "gasLimit")?,
        gas_used: h.gas_used,
        timestamp: h.timestamp_s,
        extra_data: Bytes::from(decode_bytes(
            "extraData",
            str_field(&raw.extra_data, "extraData")?,
        )?),
        mix_hash: hash(&raw.mix_hash, "mixHash")?,
        nonce: B64::new(decode_array("nonce", str_field(&raw.nonce, "nonce")?)?),
        base_fee_per_gas: optional(&raw.base_fee_per_gas, |v| quantity(v, "baseFeePerGas"))?,
        withdrawals_root: optional(&raw.withdrawals_root, |v| hash(v, "withdrawalsRoot"))?,
        blob_gas_used: optional(&raw.blob_gas_used, |v| quantity(v, "blobGasUsed"))?,
        excess_blob_gas: optional(&raw.excess_blob_gas, |v| quantity(v, "excessBlobGas"))?,
        parent_beacon_block_root: optional(&raw.parent_beacon_block_root, |v| {
            hash(v, "parentBeaconBlockRoot")
        })?,
        requests_hash: optional(&raw.requests_hash, |v| hash(v, "requestsHash"))?,
        block_access_list_hash: optional(&raw.block_access_list_hash, |v| {
            hash(v, "blockAccessListHash")
        })?,
        slot_number: optional(&raw.slot_number, |v| quantity(v, "slotNumber"))?,
    })
}
