//! `ingestor tail`: reads a chain topic from the cluster in the configuration (with its
//! security settings) and prints every record decoded: a line a person can read, or one
//! JSON object per record. Values in either wire format are decoded: single-object
//! encoding (the current fingerprint or the one written before the fix) with the embedded
//! schema, or `0x00` + schema id through `[schema_registry]`. Tombstones are printed as
//! such. Without `follow`, it stops at the end of every partition.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value as Avro;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::config::{Config, RegistryConfig};
use crate::encode::{self, LEGACY_FINGERPRINT};
use crate::rpc::tls::Trust;

/// What to read and how to print it.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// The topic.
    pub topic: String,
    /// Start at the oldest record (else at the end: only new records).
    pub from_beginning: bool,
    /// Keep reading after the end.
    pub follow: bool,
    /// One JSON object per record instead of a line of text.
    pub json: bool,
}

/// Why tailing stopped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// The consumer could not be created or assigned.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The topic is not on the cluster.
    #[error("topic `{0}` does not exist on the cluster (or has no partitions)")]
    NoTopic(String),
    /// Writing to stdout failed (e.g. a closed pipe).
    #[error("output: {0}")]
    Output(#[from] std::io::Error),
}

/// Decodes values in both wire formats.
struct Decoder {
    schema: &'static Schema,
    fingerprints: [[u8; 8]; 2],
    registry: Option<RegistryReader>,
}

/// Fetches schemas by id from the registry, once each.
struct RegistryReader {
    client: reqwest::blocking::Client,
    cfg: RegistryConfig,
    schemas: HashMap<u32, Schema>,
}

impl RegistryReader {
    fn new(cfg: &RegistryConfig) -> Result<Self, String> {
        let tls = Trust::from_env(cfg.ssl_ca_file.as_deref())
            .client_config()
            .map_err(|e| e.to_string())?;
        let client = reqwest::blocking::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(Duration::from_millis(cfg.request_timeout_ms))
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Self {
            client,
            cfg: cfg.clone(),
            schemas: HashMap::new(),
        })
    }

    fn schema(&mut self, id: u32) -> Result<&Schema, String> {
        if !self.schemas.contains_key(&id) {
            let url = format!("{}/schemas/ids/{id}", self.cfg.url.trim_end_matches('/'));
            let mut request = self.client.get(url);
            if let (Some(u), Some(p)) = (&self.cfg.username, &self.cfg.password) {
                request = request.basic_auth(u, Some(p.expose()));
            }
            let body = request
                .send()
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.bytes())
                .map_err(|e| format!("schema {id} from the registry: {}", e.without_url()))?;
            let answer: Value = serde_json::from_slice(&body)
                .map_err(|e| format!("schema {id}: the registry's answer is not JSON: {e}"))?;
            let text = answer["schema"]
                .as_str()
                .ok_or_else(|| format!("schema {id}: no `schema` in the registry's answer"))?;
            let schema = Schema::parse_str(text).map_err(|e| format!("schema {id}: {e}"))?;
            self.schemas.insert(id, schema);
        }
        self.schemas
            .get(&id)
            .ok_or_else(|| format!("schema {id} missing"))
    }
}

impl Decoder {
    fn decode(&mut self, payload: &[u8]) -> Result<Value, String> {
        let value = match payload {
            [0xc3, 0x01, rest @ ..] if rest.len() >= 8 => {
                let fp: [u8; 8] = rest[..8].try_into().map_err(|_| "short header")?;
                if !self.fingerprints.contains(&fp) {
                    return Err(format!(
                        "single-object value with fingerprint {}, not this schema's",
                        hex::encode(fp)
                    ));
                }
                apache_avro::from_avro_datum(self.schema, &mut &rest[8..], None)
                    .map_err(|e| e.to_string())?
            }
            [0x00, a, b, c, d, body @ ..] => {
                let id = u32::from_be_bytes([*a, *b, *c, *d]);
                let registry = self.registry.as_mut().ok_or_else(|| {
                    format!("value framed with registry schema id {id}, but the config has no [schema_registry]")
                })?;
                let schema = registry.schema(id)?;
                apache_avro::from_avro_datum(schema, &mut &body[..], None)
                    .map_err(|e| e.to_string())?
            }
            _ => return Err("neither single-object encoding nor the registry wire format".into()),
        };
        Ok(avro_json(value))
    }
}

/// An Avro value as JSON: bytes as `0x` hex, timestamps as milliseconds.
fn avro_json(v: Avro) -> Value {
    match v {
        Avro::Null => Value::Null,
        Avro::Boolean(b) => json!(b),
        Avro::Int(i) | Avro::Date(i) | Avro::TimeMillis(i) => json!(i),
        Avro::Long(i)
        | Avro::TimestampMillis(i)
        | Avro::TimestampMicros(i)
        | Avro::TimeMicros(i)
        | Avro::LocalTimestampMillis(i)
        | Avro::LocalTimestampMicros(i) => json!(i),
        Avro::Float(f) => json!(f),
        Avro::Double(f) => json!(f),
        Avro::String(s) | Avro::Enum(_, s) => json!(s),
        Avro::Bytes(b) | Avro::Fixed(_, b) => json!(format!("0x{}", hex::encode(b))),
        Avro::Array(items) => Value::Array(items.into_iter().map(avro_json).collect()),
        Avro::Union(_, inner) => avro_json(*inner),
        Avro::Record(fields) => {
            Value::Object(fields.into_iter().map(|(k, v)| (k, avro_json(v))).collect())
        }
        Avro::Map(m) => Value::Object(m.into_iter().map(|(k, v)| (k, avro_json(v))).collect()),
        other => json!(format!("{other:?}")),
    }
}

