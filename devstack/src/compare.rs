//! The node's canonical logs versus the records on a topic, field by field.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use anyhow::Context;
use serde_json::Value;

use crate::consumer::{DecodedLog, Record};
use crate::node::{Node, quantity};

/// What the node says the topic must hold, by record key.
pub type Expected = BTreeMap<String, DecodedLog>;

/// Blocks per `eth_getLogs` call when building [`Expected`].
const RANGE: u64 = 200;

/// Reads the node's logs over `from..=to` and the timestamps of their blocks.
pub fn expected_from_node(
    node: &Node,
    chain_id: u64,
    from: u64,
    to: u64,
) -> anyhow::Result<Expected> {
    let mut out = Expected::new();
    let mut timestamps: HashMap<u64, i64> = HashMap::new();
    let mut start = from;
    while start <= to {
        let end = (start + RANGE - 1).min(to);
        for log in node.logs(start, end)? {
            let number = quantity(&log["blockNumber"])?;
            if let std::collections::hash_map::Entry::Vacant(e) = timestamps.entry(number) {
                let block = node.block(number)?;
                e.insert(quantity(&block["timestamp"])? as i64 * 1000);
            }
            let decoded = from_node_json(chain_id, &log, timestamps[&number])?;
            let key = format!(
                "{chain_id}:{}:{}",
                decoded.transaction_hash, decoded.log_index
            );
            out.insert(key, decoded);
        }
        start = end + 1;
    }
    Ok(out)
}

/// What a topic must hold for one recorded block: the logs of each of its `receipts`
/// (`eth_getBlockReceipts`' objects, in transaction order), stamped with the header's
/// timestamp × 1000; addresses and hashes lowercased as [`expected_from_node`] does.
pub fn expected_from_receipts(
    chain_id: u64,
    block: &Value,
    receipts: &[Value],
) -> anyhow::Result<Expected> {
    let timestamp_ms = quantity(&block["timestamp"]).context("block.timestamp")? as i64 * 1000;
    let mut out = Expected::new();
    for receipt in receipts {
        for log in receipt["logs"].as_array().context("receipt.logs")? {
            let decoded = from_node_json(chain_id, log, timestamp_ms)?;
            let key = format!(
                "{chain_id}:{}:{}",
                decoded.transaction_hash, decoded.log_index
            );
            if out.insert(key.clone(), decoded).is_some() {
                anyhow::bail!("the receipts list {key} twice");
            }
        }
    }
    Ok(out)
}

fn from_node_json(chain_id: u64, log: &Value, timestamp_ms: i64) -> anyhow::Result<DecodedLog> {
    let s = |n: &str| -> anyhow::Result<String> {
        Ok(log[n]
            .as_str()
            .with_context(|| format!("log.{n}"))?
            .to_ascii_lowercase())
    };
    let q = |n: &str| -> anyhow::Result<i64> { Ok(quantity(&log[n])? as i64) };
    let topics = log["topics"]
        .as_array()
        .context("log.topics")?
        .iter()
        .map(|t| t.as_str().map(str::to_ascii_lowercase).context("topic"))
        .collect::<anyhow::Result<_>>()?;
    Ok(DecodedLog {
        chain_id: chain_id as i64,
        block_number: q("blockNumber")?,
        block_hash: s("blockHash")?,
        block_timestamp_ms: timestamp_ms,
        transaction_hash: s("transactionHash")?,
        transaction_index: q("transactionIndex")?,
        log_index: q("logIndex")?,
        address: s("address")?,
        topics,
        data: hex::decode(s("data")?.trim_start_matches("0x"))?,
    })
}

/// The outcome of a comparison.
#[derive(Debug, Default)]
pub struct Report {
    /// Records compared.
    pub records: usize,
    /// Keys the node has and the topic does not.
    pub missing: Vec<String>,
    /// Keys the topic has and the node does not.
    pub extra: Vec<String>,
    /// Keys that appear more than once on the topic.
    pub duplicates: Vec<String>,
    /// Keys whose fields, key format or Kafka timestamp differ, with the first difference.
    pub mismatched: Vec<String>,
    /// Records that go backwards in (block, log index) within a partition.
    pub out_of_order: Vec<String>,
}

impl Report {
    /// Whether the topic equals the node, record for record.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.duplicates.is_empty()
            && self.mismatched.is_empty()
            && self.out_of_order.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records: {} missing, {} extra, {} duplicated, {} mismatched, {} out of order",
            self.records,
            self.missing.len(),
            self.extra.len(),
            self.duplicates.len(),
            self.mismatched.len(),
            self.out_of_order.len()
        )?;
        for (what, keys) in [
            ("missing", &self.missing),
            ("extra", &self.extra),
            ("duplicated", &self.duplicates),
            ("mismatched", &self.mismatched),
            ("out of order", &self.out_of_order),
        ] {
            if let Some(first) = keys.first() {
                write!(f, "; first {what}: {first}")?;
            }
        }
        Ok(())
    }
}

/// The compacted view of a topic, as a consumer sees it after log compaction: the latest
/// record per key, in offset order, with keys whose latest record is a tombstone removed.
pub fn compacted(records: &[Record]) -> Vec<Record> {
    let mut latest: HashMap<&str, &Record> = HashMap::new();
    for r in records {
        latest.insert(&r.key, r);
    }
    let mut view: Vec<Record> = latest
        .into_values()
        .filter(|r| r.log.is_some())
        .cloned()
        .collect();
    view.sort_by_key(|r| (r.partition, r.offset));
    view
}

