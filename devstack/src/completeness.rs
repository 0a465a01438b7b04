//! `devstack bench --completeness LOGS`: what proving each block's logs complete
//! (`verify_log_completeness`, the default) costs on a chain whose every block's
//! `logsBloom` is saturated, as on mainnet.
//!
//! The chain's logs are ERC-20-shaped: `Transfer` (9 in 10) or `Approval` events, two
//! holder addresses as topics 1-2 drawn from a pool of [`HOLDERS`], a 32-byte amount, from
//! the few contracts the block's transactions create ([`TXS_PER_BLOCK`], each a contract
//! creation emitting [`LOGS_PER_BLOCK`] / [`TXS_PER_BLOCK`] logs). The bloom is only as
//! full as the block's distinct addresses and topics make it (each sets 3 of 2048 bits),
//! so it is the holders drawn, not the count of logs, that saturate it: about 2,800
//! distinct items per block, ~98% of the bits set.
//!
//! In one run it prints the bloom's fill, the node's own per-block answers (time and size
//! of `eth_getLogs` against `eth_getBlockReceipts`), the ingestor's backfill from block 0
//! under two `chains[].proof` levels (each into a fresh topic; by default `none` and
//! `auto`, the check off and on; `--proofs receipts,receipts_root` for what the proof by
//! the block hash costs), their ratio and CPU per 1,000 logs, and live latency of such
//! blocks under each. Prints numbers, asserts nothing.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::anvil::Anvil;
use crate::consumer::TopicReader;
use crate::latency::{block_number, consumer, delivered, logged_at, summary, until};
use crate::node::Node;
use crate::service::{ChainEntry, Service, config_toml};
use crate::traffic::{LogSpec, Sender};

/// Logs per block: with [`HOLDERS`], about 2,800 distinct topics per block, which set ~98%
/// of the bloom's bits.
pub const LOGS_PER_BLOCK: usize = 1500;
/// Transactions (so contracts, each creation being a fresh address) per block.
pub const TXS_PER_BLOCK: usize = 6;
/// Addresses topics 1-2 are drawn from.
pub const HOLDERS: usize = 20_000;
/// `keccak256("Transfer(address,address,uint256)")`.
const TRANSFER: &str = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
/// `keccak256("Approval(address,address,uint256)")`.
const APPROVAL: &str = "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925";
/// The chain's id (its own anvil).
const CHAIN_ID: u64 = 31337;

/// Parameters of `--completeness`.
#[derive(Debug, Clone)]
pub struct Params {
    /// Logs of history the backfills read (rounded up to whole blocks).
    pub logs: usize,
    /// Live blocks timed with the check on, then as many with it off.
    pub live_blocks: usize,
    /// Pairs of backfills (the two `proofs`), alternating which goes first.
    pub rounds: usize,
    /// The two `chains[].proof` levels compared, the baseline first (`none` and `auto`
    /// compare the check off and on; `receipts` and `receipts_root` what the proof by the
    /// block hash costs).
    pub proofs: [String; 2],
}

/// ERC-20-shaped logs over a fixed pool of holders, reproducible from a seed.
pub struct TokenLogs {
    rng: StdRng,
    holders: Vec<[u8; 32]>,
    events: [[u8; 32]; 2],
}

impl TokenLogs {
    /// `holders` addresses (as 32-byte topics), drawn from `seed`.
    pub fn new(seed: u64, holders: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let holders = (0..holders)
            .map(|_| {
                let mut topic = [0u8; 32];
                rng.fill(&mut topic[12..]);
                topic
            })
            .collect();
        let event = |h: &str| {
            let mut t = [0u8; 32];
            hex::decode_to_slice(h, &mut t).expect("a 32-byte hex constant");
            t
        };
        Self {
            rng,
            holders,
            events: [event(TRANSFER), event(APPROVAL)],
        }
    }

    /// One log: `Transfer` or (1 in 10) `Approval` between two holders, a 32-byte amount.
    pub fn log(&mut self) -> LogSpec {
        let event = self.events[usize::from(self.rng.random_ratio(1, 10))];
        let from = self.holders[self.rng.random_range(0..self.holders.len())];
        let to = self.holders[self.rng.random_range(0..self.holders.len())];
        let mut amount = [0u8; 32];
        self.rng.fill(&mut amount[16..]);
        LogSpec {
            topics: vec![event, from, to],
            data: amount.to_vec(),
        }
    }

