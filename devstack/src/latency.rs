//! `devstack bench --latency`: live latency, from the `anvil_mine` call that makes a block
//! to the moment a `read_committed` consumer reads its first record, over N blocks; next to
//! the broker's own floor, from a produce (acks=all, idempotent) to the same consumer
//! reading it. Prints percentiles, asserts nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use crate::anvil::Anvil;
use crate::kafka::Kafka;
use crate::proc::wait_for;
use crate::service::{ChainEntry, Service, config_toml};
use crate::traffic::{LogShapes, Sender};

fn create_topic(brokers: &str, topic: &str) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(admin.create_topics(
        &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
        &AdminOptions::new(),
    ))?;
    for r in results {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    Ok(())
}

/// A consumer that sees a record as soon as the broker has it.
pub(crate) fn consumer(brokers: &str, topic: &str) -> anyhow::Result<BaseConsumer> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set(
            "group.id",
            format!("devstack-latency-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("fetch.wait.max.ms", "1")
        .set("socket.nagle.disable", "true")
        .create()?;
    wait_for(&format!("topic {topic}"), Duration::from_secs(60), || {
        let m = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
        m.topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            .then_some(())
    })?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    c.assign(&tpl)?;
    Ok(c)
}

/// Polls until a record satisfies `hit`; returns when it was read.
pub(crate) fn until(
    c: &BaseConsumer,
    deadline: Duration,
    hit: impl Fn(&[u8]) -> bool,
) -> anyhow::Result<Instant> {
    let start = Instant::now();
    while start.elapsed() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(50)) {
            let m = m?;
            if m.payload().is_some_and(&hit) {
                return Ok(Instant::now());
            }
        }
    }
    bail!("no matching record within {deadline:?}")
}

/// The block number of a single-object `EvmLog` value: the body's second field (after the
/// 10-byte header and the chain id), both zigzag varints.
pub(crate) fn block_number(value: &[u8]) -> Option<u64> {
    let mut body = value.get(10..)?;
    let mut long = || {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = body.split_first()?;
            body = rest;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some((n >> 1) as i64 ^ -((n & 1) as i64));
            }
        }
        None
    };
    long()?;
    u64::try_from(long()?).ok()
}

/// The ingestor's `block delivered` log line for `chain`'s block `number`.
pub(crate) fn delivered<'a>(log: &'a str, chain: &str, number: u64) -> Option<&'a str> {
    let (chain, block) = (format!("chain=\"{chain}\""), format!(" block={number} "));
    log.lines()
        .find(|l| l.contains("block delivered") && l.contains(&chain) && l.contains(&block))
}

/// When a log line was written (its leading RFC 3339 timestamp).
pub(crate) fn logged_at(line: &str) -> Option<std::time::SystemTime> {
    humantime::parse_rfc3339_weak(line.split_whitespace().next()?.trim_end_matches('Z')).ok()
}

/// Percentiles (p50, p90, p99, max) in ms.
pub(crate) fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    format!(
        "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0),
        ms.len()
    )
}