/// Compares the compacted view of `records` with the node's logs: the promise that holds
/// through restarts, reorganisations and outages.
pub fn compare_compacted(expected: &Expected, records: &[Record]) -> Report {
    compare(expected, &compacted(records))
}

/// Compares every record (not only the latest per key) with the node's logs.
pub fn compare(expected: &Expected, records: &[Record]) -> Report {
    let mut report = Report {
        records: records.len(),
        ..Report::default()
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut last: HashMap<i32, (i64, i64)> = HashMap::new();
    for r in records {
        *seen.entry(&r.key).or_default() += 1;
        let Some(log) = &r.log else {
            report
                .mismatched
                .push(format!("{}: unexpected tombstone", r.key));
            continue;
        };
        let pos = (log.block_number, log.log_index);
        if last
            .insert(r.partition, pos)
            .is_some_and(|prev| prev >= pos)
        {
            report.out_of_order.push(r.key.clone());
        }
        match expected.get(&r.key) {
            None => report.extra.push(r.key.clone()),
            Some(want) => {
                if let Some(diff) = first_difference(want, log, r) {
                    report.mismatched.push(format!("{}: {diff}", r.key));
                }
            }
        }
    }
    report.duplicates = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| (*k).to_owned())
        .collect();
    report.missing = expected
        .keys()
        .filter(|k| !seen.contains_key(k.as_str()))
        .cloned()
        .collect();
    report
}

fn first_difference(want: &DecodedLog, got: &DecodedLog, r: &Record) -> Option<String> {
    let key = format!(
        "{}:{}:{}",
        got.chain_id, got.transaction_hash, got.log_index
    );
    if key != r.key {
        return Some(format!("key does not match its fields ({key})"));
    }
    if r.timestamp_ms != Some(want.block_timestamp_ms) {
        return Some(format!(
            "kafka timestamp {:?} != block timestamp {}",
            r.timestamp_ms, want.block_timestamp_ms
        ));
    }
    let fields: [(&str, String, String); 10] = [
        (
            "chain_id",
            want.chain_id.to_string(),
            got.chain_id.to_string(),
        ),
        (
            "block_number",
            want.block_number.to_string(),
            got.block_number.to_string(),
        ),
        (
            "block_hash",
            want.block_hash.clone(),
            got.block_hash.clone(),
        ),
        (
            "block_timestamp",
            want.block_timestamp_ms.to_string(),
            got.block_timestamp_ms.to_string(),
        ),
        (
            "transaction_hash",
            want.transaction_hash.clone(),
            got.transaction_hash.clone(),
        ),
        (
            "transaction_index",
            want.transaction_index.to_string(),
            got.transaction_index.to_string(),
        ),
        (
            "log_index",
            want.log_index.to_string(),
            got.log_index.to_string(),
        ),
        ("address", want.address.clone(), got.address.clone()),
        ("topics", want.topics.join(","), got.topics.join(",")),
        (
            "data",
            format!("{} bytes {}", want.data.len(), hex::encode(&want.data)),
            format!("{} bytes {}", got.data.len(), hex::encode(&got.data)),
        ),
    ];
    fields
        .into_iter()
        .find(|(_, w, g)| w != g)
        .map(|(name, w, g)| format!("{name}: node {w:.80} != topic {g:.80}"))
}

/// Keys of records produced twice: a record equal to the previous record of the same key
/// (the same value again, or a second tombstone). A value that comes back after a tombstone
/// or another value is a change, not a duplicate.
pub fn produced_twice(records: &[Record]) -> Vec<String> {
    let mut previous: HashMap<&str, &Option<DecodedLog>> = HashMap::new();
    let mut twice = Vec::new();
    for r in records {
        if previous.insert(&r.key, &r.log) == Some(&r.log) {
            twice.push(r.key.clone());
        }
    }
    twice
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn expectations_from_receipts_are_lowercased_and_timed_by_the_header() {
        let block = json!({"number": "0x5", "timestamp": "0x64"});
        let log = |index: &str| {
            json!({"address": "0x00000000000000000000000000000000000000AB",
                   "topics": ["0x00000000000000000000000000000000000000000000000000000000000000CD"],
                   "data": "0x0102", "blockHash": format!("0x{}", "EF".repeat(32)),
                   "blockNumber": "0x5", "transactionHash": format!("0x{}", "12".repeat(32)),
                   "transactionIndex": "0x0", "logIndex": index})
        };
        let receipts = [
            json!({"logs": [log("0x0"), log("0x1")]}),
            json!({"logs": []}),
        ];
        let expected = expected_from_receipts(9, &block, &receipts).expect("expected");
        assert_eq!(expected.len(), 2);
        let first = &expected[&format!("9:0x{}:0", "12".repeat(32))];
        assert_eq!(first.block_timestamp_ms, 100_000);
        assert_eq!(first.address, "0x00000000000000000000000000000000000000ab");
        assert_eq!(first.block_hash, format!("0x{}", "ef".repeat(32)));
        assert_eq!(first.data, vec![1, 2]);
        let twice = [json!({"logs": [log("0x0")]}), json!({"logs": [log("0x0")]})];
        assert!(expected_from_receipts(9, &block, &twice).is_err());
    }
}