    /// A block's transactions: `txs` of `logs / txs` logs each.
    pub fn block(&mut self, logs: usize, txs: usize) -> Vec<Vec<LogSpec>> {
        let per_tx = logs.div_ceil(txs);
        let all: Vec<LogSpec> = (0..logs).map(|_| self.log()).collect();
        all.chunks(per_tx).map(<[LogSpec]>::to_vec).collect()
    }
}

/// The fraction of a block's `logsBloom` bits that are set.
fn bloom_fill(block: &Value) -> anyhow::Result<f64> {
    let text = block
        .get("logsBloom")
        .and_then(Value::as_str)
        .context("block without logsBloom")?;
    let bytes = hex::decode(text.trim_start_matches("0x"))?;
    ensure!(bytes.len() == 256, "logsBloom of {} bytes", bytes.len());
    let ones: u32 = bytes.iter().map(|b| b.count_ones()).sum();
    Ok(f64::from(ones) / 2048.0)
}

/// Runs the completeness benchmark against the broker at `brokers` (started by the caller);
/// `dir` holds the processes' files.
pub fn run(ingestor: &Path, dir: &Path, brokers: &str, p: &Params) -> anyhow::Result<()> {
    let anvil = Anvil::start(CHAIN_ID, dir)?;
    let node = anvil.node();
    let mut sender = Sender::new(node.clone())?;
    let mut traffic = TokenLogs::new(11, HOLDERS);

    let blocks = p.logs.div_ceil(LOGS_PER_BLOCK).max(1);
    let built = Instant::now();
    for b in 0..blocks {
        sender.block(&traffic.block(LOGS_PER_BLOCK, TXS_PER_BLOCK))?;
        if (b + 1) % 10 == 0 {
            eprintln!("bench: built {} of {blocks} blocks", b + 1);
        }
    }
    let head = node.head()?;
    let total = blocks * LOGS_PER_BLOCK;
    println!(
        "saturated chain: {blocks} blocks x {LOGS_PER_BLOCK} logs = {total} logs ({TXS_PER_BLOCK} contract creations per block; Transfer/Approval logs between {HOLDERS} holders), built in {:.1} s",
        built.elapsed().as_secs_f64()
    );

    // The bloom of a sample block, then of all of them.
    let fills = (1..=head)
        .map(|n| bloom_fill(&node.block(n)?))
        .collect::<anyhow::Result<Vec<f64>>>()?;
    let sample = head.div_ceil(2);
    let fill = fills[(sample - 1) as usize];
    println!(
        "logsBloom: block {sample} has {:.0} of 2048 bits set ({:.1}%); over all {} blocks min {:.1}%, mean {:.1}%",
        fill * 2048.0,
        fill * 100.0,
        fills.len(),
        fills.iter().copied().fold(1.0, f64::min) * 100.0,
        fills.iter().sum::<f64>() / fills.len() as f64 * 100.0
    );

    node_figures(&node, head, total)?;

    // Backfills from block 0 under each proof, alternating which goes first per round.
    let [base, other] = [p.proofs[0].as_str(), p.proofs[1].as_str()];
    let mut off = Vec::new();
    let mut on = Vec::new();
    for round in 0..p.rounds.max(1) {
        let order = if round % 2 == 0 {
            [base, other]
        } else {
            [other, base]
        };
        for proof in order {
            let label = format!("{}-{}", proof.replace('_', "-"), round + 1);
            let b = backfill(ingestor, dir, brokers, &anvil, head, total, &label, proof)?;
            if proof == other { &mut on } else { &mut off }.push(b);
        }
    }
    let median = |runs: &[Backfill], f: fn(&Backfill) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        (v[(v.len() - 1) / 2] + v[v.len() / 2]) / 2.0
    };
    let whole = |b: &Backfill| b.readable_rate;
    let following = |b: &Backfill| b.following_rate.unwrap_or(f64::NAN);
    // CPU seconds as a rate (logs per CPU second), so that on / off reads like the others.
    let ingestor_cpu = |b: &Backfill| b.ingestor_cpu.map_or(f64::NAN, |s| 1.0 / s);
    let node_cpu = |b: &Backfill| b.node_cpu.map_or(f64::NAN, |s| 1.0 / s);
    let runs = if on.len() > 1 {
        let pairs: Vec<String> = on
            .iter()
            .zip(&off)
            .map(|(on, off)| format!("{:.2}", on.readable_rate / off.readable_rate))
            .collect();
        format!(
            " (medians of {} runs each; each round's, start -> all readable: {})",
            on.len(),
            pairs.join(", ")
        )
    } else {
        String::new()
    };
    println!(
        "ratio proof {other} / {base}{runs}: {:.2} start -> all readable; {:.2} following -> last ack; logs per CPU second, {other} / {base}: ingestor {:.2}, node {:.2}; ingestor CPU per 1,000 logs: {other} {:.1} ms, {base} {:.1} ms",
        median(&on, whole) / median(&off, whole),
        median(&on, following) / median(&off, following),
        median(&on, ingestor_cpu) / median(&off, ingestor_cpu),
        median(&on, node_cpu) / median(&off, node_cpu),
        1e6 / median(&on, ingestor_cpu) / total as f64,
        1e6 / median(&off, ingestor_cpu) / total as f64,
    );

    // Live blocks of the same shape, under each proof.
    for proof in [other, base] {
        live(
            ingestor,
            dir,
            brokers,
            &anvil,
            &mut sender,
            &mut traffic,
            p.live_blocks,
            proof,
        )?;
    }
    Ok(())
}

