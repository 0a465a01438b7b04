//! `devstack bench`: builds a chain of N blocks x M logs on anvil, then measures in one run
//! the node's own ranged `eth_getLogs` rate (the limit) and the ingestor's rate from process
//! start until the broker stores every record. Prints numbers, asserts nothing.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, ensure};

use crate::anvil::Anvil;
use crate::consumer::TopicReader;
use crate::kafka::Kafka;
use crate::service::{ChainEntry, Service, config_toml};
use crate::traffic::{LogSpec, Sender};

/// Benchmark parameters.
#[derive(Debug, Clone)]
pub struct Params {
    /// Blocks with logs.
    pub blocks: u64,
    /// Logs per block.
    pub logs_per_block: usize,
    /// Logs per transaction.
    pub logs_per_tx: usize,
    /// Blocks per ranged request of the node measurement (the ingestor uses its defaults).
    pub range_blocks: u64,
    /// Also measure the ingestor exporting OTLP to a collector that is down (a closed
    /// loopback port), after the run without telemetry.
    pub dead_collector: bool,
    /// Also run the ingestor decoding every log as an ERC-20 `Transfer` onto a topic of its
    /// own, next to the chain topic and instead of it (`raw = false`), against a raw-only
    /// run: `rounds` rounds of the three, rotating which goes first.
    pub decoded: bool,
    /// Also run the ingestor publishing the `blocks` and `transactions` datasets beside the
    /// logs, against a logs-only run: `rounds` rounds of the two, alternating which goes
    /// first.
    pub datasets: bool,
    /// With `decoded` or `datasets`: rounds of runs.
    pub rounds: usize,
    /// Instead of the above: the cost of the log completeness check on a chain of
    /// saturated blooms (`--completeness`), against the same broker.
    pub completeness: Option<crate::completeness::Params>,
}

/// An ERC-20 `Transfer` (its signature hash, two indexed addresses, the amount as 32 bytes
/// of data) between two of 251 and 241 accounts: the ERC-20 ABI decodes every one.
pub fn transfer_like(i: usize) -> LogSpec {
    let mut t = [[0u8; 32]; 3];
    t[0] = crate::traffic::TRANSFER_SELECTOR;
    t[1][31] = (i % 251) as u8;
    t[2][30] = (i % 241) as u8;
    LogSpec {
        topics: t.to_vec(),
        data: (i as u64).to_be_bytes().repeat(4),
    }
}

/// A run's throughput and the CPU time it took.
#[derive(Debug, Clone, Copy)]
struct Rate {
    /// Logs per second of wall-clock time.
    logs_per_s: f64,
    /// CPU seconds (user + system) of the measured process, when known.
    cpu_s: Option<f64>,
}

/// Which topics a run publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topics {
    /// The chain topic only.
    Raw,
    /// The chain topic, and every log decoded onto the `Transfer` topic.
    Decoded,
    /// The `Transfer` topic only (`raw = false`).
    DecodedOnly,
    /// The chain topic, and the `blocks` and `transactions` datasets' topics.
    Datasets,
}

impl Topics {
    fn raw(self) -> bool {
        self != Self::DecodedOnly
    }

    fn decoded(self) -> bool {
        matches!(self, Self::Decoded | Self::DecodedOnly)
    }
}

/// CPU seconds per 1,000 logs.
fn per_thousand(cpu_s: f64, logs: usize) -> f64 {
    cpu_s * 1000.0 / logs as f64
}

