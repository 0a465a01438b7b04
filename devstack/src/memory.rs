//! `devstack bench --memory`: the ingestor's peak resident memory following 4 live chains
//! with traffic while one of them also backfills `blocks` blocks of history. Prints the
//! peak (the kernel's `VmHWM`), asserts nothing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::anvil::Anvil;
use crate::consumer::TopicReader;
use crate::kafka::Kafka;
use crate::service::{ChainEntry, Service, config_toml};
use crate::traffic::{LogShapes, Sender};

/// `VmHWM` (peak resident set) of `pid`, in KiB.
fn peak_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Runs the memory benchmark: chain 1 has `blocks` blocks of `logs_per_block` logs.
pub fn run(ingestor: &std::path::Path, blocks: usize, logs_per_block: usize) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("ethhook-memory-")
        .tempdir()?;
    let kafka = Kafka::start_compiled(dir.path())?;
    let ids = [31337u64, 31338, 31339, 31340];
    let anvils: Vec<Anvil> = ids
        .iter()
        .map(|id| Anvil::start(*id, dir.path()))
        .collect::<anyhow::Result<_>>()?;
    let mut sender = Sender::new(anvils[0].node())?;
    let mut shapes = LogShapes::new(3);
    let per_tx = logs_per_block.clamp(1, 100);
    for _ in 0..blocks {
        let txs: Vec<_> = (0..logs_per_block.div_ceil(per_tx))
            .map(|_| shapes.logs(per_tx))
            .collect();
        sender.block(&txs)?;
    }
    let history = blocks * logs_per_block.div_ceil(per_tx) * per_tx;
    let entries: Vec<ChainEntry> = anvils
        .iter()
        .map(|a| ChainEntry::new(a.chain_id, a.ws_url()))
        .collect();
    let toml = config_toml(&kafka.brokers(), &entries, "");
    let run_dir = dir.path().join("ingestor");
    std::fs::create_dir_all(&run_dir)?;
    let started = Instant::now();
    let mut service = Service::start(ingestor, &run_dir, &toml, &[("RUST_LOG", "warn")])?;
    let pid = service
        .process
        .pid()
        .ok_or_else(|| anyhow::anyhow!("no pid"))?;

    // Live traffic on every chain (a block of a few logs every 250 ms) until the backfill
    // is readable, then 10 s more.
    let stop = AtomicBool::new(false);
    let backfilled = std::thread::scope(|scope| -> anyhow::Result<f64> {
        for (i, a) in anvils.iter().enumerate() {
            let (node, stop) = (a.node(), &stop);
            scope.spawn(move || -> anyhow::Result<()> {
                let mut sender = Sender::new(node)?;
                let mut shapes = LogShapes::new(100 + i as u64);
                while !stop.load(Ordering::SeqCst) {
                    sender.block(&[shapes.logs(5), shapes.logs(3)])?;
                    std::thread::sleep(Duration::from_millis(250));
                }
                Ok(())
            });
        }
        let mut reader = TopicReader::new(&kafka.brokers(), "evm.logs.31337")?;
        let mut records = Vec::new();
        let read = reader.read_until(&mut records, Duration::from_secs(900), |r| {
            r.len() >= history
        });
        let backfilled = started.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_secs(10));
        stop.store(true, Ordering::SeqCst);
        read?;
        Ok(backfilled)
    })?;
    let peak = peak_kib(pid).unwrap_or_default();
    service.stop(Duration::from_secs(60))?;
    println!(
        "memory: 4 live chains, chain 31337 backfilling {blocks} blocks x {logs_per_block} logs ({history} logs, readable after {backfilled:.1} s), then 10 s live: peak RSS {:.1} MiB",
        peak as f64 / 1024.0
    );
    Ok(())
}