/// The node's own answers, one block per request from one client (at this density the
/// ingestor's ranges are one block long too): time and size of each method's answers, read
/// as text without parsing them.
fn node_figures(node: &Node, head: u64, total: usize) -> anyhow::Result<()> {
    let ask = |method: &str, params: Value| -> anyhow::Result<(f64, String)> {
        let t = Instant::now();
        let text = node.call_text(method, params)?;
        let seconds = t.elapsed().as_secs_f64();
        ensure!(
            text.contains("\"result\""),
            "{method}: {}",
            &text[..text.len().min(500)]
        );
        Ok((seconds, text))
    };
    // (method, seconds, bytes, logs)
    let mut figures = [
        ("eth_getLogs {fromBlock = toBlock}", 0.0, 0usize, 0usize),
        ("eth_getBlockReceipts", 0.0, 0, 0),
        ("eth_getBlockByNumber (header)", 0.0, 0, 0),
    ];
    for n in 1..=head {
        let number = format!("{n:#x}");
        let answers = [
            ask(
                "eth_getLogs",
                json!([{"fromBlock": number, "toBlock": number}]),
            )?,
            ask("eth_getBlockReceipts", json!([number]))?,
            ask("eth_getBlockByNumber", json!([number, false]))?,
        ];
        for (f, (seconds, text)) in figures.iter_mut().zip(answers) {
            f.1 += seconds;
            f.2 += text.len();
            f.3 += text.matches("\"logIndex\"").count();
        }
    }
    ensure!(
        figures[0].3 == total && figures[1].3 == total,
        "the node returned {} logs by eth_getLogs and {} in receipts, expected {total}",
        figures[0].3,
        figures[1].3
    );
    println!("node, 1 client, one block per request, answers as text (not parsed):");
    for (method, seconds, bytes, logs) in figures {
        let per_log = if logs > 0 {
            format!(
                "{:.0} logs/s, {:.0} bytes per log, ",
                total as f64 / seconds,
                bytes as f64 / total as f64
            )
        } else {
            String::new()
        };
        println!(
            "  {method}: {per_log}{:.2} ms and {:.0} bytes per block",
            seconds * 1e3 / head as f64,
            bytes as f64 / head as f64,
        );
    }
    Ok(())
}

/// One backfill's figures.
struct Backfill {
    /// Logs/s from process start until a consumer has read every record.
    readable_rate: f64,
    /// Logs/s from the ingestor's log saying how it proves completeness (the session's
    /// start, after start-up) to its log saying the head block was acknowledged.
    following_rate: Option<f64>,
    /// CPU seconds (user + system) the ingestor used, start-up included.
    ingestor_cpu: Option<f64>,
    /// CPU seconds the node used meanwhile.
    node_cpu: Option<f64>,
}

