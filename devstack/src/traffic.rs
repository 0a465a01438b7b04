//! Realistic log traffic on anvil without a Solidity compiler.
//!
//! Each transaction is a contract creation whose init code is straight-line EVM that
//! writes a log's data into memory and executes `LOG0`..`LOG4`, once per log, then stops
//! (deploying empty code). So one transaction emits exactly the logs asked for: any number
//! of topics from 0 to 4, data from empty to several KB, many logs per transaction.

use std::ops::Range;

use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::node::{Node, quantity};

/// One log to emit.
#[derive(Debug, Clone)]
pub struct LogSpec {
    /// 0 to 4 topics.
    pub topics: Vec<[u8; 32]>,
    /// Data bytes.
    pub data: Vec<u8>,
}

/// Largest init code per transaction (EIP-3860 allows 49152).
const MAX_INITCODE: usize = 40_000;

const PUSH2: u8 = 0x61;
const PUSH32: u8 = 0x7f;
const MSTORE: u8 = 0x52;
const LOG0: u8 = 0xa0;
const STOP: u8 = 0x00;

fn push2(code: &mut Vec<u8>, v: usize) {
    code.push(PUSH2);
    code.extend_from_slice(&(v as u16).to_be_bytes());
}

/// EVM code that emits `spec` (appended to `code`).
fn emit_log(code: &mut Vec<u8>, spec: &LogSpec) {
    for (i, chunk) in spec.data.chunks(32).enumerate() {
        let mut word = [0u8; 32];
        word[..chunk.len()].copy_from_slice(chunk);
        code.push(PUSH32);
        code.extend_from_slice(&word);
        push2(code, i * 32);
        code.push(MSTORE);
    }
    for topic in spec.topics.iter().rev() {
        code.push(PUSH32);
        code.extend_from_slice(topic);
    }
    push2(code, spec.data.len());
    push2(code, 0);
    code.push(LOG0 + spec.topics.len() as u8);
}

fn code_len(spec: &LogSpec) -> usize {
    // Per data word: PUSH32 (33) + PUSH2 (3) + MSTORE (1); then PUSH32 per topic, two PUSH2 and LOGn.
    spec.data.len().div_ceil(32) * 37 + spec.topics.len() * 33 + 7
}

/// Splits `logs` into init codes of at most [`MAX_INITCODE`] bytes each, with the range of
/// `logs` each one emits.
pub fn initcodes(logs: &[LogSpec]) -> Vec<(Vec<u8>, Range<usize>)> {
    let mut out = Vec::new();
    let mut code = Vec::new();
    let mut first = 0;
    for (i, spec) in logs.iter().enumerate() {
        if !code.is_empty() && code.len() + code_len(spec) > MAX_INITCODE {
            code.push(STOP);
            out.push((std::mem::take(&mut code), first..i));
            first = i;
        }
        emit_log(&mut code, spec);
    }
    if !code.is_empty() {
        code.push(STOP);
        out.push((code, first..logs.len()));
    }
    out
}

/// A gas limit that covers `code` (intrinsic, calldata, per-log and memory costs, with margin).
fn gas_for(code: &[u8], logs: &[LogSpec]) -> u64 {
    let calldata = 16 * code.len() as u64;
    let per_log: u64 = logs
        .iter()
        .map(|l| 2000 + 375 * l.topics.len() as u64 + 8 * l.data.len() as u64)
        .sum();
    let words = logs
        .iter()
        .map(|l| l.data.len().div_ceil(32) as u64)
        .max()
        .unwrap_or(0);
    let memory = 3 * words + words * words / 512;
    (53_000 + calldata + 6 * code.len() as u64 + per_log + memory) * 2
}

