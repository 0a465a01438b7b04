//! `devstack bench --failover`: group mode measured. Six anvil chains with live traffic
//! (a block every 200 ms), Apache Kafka, and the ingestor in exactly-once group mode:
//! - **steady-state cost**: one instance following the six chains for a minute, without
//!   and with `[group]`: CPU seconds and peak resident memory;
//! - **failover**: three instances; the one owning the most chains is killed (`kill -9`);
//!   for each chain it owned, the time from the kill to the first record of a block mined
//!   after the kill readable by a `read_committed` consumer (so surely the new owner's);
//! - **hand-over on SIGTERM**: the same for an instance stopped with SIGTERM.
//!
//! Each figure is printed next to the session timeout. Asserts nothing.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::anvil::Anvil;
use crate::consumer::TopicReader;
use crate::kafka::Kafka;
use crate::proc::{cpu_seconds, wait_for};
use crate::service::{ChainEntry, Service, config_toml};
use crate::traffic::{LogShapes, Sender};

const CHAINS: u64 = 6;
/// How long the steady state is measured.
const STEADY: Duration = Duration::from_secs(60);
/// Time allowed for joins, rebalances and hand-overs.
const SETTLE: Duration = Duration::from_secs(180);
const ENV: &[(&str, &str)] = &[
    ("INGESTOR_KAFKA__TRANSACTIONAL", "true"),
    ("INGESTOR_HEALTH__ENABLED", "false"),
    ("RUST_LOG", "info"),
];

/// `field` (`VmHWM:`, the peak resident set, or `VmRSS:`, the current one) of `pid`, in KiB.
fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The chains an instance owns, from its `chain assigned` / `chain released` / `chain lost`
/// lines.
fn owned(log: &str) -> BTreeSet<String> {
    let mut owned = BTreeSet::new();
    for line in log.lines() {
        let Some(chain) = line
            .split_once("chain=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name.to_owned())
        else {
            continue;
        };
        if line.contains("chain assigned") {
            owned.insert(chain);
        } else if line.contains("chain released") || line.contains("chain lost to another") {
            owned.remove(&chain);
        }
    }
    owned
}

struct Bench {
    ingestor: std::path::PathBuf,
    kafka: Kafka,
    anvils: Vec<Anvil>,
    dir: tempfile::TempDir,
    session_timeout_ms: u64,
}

impl Bench {
    fn toml(&self, group: bool) -> String {
        let entries: Vec<ChainEntry> = self
            .anvils
            .iter()
            .map(|a| ChainEntry::new(a.chain_id, a.ws_url()))
            .collect();
        let mut toml = config_toml(&self.kafka.brokers(), &entries, "");
        if group {
            toml.push_str(&format!(
                "\n[group]\nid = \"bench\"\nsession_timeout_ms = {}\n",
                self.session_timeout_ms
            ));
        }
        toml
    }

    fn instance(&self, name: &str, group: bool) -> anyhow::Result<Service> {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir)?;
        Service::start(&self.ingestor, &dir, &self.toml(group), ENV)
    }

    /// CPU seconds over [`STEADY`] of one instance, once every chain resumed, its resident
    /// memory at the end and its peak (KiB).
    fn steady(&self, name: &str, group: bool) -> anyhow::Result<(f64, u64, u64)> {
        let mut s = self.instance(name, group)?;
        wait_for("every chain resumed", SETTLE, || {
            (s.process.log_text().matches("resuming chain").count() >= CHAINS as usize)
                .then_some(())
        })?;
        let pid = s.process.pid();
        let before = cpu_seconds(pid).unwrap_or_default();
        std::thread::sleep(STEADY); // the measured window
        let cpu = cpu_seconds(pid).unwrap_or_default() - before;
        let rss = pid
            .and_then(|p| memory_kib(p, "VmRSS:"))
            .unwrap_or_default();
        let peak = pid
            .and_then(|p| memory_kib(p, "VmHWM:"))
            .unwrap_or_default();
        s.stop(Duration::from_secs(60))?;
        Ok((cpu, rss, peak))
    }

    /// Seconds from `signal` on the instance owning `chains` to a block mined after it
    /// being readable on each chain's topic.
    fn hand_over(
        &self,
        victim: &mut Service,
        signal: i32,
        chains: &BTreeSet<String>,
    ) -> anyhow::Result<Vec<(String, f64)>> {
        let mut readers = Vec::new();
        for chain in chains {
            let id: u64 = chain.trim_start_matches("chain-").parse()?;
            let anvil = self
                .anvils
                .iter()
                .find(|a| a.chain_id == id)
                .ok_or_else(|| anyhow::anyhow!("no chain {id}"))?;
            let mut reader = TopicReader::new(&self.kafka.brokers(), &format!("evm.logs.{id}"))?;
            reader.read_to_end(&mut Vec::new(), SETTLE)?;
            readers.push((chain.clone(), anvil.node(), reader));
        }
        let heads: Vec<u64> = readers
            .iter()
            .map(|(_, node, _)| node.head())
            .collect::<anyhow::Result<_>>()?;
        let at = Instant::now();
        victim.process.signal(signal);
        std::thread::scope(|scope| {
            let waits: Vec<_> = readers
                .into_iter()
                .zip(heads)
                .map(|((chain, _, mut reader), head)| {
                    scope.spawn(move || -> anyhow::Result<(String, f64)> {
                        loop {
                            if at.elapsed() > SETTLE {
                                anyhow::bail!("{chain}: no new record after {SETTLE:?}");
                            }
                            let after = reader.poll()?.and_then(|r| r.log).is_some_and(|l| {
                                u64::try_from(l.block_number).is_ok_and(|b| b > head)
                            });
                            if after {
                                return Ok((chain, at.elapsed().as_secs_f64()));
                            }
                        }
                    })
                })
                .collect();
            waits
                .into_iter()
                .map(|w| {
                    w.join()
                        .map_err(|_| anyhow::anyhow!("reader thread panicked"))?
                })
                .collect()
        })
    }
}