fn short(s: &str) -> String {
    if s.len() <= 14 {
        s.to_owned()
    } else {
        format!("{}…{}", &s[..8], &s[s.len() - 4..])
    }
}

/// One record as a line a person can read.
pub fn render(key: &str, offset: i64, log: Option<&Value>) -> String {
    let Some(log) = log else {
        return format!("tombstone {key}  (offset {offset})");
    };
    let s = |f: &str| log[f].as_str().unwrap_or_default().to_owned();
    let n = |f: &str| log[f].as_i64().unwrap_or_default();
    let topics: Vec<String> = log["topics"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).map(short).collect())
        .unwrap_or_default();
    let data_bytes = s("data").len().saturating_sub(2) / 2;
    format!(
        "block {:>8} {}  ts {}  tx {} #{:<3} log {:<4} from {}  topics {} [{}]  data {} B  (offset {offset})",
        n("block_number"),
        short(&s("block_hash")),
        n("block_timestamp"),
        short(&s("transaction_hash")),
        n("transaction_index"),
        n("log_index"),
        short(&s("address")),
        topics.len(),
        topics.join(", "),
        data_bytes,
    )
}

/// Reads `opts.topic` and writes every record to `out` until the end (or `stop`, when
/// following). Undecodable values are printed as such and reading goes on. Returns the
/// number of records read. Blocks.
pub fn run(
    cfg: &Config,
    opts: &TailOptions,
    out: &mut impl Write,
    stop: &AtomicBool,
) -> Result<u64, TailError> {
    let mut decoder = Decoder {
        schema: encode::schema().map_err(|e| std::io::Error::other(e.to_string()))?,
        fingerprints: [
            encode::fingerprint().map_err(|e| std::io::Error::other(e.to_string()))?,
            LEGACY_FINGERPRINT,
        ],
        registry: cfg
            .schema_registry
            .as_ref()
            .map(RegistryReader::new)
            .transpose()
            .map_err(std::io::Error::other)?,
    };
    let mut c = crate::sink::client_config(&cfg.kafka, "ethhook-tail");
    c.set("group.id", format!("ethhook-tail-{}", std::process::id()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true");
    let consumer: BaseConsumer = c.create()?;
    let metadata = consumer.fetch_metadata(
        Some(&opts.topic),
        Duration::from_millis(cfg.kafka.admin_timeout_ms),
    )?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == opts.topic && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if partitions.is_empty() {
        return Err(TailError::NoTopic(opts.topic.clone()));
    }
    let mut tpl = TopicPartitionList::new();
    let start = if opts.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    for p in &partitions {
        tpl.add_partition_offset(&opts.topic, *p, start)?;
    }
    consumer.assign(&tpl)?;
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut read = 0;
    while !stop.load(Ordering::Relaxed) {
        if !opts.follow && at_end.len() == partitions.len() {
            break;
        }
        let msg = match consumer.poll(Duration::from_millis(200)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                continue;
            }
            Some(other) => other?,
        };
        at_end.remove(&msg.partition());
        read += 1;
        let key = String::from_utf8_lossy(msg.key().unwrap_or_default()).into_owned();
        let log = msg.payload().map(|p| decoder.decode(p)).transpose();
        let line = match (&log, opts.json) {
            (Ok(log), true) => json!({
                "key": key,
                "partition": msg.partition(),
                "offset": msg.offset(),
                "timestamp_ms": msg.timestamp().to_millis(),
                "tombstone": log.is_none(),
                "log": log,
            })
            .to_string(),
            (Ok(log), false) => render(&key, msg.offset(), log.as_ref()),
            (Err(e), true) => {
                json!({"key": key, "partition": msg.partition(), "offset": msg.offset(), "error": e})
                    .to_string()
            }
            (Err(e), false) => format!("undecodable {key}  (offset {}): {e}", msg.offset()),
        };
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_and_logs_render() {
        assert_eq!(
            render("1:0xab:0", 7, None),
            "tombstone 1:0xab:0  (offset 7)"
        );
        let log = json!({
            "block_number": 5, "block_hash": format!("0x{}", "ab".repeat(32)),
            "block_timestamp": 1_700_000_000_000i64, "transaction_hash": format!("0x{}", "cd".repeat(32)),
            "transaction_index": 1, "log_index": 2, "address": format!("0x{}", "ef".repeat(20)),
            "topics": [format!("0x{}", "11".repeat(32))], "data": "0x0102"
        });
        let line = render("k", 3, Some(&log));
        assert!(line.starts_with("block        5 0xababab…abab"), "{line}");
        assert!(
            line.contains("topics 1 [0x111111…1111]  data 2 B  (offset 3)"),
            "{line}"
        );
    }
}
