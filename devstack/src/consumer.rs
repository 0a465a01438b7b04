//! An independent consumer: reads a topic from the beginning with its own rdkafka client
//! and decodes each value with the schema *file* (`schemas/evm_log.avsc`), checking the
//! single-object header (`C3 01` + the schema's CRC-64-AVRO fingerprint as fastavro
//! computes it: apache-avro 0.21's own fingerprint is not the specification's).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use apache_avro::Schema;
use apache_avro::types::Value;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The schema file, read at run time (not the copy embedded in the ingestor).
pub const SCHEMA_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/evm_log.avsc");

/// How long a reader waits for its topic to exist: a cold broker on a busy host, behind
/// TLS and SASL, may take a while to create it for a service that has just started.
const TOPIC_DEADLINE: Duration = Duration::from_secs(120);

/// One decoded `EvmLog`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedLog {
    /// `chain_id`.
    pub chain_id: i64,
    /// `block_number`.
    pub block_number: i64,
    /// `block_hash`.
    pub block_hash: String,
    /// `block_timestamp` (ms).
    pub block_timestamp_ms: i64,
    /// `transaction_hash`.
    pub transaction_hash: String,
    /// `transaction_index`.
    pub transaction_index: i64,
    /// `log_index`.
    pub log_index: i64,
    /// `address`.
    pub address: String,
    /// `topics`.
    pub topics: Vec<String>,
    /// `data`.
    pub data: Vec<u8>,
}

/// One record as read from the broker.
#[derive(Debug, Clone)]
pub struct Record {
    /// Key, as UTF-8.
    pub key: String,
    /// Kafka timestamp (ms), if any.
    pub timestamp_ms: Option<i64>,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// The decoded value; `None` for a tombstone.
    pub log: Option<DecodedLog>,
    /// Record headers, values as UTF-8 (lossy).
    pub headers: Vec<(String, String)>,
    /// The value's bytes, when the reader keeps them ([`TopicReader::keep_raw`]).
    pub raw: Option<Vec<u8>>,
}

/// Which records of transactions a reader sees (librdkafka's `isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// Records of committed transactions and non-transactional ones; a partition ends at
    /// its last stable offset, before the first record of a transaction still open.
    /// librdkafka's default.
    #[default]
    ReadCommitted,
    /// Every record on the log, of open and aborted transactions too; a partition ends at
    /// its high watermark. Transaction markers are still not returned.
    ReadUncommitted,
}

impl Isolation {
    /// The `isolation.level` setting.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadCommitted => "read_committed",
            Self::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// Reads one topic from the beginning.
pub struct TopicReader {
    consumer: BaseConsumer,
    topic: String,
    schema: Schema,
    fingerprint: Vec<u8>,
    /// Next offset to read per partition.
    positions: HashMap<i32, i64>,
    keep_raw: bool,
    /// Values are not decoded ([`TopicReader::undecoded`]).
    undecoded: bool,
    /// A Schema Registry to resolve `0x00` + id values with, and the schemas fetched.
    registry: Option<Registry>,
}

/// A registry client for the wire format `0x00` + 4-byte id: the schema comes from
/// `GET /schemas/ids/{id}`, never from the file.
struct Registry {
    url: String,
    agent: ureq::Agent,
    schemas: std::cell::RefCell<HashMap<u32, Schema>>,
}

impl Registry {
    fn schema(&self, id: u32) -> anyhow::Result<Schema> {
        if let Some(s) = self.schemas.borrow().get(&id) {
            return Ok(s.clone());
        }
        let v: serde_json::Value = self
            .agent
            .get(&format!("{}/schemas/ids/{id}", self.url))
            .call()
            .with_context(|| format!("schema {id} from the registry"))?
            .into_json()?;
        let text = v["schema"]
            .as_str()
            .context("no `schema` in the registry's answer")?;
        let schema = Schema::parse_str(text)?;
        self.schemas.borrow_mut().insert(id, schema.clone());
        Ok(schema)
    }
}

impl TopicReader {
    /// Assigns every partition of `topic` from the beginning.
    pub fn new(brokers: &str, topic: &str) -> anyhow::Result<Self> {
        Self::with_options(brokers, topic, &[])
    }

    /// [`TopicReader::new`] at the given isolation level.
    pub fn with_isolation(
        brokers: &str,
        topic: &str,
        isolation: Isolation,
    ) -> anyhow::Result<Self> {
        Self::with_options(brokers, topic, &[("isolation.level", isolation.as_str())])
    }