/// Runs the group-mode benchmark with `session_timeout_ms`.
pub fn run(ingestor: &std::path::Path, session_timeout_ms: u64) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("ethhook-failover-")
        .tempdir()?;
    let kafka = Kafka::start_compiled(dir.path())?;
    let anvils: Vec<Anvil> = (0..CHAINS)
        .map(|i| Anvil::start(31337 + i, dir.path()))
        .collect::<anyhow::Result<_>>()?;
    let stop = Arc::new(AtomicBool::new(false));
    let traffic: Vec<_> = anvils
        .iter()
        .map(|a| {
            let (node, stop) = (a.node(), stop.clone());
            let seed = a.chain_id;
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut sender = Sender::new(node)?;
                let mut shapes = LogShapes::new(seed);
                while !stop.load(Ordering::SeqCst) {
                    sender.block(&[shapes.logs(4)])?;
                    std::thread::sleep(Duration::from_millis(200)); // the traffic's pace
                }
                Ok(())
            })
        })
        .collect();
    let bench = Bench {
        ingestor: ingestor.to_owned(),
        kafka,
        anvils,
        dir,
        session_timeout_ms,
    };
    let result = measure(&bench);
    stop.store(true, Ordering::SeqCst);
    for t in traffic {
        let _ = t.join();
    }
    result
}

fn measure(bench: &Bench) -> anyhow::Result<()> {
    // Two rounds, in both orders: a later run resumes from a longer topic.
    let per_min = 60.0 / STEADY.as_secs_f64();
    for (round, order) in [[false, true], [true, false]].into_iter().enumerate() {
        for group in order {
            let name = format!("{}{round}", if group { "grouped" } else { "plain" });
            let (cpu, rss, peak) = bench.steady(&name, group)?;
            let mode = if group {
                "with [group]"
            } else {
                "without [group]"
            };
            println!(
                "steady state, one instance, {CHAINS} chains (a block every 200 ms each), exactly-once, {mode}: {:.2} CPU s/min, resident {:.1} MiB after {} s (peak {:.1} MiB, at start-up's read-back)",
                cpu * per_min,
                rss as f64 / 1024.0,
                STEADY.as_secs(),
                peak as f64 / 1024.0
            );
        }
    }
    let mut instances: Vec<Service> = ["a", "b", "c"]
        .iter()
        .map(|n| bench.instance(n, true))
        .collect::<anyhow::Result<_>>()?;
    let spread = || -> Option<Vec<BTreeSet<String>>> {
        let owned: Vec<_> = instances
            .iter()
            .map(|s| owned(&s.process.log_text()))
            .collect();
        let total: usize = owned.iter().map(BTreeSet::len).sum();
        (total == CHAINS as usize && owned.iter().all(|o| !o.is_empty())).then_some(owned)
    };
    let owned_now = wait_for("the chains spread over three instances", SETTLE, spread)?;
    let victim = (0..3)
        .max_by_key(|&i| owned_now[i].len())
        .unwrap_or_default();
    let moved = owned_now[victim].clone();
    let mut dead = instances.remove(victim);
    let failover = bench.hand_over(&mut dead, libc::SIGKILL, &moved)?;
    let _ = dead.process.wait_exit(Duration::from_secs(30));
    for (chain, s) in &failover {
        println!(
            "failover, kill -9 -> first new record of {chain} readable (read_committed): {s:.2} s (session_timeout_ms = {session})",
            session = bench.session_timeout_ms
        );
    }
    let owned_now: Vec<_> = instances
        .iter()
        .map(|s| owned(&s.process.log_text()))
        .collect();
    let leaving = (0..instances.len())
        .max_by_key(|&i| owned_now[i].len())
        .unwrap_or_default();
    let handed = owned_now[leaving].clone();
    let mut stopping = instances.remove(leaving);
    let hand_over = bench.hand_over(&mut stopping, libc::SIGTERM, &handed)?;
    let _ = stopping.process.wait_exit(Duration::from_secs(60));
    for (chain, s) in &hand_over {
        println!(
            "hand-over, SIGTERM -> first new record of {chain} readable (read_committed): {s:.2} s"
        );
    }
    for mut s in instances {
        s.stop(Duration::from_secs(60))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::owned;

    #[test]
    fn ownership_follows_the_log_lines() {
        let log = r#"
x INFO chain assigned chain="chain-1" group="g"
x INFO chain assigned chain="chain-2" group="g"
x INFO chain released chain="chain-1" group="g" kind="revoked"
x WARN chain lost to another member: fenced chain="chain-2" group="g"
x INFO chain assigned chain="chain-3" group="g"
"#;
        assert_eq!(owned(log), ["chain-3".to_owned()].into());
    }
}
