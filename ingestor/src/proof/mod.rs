//! The proofs of a block by its hash: the header the node answered hashes to the block
//! hash ([`check_header_hash`]), and the receipts it answered make the header's
//! `receiptsRoot` ([`check_receipts_root`]). Together, under the completeness checks of
//! the receipts ([`crate::follower::BlockLogs::from_receipts`]), they prove that every log
//! published is, byte for byte, what the block of that hash holds, and that none is missing.
//!
//! Each check says [`Verdict::Holds`], [`Verdict::Mismatch`] (the answer is wrong: retried),
//! or [`Verdict::Uncovered`] (the answer cannot be encoded: a field missing, a transaction
//! type of unknown receipt encoding). Which checks a chain runs is [`Policy`]'s to say.

mod policy;
#[cfg(test)]
mod realdata_tests;
mod receipts;

pub use policy::{AUTO_MISMATCHES, Level, Policy, Refusal};
pub use receipts::{bor_state_sync_hash, receipts_root};

use crate::rpc::receipt::Receipt;
use crate::rpc::types::{Header, TypeError};

/// Why a block's answer cannot be encoded as its hash or root covers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Uncovered {
    /// The header lacks a field its hash covers (or it is malformed).
    #[error("the header cannot be hashed: {0}")]
    HeaderField(TypeError),
    /// A receipt lacks a field its encoding holds (or it is malformed).
    #[error("the receipt of transaction {index} cannot be encoded: {error}")]
    ReceiptField {
        /// The transaction's index.
        index: u64,
        /// The field.
        error: TypeError,
    },
    /// A transaction type whose receipt encoding is not known.
    #[error("transaction {index} has type {tx_type:#x}, whose receipt encoding is not known")]
    TxType {
        /// The transaction's index.
        index: u64,
        /// Its type.
        tx_type: u8,
    },
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The answer makes the hash or root.
    Holds,
    /// It does not (log text).
    Mismatch(String),
    /// It cannot be encoded.
    Uncovered(Uncovered),
}

/// Whether `header`, RLP-encoded with every field the node sent, hashes (Keccak-256) to
/// its `hash`.
pub fn check_header_hash(header: &Header) -> Verdict {
    let sealed = match &header.sealed.consensus {
        Ok(h) => h,
        Err(e) => return Verdict::Uncovered(Uncovered::HeaderField(e.clone())),
    };
    let hashed = sealed.hash_slow();
    match hashed.0 == header.hash.0 {
        true => Verdict::Holds,
        false => Verdict::Mismatch(format!(
            "block {}: its header hashes to {hashed}, not to its hash {}",
            header.number, header.hash
        )),
    }
}

/// Whether `receipts` (all of the block's, in order) make `header`'s `receiptsRoot`.
pub fn check_receipts_root(header: &Header, receipts: &[Receipt]) -> Verdict {
    let expected = match &header.sealed.receipts_root {
        Ok(r) => r,
        Err(e) => return Verdict::Uncovered(Uncovered::HeaderField(e.clone())),
    };
    match receipts_root(header.number, &header.hash, receipts) {
        Ok(root) if root.0 == expected.0 => Verdict::Holds,
        Ok(root) => Verdict::Mismatch(format!(
            "block {}: its {} receipts make the root {root}, not its receiptsRoot {expected}",
            header.number,
            receipts.len()
        )),
        Err(u) => Verdict::Uncovered(u),
    }
}
