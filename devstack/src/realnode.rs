//! A JSON-RPC node of the tests' own that serves one block recorded from a real chain
//! (`shared/realdata/*.json`: the block with full transactions and all its receipts), over
//! HTTP (single calls and batches) and over WebSocket (with `newHeads`).
//!
//! The head is the recorded block; no other block exists (`null`). Two options:
//! - [`Options::block_receipts`] off: `eth_getBlockReceipts` is refused with -32601, so a
//!   client must ask per transaction.
//! - [`Options::hidden`]: the head starts one block lower and the block does not exist
//!   until [`RealNode::release`], which shows it and sends `newHeads` to every WebSocket
//!   subscriber. A client waiting at the head takes its live path; without `hidden`, the
//!   block is there from the start (its catch-up path).
//!
//! The recorded JSON is served as read (a `serde_json::Value` round trip: key order may
//! change, no value does). Each method's answer is in [`answer`].

mod answer;
mod serve;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use serde_json::Value;

/// The folder of recorded blocks: `ETHHOOK_REALDATA_DIR`, else `shared/realdata` beside
/// the repository (where CI puts a read-only copy of `shared/`). An error names both when
/// the folder is missing.
pub fn realdata_dir() -> anyhow::Result<PathBuf> {
    realdata_dir_in(std::env::var_os("ETHHOOK_REALDATA_DIR").map(PathBuf::from))
}

/// [`realdata_dir`] with the override given.
fn realdata_dir_in(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = given
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realdata"));
    if !dir.is_dir() {
        bail!(
            "the recorded real blocks are not at {}: put shared/realdata beside the repository, or set ETHHOOK_REALDATA_DIR",
            dir.display()
        );
    }
    Ok(dir)
}

/// One recorded block and its receipts, with the views the node answers from.
#[derive(Debug)]
pub struct Recorded {
    /// The file's name.
    pub file: String,
    /// The chain's name (`chain`).
    pub chain: String,
    /// `chain_id`.
    pub chain_id: u64,
    /// The block's number.
    pub number: u64,
    /// The block's hash, as recorded.
    pub hash: String,
    /// The block object with full transactions, as recorded.
    pub block: Value,
    /// The block with `transactions` as their hashes (`full = false`).
    block_hashes: Value,
    /// The header as `newHeads` sends it: the block without `transactions`.
    header: Value,
    /// The receipts, in transaction order, as recorded (a JSON array).
    pub receipts: Value,
    /// Every receipt's logs, in order.
    logs: Vec<Value>,
    /// Receipts by lowercase transaction hash.
    by_tx: HashMap<String, usize>,
}

impl Recorded {
    /// Reads one recorded file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let block = v["block"].clone();
        let receipts = v["receipts"].clone();
        let number = hex_quantity(&block["number"]).context("block.number")?;
        let hash = block["hash"].as_str().context("block.hash")?.to_owned();
        let mut block_hashes = block.clone();
        let txs = block["transactions"]
            .as_array()
            .context("block.transactions")?;
        block_hashes["transactions"] = txs
            .iter()
            .map(|t| match t {
                Value::String(_) => Some(t.clone()),
                _ => t.get("hash").cloned(),
            })
            .collect::<Option<Vec<_>>>()
            .context("a transaction without its hash")?
            .into();
        let mut header = block.clone();
        if let Some(h) = header.as_object_mut() {
            h.remove("transactions");
        }
        let list = receipts.as_array().context("receipts")?;
        let mut logs = Vec::new();
        let mut by_tx = HashMap::new();
        for (i, r) in list.iter().enumerate() {
            let tx = r["transactionHash"]
                .as_str()
                .context("receipt.transactionHash")?;
            by_tx.insert(tx.to_ascii_lowercase(), i);
            logs.extend(
                r["logs"]
                    .as_array()
                    .context("receipt.logs")?
                    .iter()
                    .cloned(),
            );
        }
        Ok(Self {
            file,
            chain: v["chain"].as_str().context("chain")?.to_owned(),
            chain_id: v["chain_id"].as_u64().context("chain_id")?,
            number,
            hash,
            block,
            block_hashes,
            header,
            receipts,
            logs,
            by_tx,
        })
    }

    /// Every `*.json` file of `dir`, by name.
    pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<Self>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
        paths.sort();
        paths.iter().map(|p| Self::load(p)).collect()
    }

    /// The block's transactions.
    pub fn tx_count(&self) -> usize {
        self.block["transactions"].as_array().map_or(0, Vec::len)
    }

    /// The block's logs (all receipts').
    pub fn log_count(&self) -> usize {
        self.logs.len()
    }

    /// The receipts as a list.
    pub fn receipt_list(&self) -> &[Value] {
        self.receipts
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The head: the block, or the one before it while hidden.
    fn head(&self, visible: bool) -> u64 {
        match visible {
            true => self.number,
            false => self.number.saturating_sub(1),
        }
    }

    fn receipt_of(&self, tx: &str) -> Option<&Value> {
        let i = *self.by_tx.get(&tx.to_ascii_lowercase())?;
        self.receipt_list().get(i)
    }
}

