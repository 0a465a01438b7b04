//! The demo's reader of the `blocks` and `transactions` datasets' topics: each record
//! decoded with the schema file ([`crate::datasets::Decoder`]) and printed as one line a
//! person can read, as `ingestor tail --dataset` prints it: a block's number, hash, time,
//! transactions and gas; a transaction's hash, sender and recipient, value in ether, status
//! and gas used.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use crate::consumer::TopicReader;
use crate::datasets::{BLOCK_SCHEMA_PATH, Decoder, TRANSACTION_SCHEMA_PATH};
use crate::demo::short;

/// A dataset topic the demo prints.
#[derive(Debug, Clone, Copy)]
pub enum Dataset {
    /// `evm.blocks.<chain_id>`.
    Blocks,
    /// `evm.transactions.<chain_id>`.
    Transactions,
}

impl Dataset {
    /// The dataset's topic for `chain_id` under its default name.
    pub fn topic(self, chain_id: u64) -> String {
        match self {
            Self::Blocks => format!("evm.blocks.{chain_id}"),
            Self::Transactions => format!("evm.transactions.{chain_id}"),
        }
    }

    fn schema_path(self) -> &'static str {
        match self {
            Self::Blocks => BLOCK_SCHEMA_PATH,
            Self::Transactions => TRANSACTION_SCHEMA_PATH,
        }
    }
}

/// Prints every record of the dataset's topic of `chain_id` as it arrives, until `stop`.
pub fn tail(brokers: &str, chain: &str, chain_id: u64, dataset: Dataset, stop: &AtomicBool) {
    let topic = dataset.topic(chain_id);
    let opened = Decoder::new(dataset.schema_path())
        .and_then(|d| Ok((d, TopicReader::new(brokers, &topic)?.undecoded())));
    let (decoder, mut reader) = match opened {
        Ok(r) => r,
        Err(e) => return eprintln!("devstack: cannot read {topic}: {e:#}"),
    };
    while !stop.load(Ordering::SeqCst) {
        let record = match reader.poll() {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) => {
                eprintln!("devstack: {topic}: {e:#}");
                continue;
            }
        };
        let line = match &record.raw {
            None => format!("[{chain}] tombstone {}", record.key),
            Some(bytes) => match decoder.decode(bytes) {
                Ok(v) => match dataset {
                    Dataset::Blocks => render_block(chain, record.offset, &v),
                    Dataset::Transactions => render_transaction(chain, record.offset, &v),
                },
                Err(e) => format!("[{chain}] undecodable record on {topic}: {e:#}"),
            },
        };
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn number(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// A wei amount (decimal text) in ether, to 9 decimals.
pub fn ether(wei: &str) -> String {
    let digits = format!("{wei:0>19}");
    let (whole, fraction) = digits.split_at(digits.len() - 18);
    format!(
        "{}.{}",
        whole.trim_start_matches('0').max("0"),
        &fraction[..9]
    )
    .replace(".000000000", ".0")
}

/// A block record as one line.
pub fn render_block(chain: &str, offset: i64, b: &Value) -> String {
    let when = UNIX_EPOCH + Duration::from_millis(number(&b["timestamp"]).max(0) as u64);
    format!(
        "[{chain}] BLOCK {:>5} {}  {}  {} txs  gas {}/{}  (offset {offset})",
        number(&b["number"]),
        short(text(&b["hash"])),
        humantime::format_rfc3339_seconds(when),
        number(&b["transaction_count"]),
        number(&b["gas_used"]),
        number(&b["gas_limit"]),
    )
}

/// A transaction record as one line.
pub fn render_transaction(chain: &str, offset: i64, t: &Value) -> String {
    let to = match (&t["to"], &t["contract_address"]) {
        (Value::String(to), _) => short(to),
        (_, Value::String(created)) => format!("new {}", short(created)),
        _ => "-".to_owned(),
    };
    let status = match t["status"].as_bool() {
        Some(true) => "ok",
        Some(false) => "REVERTED",
        None => "-",
    };
    format!(
        "[{chain}] tx    {:>5} {} #{:<2} type {} {} -> {}  {} ETH  {status}  gas {}  logs {}  (offset {offset})",
        number(&t["block_number"]),
        short(text(&t["hash"])),
        number(&t["transaction_index"]),
        number(&t["type"]),
        short(text(&t["from"])),
        to,
        ether(text(&t["value"])),
        number(&t["gas_used"]),
        number(&t["logs_count"]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ether_is_the_wei_amount_over_ten_to_the_eighteen() {
        assert_eq!(ether("0"), "0.0");
        assert_eq!(ether("1000000007"), "0.000000001");
        assert_eq!(ether("1500000000000000000"), "1.500000000");
        assert_eq!(ether("12000000000000000000000"), "12000.0");
    }

    #[test]
    fn lines_name_what_a_reader_looks_for() {
        let b = json!({"number": 7, "hash": "0x".to_owned() + &"ab".repeat(32),
            "timestamp": 1_700_000_000_000_i64, "transaction_count": 2, "gas_used": 42000,
            "gas_limit": 30000000});
        let line = render_block("devnet-a", 3, &b);
        assert!(line.starts_with("[devnet-a] BLOCK     7 0xababab…abab  2023-11-14T22:13:20Z  2 txs  gas 42000/30000000"), "{line}");
        let t = json!({"block_number": 7, "hash": "0x01", "transaction_index": 1, "type": 2,
            "from": "0x02", "to": null, "contract_address": "0x03", "value": "0",
            "status": false, "gas_used": 53000, "logs_count": 0});
        let line = render_transaction("devnet-a", 4, &t);
        assert!(
            line.contains("0x02 -> new 0x03  0.0 ETH  REVERTED  gas 53000  logs 0"),
            "{line}"
        );
    }
}