/// An ERC-20 ABI with `Transfer` and `Approval` (what the demo decodes).
pub const ERC20_ABI: &str = r#"[
  {"type":"event","name":"Transfer","anonymous":false,"inputs":[
    {"name":"from","type":"address","indexed":true},
    {"name":"to","type":"address","indexed":true},
    {"name":"value","type":"uint256","indexed":false}]},
  {"type":"event","name":"Approval","anonymous":false,"inputs":[
    {"name":"owner","type":"address","indexed":true},
    {"name":"spender","type":"address","indexed":true},
    {"name":"value","type":"uint256","indexed":false}]}
]"#;

/// `keccak256("Transfer(address,address,uint256)")`, the ERC-20 (and ERC-721) `Transfer`
/// selector.
pub const TRANSFER_SELECTOR: [u8; 32] = [
    0xdd, 0xf2, 0x52, 0xad, 0x1b, 0xe2, 0xc8, 0x9b, 0x69, 0xc2, 0xb0, 0x68, 0xfc, 0x37, 0x8d, 0xaa,
    0x95, 0x2b, 0xa7, 0xf1, 0x63, 0xc4, 0xa1, 0x16, 0x28, 0xf5, 0x5a, 0x4d, 0xf5, 0x23, 0xb3, 0xef,
];

/// An ERC-721 ABI with `Transfer`: the ERC-20 signature, every argument indexed.
pub const ERC721_ABI: &str = r#"[
  {"type":"event","name":"Transfer","anonymous":false,"inputs":[
    {"name":"from","type":"address","indexed":true},
    {"name":"to","type":"address","indexed":true},
    {"name":"tokenId","type":"uint256","indexed":true}]}
]"#;

/// `keccak256("Approval(address,address,uint256)")`, the ERC-20 `Approval` selector.
pub const APPROVAL_SELECTOR: [u8; 32] = [
    0x8c, 0x5b, 0xe1, 0xe5, 0xeb, 0xec, 0x7d, 0x5b, 0xd1, 0x4f, 0x71, 0x42, 0x7d, 0x1e, 0x84, 0xf3,
    0xdd, 0x03, 0x14, 0xc0, 0xf7, 0xb2, 0x29, 0x1e, 0x5b, 0x20, 0x0a, 0xc8, 0xc7, 0xc3, 0xb9, 0x25,
];

/// Random but reproducible log shapes.
pub struct LogShapes {
    rng: StdRng,
}

impl LogShapes {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// One random log: 0-4 topics; data empty (25%), small, or 1-2 KB (15%).
    pub fn log(&mut self) -> LogSpec {
        let topics = (0..self.rng.random_range(0..=4))
            .map(|_| self.rng.random())
            .collect();
        let len = match self.rng.random_range(0..100) {
            0..25 => 0,
            25..85 => self.rng.random_range(1..=256),
            _ => self.rng.random_range(1024..=2048),
        };
        let data = (0..len).map(|_| self.rng.random()).collect();
        LogSpec { topics, data }
    }

    /// One of 16 accounts, as an indexed `address` argument.
    fn account(&mut self) -> [u8; 32] {
        let mut w = [0u8; 32];
        w[12..].fill(self.rng.random_range(1..=16u8));
        w
    }

    /// A random amount or token id up to `max`, as a `uint256` word.
    fn uint(&mut self, max: u64) -> [u8; 32] {
        let mut w = [0u8; 32];
        w[24..].copy_from_slice(&self.rng.random_range(1..=max).to_be_bytes());
        w
    }

    /// An ERC-20 `Transfer` between two of 16 accounts, of a random amount.
    pub fn erc20_transfer(&mut self) -> LogSpec {
        let (from, to, value) = (self.account(), self.account(), self.uint(10_000_000_000));
        LogSpec {
            topics: vec![TRANSFER_SELECTOR, from, to],
            data: value.to_vec(),
        }
    }

    /// An ERC-20 `Approval` of a random amount by one of 16 accounts to another.
    pub fn erc20_approval(&mut self) -> LogSpec {
        let (owner, spender, value) = (self.account(), self.account(), self.uint(10_000_000_000));
        LogSpec {
            topics: vec![APPROVAL_SELECTOR, owner, spender],
            data: value.to_vec(),
        }
    }