/// Runs the latency benchmark over `blocks` blocks; with `backfill_logs` > 0, a second
/// chain (31338) holds that many logs of history, backfilled by the same service while the
/// first chain's latency is measured.
pub fn run(ingestor: &std::path::Path, blocks: usize, backfill_logs: usize) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("ethhook-latency-")
        .tempdir()?;
    let kafka = Kafka::start_compiled(dir.path())?;
    let anvil = Anvil::start(31337, dir.path())?;
    let node = anvil.node();
    let brokers = kafka.brokers();

    // The broker's floor: produce one record, read it back.
    let floor_topic = "latency.floor";
    create_topic(&brokers, floor_topic)?;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("socket.nagle.disable", "true")
        .create()?;
    producer
        .send(BaseRecord::to(floor_topic).key("warm-up").payload("x"))
        .map_err(|(e, _)| e)?;
    producer.flush(Duration::from_secs(30))?;
    let c = consumer(&brokers, floor_topic)?;
    let mut floor = Vec::with_capacity(blocks);
    for i in 0..blocks {
        let payload = format!("floor-{i}");
        let t0 = Instant::now();
        producer
            .send(BaseRecord::to(floor_topic).key("k").payload(&payload))
            .map_err(|(e, _)| e)?;
        let seen = until(&c, Duration::from_secs(10), |p| p == payload.as_bytes())?;
        floor.push(seen.duration_since(t0).as_secs_f64() * 1e3);
        producer.poll(Duration::ZERO);
    }

    // The other chain's history, backfilled while this one is measured.
    let other = match backfill_logs {
        0 => None,
        n => {
            let a = Anvil::start(31338, dir.path())?;
            let mut sender = Sender::new(a.node())?;
            let block: Vec<Vec<crate::traffic::LogSpec>> = (0..4)
                .map(|t| {
                    (0..100)
                        .map(|i| crate::bench::transfer_like(t * 100 + i))
                        .collect()
                })
                .collect();
            for _ in 0..n.div_ceil(400) {
                sender.block(&block)?;
            }
            Some(a)
        }
    };

    // The ingestor, following the node live.
    let mut entries = vec![ChainEntry::new(31337, anvil.ws_url())];
    if let Some(a) = &other {
        entries.push(ChainEntry::new(31338, a.ws_url()));
    }
    let toml = config_toml(&brokers, &entries, "");
    let run_dir = dir.path().join("ingestor");
    std::fs::create_dir_all(&run_dir)?;
    let mut service = Service::start(
        ingestor,
        &run_dir,
        &toml,
        &[("RUST_LOG", "warn,ingestor::events=debug")],
    )?;
    let mut sender = Sender::new(node.clone())?;
    let mut shapes = LogShapes::new(7);
    // A first block makes the topic and warms every connection up.
    sender.block(&[shapes.logs(3)])?;
    let c = consumer(&brokers, "evm.logs.31337")?;
    sender.block(&[shapes.logs(3)])?;
    until(&c, Duration::from_secs(60), |_| true).context("first live record")?;
    while c.poll(Duration::from_millis(100)).is_some() {}
    let mut live = Vec::with_capacity(blocks);
    let mut mined = Vec::with_capacity(blocks);
    let mut starts = Vec::with_capacity(blocks);
    let mut wall = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        sender.send_logs(&shapes.logs(3))?;
        let number = node.head()? + 1;
        let t0 = Instant::now();
        let wall0 = std::time::SystemTime::now();
        wall.push(wall0);
        node.mine(1)?;
        mined.push(t0.elapsed().as_secs_f64() * 1e3);
        starts.push((number, wall0));
        let seen = until(&c, Duration::from_secs(30), |p| {
            block_number(p) == Some(number)
        })?;
        live.push(seen.duration_since(t0).as_secs_f64() * 1e3);
        // Let the block's other records arrive before the next one.
        while c.poll(Duration::from_millis(20)).is_some() {}
    }
    service.stop(Duration::from_secs(60))?;
    // The ingestor's own share: from the mine call to its log line saying the broker
    // acknowledged the block's records.
    let log = service.process.log_text();
    let acked: Vec<f64> = starts
        .iter()
        .filter_map(|(number, wall0)| {
            let at = logged_at(delivered(&log, "chain-31337", *number)?)?;
            Some(at.duration_since(*wall0).ok()?.as_secs_f64() * 1e3)
        })
        .collect();
    // Of that share, the producer's: first record enqueued to last acknowledgement.
    let produced: Vec<f64> = starts
        .iter()
        .filter_map(|(number, _)| {
            delivered(&log, "chain-31337", *number)?
                .split_whitespace()
                .find_map(|f| f.strip_prefix("produce_ms="))?
                .parse()
                .ok()
        })
        .collect();
    println!(
        "live latency (anvil_mine -> first record readable, read_committed): {}",
        summary(live.clone())
    );
    if let Some(a) = &other {
        // The samples taken while the other chain's backfill was still being acknowledged.
        let head = a.node().head()?;
        // Not delivered by the time the service stopped: every sample was taken during
        // the backfill.
        let done = delivered(&log, "chain-31338", head).and_then(logged_at);
        let during: Vec<f64> = wall
            .iter()
            .zip(&live)
            .filter(|(w, _)| done.is_none_or(|d| **w < d))
            .map(|(_, ms)| *ms)
            .collect();
        let unfinished = if done.is_none() {
            " (still backfilling when the last block was measured)"
        } else {
            ""
        };
        if during.is_empty() {
            println!(
                "  while chain 31338 backfilled {backfill_logs} logs: no sample (the backfill ended first)"
            );
        } else {
            println!(
                "  while chain 31338 backfilled {backfill_logs} logs{unfinished}: {}",
                summary(during)
            );
        }
    }
    println!("  anvil_mine call returned: {}", summary(mined));
    if !acked.is_empty() {
        println!(
            "  broker acknowledged the block's records (ingestor log): {}",
            summary(acked)
        );
    }
    if !produced.is_empty() {
        println!(
            "  of which first record enqueued -> last acknowledged: {}",
            summary(produced)
        );
    }
    println!(
        "broker floor (produce acks=all idempotent -> readable, same consumer): {}",
        summary(floor)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivered_lines_are_found_by_chain_and_block() {
        let log = "2026-11-25T22:20:29.849052Z DEBUG ingestor::events::publish: block delivered chain=\"chain-31337\" block=5 hash=0xa records=9 dedup_hits=0 produce_ms=1.5\n\
                   2026-11-25T22:20:29.900000Z DEBUG ingestor::events::publish: block delivered chain=\"chain-31338\" block=5 hash=0xb records=1 dedup_hits=0 produce_ms=2.5\n";
        let line = delivered(log, "chain-31338", 5).expect("line");
        assert!(line.contains("produce_ms=2.5"));
        assert!(delivered(log, "chain-31337", 50).is_none());
        let at = logged_at(line).expect("time");
        let earlier = logged_at(delivered(log, "chain-31337", 5).expect("line")).expect("time");
        assert_eq!(
            at.duration_since(earlier).expect("order").as_micros(),
            50_948
        );
    }
}