fn hex_quantity(v: &Value) -> Option<u64> {
    u64::from_str_radix(v.as_str()?.strip_prefix("0x")?, 16).ok()
}

/// How the node behaves.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Serve `eth_getBlockReceipts` (else -32601).
    pub block_receipts: bool,
    /// Start with the block hidden until [`RealNode::release`].
    pub hidden: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            block_receipts: true,
            hidden: false,
        }
    }
}

/// What the node shares between its connections.
struct State {
    recorded: Arc<Recorded>,
    block_receipts: bool,
    visible: AtomicBool,
    /// Tells WebSocket connections the block became visible.
    released: tokio::sync::watch::Sender<bool>,
    /// Calls answered, by method (each call of a batch counts); `eth_subscription` counts
    /// the notifications sent.
    calls: Mutex<HashMap<String, usize>>,
    /// The methods whose answers held the block's data (the block, a receipt, a log), in
    /// the order they were answered.
    served: Mutex<Vec<String>>,
}

impl State {
    fn view(&self) -> answer::View {
        answer::View {
            visible: self.visible.load(Ordering::SeqCst),
            block_receipts: self.block_receipts,
        }
    }

    fn count(&self, method: &str) {
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(method.to_owned()).or_default() += 1;
        }
    }

    /// Notes that `method`'s answer held the block's data.
    fn served(&self, method: &str) {
        if let Ok(mut served) = self.served.lock() {
            served.push(method.to_owned());
        }
    }
}

/// The running node: an HTTP port and a WebSocket port on 127.0.0.1, served until dropped.
pub struct RealNode {
    state: Arc<State>,
    http_port: u16,
    ws_port: u16,
    /// Declared last: dropping it stops the servers.
    _runtime: tokio::runtime::Runtime,
}

impl RealNode {
    /// Serves `recorded` on free loopback ports.
    pub fn start(recorded: Arc<Recorded>, options: Options) -> anyhow::Result<Self> {
        let (released, _) = tokio::sync::watch::channel(!options.hidden);
        let state = Arc::new(State {
            recorded,
            block_receipts: options.block_receipts,
            visible: AtomicBool::new(!options.hidden),
            released,
            calls: Mutex::default(),
            served: Mutex::default(),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("realnode")
            .enable_all()
            .build()?;
        let (http_port, ws_port) = runtime.block_on(serve::listen(state.clone()))?;
        Ok(Self {
            state,
            http_port,
            ws_port,
            _runtime: runtime,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.ws_port)
    }

    /// The recording served.
    pub fn recorded(&self) -> &Recorded {
        &self.state.recorded
    }

    /// Makes the block visible (the head) and sends its header to every `newHeads`
    /// subscriber. Does nothing the second time.
    pub fn release(&self) {
        if !self.state.visible.swap(true, Ordering::SeqCst) {
            self.state.released.send_replace(true);
        }
    }

    /// How many calls of `method` the node answered (each call of a batch counts).
    pub fn calls(&self, method: &str) -> usize {
        self.state
            .calls
            .lock()
            .map_or(0, |c| c.get(method).copied().unwrap_or(0))
    }

    /// The methods whose answers held the block's data (its header or body, a receipt, a
    /// log), in the order they were answered: which call first learned of the block.
    pub fn served(&self) -> Vec<String> {
        self.state
            .served
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Every method called, with its count, by name.
    pub fn all_calls(&self) -> Vec<(String, usize)> {
        let mut all: Vec<_> = self
            .state
            .calls
            .lock()
            .map(|c| c.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests;