    /// An ERC-721 `Transfer` of one of 1,000 tokens: the ERC-20 signature hash, 3 indexed
    /// arguments, no data.
    pub fn erc721_transfer(&mut self) -> LogSpec {
        let (from, to, token) = (self.account(), self.account(), self.uint(1000));
        LogSpec {
            topics: vec![TRANSFER_SELECTOR, from, to, token],
            data: vec![],
        }
    }

    /// One token event: an ERC-20 `Transfer` (half of them), an ERC-20 `Approval` or an
    /// ERC-721 `Transfer`.
    pub fn token_event(&mut self) -> LogSpec {
        match self.rng.random_range(0..4) {
            0 => self.erc20_approval(),
            1 => self.erc721_transfer(),
            _ => self.erc20_transfer(),
        }
    }

    /// `n` random logs.
    pub fn logs(&mut self, n: usize) -> Vec<LogSpec> {
        (0..n).map(|_| self.log()).collect()
    }
}

/// Replaces the last `depth` blocks with new ones (`anvil_reorg`): block `i` of the new
/// branch holds one transaction from the node's second account emitting `blocks[i]`, so the
/// new branch publishes other keys than the orphaned one. Senders made before it must be
/// made again (the orphaned transactions are gone).
pub fn reorg_with_logs(node: &Node, depth: u64, blocks: &[Vec<LogSpec>]) -> anyhow::Result<()> {
    anyhow::ensure!(
        blocks.len() as u64 <= depth,
        "more new blocks than the reorg depth"
    );
    let accounts = node.call("eth_accounts", json!([]))?;
    let from = accounts
        .get(1)
        .and_then(|a| a.as_str())
        .context("node has no second account")?
        .to_owned();
    // The new branch grows from the ancestor: count nonces there.
    let ancestor = node
        .head()?
        .checked_sub(depth)
        .context("reorg deeper than the chain")?;
    let mut nonce = quantity(&node.call(
        "eth_getTransactionCount",
        json!([from, format!("{ancestor:#x}")]),
    )?)?;
    let mut txs = Vec::new();
    for (offset, logs) in blocks.iter().enumerate() {
        for (code, range) in initcodes(logs) {
            let gas = gas_for(&code, &logs[range]);
            txs.push(json!([{
                "from": from,
                "data": format!("0x{}", hex::encode(&code)),
                "gas": format!("{gas:#x}"),
                "nonce": format!("{nonce:#x}"),
            }, offset]));
            nonce += 1;
        }
    }
    node.call("anvil_reorg", json!([depth, txs]))?;
    Ok(())
}

/// A transaction of one shape. Only [`Tx::Logs`] emits logs; the others are what real
/// chains are full of and devnet traffic of logs alone never makes: blocks whose header
/// `logsBloom` is zero while their `gasUsed` is not.
#[derive(Debug, Clone)]
pub enum Tx {
    /// Contract creations whose constructors emit these logs (more than one creation when
    /// the init code would pass [`MAX_INITCODE`]).
    Logs(Vec<LogSpec>),
    /// A plain transfer of ether to an account without code.
    Transfer,
    /// A call that runs code and logs nothing (the identity precompile, with input).
    QuietCall,
    /// A contract creation whose constructor logs nothing and deploys one byte of code.
    QuietCreation,
    /// A contract creation whose constructor emits a log, then reverts: status 0, and the
    /// log is not the block's.
    Reverted,
    /// An EIP-7702 set-code transaction (type 0x4) to the identity precompile. Its one
    /// authorization's signature is not valid, so it is skipped, as EIP-7702 says: the
    /// transaction stands, of type 0x4, and logs nothing. Send it last of its block:
    /// anvil 1.7.1 drops the sender's later transactions of that block.
    SetCode,
    /// An EIP-2930 transaction (type 0x1, with an access list): a plain transfer, at a gas
    /// price of 2 gwei. Send such transactions before the block's EIP-1559 ones: anvil
    /// orders a block by priority fee and drops one whose turn comes before its nonce's.
    AccessList,
    /// A legacy transaction (type 0x0): a plain transfer, like [`Tx::AccessList`].
    Legacy,
}