/// Runs the benchmark and prints a report.
pub fn run(ingestor: &Path, p: &Params) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("ethhook-bench-")
        .disable_cleanup(crate::proc::keep_test_dirs())
        .tempdir()?;
    if crate::proc::keep_test_dirs() {
        eprintln!(
            "bench: every process's files are kept in {}",
            dir.path().display()
        );
    }
    let kafka = Kafka::start_compiled(dir.path())?;
    if let Some(c) = &p.completeness {
        return crate::completeness::run(ingestor, dir.path(), &kafka.brokers(), c);
    }
    let anvil = Anvil::start(31337, dir.path())?;
    let node = anvil.node();
    let mut sender = Sender::new(node.clone())?;

    let started = Instant::now();
    let block: Vec<Vec<LogSpec>> = (0..p.logs_per_block)
        .map(transfer_like)
        .collect::<Vec<_>>()
        .chunks(p.logs_per_tx)
        .map(<[LogSpec]>::to_vec)
        .collect();
    for b in 0..p.blocks {
        sender.block(&block)?;
        if (b + 1) % 50 == 0 {
            eprintln!("bench: built {} of {} blocks", b + 1, p.blocks);
        }
    }
    let head = node.head()?;
    let total = p.blocks as usize * p.logs_per_block;
    let transactions = (0..=head)
        .map(|n| {
            Ok(node.block(n)?["transactions"]
                .as_array()
                .map_or(0, Vec::len))
        })
        .sum::<anyhow::Result<usize>>()?;
    println!(
        "chain: {} blocks x {} logs = {total} logs in {transactions} transactions, built in {:.1} s",
        p.blocks,
        p.logs_per_block,
        started.elapsed().as_secs_f64()
    );

    // The node's own rate: ranged eth_getLogs over the whole chain, from 1 client and from
    // 4 concurrent ones (each taking the next range).
    let node_1 = node_rate(&node, head, p.range_blocks, 1, total)?;
    let node_4 = node_rate(&node, head, p.range_blocks, 4, total)?;
    for (clients, rate) in [(1, node_1), (4, node_4)] {
        println!(
            "node eth_getLogs, {clients} client(s): {rate:.0} logs/s (ranges of {} blocks, HTTP)",
            p.range_blocks
        );
    }
    let cryo = cryo_rate(&anvil, head, total)?;

    let chain = BenchChain {
        ingestor,
        dir: dir.path(),
        kafka: &kafka,
        anvil: &anvil,
        head,
        total,
        transactions,
    };
    let plain = chain.ingest("plain", &[], Topics::Raw)?;
    println!(
        "ratio ingestor/node: {:.2} (1 client), {:.2} (4 clients){}",
        plain.logs_per_s / node_1,
        plain.logs_per_s / node_4,
        cryo.map(|c| format!(", {:.2} (cryo)", plain.logs_per_s / c.logs_per_s))
            .unwrap_or_default()
    );
    if let (Some(ours), Some(theirs)) = (plain.cpu_s, cryo.and_then(|c| c.cpu_s)) {
        println!(
            "CPU per 1,000 logs: ingestor {:.3} s (start-up included), cryo {:.3} s; ingestor/cryo {:.2}",
            per_thousand(ours, total),
            per_thousand(theirs, total),
            ours / theirs
        );
    }
    if p.decoded {
        decoded_runs(&chain, p.rounds)?;
    }
    if p.datasets {
        dataset_runs(&chain, p.rounds)?;
    }
    if p.dead_collector {
        // The same export settings against a collector that accepts everything, then
        // against one that is down (a closed loopback port).
        let up = format!("http://127.0.0.1:{}", discarding_collector()?);
        let dead = format!("http://127.0.0.1:{}", crate::proc::free_port()?);
        let mut rates = Vec::new();
        for (label, endpoint) in [("collector-up", &up), ("collector-down", &dead)] {
            let env = [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "1000"),
            ];
            rates.push(chain.ingest(label, &env, Topics::Raw)?);
        }
        let (live, down) = (rates[0].logs_per_s, rates[1].logs_per_s);
        println!(
            "ratio collector up / no telemetry: {:.2}",
            live / plain.logs_per_s
        );
        println!("ratio collector down / collector up: {:.2}", down / live);
    }
    Ok(())
}