/// A config for one run: chain 31337 at `anvil`, its own topic and checkpoint topic.
fn run_config(brokers: &str, anvil: &Anvil, label: &str, start: &str, proof: &str) -> String {
    let mut entry = ChainEntry::new(CHAIN_ID, anvil.ws_url());
    entry.start_block = start.to_owned();
    entry.extra.push(format!("topic = \"{}\"", topic(label)));
    entry.extra.push(format!("proof = \"{proof}\""));
    config_toml(brokers, &[entry], "").replace(
        "[kafka]\n",
        &format!("[kafka]\ncheckpoint_topic = \"completeness.{label}.checkpoints\"\n"),
    )
}

fn topic(label: &str) -> String {
    format!("completeness.{label}.{CHAIN_ID}")
}

/// How the ingestor said it proves completeness, and when.
fn proof_line(log: &str) -> Option<(&str, SystemTime)> {
    let line = log
        .lines()
        .find(|l| l.contains("log completeness proven from"))?;
    let (_, rest) = line.split_once("source=\"")?;
    let (source, _) = rest.split_once('"')?;
    Some((source, logged_at(line)?))
}

/// Answers the ingestor refused (and asked again).
fn refused(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("node answer rejected"))
        .count()
}

/// The ingestor from block 0 into a fresh topic, under `proof`.
#[allow(clippy::too_many_arguments)]
fn backfill(
    ingestor: &Path,
    dir: &Path,
    brokers: &str,
    anvil: &Anvil,
    head: u64,
    total: usize,
    label: &str,
    proof: &str,
) -> anyhow::Result<Backfill> {
    let run_dir = dir.join(format!("completeness-{label}"));
    std::fs::create_dir_all(&run_dir)?;
    let toml = run_config(brokers, anvil, label, "0", proof);
    let node_cpu0 = crate::proc::cpu_seconds(anvil.process.pid());
    let started = Instant::now();
    let mut service = Service::start(
        ingestor,
        &run_dir,
        &toml,
        &[("RUST_LOG", "warn,ingestor::events=debug")],
    )?;
    let mut reader =
        TopicReader::with_options(brokers, &topic(label), &[("fetch.wait.max.ms", "10")])?;
    let mut records = Vec::with_capacity(total);
    reader.read_until(&mut records, Duration::from_secs(1800), |r| {
        r.len() >= total
    })?;
    let readable_s = started.elapsed().as_secs_f64();
    let ingestor_cpu = crate::proc::cpu_seconds(service.process.pid());
    let node_cpu = crate::proc::cpu_seconds(anvil.process.pid())
        .zip(node_cpu0)
        .map(|(now, before)| now - before);
    reader.read_to_end(&mut records, Duration::from_secs(60))?;
    ensure!(
        records.len() == total,
        "topic holds {} records, expected {total}",
        records.len()
    );
    service.stop(Duration::from_secs(60))?;
    let log = service.process.log_text();
    let source = proof_line(&log);
    let last_ack = delivered(&log, &format!("chain-{CHAIN_ID}"), head).and_then(logged_at);
    let following_s = source
        .zip(last_ack)
        .and_then(|((_, from), to)| to.duration_since(from).ok())
        .map(|d| d.as_secs_f64());
    let b = Backfill {
        readable_rate: total as f64 / readable_s,
        following_rate: following_s.map(|s| total as f64 / s),
        ingestor_cpu,
        node_cpu,
    };
    let cpu = |s: Option<f64>| s.map_or("?".into(), |s| format!("{s:.2} s"));
    println!(
        "backfill, proof {proof} ({}, completeness from: {}): {total} logs readable {readable_s:.2} s after process start = {:.0} logs/s; following -> last ack {} = {}; CPU: ingestor {}, node {}{}",
        if proof == "none" {
            "ranged eth_getLogs + headers"
        } else {
            "headers, then eth_getBlockReceipts"
        },
        source.map_or("?", |(s, _)| s),
        b.readable_rate,
        following_s.map_or("?".into(), |s| format!("{s:.2} s")),
        b.following_rate
            .map_or("?".into(), |r| format!("{r:.0} logs/s")),
        cpu(b.ingestor_cpu),
        cpu(b.node_cpu),
        match refused(&log) {
            0 => String::new(),
            n => format!("; {n} answers refused and asked again"),
        }
    );
    Ok(b)
}