/// Init code that deploys the one-byte contract `0x00` (STOP): `MSTORE8 0 0; RETURN 0 1`.
const QUIET_INITCODE: [u8; 10] = [0x60, 0x00, 0x60, 0x00, 0x53, 0x60, 0x01, 0x60, 0x00, 0xf3];

/// Init code that emits one log of 2 topics, then reverts (`REVERT 0 0`).
fn reverting_initcode() -> Vec<u8> {
    let mut code = Vec::new();
    emit_log(
        &mut code,
        &LogSpec {
            topics: vec![[0xee; 32], [0xef; 32]],
            data: vec![0xab; 40],
        },
    );
    code.extend_from_slice(&[0x60, 0x00, 0x60, 0x00, 0xfd]);
    code
}

/// Sends transactions from one of anvil's unlocked accounts.
pub struct Sender {
    node: Node,
    from: String,
    nonce: u64,
}

impl Sender {
    /// Uses the node's first account, starting at its pending nonce.
    pub fn new(node: Node) -> anyhow::Result<Self> {
        let accounts = node.call("eth_accounts", json!([]))?;
        let from = accounts
            .get(0)
            .and_then(|a| a.as_str())
            .context("node has no unlocked account")?
            .to_owned();
        let nonce = quantity(&node.call("eth_getTransactionCount", json!([from, "pending"]))?)?;
        Ok(Self { node, from, nonce })
    }

    /// Sends one creation transaction per init code that emits `logs`; returns tx hashes.
    pub fn send_logs(&mut self, logs: &[LogSpec]) -> anyhow::Result<Vec<String>> {
        let mut hashes = Vec::new();
        for (code, range) in initcodes(logs) {
            let gas = gas_for(&code, &logs[range]);
            hashes.push(self.send(None, &code, 0, gas)?);
        }
        Ok(hashes)
    }

    /// Sends one transaction of `data` (`to` none: a creation) with `gas`; returns its hash.
    fn send(
        &mut self,
        to: Option<&str>,
        data: &[u8],
        value: u64,
        gas: u64,
    ) -> anyhow::Result<String> {
        self.send_with(to, data, value, gas, json!({}))
    }

    /// [`Self::send`] with `fields` added to the request (they choose its type).
    fn send_with(
        &mut self,
        to: Option<&str>,
        data: &[u8],
        value: u64,
        gas: u64,
        fields: serde_json::Value,
    ) -> anyhow::Result<String> {
        let mut tx = json!({
            "from": self.from,
            "data": format!("0x{}", hex::encode(data)),
            "gas": format!("{gas:#x}"),
            "nonce": format!("{:#x}", self.nonce),
            "value": format!("{value:#x}"),
        });
        if let Some(to) = to {
            tx["to"] = json!(to);
        }
        if let (Some(tx), Some(fields)) = (tx.as_object_mut(), fields.as_object()) {
            tx.extend(fields.clone());
        }
        let hash = self.node.call("eth_sendTransaction", json!([tx]))?;
        self.nonce += 1;
        Ok(hash.as_str().unwrap_or_default().to_owned())
    }