    /// [`TopicReader::new`] with extra librdkafka settings (e.g. `security.protocol`).
    pub fn with_options(
        brokers: &str,
        topic: &str,
        options: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::open(brokers, topic, options, || Ok(()))
    }

    /// [`TopicReader::with_options`], waiting for the topic only while `alive` succeeds:
    /// its error (the service that creates the topic exited) ends the wait at once.
    pub fn open(
        brokers: &str,
        topic: &str,
        options: &[(&str, &str)],
        mut alive: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(SCHEMA_PATH).context("reading the schema file")?;
        let schema = Schema::parse_str(&text)?;
        let fingerprint = crate::avro_ref::fingerprint()?;
        let mut config = ClientConfig::new();
        for (k, v) in options {
            config.set(*k, *v);
        }
        let consumer: BaseConsumer = config
            .set("bootstrap.servers", brokers)
            .set(
                "group.id",
                format!("devstack-reader-{}", std::process::id()),
            )
            .set("enable.auto.commit", "false")
            .create()?;
        // The ingestor creates its topics at start-up: wait until the broker lists this one.
        let partitions = crate::proc::wait_for_or_fail(
            &format!("topic {topic} to exist"),
            TOPIC_DEADLINE,
            || {
                alive()?;
                let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))
                else {
                    return Ok(None);
                };
                let ids: Vec<i32> = metadata
                    .topics()
                    .iter()
                    .filter(|t| t.name() == topic && t.error().is_none())
                    .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                    .collect();
                Ok((!ids.is_empty()).then_some(ids))
            },
        )?;
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        let positions = partitions.iter().map(|p| (*p, 0)).collect();
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            schema,
            fingerprint,
            positions,
            keep_raw: false,
            undecoded: false,
            registry: None,
        })
    }

    /// Resolves registry-framed values (`0x00` + schema id) through the registry at `url`.
    pub fn with_registry(mut self, url: &str) -> Self {
        self.registry = Some(Registry {
            url: url.trim_end_matches('/').to_owned(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
            schemas: Default::default(),
        });
        self
    }

    /// Keeps each value's bytes in [`Record::raw`] (to decode them again elsewhere).
    pub fn keep_raw(mut self) -> Self {
        self.keep_raw = true;
        self
    }

    /// Does not decode values as `EvmLog` (a decoded-event topic's): each value's bytes are
    /// in [`Record::raw`], `log` is always `None`, and a tombstone is a record without `raw`.
    pub fn undecoded(mut self) -> Self {
        self.keep_raw = true;
        self.undecoded = true;
        self
    }

    /// Each partition's end as this reader sees it now: the high watermark, or, at
    /// [`Isolation::ReadCommitted`] (the default), the last stable offset (librdkafka asks
    /// ListOffsets at the reader's isolation level).
    pub fn ends(&self, deadline: Duration) -> anyhow::Result<HashMap<i32, i64>> {
        let start = Instant::now();
        let mut ends = HashMap::new();
        for &p in self.positions.keys() {
            // A client that has just assigned the partition may not know its leader yet
            // (`Local: Unknown partition`): asked again until the deadline.
            let high = loop {
                match self
                    .consumer
                    .fetch_watermarks(&self.topic, p, Duration::from_secs(5))
                {
                    Ok((_, high)) => break high,
                    Err(e) if start.elapsed() > deadline => {
                        return Err(e)
                            .with_context(|| format!("the end of {} partition {p}", self.topic));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            ends.insert(p, high);
        }
        Ok(ends)
    }

    /// Reads every partition up to the end it has when called ([`TopicReader::ends`]), as
    /// any Kafka reader does. A partition is there once the reader's position reached its
    /// end: the offset after the last record read, or the consumer's own position, which
    /// also moves past transaction markers and, read committed, aborted records (they hold
    /// offsets no record returned carries).
    pub fn read_to_end(&mut self, out: &mut Vec<Record>, deadline: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        let ends = self.ends(deadline)?;
        loop {
            let position = self.consumer.position()?;
            let behind: Vec<(i32, i64, i64)> = ends
                .iter()
                .map(|(&p, &end)| {
                    let read = self.positions.get(&p).copied().unwrap_or(0);
                    let fetched = position
                        .find_partition(&self.topic, p)
                        .and_then(|e| e.offset().to_raw())
                        .unwrap_or(0);
                    (p, read.max(fetched), end)
                })
                .filter(|(_, at, end)| at < end)
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if start.elapsed() > deadline {
                bail!(
                    "reading {} to its end timed out; (partition, position, end): {behind:?}",
                    self.topic
                );
            }
            self.poll_one(out)?;
        }
    }

    /// Reads until `done(records)` holds, failing after `deadline`.
    pub fn read_until(
        &mut self,
        out: &mut Vec<Record>,
        deadline: Duration,
        mut done: impl FnMut(&[Record]) -> bool,
    ) -> anyhow::Result<()> {
        let start = Instant::now();
        while !done(out) {
            if start.elapsed() > deadline {
                bail!(
                    "timed out after {deadline:?} reading {}: {} records so far",
                    self.topic,
                    out.len()
                );
            }
            self.poll_one(out)?;
        }
        Ok(())
    }

    fn poll_one(&mut self, out: &mut Vec<Record>) -> anyhow::Result<()> {
        if let Some(record) = self.poll()? {
            out.push(record);
        }
        Ok(())
    }

    /// Waits up to 200 ms for the next record.
    pub fn poll(&mut self) -> anyhow::Result<Option<Record>> {
        let msg = match self.consumer.poll(Duration::from_millis(200)) {
            None => return Ok(None),
            Some(other) => other?,
        };
        let key = String::from_utf8(msg.key().unwrap_or_default().to_vec())?;
        let log = msg
            .payload()
            .filter(|_| !self.undecoded)
            .map(|p| self.decode(p))
            .transpose()
            .with_context(|| format!("record {key}"))?;
        self.positions.insert(msg.partition(), msg.offset() + 1);
        let headers = msg
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                        (h.key.to_owned(), value.into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(Record {
            headers,
            key,
            timestamp_ms: msg.timestamp().to_millis(),
            partition: msg.partition(),
            offset: msg.offset(),
            log,
            raw: msg.payload().filter(|_| self.keep_raw).map(<[u8]>::to_vec),
        }))
    }

    /// Decodes one value: single-object encoded, or (with a registry) in the registry's
    /// wire format.
    pub fn decode(&self, payload: &[u8]) -> anyhow::Result<DecodedLog> {
        if payload.first() == Some(&0) {
            let registry = self
                .registry
                .as_ref()
                .context("a registry-framed value (0x00 + id), but no registry given")?;
            ensure!(
                payload.len() >= 5,
                "registry-framed value shorter than its header"
            );
            let id = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
            let schema = registry.schema(id)?;
            let value = apache_avro::from_avro_datum(&schema, &mut &payload[5..], None)?;
            return to_log(value);
        }
        ensure!(
            payload.len() >= 10 && payload[..2] == [0xc3, 0x01],
            "not Avro single-object encoding"
        );
        ensure!(
            payload[2..10] == self.fingerprint[..],
            "schema fingerprint {} is not the schema file's {} (fastavro)",
            hex::encode(&payload[2..10]),
            hex::encode(&self.fingerprint)
        );
        let value = apache_avro::from_avro_datum(&self.schema, &mut &payload[10..], None)?;
        to_log(value)
    }
}

/// The fields of a decoded `EvmLog` record.
fn to_log(value: Value) -> anyhow::Result<DecodedLog> {
    let Value::Record(fields) = value else {
        bail!("not a record")
    };
    let f: HashMap<_, _> = fields.into_iter().collect();
    let long = |n: &str| match f.get(n) {
        Some(Value::Long(v) | Value::TimestampMillis(v)) => Ok(*v),
        other => Err(anyhow::anyhow!("{n}: {other:?}")),
    };
    let string = |n: &str| match f.get(n) {
        Some(Value::String(s)) => Ok(s.clone()),
        other => Err(anyhow::anyhow!("{n}: {other:?}")),
    };
    let topics = match f.get("topics") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| match t {
                Value::String(s) => Ok(s.clone()),
                other => Err(anyhow::anyhow!("topic: {other:?}")),
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        other => bail!("topics: {other:?}"),
    };
    let data = match f.get("data") {
        Some(Value::Bytes(b)) => b.clone(),
        other => bail!("data: {other:?}"),
    };
    ensure!(
        matches!(f.get("block_timestamp"), Some(Value::TimestampMillis(_))),
        "block_timestamp is not timestamp-millis"
    );
    Ok(DecodedLog {
        chain_id: long("chain_id")?,
        block_number: long("block_number")?,
        block_hash: string("block_hash")?,
        block_timestamp_ms: long("block_timestamp")?,
        transaction_hash: string("transaction_hash")?,
        transaction_index: long("transaction_index")?,
        log_index: long("log_index")?,
        address: string("address")?,
        topics,
        data,
    })
}