/// `rounds` rounds of three runs, raw only, decoded (both topics) and decoded only (`raw =
/// false`), rotating which goes first; prints each round's ratios to the raw-only run and
/// the ratios of the medians. They follow the `plain` run, which warms the broker (its JIT
/// compiler works through the first run), and do not reuse it.
fn decoded_runs(chain: &BenchChain<'_>, rounds: usize) -> anyhow::Result<()> {
    const KINDS: [(Topics, &str); 3] = [
        (Topics::Raw, "raw"),
        (Topics::Decoded, "decoded"),
        (Topics::DecodedOnly, "decoded-only"),
    ];
    let mut runs: Vec<[Rate; 3]> = Vec::new();
    for round in 1..=rounds.max(1) {
        let mut got: [Option<Rate>; 3] = [None, None, None];
        for k in 0..KINDS.len() {
            let i = (k + round - 1) % KINDS.len();
            let (topics, name) = KINDS[i];
            got[i] = Some(chain.ingest(&format!("{name}-{round}"), &[], topics)?);
        }
        let [Some(raw), Some(decoded), Some(only)] = got else {
            anyhow::bail!("round {round}: a run is missing");
        };
        println!(
            "round {round}: decoded / raw only {:.2}; decoded only / raw only {:.2}",
            decoded.logs_per_s / raw.logs_per_s,
            only.logs_per_s / raw.logs_per_s
        );
        runs.push([raw, decoded, only]);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let rate = |i: usize| median(runs.iter().map(|r| r[i].logs_per_s).collect());
    let (raw, decoded, only) = (rate(0), rate(1), rate(2));
    println!(
        "decoded / raw only: {:.2} (medians over {} rounds: {decoded:.0} / {raw:.0} logs/s; the target is 0.8 or more)",
        decoded / raw,
        runs.len()
    );
    println!(
        "decoded only (raw = false) / raw only: {:.2} ({only:.0} / {raw:.0} logs/s)",
        only / raw
    );
    let cpu = |i: usize| {
        runs.iter()
            .map(|r| r[i].cpu_s)
            .collect::<Option<Vec<f64>>>()
            .map(|v| per_thousand(median(v), chain.total))
    };
    if let (Some(raw_cpu), Some(decoded_cpu), Some(only_cpu)) = (cpu(0), cpu(1), cpu(2)) {
        println!(
            "CPU s per 1,000 logs, medians: raw only {raw_cpu:.3}, decoded {decoded_cpu:.3}, decoded only {only_cpu:.3}; decoded / raw only {:.2}",
            decoded_cpu / raw_cpu
        );
    }
    Ok(())
}

/// `rounds` rounds of two runs, logs only and all three datasets (`logs`, `blocks`,
/// `transactions`), alternating which goes first; prints each round's ratio and the ratio
/// of the medians, in logs per second, and CPU per 1,000 logs. Like [`decoded_runs`], they
/// follow the `plain` run and do not reuse it.
fn dataset_runs(chain: &BenchChain<'_>, rounds: usize) -> anyhow::Result<()> {
    node_block_costs(&chain.anvil.node(), chain.head)?;
    let mut runs: Vec<[Rate; 2]> = Vec::new();
    for round in 1..=rounds.max(1) {
        let order = match round % 2 {
            1 => [Topics::Raw, Topics::Datasets],
            _ => [Topics::Datasets, Topics::Raw],
        };
        let mut got = [None, None];
        for kind in order {
            let (i, name) = match kind {
                Topics::Datasets => (1, "datasets"),
                _ => (0, "logs-only"),
            };
            got[i] = Some(chain.ingest(&format!("{name}-{round}"), &[], kind)?);
        }
        let [Some(logs), Some(all)] = got else {
            anyhow::bail!("round {round}: a run is missing");
        };
        println!(
            "round {round}: all three datasets / logs only {:.2}",
            all.logs_per_s / logs.logs_per_s
        );
        runs.push([logs, all]);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (v[(n - 1) / 2] + v[n / 2]) / 2.0
    };
    let rate = |i: usize| median(runs.iter().map(|r| r[i].logs_per_s).collect());
    let (logs, all) = (rate(0), rate(1));
    println!(
        "all three datasets / logs only: {:.2} (medians over {} rounds: {all:.0} / {logs:.0} logs/s, {} transactions and {} blocks beside {} logs; the target is 0.6 or more)",
        all / logs,
        runs.len(),
        chain.transactions,
        chain.head + 1,
        chain.total
    );
    let cpu = |i: usize| {
        runs.iter()
            .map(|r| r[i].cpu_s)
            .collect::<Option<Vec<f64>>>()
            .map(|v| per_thousand(median(v), chain.total))
    };
    if let (Some(logs_cpu), Some(all_cpu)) = (cpu(0), cpu(1)) {
        println!(
            "CPU s per 1,000 logs, medians: logs only {logs_cpu:.3}, all three datasets {all_cpu:.3}; all / logs only {:.2}",
            all_cpu / logs_cpu
        );
    }
    Ok(())
}

/// What the node spends per block on what each dataset asks for, one request at a time
/// from one client, answers read as text: the receipts (the logs' proof, and the
/// transactions' outcomes), the header, and the body with full transaction objects.
fn node_block_costs(node: &crate::node::Node, head: u64) -> anyhow::Result<()> {
    // (what, method, full transaction objects: `None` for the receipts' one parameter)
    let asks = [
        ("receipts", "eth_getBlockReceipts", None),
        ("header", "eth_getBlockByNumber", Some(false)),
        (
            "body with full transactions",
            "eth_getBlockByNumber",
            Some(true),
        ),
    ];
    let mut line = Vec::new();
    for (label, method, full) in asks {
        let started = Instant::now();
        let mut bytes = 0;
        for n in 1..=head {
            let number = format!("{n:#x}");
            let params = match full {
                None => serde_json::json!([number]),
                Some(full) => serde_json::json!([number, full]),
            };
            bytes += node.call_text(method, params)?.len();
        }
        line.push(format!(
            "{label} {:.2} ms ({:.0} bytes)",
            started.elapsed().as_secs_f64() * 1e3 / head as f64,
            bytes as f64 / head as f64
        ));
    }
    println!("node, per block, 1 client: {}", line.join("; "));
    Ok(())
}

/// Logs per second of ranged `eth_getLogs` over `0..=head` from `clients` concurrent
/// clients, each taking the next range.
fn node_rate(
    node: &crate::node::Node,
    head: u64,
    range_blocks: u64,
    clients: usize,
    total: usize,
) -> anyhow::Result<f64> {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let next = AtomicU64::new(0);
    let fetched = AtomicUsize::new(0);
    let t = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let from = next.fetch_add(range_blocks, Ordering::SeqCst);
                        if from > head {
                            return Ok(());
                        }
                        let to = (from + range_blocks - 1).min(head);
                        fetched.fetch_add(node.logs(from, to)?.len(), Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
        }
        Ok(())
    })?;
    let seconds = t.elapsed().as_secs_f64();
    let fetched = fetched.into_inner();
    ensure!(
        fetched == total,
        "node returned {fetched} logs, expected {total}"
    );
    Ok(total as f64 / seconds)
}