    /// Sends `tx`; returns each transaction's hash with the status it must end with.
    pub fn send_tx(&mut self, tx: &Tx) -> anyhow::Result<Vec<(String, &'static str)>> {
        // An account of no code: 0x…0c0ffee, never one of anvil's.
        const PAYEE: &str = "0x000000000000000000000000000000000c0ffee0";
        // The identity precompile: runs, returns its input, logs nothing.
        const IDENTITY: &str = "0x0000000000000000000000000000000000000004";
        Ok(match tx {
            Tx::Logs(logs) => self
                .send_logs(logs)?
                .into_iter()
                .map(|h| (h, "0x1"))
                .collect(),
            Tx::Transfer => vec![(self.send(Some(PAYEE), &[], 1_000_000_007, 21_000)?, "0x1")],
            Tx::QuietCall => {
                vec![(self.send(Some(IDENTITY), &[0x5a; 64], 0, 60_000)?, "0x1")]
            }
            Tx::QuietCreation => vec![(self.send(None, &QUIET_INITCODE, 0, 100_000)?, "0x1")],
            Tx::Reverted => vec![(self.send(None, &reverting_initcode(), 0, 120_000)?, "0x0")],
            Tx::SetCode => {
                let chain_id = self.node.call("eth_chainId", json!([]))?;
                let authorization = json!({
                    "chainId": chain_id, "address": IDENTITY, "nonce": "0x0",
                    "yParity": "0x0", "r": "0x1", "s": "0x1",
                });
                let fields = json!({ "authorizationList": [authorization] });
                vec![(
                    self.send_with(Some(IDENTITY), &[0x77; 8], 0, 100_000, fields)?,
                    "0x1",
                )]
            }
            Tx::AccessList => {
                let fields = json!({
                    "gasPrice": "0x77359400",
                    "accessList": [{ "address": PAYEE, "storageKeys": [format!("0x{}", "00".repeat(32))] }],
                });
                vec![(self.send_with(Some(PAYEE), &[], 3, 30_000, fields)?, "0x1")]
            }
            Tx::Legacy => {
                let fields = json!({ "gasPrice": "0x77359400" });
                vec![(self.send_with(Some(PAYEE), &[], 5, 21_000, fields)?, "0x1")]
            }
        })
    }

    /// Sends `txs` transactions carrying `logs` split evenly, mines one block, and checks
    /// every transaction succeeded. Returns the number of logs in the block.
    pub fn block(&mut self, txs: &[Vec<LogSpec>]) -> anyhow::Result<usize> {
        let txs: Vec<Tx> = txs.iter().cloned().map(Tx::Logs).collect();
        self.mixed_block(&txs)
    }

    /// Sends `txs` in order, mines one block, and checks that each one ended as its shape
    /// says (reverted or not) and in that block. Returns the number of logs in the block.
    pub fn mixed_block(&mut self, txs: &[Tx]) -> anyhow::Result<usize> {
        let mut hashes = Vec::new();
        for tx in txs {
            hashes.extend(self.send_tx(tx)?);
        }
        self.node.mine(1)?;
        let head = self.node.head()?;
        for (hash, want) in &hashes {
            let receipt = self.node.call("eth_getTransactionReceipt", json!([hash]))?;
            let status = receipt
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or("none");
            anyhow::ensure!(
                status == *want,
                "transaction {hash} ended with status {status}, not {want}: raise its gas"
            );
            anyhow::ensure!(
                quantity(&receipt["blockNumber"])? == head,
                "transaction {hash} is not in block {head}"
            );
        }
        Ok(txs
            .iter()
            .map(|t| match t {
                Tx::Logs(logs) => logs.len(),
                _ => 0,
            })
            .sum())
    }

    /// The node this sender uses.
    pub fn node(&self) -> &Node {
        &self.node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initcode_emits_topics_in_order_and_splits() {
        let spec = LogSpec {
            topics: vec![[1; 32], [2; 32]],
            data: vec![7; 33],
        };
        let codes = initcodes(std::slice::from_ref(&spec));
        assert_eq!(codes.len(), 1);
        let (code, range) = &codes[0];
        assert_eq!(*range, 0..1);
        assert_eq!(code.len(), code_len(&spec) + 1);
        assert_eq!(*code.last().expect("stop"), STOP);
        assert_eq!(code[code.len() - 2], LOG0 + 2);
        let many = vec![
            LogSpec {
                topics: vec![],
                data: vec![1; 2048]
            };
            40
        ];
        let split = initcodes(&many);
        assert!(split.len() > 1 && split.iter().all(|(c, _)| c.len() <= MAX_INITCODE + 1));
        assert_eq!(split.iter().map(|(_, r)| r.len()).sum::<usize>(), 40);
    }
}