/// Live latency of `blocks` blocks of the saturated shape, under `proof`: from
/// the `anvil_mine` call to a `read_committed` consumer reading the block's first record,
/// and to the ingestor's log saying the broker acknowledged all of them.
#[allow(clippy::too_many_arguments)]
fn live(
    ingestor: &Path,
    dir: &Path,
    brokers: &str,
    anvil: &Anvil,
    sender: &mut Sender,
    traffic: &mut TokenLogs,
    blocks: usize,
    proof: &str,
) -> anyhow::Result<()> {
    if blocks == 0 {
        return Ok(());
    }
    let label = format!("live-{}", proof.replace('_', "-"));
    let run_dir = dir.join(format!("completeness-{label}"));
    std::fs::create_dir_all(&run_dir)?;
    let toml = run_config(brokers, anvil, &label, "\"latest\"", proof);
    let mut service = Service::start(
        ingestor,
        &run_dir,
        &toml,
        &[("RUST_LOG", "warn,ingestor::events=debug")],
    )?;
    let node = anvil.node();
    let c = consumer(brokers, &topic(&label))?;
    // Warm-up: blocks until one reaches the topic (the service may start after the first).
    let mut warm = false;
    for _ in 0..5 {
        sender.block(&traffic.block(LOGS_PER_BLOCK, TXS_PER_BLOCK))?;
        if until(&c, Duration::from_secs(10), |_| true).is_ok() {
            warm = true;
            break;
        }
    }
    ensure!(warm, "no live record after 5 blocks");
    while c.poll(Duration::from_millis(100)).is_some() {}
    let mut first = Vec::with_capacity(blocks);
    let mut starts = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        for tx in traffic.block(LOGS_PER_BLOCK, TXS_PER_BLOCK) {
            sender.send_logs(&tx)?;
        }
        let number = node.head()? + 1;
        let wall0 = SystemTime::now();
        let t0 = Instant::now();
        node.mine(1)?;
        starts.push((number, wall0));
        let seen = until(&c, Duration::from_secs(30), |p| {
            block_number(p) == Some(number)
        })?;
        first.push(seen.duration_since(t0).as_secs_f64() * 1e3);
        // The block's other records, before the next block.
        while c.poll(Duration::from_millis(20)).is_some() {}
    }
    service.stop(Duration::from_secs(60))?;
    let log = service.process.log_text();
    let chain = format!("chain-{CHAIN_ID}");
    let acked: Vec<f64> = starts
        .iter()
        .filter_map(|(number, wall0)| {
            let at = logged_at(delivered(&log, &chain, *number)?)?;
            Some(at.duration_since(*wall0).ok()?.as_secs_f64() * 1e3)
        })
        .collect();
    // Of that, the producer's share: first record enqueued to last acknowledged.
    let produced: Vec<f64> = starts
        .iter()
        .filter_map(|(number, _)| {
            delivered(&log, &chain, *number)?
                .split_whitespace()
                .find_map(|f| f.strip_prefix("produce_ms="))?
                .parse()
                .ok()
        })
        .collect();
    println!(
        "live latency, proof {proof} (completeness from: {}), blocks of {LOGS_PER_BLOCK} logs, anvil_mine -> first record readable: {}",
        proof_line(&log).map_or("?", |(s, _)| s),
        summary(first)
    );
    if !acked.is_empty() {
        println!(
            "  -> the ingestor logged every record of the block acknowledged: {}",
            summary(acked)
        );
    }
    if !produced.is_empty() {
        println!(
            "  of which first record enqueued -> last acknowledged: {}",
            summary(produced)
        );
    }
    if refused(&log) > 0 {
        println!("  {} answers refused and asked again", refused(&log));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_logs_are_transfer_shaped_and_split_per_transaction() {
        let mut t = TokenLogs::new(1, 100);
        let block = t.block(10, 3);
        assert_eq!(block.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 2]);
        for log in block.iter().flatten() {
            assert_eq!(log.topics.len(), 3);
            assert!(log.topics[0] == t.events[0] || log.topics[0] == t.events[1]);
            assert!(log.topics[1][..12].iter().all(|b| *b == 0));
            assert_eq!(log.data.len(), 32);
        }
    }

    #[test]
    fn bloom_fill_counts_set_bits() {
        let block = json!({"logsBloom": format!("0x0f{}", "00".repeat(254) + "ff")});
        let fill = bloom_fill(&block).expect("valid");
        assert!((fill - 12.0 / 2048.0).abs() < 1e-12);
    }
}
