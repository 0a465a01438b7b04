//! `ingestor tail`: reads a chain topic, or a decoded-event topic, from the cluster in the
//! configuration (with its security settings) and prints every record decoded: a line a
//! person can read (`Transfer from=0x… to=0x… value=1000000` for a decoded event), or one
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
use crate::encode::block::BLOCK_SCHEMA_JSON;
use crate::encode::transaction::TRANSACTION_SCHEMA_JSON;
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
    /// Each known schema by the fingerprint its single-object values carry: `EvmLog`'s
    /// (both fingerprints) and every configured event's.
    schemas: Vec<([u8; 8], Schema)>,
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
    /// The record's name (`EvmLog`, or the event's), and its fields in schema order.
    fn decode(&mut self, payload: &[u8]) -> Result<(String, Vec<(String, Value)>), String> {
        let (name, value) = match payload {
            [0xc3, 0x01, rest @ ..] if rest.len() >= 8 => {
                let fp: [u8; 8] = rest[..8].try_into().map_err(|_| "short header")?;
                let Some((_, schema)) = self.schemas.iter().find(|(f, _)| *f == fp) else {
                    return Err(format!(
                        "single-object value with fingerprint {}, not the fingerprint of EvmLog or of a configured event",
                        hex::encode(fp)
                    ));
                };
                let value = apache_avro::from_avro_datum(schema, &mut &rest[8..], None)
                    .map_err(|e| e.to_string())?;
                (record_name(schema), value)
            }
            [0x00, a, b, c, d, body @ ..] => {
                let id = u32::from_be_bytes([*a, *b, *c, *d]);
                let registry = self.registry.as_mut().ok_or_else(|| {
                    format!("value framed with registry schema id {id}, but the config has no [schema_registry]")
                })?;
                let schema = registry.schema(id)?;
                let value = apache_avro::from_avro_datum(schema, &mut &body[..], None)
                    .map_err(|e| e.to_string())?;
                (record_name(schema), value)
            }
            _ => return Err("neither single-object encoding nor the registry wire format".into()),
        };
        let fields = match value {
            Avro::Record(fields) => fields.into_iter().map(|(k, v)| (k, avro_json(v))).collect(),
            other => vec![(String::new(), avro_json(other))],
        };
        Ok((name, fields))
    }
}

fn record_name(schema: &Schema) -> String {
    match schema {
        Schema::Record(r) => r.name.name.clone(),
        _ => String::new(),
    }
}

