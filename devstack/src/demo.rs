//! `devstack up`: two anvil chains, Apache Kafka, the ingestor and a traffic source, with every
//! published record decoded and printed as it arrives. Ctrl-C stops it all cleanly.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rand::Rng;

use crate::anvil::Anvil;
use crate::consumer::{Record, TopicReader};
use crate::dataset_lines::Dataset;
use crate::kafka::Kafka;
use crate::node::Node;
use crate::service::{ChainEntry, Service, config_toml};
use crate::traffic::{LogShapes, Sender, Tx};

/// The demo chains: (name, chain id).
const CHAINS: [(&str, u64); 2] = [("devnet-a", 31337), ("devnet-b", 31338)];

/// The chain that publishes the blocks and transactions datasets too.
const ALL_DATASETS: u64 = 31337;

/// Runs the demo until Ctrl-C (or SIGTERM).
pub fn up(ingestor: &Path, block_interval: Duration) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;

    let dir = tempfile::Builder::new().prefix("ethhook-demo-").tempdir()?;
    eprintln!(
        "devstack: logs of every process in {}",
        dir.path().display()
    );
    let kafka = Kafka::start_compiled(dir.path())?;
    eprintln!("devstack: broker (Apache Kafka) on {}", kafka.brokers());
    let mut anvils = Vec::new();
    let mut entries = Vec::new();
    // Every chain also publishes ERC-20 `Transfer` and `Approval` decoded (to
    // evm.events.<id>.Transfer and .Approval), and ERC-721 `Transfer` (same signature hash)
    // to evm.events.<id>.NftTransfer.
    std::fs::write(dir.path().join("erc20.json"), crate::traffic::ERC20_ABI)?;
    std::fs::write(dir.path().join("erc721.json"), crate::traffic::ERC721_ABI)?;
    for (name, id) in CHAINS {
        let anvil = Anvil::start(id, dir.path())?;
        eprintln!("devstack: chain {name} (id {id}) on {}", anvil.ws_url());
        let mut entry = ChainEntry::new(id, anvil.ws_url());
        entry.name = name.into();
        if id == ALL_DATASETS {
            entry
                .extra
                .push(r#"datasets = ["logs", "blocks", "transactions"]"#.into());
        }
        entry.extra.extend([
            "[[chains.events]]".into(),
            "abi = \"erc20.json\"".into(),
            "names = [\"Transfer\", \"Approval\"]".into(),
            "[[chains.events]]".into(),
            "abi = \"erc721.json\"".into(),
            format!("topic = \"evm.events.{id}.NftTransfer\""),
        ]);
        entries.push(entry);
        anvils.push(anvil);
    }
    let toml = config_toml(&kafka.brokers(), &entries, "shutdown_timeout_ms = 15000");
    let mut service = Service::start(ingestor, dir.path(), &toml, &[])?;
    let event_topics = crate::events::topics(ingestor, &service.config)?;
    eprintln!(
        "devstack: ingestor running with {} (its log: ingestor.log)",
        service.config.display()
    );
    eprintln!("devstack: printing every record as it arrives; Ctrl-C stops everything\n");

    std::thread::scope(|s| -> anyhow::Result<()> {
        for (seed, anvil) in anvils.iter().enumerate() {
            let stop = &stop;
            s.spawn(move || traffic(anvil, seed as u64, block_interval, stop));
        }
        for (name, id) in CHAINS {
            let (stop, brokers) = (&stop, kafka.brokers());
            s.spawn(move || tail(&brokers, name, id, stop));
        }
        let name = CHAINS
            .iter()
            .find(|(_, id)| *id == ALL_DATASETS)
            .map(|c| c.0);
        for dataset in [Dataset::Blocks, Dataset::Transactions] {
            let (stop, brokers) = (&stop, kafka.brokers());
            let name = name.unwrap_or("devnet");
            s.spawn(move || {
                crate::dataset_lines::tail(&brokers, name, ALL_DATASETS, dataset, stop)
            });
        }
        for t in &event_topics {
            let (stop, brokers) = (&stop, kafka.brokers());
            s.spawn(move || crate::events::tail(&brokers, t, stop));
        }
        while !stop.load(Ordering::SeqCst) {
            if !service.process.is_running() {
                stop.store(true, Ordering::SeqCst);
                anyhow::bail!("the ingestor exited:\n{}", service.process.log_tail(20));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    })?;
    eprintln!("\ndevstack: stopping the ingestor (it flushes in-flight records)...");
    let code = service.stop(Duration::from_secs(30))?;
    eprintln!("devstack: ingestor exited with {code:?}; stopping the broker and the chains");
    Ok(())
}

/// Mines a block every `interval`: mostly a few transactions of varied logs (one block in
/// two with a token event too: an ERC-20 `Transfer` or `Approval`, or an ERC-721
/// `Transfer`), sometimes an empty block, a block of many logs, or a block of transactions
/// that log nothing (transfers, a reverted creation, a call), and now and then a
/// reorganisation of the last 2 blocks (the output then shows the tombstones that retract
/// them).
fn traffic(anvil: &Anvil, seed: u64, interval: Duration, stop: &AtomicBool) {
    traffic_loop(&anvil.node(), anvil.chain_id, seed, interval, stop);
}

/// Mines a block with varied logs every `interval` on the anvil at `node` (now and then
/// reorganising its last 2 blocks) until `stop`. Used by the demo and by `devstack
/// traffic` (the compose stack's traffic source).
pub fn traffic_loop(node: &Node, chain_id: u64, seed: u64, interval: Duration, stop: &AtomicBool) {
    let Ok(mut sender) = Sender::new(node.clone()) else {
        eprintln!("devstack: chain {chain_id}: the node does not answer");
        return;
    };
    let mut shapes = LogShapes::new(seed);
    let mut rng = rand::rng();
    while !stop.load(Ordering::SeqCst) {
        if rng.random_range(0..25) == 0 && node.head().unwrap_or(0) > 4 {
            let branch = [shapes.logs(2), shapes.logs(1)];
            let reorged = crate::traffic::reorg_with_logs(node, 2, &branch)
                .and_then(|()| Sender::new(node.clone()));
            match reorged {
                Ok(s) => {
                    eprintln!("devstack: chain {chain_id}: reorganised the last 2 blocks");
                    sender = s;
                }
                Err(e) => eprintln!("devstack: reorg on chain {chain_id}: {e:#}"),
            }
        }
        // One block in ten of transactions that log nothing: transfers, a call, a revert.
        if rng.random_range(0..10) == 0 {
            let quiet = [Tx::Transfer, Tx::Reverted, Tx::QuietCall];
            if let Err(e) = sender.mixed_block(&quiet) {
                if !stop.load(Ordering::SeqCst) {
                    eprintln!("devstack: traffic on chain {chain_id}: {e:#}");
                }
                return;
            }
            std::thread::sleep(interval);
            continue;
        }
        let mut txs: Vec<_> = match rng.random_range(0..10) {
            0 => vec![],
            1 => vec![shapes.logs(60), shapes.logs(40)],
            _ => (0..rng.random_range(1..=3))
                .map(|_| shapes.logs(rng.random_range(1..=5)))
                .collect(),
        };
        // Now and then a token event, which a configured ABI decodes.
        if rng.random_range(0..2) == 0 {
            txs.push(vec![shapes.token_event()]);
        }
        if let Err(e) = sender.block(&txs) {
            if !stop.load(Ordering::SeqCst) {
                eprintln!("devstack: traffic on chain {chain_id}: {e:#}");
            }
            return;
        }
        std::thread::sleep(interval);
    }
}

fn tail(brokers: &str, name: &str, chain_id: u64, stop: &AtomicBool) {
    let mut reader = match TopicReader::new(brokers, &format!("evm.logs.{chain_id}")) {
        Ok(r) => r,
        Err(e) => return eprintln!("devstack: cannot read evm.logs.{chain_id}: {e:#}"),
    };
    while !stop.load(Ordering::SeqCst) {
        match reader.poll() {
            Ok(Some(record)) => {
                let line = render(name, &record);
                let _ = writeln!(std::io::stdout().lock(), "{line}");
            }
            Ok(None) => {}
            Err(e) => eprintln!("devstack: undecodable record on evm.logs.{chain_id}: {e:#}"),
        }
    }
}

/// `0x5fbdb2…0aa3` for a long hex string.
pub fn short(hex: &str) -> String {
    if hex.len() <= 14 {
        hex.to_owned()
    } else {
        format!("{}…{}", &hex[..8], &hex[hex.len() - 4..])
    }
}

/// One record as a line a person can read.
pub fn render(chain: &str, r: &Record) -> String {
    let Some(log) = &r.log else {
        return format!("[{chain}] tombstone {}", r.key);
    };
    let when = UNIX_EPOCH + Duration::from_millis(log.block_timestamp_ms.max(0) as u64);
    let when = humantime::format_rfc3339_seconds(
        when.min(SystemTime::now() + Duration::from_secs(86_400 * 365)),
    );
    let topics: Vec<_> = log.topics.iter().map(|t| short(t)).collect();
    format!(
        "[{chain}] block {:>5} {}  {}  tx {} #{:<2} log {:<3} from {}  topics {} [{}]  data {} B  (offset {})",
        log.block_number,
        short(&log.block_hash),
        when,
        short(&log.transaction_hash),
        log.transaction_index,
        log.log_index,
        short(&log.address),
        log.topics.len(),
        topics.join(", "),
        log.data.len(),
        r.offset,
    )
}