/// cryo's rate over the same chain, into an in-memory dataframe (no broker), when
/// `CRYO_PYTHON` names a Python with cryo installed (`scripts/bench.sh` installs one with
/// `scripts/deps.sh cryo`).
fn cryo_rate(anvil: &Anvil, head: u64, total: usize) -> anyhow::Result<Option<Rate>> {
    let Some(python) = std::env::var_os("CRYO_PYTHON") else {
        println!("cryo: skipped (CRYO_PYTHON is not set; scripts/bench.sh sets it)");
        return Ok(None);
    };
    let script = format!(
        "import time, cryo\n\
         t, c = time.perf_counter(), time.process_time()\n\
         df = cryo.collect('logs', blocks=['0:{}'], rpc='http://127.0.0.1:{}', output_format='polars', no_verbose=True)\n\
         print(len(df), time.perf_counter() - t, time.process_time() - c)\n",
        head + 1,
        anvil.port
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .output()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        println!(
            "cryo: failed, no figure: {}",
            err.lines().last().unwrap_or_default()
        );
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    let (Some(rows), Some(seconds), Some(cpu)) = (words.next(), words.next(), words.next()) else {
        anyhow::bail!("cryo printed {text:?}");
    };
    let (rows, seconds, cpu): (usize, f64, f64) = (rows.parse()?, seconds.parse()?, cpu.parse()?);
    ensure!(
        rows == total,
        "cryo collected {rows} logs, expected {total}"
    );
    let rate = total as f64 / seconds;
    println!(
        "cryo 0.3.2 (in-memory dataframe, no broker): {rate:.0} logs/s, {:.3} CPU s per 1,000 logs",
        per_thousand(cpu, total)
    );
    Ok(Some(Rate {
        logs_per_s: rate,
        cpu_s: Some(cpu),
    }))
}

/// An OTLP/HTTP endpoint that answers 200 to every request and keeps nothing; returns its
/// port.
fn discarding_collector() -> anyhow::Result<u16> {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut out = stream;
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    loop {
                        line.clear();
                        reader.read_line(&mut line)?;
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())?;
                    out.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")?;
                }
            });
        }
    });
    Ok(port)
}

