//! The provider proxy's habits that change what a real answer says rather than how much of
//! it there is, each on the first answer for a block only, and each where the receipts'
//! own checks cannot tell (only the proofs by the block hash can):
//! - `drop_receipt_log`: the last log of the last receipt with logs (the block's last log:
//!   log indexes still run without a gap) left out, where the block's other logs still make
//!   its bloom;
//! - `flip_log_data`: one byte of the first log with data changed (no bloom covers data);
//! - `move_timestamp`: a header's `timestamp` one second later, in the first
//!   `eth_getBlockBy*` answer for each block;
//! - `retype_receipts`: every receipt of every answer given this transaction type (a chain
//!   whose receipts have a type of unknown encoding).
//!
//! The receipts habits change blocks of even number, the header habit blocks of odd number:
//! a block refused for one change is asked again whole, so a second change in the same
//! answer would never be looked at.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// Which of these habits the proxy has.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tamper {
    pub drop_receipt_log: bool,
    pub flip_log_data: bool,
    pub move_timestamp: bool,
    pub retype_receipts: Option<u8>,
}

/// What the proxy changed.
#[derive(Default)]
pub struct Tampered {
    /// Logs left out (`drop_receipt_log`).
    pub dropped_logs: AtomicUsize,
    /// Logs whose data changed (`flip_log_data`).
    pub flipped_logs: AtomicUsize,
    /// Headers whose timestamp moved (`move_timestamp`).
    pub moved_headers: AtomicUsize,
}

/// The blocks already answered once, per habit.
#[derive(Default)]
pub(super) struct Seen {
    receipts: Mutex<HashSet<String>>,
    headers: Mutex<HashSet<String>>,
}

/// Applies `tamper` to an `eth_getBlockReceipts` answer for block `hash`.
pub(super) fn receipts(
    tamper: Tamper,
    seen: &Seen,
    counts: &Tampered,
    hash: &str,
    receipts: &mut [Value],
) {
    if let Some(ty) = tamper.retype_receipts {
        for r in receipts.iter_mut() {
            r["type"] = Value::String(format!("{ty:#x}"));
        }
    }
    let number = receipts.first().map_or(1, |r| quantity(&r["blockNumber"]));
    if !(tamper.drop_receipt_log || tamper.flip_log_data)
        || !number.is_multiple_of(2)
        || !seen.receipts.lock().expect("lock").insert(hash.to_owned())
    {
        return;
    }
    if tamper.drop_receipt_log && drop_last_log(receipts) {
        counts.dropped_logs.fetch_add(1, Ordering::SeqCst);
    }
    if tamper.flip_log_data && flip_data(receipts) {
        counts.flipped_logs.fetch_add(1, Ordering::SeqCst);
    }
}

/// Applies `tamper` to an `eth_getBlockByNumber`/`eth_getBlockByHash` answer's block.
pub(super) fn header(tamper: Tamper, seen: &Seen, counts: &Tampered, block: &mut Value) {
    let Some(hash) = block["hash"].as_str() else {
        return;
    };
    if !tamper.move_timestamp
        || quantity(&block["number"]).is_multiple_of(2)
        || !seen.headers.lock().expect("lock").insert(hash.to_owned())
    {
        return;
    }
    let n = quantity(&block["timestamp"]) + 1;
    block["timestamp"] = Value::String(format!("{n:#x}"));
    counts.moved_headers.fetch_add(1, Ordering::SeqCst);
}

/// Leaves out the block's last log when the others still make its bloom.
fn drop_last_log(receipts: &mut [Value]) -> bool {
    use ingestor::rpc::bloom::Bloom;
    use ingestor::rpc::types::Log;
    let logs: Vec<Log> = receipts
        .iter()
        .flat_map(|r| r["logs"].as_array().cloned().unwrap_or_default())
        .map(|l| Log::parse(&l.to_string()).expect("anvil's log"))
        .collect();
    if logs.len() < 2 || Bloom::of_logs(&logs[..logs.len() - 1]) != Bloom::of_logs(&logs) {
        return false;
    }
    let Some(last) = receipts
        .iter_mut()
        .rev()
        .find(|r| r["logs"].as_array().is_some_and(|l| !l.is_empty()))
    else {
        return false;
    };
    last["logs"]
        .as_array_mut()
        .is_some_and(|l| l.pop().is_some())
}

/// Changes the last data byte of the first log with data.
fn flip_data(receipts: &mut [Value]) -> bool {
    let Some(log) = receipts
        .iter_mut()
        .filter_map(|r| r["logs"].as_array_mut())
        .flat_map(|l| l.iter_mut())
        .find(|l| l["data"].as_str().is_some_and(|d| d.len() > 2))
    else {
        return false;
    };
    let data = log["data"].as_str().unwrap_or_default().to_owned();
    let last = if data.ends_with('0') { '1' } else { '0' };
    log["data"] = Value::String(format!("{}{last}", &data[..data.len() - 1]));
    true
}

/// A hex quantity's value; 0 when absent or malformed.
fn quantity(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0)
}