/// A two's-complement big-endian integer (an Avro decimal of scale 0) in decimal.
fn signed_decimal(be: &[u8]) -> String {
    let negative = be.first().is_some_and(|b| b & 0x80 != 0);
    let mut n: Vec<u8> = be.to_vec();
    if negative {
        // Its magnitude: invert and add one.
        let mut carry = true;
        for b in n.iter_mut().rev() {
            *b = !*b;
            if carry {
                let (v, c) = b.overflowing_add(1);
                *b = v;
                carry = c;
            }
        }
    }
    let mut digits = Vec::new();
    while n.iter().any(|b| *b != 0) {
        let mut rem = 0u32;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    if negative {
        digits.push(b'-');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
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
        // Integers wider than a long: exact, as a decimal string.
        Avro::Decimal(d) => match <Vec<u8>>::try_from(&d) {
            Ok(bytes) => json!(signed_decimal(&bytes)),
            Err(e) => json!(format!("{e}")),
        },
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

/// `wei` (a decimal string) in ether, exactly, without trailing zeros.
fn ether(wei: &str) -> String {
    let digits = wei.trim_start_matches('0');
    let padded = format!("{digits:0>19}");
    let (whole, frac) = padded.split_at(padded.len() - 18);
    match frac.trim_end_matches('0') {
        "" => format!("{whole} ETH"),
        frac => format!("{whole}.{frac} ETH"),
    }
}

/// The block's time (a `timestamp` in ms) as RFC 3339, in UTC.
fn time_of(ms: &Value) -> String {
    ms.as_i64()
        .and_then(|ms| {
            let t = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?);
            Some(humantime::format_rfc3339_seconds(t).to_string())
        })
        .unwrap_or_else(|| ms.to_string())
}

/// One line for an `EvmBlock` record: number, hash, time, transaction count, gas.
pub fn render_block(offset: i64, b: &Value) -> String {
    format!(
        "block {:>8} {}  {}  txs {:<4} gas {} of {}  (offset {offset})",
        b["number"].to_string(),
        short(b["hash"].as_str().unwrap_or_default()),
        time_of(&b["timestamp"]),
        b["transaction_count"].to_string(),
        b["gas_used"],
        b["gas_limit"],
    )
}

/// One line for an `EvmTransaction` record: hash, from → to (or the contract created),
/// value in ether, status, gas used, and where it is.
pub fn render_transaction(offset: i64, t: &Value) -> String {
    let to = match (t["to"].as_str(), t["contract_address"].as_str()) {
        (Some(to), _) => short(to),
        (None, Some(created)) => format!("new {}", short(created)),
        (None, None) => "(none)".to_owned(),
    };
    let status = match t["status"].as_bool() {
        Some(true) => "ok",
        Some(false) => "reverted",
        None => "pre-Byzantium",
    };
    format!(
        "tx {}  {} -> {}  {}  {status}  gas {}  block {} #{}  type {}  (offset {offset})",
        short(t["hash"].as_str().unwrap_or_default()),
        short(t["from"].as_str().unwrap_or_default()),
        to,
        ether(t["value"].as_str().unwrap_or("0")),
        t["gas_used"],
        t["block_number"],
        t["transaction_index"],
        t["type"],
    )
}

/// One record as a line a person can read.
/// The fields every record about a log starts with.
const LOG_FIELDS: [&str; 8] = crate::decode::shape::LOG_FIELDS;

/// One line for a decoded event's record: the event and its parameters by name, then where
/// the log is.
pub fn render_event(name: &str, offset: i64, fields: &[(String, Value)]) -> String {
    let params: Vec<String> = fields
        .iter()
        .filter(|(k, _)| !LOG_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
        })
        .collect();
    let get = |f: &str| fields.iter().find(|(k, _)| k == f).map(|(_, v)| v);
    let s = |f: &str| {
        get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let n = |f: &str| get(f).and_then(Value::as_i64).unwrap_or_default();
    format!(
        "{name} {}  block {} tx {} log {} contract {}  (offset {offset})",
        params.join(" "),
        n("block_number"),
        short(&s("transaction_hash")),
        n("log_index"),
        short(&s("address")),
    )
}

/// One line for a record: an `EvmLog`, a decoded event's, or a tombstone.
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
    let evm_log = encode::schema().map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut schemas = vec![
        (
            encode::fingerprint().map_err(|e| std::io::Error::other(e.to_string()))?,
            evm_log.clone(),
        ),
        (LEGACY_FINGERPRINT, evm_log.clone()),
    ];
    // The blocks and transactions datasets' records.
    for schema_json in [BLOCK_SCHEMA_JSON, TRANSACTION_SCHEMA_JSON] {
        let fp = encode::fingerprint::fingerprint(schema_json)
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        let schema =
            Schema::parse_str(schema_json).map_err(|err| std::io::Error::other(err.to_string()))?;
        schemas.push((fp, schema));
    }
    for e in cfg.chains.iter().flat_map(|c| c.catalog.events()) {
        let fp = encode::fingerprint::fingerprint(&e.schema_json)
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        let schema = Schema::parse_str(&e.schema_json)
            .map_err(|err| std::io::Error::other(format!("{}: {err}", e.topic)))?;
        schemas.push((fp, schema));
    }
    let mut decoder = Decoder {
        schemas,
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
        let object = |fields: &[(String, Value)]| {
            Value::Object(fields.iter().cloned().collect::<serde_json::Map<_, _>>())
        };
        let line = match (&log, opts.json) {
            (Ok(log), true) => {
                let mut line = json!({
                    "key": key,
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "timestamp_ms": msg.timestamp().to_millis(),
                    "tombstone": log.is_none(),
                    "log": log.as_ref().map(|(_, f)| object(f)),
                });
                // A decoded event's record names its event.
                if let Some((name, _)) = log.as_ref().filter(|(n, _)| n != "EvmLog") {
                    line["event"] = json!(name);
                }
                line.to_string()
            }
            (Ok(Some((name, record))), false) if name == "EvmBlock" => {
                render_block(msg.offset(), &object(record))
            }
            (Ok(Some((name, record))), false) if name == "EvmTransaction" => {
                render_transaction(msg.offset(), &object(record))
            }
            (Ok(Some((name, record))), false) if name != "EvmLog" => {
                render_event(name, msg.offset(), record)
            }
            (Ok(log), false) => render(&key, msg.offset(), log.as_ref().map(|(_, f)| object(f)).as_ref()),
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
    fn blocks_and_transactions_render() {
        assert_eq!(ether("0"), "0 ETH");
        assert_eq!(ether("1000000000000000000"), "1 ETH");
        assert_eq!(ether("1000000007"), "0.000000001000000007 ETH");
        assert_eq!(ether("123450000000000000000"), "123.45 ETH");
        let block = json!({
            "number": 7, "hash": format!("0x{}", "ab".repeat(32)), "timestamp": 1_700_000_000_000i64,
            "transaction_count": 3, "gas_used": 63000, "gas_limit": 30000000,
        });
        let line = render_block(4, &block);
        assert!(
            line.contains("block        7 0xababab…abab  2023-11-14T22:13:20Z  txs 3"),
            "{line}"
        );
        assert!(line.contains("gas 63000 of 30000000  (offset 4)"), "{line}");
        let tx = json!({
            "hash": format!("0x{}", "cd".repeat(32)), "from": format!("0x{}", "11".repeat(20)),
            "to": null, "contract_address": format!("0x{}", "22".repeat(20)),
            "value": "2500000000000000000", "status": false, "gas_used": 53000,
            "block_number": 7, "transaction_index": 1, "type": 2,
        });
        let line = render_transaction(5, &tx);
        assert!(
            line.contains("0x111111…1111 -> new 0x222222…2222  2.5 ETH  reverted  gas 53000  block 7 #1  type 2"),
            "{line}"
        );
    }

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
        let event: Vec<(String, Value)> = [
            ("chain_id", json!(1)),
            ("block_number", json!(9)),
            ("block_hash", json!("0x00")),
            ("block_timestamp", json!(0)),
            ("transaction_hash", json!(format!("0x{}", "cd".repeat(32)))),
            ("transaction_index", json!(0)),
            ("log_index", json!(4)),
            ("address", json!(format!("0x{}", "ef".repeat(20)))),
            ("to", json!("0x22")),
            ("from", json!("0x11")),
            ("value", json!("1000000")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(
            render_event("Transfer", 8, &event),
            "Transfer to=0x22 from=0x11 value=1000000  block 9 tx 0xcdcdcd…cdcd log 4 contract 0xefefef…efef  (offset 8)"
        );
        for (be, want) in [
            (&[0x00][..], "0"),
            (&[0x0f, 0x42, 0x40], "1000000"),
            (&[0xff], "-1"),
            (&[0x80], "-128"),
            (&[0x00, 0xff, 0xff], "65535"),
        ] {
            assert_eq!(signed_decimal(be), want);
        }
        assert!(line.starts_with("block        5 0xababab…abab"), "{line}");
        assert!(
            line.contains("topics 1 [0x111111…1111]  data 2 B  (offset 3)"),
            "{line}"
        );
    }
}