/// The chain every backfill run reads: the ingestor binary, the bench's folder, broker and
/// node, the chain's head and its number of logs.
struct BenchChain<'a> {
    ingestor: &'a Path,
    dir: &'a Path,
    kafka: &'a Kafka,
    anvil: &'a Anvil,
    head: u64,
    total: usize,
    /// Transactions in blocks `0..=head`.
    transactions: usize,
}

impl BenchChain<'_> {
    /// Runs the ingestor from block 0 into its own topic and checkpoint topic (with `decoded`,
    /// also decoding every ERC-20 `Transfer` onto a topic of its own); returns logs/s from
    /// process start until an independent consumer has read every record of every topic, and
    /// the CPU time the ingestor took. Also prints when its own log says the head block was
    /// delivered (every record of every block acknowledged by the broker).
    fn ingest(&self, label: &str, otel: &[(&str, &str)], kind: Topics) -> anyhow::Result<Rate> {
        let decoded = kind.decoded();
        let Self {
            ingestor,
            dir,
            kafka,
            anvil,
            head,
            total,
            transactions,
        } = *self;
        let topic = format!("bench.{label}.31337");
        let events_topic = format!("bench.{label}.31337.Transfer");
        let run_dir = dir.join(label);
        std::fs::create_dir_all(&run_dir)?;
        let mut entry = ChainEntry::new(31337, anvil.ws_url());
        entry.extra.push(format!("topic = \"{topic}\""));
        if !kind.raw() {
            entry.extra.push("raw = false".into());
        }
        // The datasets' topics and the records each must reach: a block per height from 0,
        // a transaction per transaction.
        let dataset_topics = match kind {
            Topics::Datasets => vec![
                (format!("{topic}.blocks"), head as usize + 1),
                (format!("{topic}.transactions"), transactions),
            ],
            _ => Vec::new(),
        };
        if kind == Topics::Datasets {
            entry.extra.extend([
                r#"datasets = ["logs", "blocks", "transactions"]"#.to_owned(),
                format!("blocks_topic = \"{}\"", dataset_topics[0].0),
                format!("transactions_topic = \"{}\"", dataset_topics[1].0),
            ]);
        }
        if decoded {
            std::fs::write(run_dir.join("erc20.json"), crate::traffic::ERC20_ABI)?;
            entry.extra.extend([
                "[[chains.events]]".into(),
                "abi = \"erc20.json\"".into(),
                "names = [\"Transfer\"]".into(),
                format!("topic = \"{events_topic}\""),
            ]);
        }
        let toml = config_toml(&kafka.brokers(), &[entry], "").replace(
            "[kafka]\n",
            &format!("[kafka]\ncheckpoint_topic = \"bench.{label}.checkpoints\"\n"),
        );
        let mut env = vec![("RUST_LOG", "warn,ingestor::events=debug")];
        env.extend_from_slice(otel);
        let started_at = SystemTime::now();
        let started = Instant::now();
        let mut service = Service::start(ingestor, &run_dir, &toml, &env)?;
        // Timed: until independent consumers have read every record of every topic (the
        // decoded topic's on a thread of its own). Values are decoded after the clock stops,
        // so that the readers take no more CPU from the service than reading does.
        let brokers = kafka.brokers();
        let options = [("fetch.wait.max.ms", "10")];
        let (readable_s, records, events) = std::thread::scope(|s| -> anyhow::Result<_> {
            // Each dataset topic on a thread of its own, counted to its number of records
            // (a replaced record would only be counted once more: none is, on this chain).
            let datasets: Vec<_> = dataset_topics
                .iter()
                .map(|(t, want)| {
                    let (brokers, want) = (&brokers, *want);
                    s.spawn(move || -> anyhow::Result<f64> {
                        let mut reader =
                            TopicReader::with_options(brokers, t, &options)?.undecoded();
                        let mut records = Vec::with_capacity(want);
                        reader.read_until(&mut records, Duration::from_secs(1800), |r| {
                            r.len() >= want
                        })?;
                        let readable_s = started.elapsed().as_secs_f64();
                        reader.read_to_end(&mut records, Duration::from_secs(60))?;
                        ensure!(
                            records.len() == want && records.iter().all(|r| r.raw.is_some()),
                            "{t} holds {} records, expected {want}",
                            records.len()
                        );
                        Ok(readable_s)
                    })
                })
                .collect();
            let events = decoded.then(|| {
                s.spawn(|| -> anyhow::Result<(f64, Vec<crate::consumer::Record>)> {
                    let mut reader =
                        TopicReader::with_options(&brokers, &events_topic, &options)?.undecoded();
                    let mut records = Vec::with_capacity(total);
                    reader.read_until(&mut records, Duration::from_secs(1800), |r| {
                        r.len() >= total
                    })?;
                    let readable_s = started.elapsed().as_secs_f64();
                    reader.read_to_end(&mut records, Duration::from_secs(60))?;
                    Ok((readable_s, records))
                })
            });
            let mut records = Vec::with_capacity(total);
            let mut readable_s = 0.0;
            let reader = if kind.raw() {
                let mut reader = TopicReader::with_options(&brokers, &topic, &options)?.undecoded();
                reader.read_until(&mut records, Duration::from_secs(1800), |r| {
                    r.len() >= total
                })?;
                readable_s = started.elapsed().as_secs_f64();
                Some(reader)
            } else {
                None
            };
            for t in datasets {
                let s = t
                    .join()
                    .map_err(|_| anyhow::anyhow!("a dataset topic's reader panicked"))??;
                readable_s = f64::max(readable_s, s);
            }
            let events = match events {
                Some(t) => {
                    let (s, events) = t
                        .join()
                        .map_err(|_| anyhow::anyhow!("the decoded topic's reader panicked"))??;
                    readable_s = f64::max(readable_s, s);
                    Some(events)
                }
                None => None,
            };
            // Not timed: nothing more arrives, so every record is there exactly once, and
            // each value decodes.
            if let Some(mut reader) = reader {
                reader.read_to_end(&mut records, Duration::from_secs(60))?;
                for r in &records {
                    let value = r.raw.as_deref().context("a raw record without a value")?;
                    reader
                        .decode(value)
                        .with_context(|| format!("raw record {}", r.key))?;
                }
            }
            Ok((readable_s, records, events))
        })?;
        let ingest_rate = total as f64 / readable_s;
        let cpu_s = crate::proc::cpu_seconds(service.process.pid());
        ensure!(
            records.len() == if kind.raw() { total } else { 0 },
            "{topic} holds {} records, expected {}",
            records.len(),
            if kind.raw() { total } else { 0 }
        );
        if let Some(events) = &events {
            ensure!(
                events.len() == total && events.iter().all(|r| r.raw.is_some()),
                "{events_topic} holds {} records, expected {total} decoded transfers",
                events.len()
            );
        }
        // The service's own view: when it logged the head block acknowledged.
        let marker = format!("block={head} ");
        let log = service.process.log_text();
        let acked_s = log
            .lines()
            .find(|l| l.contains("block delivered") && l.contains(&marker))
            .and_then(|l| {
                humantime::parse_rfc3339_weak(l.split_whitespace().next()?.trim_end_matches('Z'))
                    .ok()
            })
            .and_then(|at| at.duration_since(started_at).ok())
            .map(|d| d.as_secs_f64());
        println!(
            "ingestor ({label}): {total} logs{} readable by a consumer {readable_s:.2} s after process start = {ingest_rate:.0} logs/s{}{} (broker Apache Kafka, one node)",
            match kind {
                Topics::Raw => String::new(),
                Topics::Decoded => format!(" and {total} decoded Transfer records"),
                Topics::DecodedOnly => " as decoded Transfer records only (raw = false)".into(),
                Topics::Datasets => format!(
                    " with {} block and {transactions} transaction records",
                    head + 1
                ),
            },
            acked_s
                .map(|a| format!("; its log says the last ack came at {a:.2} s"))
                .unwrap_or_default(),
            cpu_s
                .map(|c| format!("; {:.3} CPU s per 1,000 logs", per_thousand(c, total)))
                .unwrap_or_default()
        );
        service.stop(Duration::from_secs(60))?;
        Ok(Rate {
            logs_per_s: ingest_rate,
            cpu_s,
        })
    }
}
