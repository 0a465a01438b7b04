//! A block's receipts trie root, recomputed from the receipts the node answered
//! (EIP-2718: the type byte before each non-legacy receipt; `status`, or the state `root`
//! before Byzantium; `cumulativeGasUsed`; `logsBloom`; the logs).
//!
//! Which transaction types have which receipt encoding is said here, once, for every chain
//! ([`encoding_of`]); a type not listed is [`Uncovered`].

use alloy_consensus::{Eip658Value, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bloom, Bytes};
use alloy_rlp::Encodable;

use crate::rpc::receipt::{Consensus, Outcome, Receipt};

use super::Uncovered;

/// How a transaction type's receipt is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Ethereum's own types (legacy, EIP-2930, EIP-1559, EIP-4844, EIP-7702).
    Ethereum(TxType),
    /// An OP-stack deposit (0x7e): the type byte, then the list of Ethereum's fields and
    /// the deposit's `depositNonce` and `depositReceiptVersion` when present.
    Deposit,
    /// A chain's own type whose receipt is shaped like Ethereum's typed ones: the type
    /// byte, then the list of Ethereum's fields. Arbitrum's deposit, unsigned, contract,
    /// retry, submit-retryable and internal types (0x64 to 0x6a); Tempo's 0x76.
    TypedLikeEthereum(u8),
}

/// The receipt encoding of transaction type `ty`, when one is known.
fn encoding_of(ty: u8) -> Option<Encoding> {
    match ty {
        0x7e => Some(Encoding::Deposit),
        0x64..=0x6a | 0x76 => Some(Encoding::TypedLikeEthereum(ty)),
        _ => TxType::try_from(ty).ok().map(Encoding::Ethereum),
    }
}

/// The root of the trie (keyed by transaction index) of the receipts of block `number`
/// `hash`, or why one of them cannot be encoded. A Polygon PoS state-sync receipt is left
/// out ([`bor_state_sync_hash`]).
pub fn receipts_root(
    number: u64,
    hash: &crate::rpc::hex::B256,
    receipts: &[Receipt],
) -> Result<B256, Uncovered> {
    let state_sync = bor_state_sync_hash(number, hash);
    let encoded = receipts
        .iter()
        .filter(|r| r.transaction_hash.0 != state_sync.0)
        .map(encode)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(alloy_trie::root::ordered_trie_root_with_encoder(
        &encoded,
        |e, buf| buf.extend_from_slice(e),
    ))
}

/// Polygon PoS (Bor) lists the receipt of a block's state-sync transaction after the
/// others, but neither the transactions root nor the receipts root covers it. Its
/// transaction hash is made from the block: `keccak256("matic-bor-receipt-" ‖ number as 8
/// bytes, big-endian ‖ block hash)`; no transaction can have it.
pub fn bor_state_sync_hash(number: u64, hash: &crate::rpc::hex::B256) -> B256 {
    let mut preimage = Vec::with_capacity(18 + 8 + 32);
    preimage.extend_from_slice(b"matic-bor-receipt-");
    preimage.extend_from_slice(&number.to_be_bytes());
    preimage.extend_from_slice(&hash.0);
    alloy_primitives::keccak256(preimage)
}

/// One receipt's consensus encoding (the trie's value).
fn encode(r: &Receipt) -> Result<Vec<u8>, Uncovered> {
    let c: &Consensus = r.consensus.as_ref().map_err(|e| Uncovered::ReceiptField {
        index: r.transaction_index,
        error: e.clone(),
    })?;
    let encoding = encoding_of(c.tx_type).ok_or(Uncovered::TxType {
        index: r.transaction_index,
        tx_type: c.tx_type,
    })?;
    let receipt = alloy_consensus::Receipt {
        status: match c.outcome {
            Outcome::Status(ok) => Eip658Value::Eip658(ok),
            Outcome::PostState(root) => Eip658Value::PostState(B256::new(root.0)),
        },
        cumulative_gas_used: r.cumulative_gas_used,
        logs: r
            .logs
            .iter()
            .map(|l| {
                alloy_primitives::Log::new_unchecked(
                    Address::new(l.address.0),
                    l.topics.iter().map(|t| B256::new(t.0)).collect(),
                    Bytes::from(l.data.clone()),
                )
            })
            .collect(),
    };
    let logs_bloom = Bloom::new(*c.logs_bloom.0);
    let mut out = Vec::new();
    match encoding {
        Encoding::Ethereum(ty) => {
            ReceiptEnvelope::from_typed(ty, ReceiptWithBloom::new(receipt, logs_bloom))
                .encode_2718(&mut out);
        }
        Encoding::TypedLikeEthereum(ty) => {
            out.push(ty);
            ReceiptWithBloom::new(receipt, logs_bloom).encode(&mut out);
        }
        Encoding::Deposit => {
            out.push(0x7e);
            Deposit {
                receipt: &receipt,
                logs_bloom: &logs_bloom,
                nonce: c.deposit_nonce,
                version: c.deposit_receipt_version,
            }
            .encode(&mut out);
        }
    }
    Ok(out)
}

/// An OP-stack deposit receipt's RLP list (as op-alloy's `OpDepositReceipt` encodes it):
/// Ethereum's fields, then the nonce and the version, each only when present.
struct Deposit<'r> {
    receipt: &'r alloy_consensus::Receipt,
    logs_bloom: &'r Bloom,
    nonce: Option<u64>,
    version: Option<u64>,
}

impl Encodable for Deposit<'_> {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        let extra = self.nonce.map_or(0, |n| n.length()) + self.version.map_or(0, |v| v.length());
        alloy_rlp::Header {
            list: true,
            payload_length: self
                .receipt
                .rlp_encoded_fields_length_with_bloom(self.logs_bloom)
                + extra,
        }
        .encode(out);
        self.receipt
            .rlp_encode_fields_with_bloom(self.logs_bloom, out);
        if let Some(n) = self.nonce {
            n.encode(out);
        }
        if let Some(v) = self.version {
            v.encode(out);
        }
    }
}
