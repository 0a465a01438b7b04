//! The configuration types. Units are in the names; every default is documented, here
//! and in `docs/configuration.md` (checked by `reference_tests.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Kafka-API cluster everything is published to.
    pub kafka: KafkaConfig,
    /// The chains to follow, one `[[chains]]` table each.
    pub chains: Vec<ChainConfig>,
    /// On SIGINT/SIGTERM, how long to wait for in-flight records to be acknowledged before
    /// exiting anyway. Default 30000.
    #[serde(default = "defaults::shutdown_timeout_ms")]
    pub shutdown_timeout_ms: u64,
    /// The health endpoint.
    #[serde(default)]
    pub health: HealthConfig,
    /// A Schema Registry: values use its wire format. Without one, Avro single-object
    /// encoding.
    #[serde(default)]
    pub schema_registry: Option<RegistryConfig>,
    /// Group mode: instances with the same group id share the chains of their (identical)
    /// configuration through Kafka's consumer-group protocol. Requires
    /// `kafka.transactional = true`.
    #[serde(default)]
    pub group: Option<GroupConfig>,
}

/// `[group]`: high availability on Kafka's consumer-group protocol. Each chain is followed
/// by exactly one live member of the group; a member that stops or dies hands its chains
/// to the others.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The consumer group id the instances share (`group.id`). Required.
    pub id: String,
    /// librdkafka `session.timeout.ms`: a member silent this long loses its chains to the
    /// others. Default 10000.
    #[serde(default = "defaults::group_session_timeout_ms")]
    pub session_timeout_ms: u64,
}

/// `[schema_registry]`: a Confluent-compatible Schema Registry (Redpanda's, Confluent's).
/// At start-up `schemas/evm_log.avsc` is registered under `<topic>-value` for each chain
/// (TopicNameStrategy); each value is then `0x00`, the 4-byte big-endian schema id, and
/// the Avro body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL, `http://` or `https://` (e.g. `http://redpanda:8081`). Required.
    pub url: String,
    /// Basic-auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic-auth password (better from `INGESTOR_SCHEMA_REGISTRY__PASSWORD`). Never logged.
    #[serde(default)]
    pub password: Option<Secret>,
    /// A PEM bundle of extra CAs for an `https://` registry, beyond the platform's roots and
    /// `SSL_CERT_FILE`.
    #[serde(default)]
    pub ssl_ca_file: Option<PathBuf>,
    /// Deadline for each registry request. Default 10000.
    #[serde(default = "defaults::registry_timeout_ms")]
    pub request_timeout_ms: u64,
    /// At start-up, how long to keep retrying a registry that cannot be reached or answers
    /// HTTP 5xx (also 408, 429), with backoff from 0.5 s to 10 s, before exiting; 0 gives up
    /// at the first failure. Default 120000.
    #[serde(default = "defaults::registry_retry_timeout_ms")]
    pub retry_timeout_ms: u64,
}

/// `[health]`: `/healthz`, `/readyz`, `/status` over HTTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Serve the endpoint. Default true.
    #[serde(default = "defaults::yes")]
    pub enabled: bool,
    /// Address to listen on; port 0 picks a free one (logged). Default `127.0.0.1:8686`:
    /// loopback only unless changed.
    #[serde(default = "defaults::health_listen_addr")]
    pub listen_addr: String,
    /// `/readyz` fails while a chain is more than this many blocks behind its head. Default 64.
    #[serde(default = "defaults::ready_max_lag_blocks")]
    pub ready_max_lag_blocks: u64,
    /// Connections served at once; more are closed at once. Default 32.
    #[serde(default = "defaults::health_max_connections")]
    pub max_connections: usize,
    /// Deadline for reading a request and writing its answer. Default 5000.
    #[serde(default = "defaults::health_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// A chain that has delivered no block for this long while its node's head is past
    /// its last delivered block is stalled: one ERROR line with the block and the last
    /// rejection's reason, `ethhook_chain_stalled` 1, `stalled` in `/status`, and not
    /// ready. Default 60000.
    #[serde(default = "defaults::stall_after_ms")]
    pub stall_after_ms: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_addr: defaults::health_listen_addr(),
            ready_max_lag_blocks: defaults::ready_max_lag_blocks(),
            max_connections: defaults::health_max_connections(),
            request_timeout_ms: defaults::health_request_timeout_ms(),
            stall_after_ms: defaults::stall_after_ms(),
        }
    }
}

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma-separated `host:port`. Required.
    pub brokers: String,
    /// Partitions of each chain topic created at start-up. Default 1, which keeps a chain's
    /// records in block order for every consumer.
    #[serde(default = "defaults::topic_partitions")]
    pub topic_partitions: i32,
    /// Replication factor of topics created at start-up. Default 1 (the local broker has one
    /// node; raise it for a production cluster).
    #[serde(default = "defaults::topic_replication_factor")]
    pub topic_replication_factor: i32,
    /// librdkafka `message.timeout.ms`: how long a record may wait for acknowledgement,
    /// retries included, before its delivery fails and its chain stops. Default 300000.
    #[serde(default = "defaults::message_timeout_ms")]
    pub message_timeout_ms: u64,
    /// A chain whose records have waited this long for the brokers' acknowledgement (and
    /// still wait) is reported stalled: a log line, `ethhook_sink_stalled` and `/status`.
    /// Default 10000.
    #[serde(default = "defaults::stall_warning_ms")]
    pub stall_warning_ms: u64,
    /// librdkafka `queue.buffering.max.messages`: records waiting for the broker before the
    /// producer reports a full queue and the follower waits. Default 100000.
    #[serde(default = "defaults::queue_max_messages")]
    pub queue_max_messages: u64,
    /// librdkafka `queue.buffering.max.kbytes`: the same bound in KiB of record data, shared
    /// by every chain of the shared producer. At least 16384 (one record of the largest
    /// size). Default 32768.
    #[serde(default = "defaults::queue_max_kbytes")]
    pub queue_max_kbytes: u64,
    /// Capacity, in keys, of the per-chain LRU that skips records already on the topic with
    /// the same value (seeded from the topic's tail at start-up). It should hold at least
    /// the reorg window's logs, or a crash replay may publish some records twice. 0
    /// disables it. Default 100000.
    #[serde(default = "defaults::dedup_cache_capacity")]
    pub dedup_cache_capacity: usize,
    /// Records read back per partition of a chain topic at start-up when the checkpoint
    /// does not say where its window starts (no checkpoint, or one in the first format).
    /// Default 100000.
    #[serde(default = "defaults::resume_lookback_records")]
    pub resume_lookback_records: u64,
    /// Deadline for topic creation and metadata requests at start-up: the first contact
    /// with the cluster, and a creation that timed out, are retried until then. Default
    /// 30000.
    #[serde(default = "defaults::admin_timeout_ms")]
    pub admin_timeout_ms: u64,
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`: how every client of the
    /// service (producer, admin, checkpoint reader) talks to the brokers.
    #[serde(default)]
    pub security_protocol: SecurityProtocol,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required with a `sasl_*` protocol.
    #[serde(default)]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name; required with a `sasl_*` protocol.
    #[serde(default)]
    pub sasl_username: Option<String>,
    /// SASL password; required with a `sasl_*` protocol. Keep it out of the file with
    /// `INGESTOR_KAFKA__SASL_PASSWORD`. Never logged.
    #[serde(default)]
    pub sasl_password: Option<Secret>,
    /// PEM file of the CA(s) that signed the brokers' certificates. Default: the platform's
    /// store (librdkafka probes the usual paths).
    #[serde(default)]
    pub ssl_ca_file: Option<PathBuf>,
    /// PEM client certificate, for mutual TLS (with `ssl_key_file`).
    #[serde(default)]
    pub ssl_cert_file: Option<PathBuf>,
    /// PEM private key of `ssl_cert_file`.
    #[serde(default)]
    pub ssl_key_file: Option<PathBuf>,
    /// Raw librdkafka settings passed through as they are (e.g. `"compression.type" = "zstd"`,
    /// security settings). Set last, so they win over the service's own defaults, except
    /// `enable.idempotence`, which is always true.
    #[serde(default, deserialize_with = "scalars_as_strings")]
    pub librdkafka_options: BTreeMap<String, String>,
    /// Compacted topic holding each chain's checkpoint (key = chain id). Created at start-up
    /// with one partition. Default `ingestor.checkpoints`.
    #[serde(default = "defaults::checkpoint_topic")]
    pub checkpoint_topic: String,
    /// Exactly-once mode: each batch of blocks (their records, tombstones and the checkpoint)
    /// is one Kafka transaction, with `transactional.id = <transactional_id_prefix>-<chain_id>`.
    /// Default false (idempotent: an exact compacted view, and a crash replay that skips
    /// what the topic already holds; a consumer may still read a block's records before a
    /// crash and the tombstones of that block after it, if it was orphaned meanwhile).
    #[serde(default)]
    pub transactional: bool,
    /// Prefix of each chain's `transactional.id`. A second instance with the same prefix
    /// fences the first for that chain (hot standby). Default `ethhook-ingestor`.
    #[serde(default = "defaults::transactional_id_prefix")]
    pub transactional_id_prefix: String,
    /// Most blocks committed in one transaction (catch-up batches what is ready). Default 100.
    #[serde(default = "defaults::transaction_max_blocks")]
    pub transaction_max_blocks: usize,
    /// Deadline for `init`/`commit`/`abort` of a transaction. Default 60000.
    #[serde(default = "defaults::transaction_timeout_ms")]
    pub transaction_timeout_ms: u64,
}

/// A secret from the configuration: `Debug` never shows it, so no log line can.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that hands it to a client.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the service talks to the brokers (librdkafka `security.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL authentication without TLS.
    SaslPlaintext,
    /// SASL authentication over TLS (managed clusters).
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether TLS is used.
    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether SASL is used.
    pub fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// The SASL mechanism (librdkafka `sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// `PLAIN`.
    #[serde(rename = "PLAIN")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// librdkafka takes every setting as a string; accept `linger.ms = 10` as well as `"10"`.
fn scalars_as_strings<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Scalar::Text(s) => s,
                Scalar::Int(i) => i.to_string(),
                Scalar::Float(f) => f.to_string(),
                Scalar::Bool(b) => b.to_string(),
            };
            (k, v)
        })
        .collect())
}

/// Where a chain starts when it has no earlier progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartBlock {
    /// The head block at start-up.
    Latest,
    /// This block number (inclusive).
    Number(u64),
}

impl<'de> Deserialize<'de> for StartBlock {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Self::Number(n)),
            Raw::Text(t) if t == "latest" => Ok(Self::Latest),
            Raw::Text(t) => Err(serde::de::Error::custom(format!(
                "expected a block number or \"latest\", got {t:?}"
            ))),
        }
    }
}

/// One kind of record a chain publishes (`chains[].datasets`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// Every log, to the chain topic (`EvmLog`).
    Logs,
    /// One record per block (`EvmBlock`).
    Blocks,
    /// One record per transaction, with its receipt (`EvmTransaction`).
    Transactions,
}

impl Dataset {
    /// The name in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logs => "logs",
            Self::Blocks => "blocks",
            Self::Transactions => "transactions",
        }
    }
}

/// Which block the follower treats as the head it may publish up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Finality {
    /// The node's latest block; reorganisations are retracted with tombstones.
    #[default]
    Latest,
    /// The node's `safe` block.
    Safe,
    /// The node's `finalized` block.
    Finalized,
}

impl Finality {
    /// The JSON-RPC block tag.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Safe => "safe",
            Self::Finalized => "finalized",
        }
    }
}

/// One `[[chains]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// A short unique name used in logs, metrics and environment overrides.
    pub name: String,
    /// The EIP-155 chain id; the node's `eth_chainId` must equal it or nothing is published.
    pub chain_id: u64,
    /// The node's JSON-RPC endpoints, most preferred first: `wss://`/`ws://` (pushed
    /// `newHeads`) or `https://`/`http://` (the head is polled every
    /// `head_poll_interval_ms`). When one fails (its breaker opens or its connection drops)
    /// the next is used; a preferred one is taken back once its breaker lets a trial
    /// through. Never logged unredacted: logs, metrics and `/status` name them by index.
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    /// One WebSocket endpoint: the shorthand for `urls = [ws_url]`. Set one of the two.
    #[serde(default)]
    pub ws_url: Option<String>,
    /// A PEM bundle of extra CAs trusted for this chain's `wss://`/`https://` endpoints,
    /// beyond the platform's roots and `SSL_CERT_FILE`.
    #[serde(default)]
    pub tls_ca_file: Option<PathBuf>,
    /// Take every block's logs from its receipts and prove them complete against the
    /// header: one receipt per transaction, the last `cumulativeGasUsed` equal to the
    /// header's `gasUsed`, log indexes 0, 1, 2, … without a gap, and together exactly the
    /// header's `logsBloom`. An answer that fails is asked again, never published
    /// (load-balanced providers answer `[]` for a block another of their nodes announced but
    /// this one has not indexed). A zero bloom proves a block empty. Off: ranged
    /// `eth_getLogs`, unchecked. Default true.
    #[serde(default = "defaults::yes")]
    pub verify_log_completeness: bool,
    /// How much of each block is proven: `"receipts_root"` (the receipts' checks, and the
    /// header hashes to the block hash, and the receipts make the header's `receiptsRoot`),
    /// `"receipts"` (the receipts' checks only), `"none"` (ranged `eth_getLogs`, unchecked:
    /// what `verify_log_completeness = false` says), or `"auto"`: the strongest that holds
    /// on the chain's first blocks, never lowered afterwards. Default `"auto"`, which
    /// `verify_log_completeness = false` makes `"none"`.
    #[serde(default)]
    pub proof: crate::proof::Level,
    /// Most requests in one JSON-RPC batch over HTTP (headers of a catch-up range).
    /// Default 100.
    #[serde(default = "defaults::rpc_batch_max")]
    pub rpc_batch_max: usize,
    /// First block to publish when there is no earlier progress: a number or `"latest"`.
    /// Default `"latest"`.
    #[serde(default = "defaults::start_block")]
    pub start_block: StartBlock,
    /// Topic to publish to. Default `evm.logs.<chain_id>`.
    #[serde(default)]
    pub topic: Option<String>,
    /// What to publish: `"logs"` (every log, to `topic`), `"blocks"` (one record per
    /// block, to `blocks_topic`), `"transactions"` (one record per transaction with its
    /// receipt, to `transactions_topic`). `"logs"` is required. Default `["logs"]`.
    #[serde(default = "defaults::datasets")]
    pub datasets: Vec<Dataset>,
    /// Topic of the `blocks` dataset. Default `evm.blocks.<chain_id>`.
    #[serde(default)]
    pub blocks_topic: Option<String>,
    /// Topic of the `transactions` dataset. Default `evm.transactions.<chain_id>`.
    #[serde(default)]
    pub transactions_topic: Option<String>,
    /// Deadline for opening a connection (WebSocket, TCP + TLS). Default 10000.
    #[serde(default = "defaults::connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Deadline for each JSON-RPC answer. Default 30000.
    #[serde(default = "defaults::request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// WebSocket ping interval; two intervals of silence mark the connection dead. Default 10000.
    #[serde(default = "defaults::keepalive_interval_ms")]
    pub keepalive_interval_ms: u64,
    /// How often the head is polled when no `newHeads` notification arrives (notifications
    /// are only wake-ups). Default 2000.
    #[serde(default = "defaults::head_poll_interval_ms")]
    pub head_poll_interval_ms: u64,
    /// Largest answer accepted from the node (a WebSocket message or an HTTP body); a
    /// larger one is a refused range, which shrinks. Default 268435456 (256 MiB).
    #[serde(default = "defaults::max_message_bytes")]
    pub max_message_bytes: usize,
    /// Blocks per ranged `eth_getLogs` during catch-up, at most. Default 1000.
    #[serde(default = "defaults::backfill_range_blocks")]
    pub backfill_range_blocks: u64,
    /// Logs each ranged `eth_getLogs` aims at: the range size follows the chain's density
    /// (at most doubling per request, never above `backfill_range_blocks`) and halves when
    /// the node refuses a range. Default 2000: each answer is parsed whole, so this bounds
    /// the memory of `backfill_concurrency` answers in flight.
    #[serde(default = "defaults::backfill_target_logs")]
    pub backfill_target_logs: u64,
    /// Ranged requests in flight at once during catch-up. Default 4.
    #[serde(default = "defaults::backfill_concurrency")]
    pub backfill_concurrency: usize,
    /// When the head is more than this many blocks ahead, catch up with ranged requests;
    /// otherwise fetch block by block. Default 16.
    #[serde(default = "defaults::live_threshold_blocks")]
    pub live_threshold_blocks: u64,
    /// While the chain catches up, one status line (block, head, percentage, blocks/s and
    /// logs/s over the interval, ETA, endpoint) every this many milliseconds; none once it
    /// is live. Default 10000.
    #[serde(default = "defaults::status_interval_ms")]
    pub status_interval_ms: u64,
    /// Idempotent mode: the shortest time between two checkpoint writes (0: after every
    /// acknowledged block, the default). Blocks delivered since the last checkpoint are
    /// read back from the topic after a crash, so a longer interval only costs a longer
    /// read at start-up. Transactional mode checkpoints in every transaction.
    #[serde(default)]
    pub checkpoint_interval_ms: u64,
    /// Blocks fetched but not yet acknowledged by the broker, at most. Default 256.
    #[serde(default = "defaults::max_blocks_in_flight")]
    pub max_blocks_in_flight: usize,
    /// First delay before reconnecting to the node, or before asking again after a rate
    /// limit without `Retry-After`; doubles up to the max, with jitter. Default 500.
    #[serde(default = "defaults::reconnect_backoff_initial_ms")]
    pub reconnect_backoff_initial_ms: u64,
    /// Largest delay between reconnect attempts. Default 30000.
    #[serde(default = "defaults::reconnect_backoff_max_ms")]
    pub reconnect_backoff_max_ms: u64,
    /// Consecutive failed connections or sessions that open the circuit breaker. Default 5.
    #[serde(default = "defaults::breaker_failure_threshold")]
    pub breaker_failure_threshold: u32,
    /// How long an open breaker refuses to contact the node before one trial (half-open).
    /// Default 30000.
    #[serde(default = "defaults::breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Recent blocks remembered to retract a reorganisation; a deeper one stops the chain
    /// with an error. Default 128.
    #[serde(default = "defaults::reorg_window_blocks")]
    pub reorg_window_blocks: usize,
    /// Publish a block only once this many blocks were built on it. Default 0.
    #[serde(default)]
    pub confirmations: u64,
    /// Follow the node's `latest`, `safe` or `finalized` block. Default `latest`.
    #[serde(default)]
    pub finality: Finality,
    /// Publish every log to the chain topic. Default `true`. `false` publishes only the
    /// decoded topics of `events` (at least one is required) and never creates the chain
    /// topic; the start-up read-back then finds each decoded topic's window by block
    /// number (see `docs/guarantees.md`).
    #[serde(default = "defaults::yes")]
    pub raw: bool,
    /// Decoded events: one `[[chains.events]]` table per ABI (see `docs/records.md`).
    /// Each selected event's logs are also published, decoded, to a topic of its own.
    #[serde(default)]
    pub events: Vec<EventsConfig>,
    /// The events `events` selects, loaded from their ABIs by [`super::load`] (not a key).
    #[serde(skip)]
    pub catalog: std::sync::Arc<crate::decode::Catalog>,
}

/// One `[[chains.events]]` table: events of one ABI to publish decoded.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// The ABI: a JSON array, or a Foundry/Hardhat artifact with an `abi` member; a
    /// relative path is read from the configuration file's folder. Required.
    pub abi: PathBuf,
    /// The events to publish, by name (or by signature, e.g. `Transfer(address,address,uint256)`,
    /// to pick one of an overloaded name). Default: every non-anonymous event of the ABI.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Only logs of these contracts (`0x` + 40 hex). Default: logs of any contract.
    #[serde(default)]
    pub addresses: Option<Vec<String>>,
    /// The topic of the (one) selected event's records. Default
    /// `evm.events.<chain_id>.<EventName>`.
    #[serde(default)]
    pub topic: Option<String>,
}

impl ChainConfig {
    /// The chain topic's name (`topic`, or `evm.logs.<chain_id>`), published or not.
    pub fn topic(&self) -> String {
        self.topic
            .clone()
            .unwrap_or_else(|| format!("evm.logs.{}", self.chain_id))
    }

    /// Whether the chain publishes `dataset`.
    pub fn publishes(&self, dataset: Dataset) -> bool {
        self.datasets.contains(&dataset)
    }

    /// The `blocks` dataset's topic, when the chain publishes it.
    pub fn blocks_topic(&self) -> Option<String> {
        self.publishes(Dataset::Blocks).then(|| {
            self.blocks_topic
                .clone()
                .unwrap_or_else(|| format!("evm.blocks.{}", self.chain_id))
        })
    }

    /// The `transactions` dataset's topic, when the chain publishes it.
    pub fn transactions_topic(&self) -> Option<String> {
        self.publishes(Dataset::Transactions).then(|| {
            self.transactions_topic
                .clone()
                .unwrap_or_else(|| format!("evm.transactions.{}", self.chain_id))
        })
    }

    /// The topics of the blocks and transactions datasets the chain publishes, in that
    /// order.
    pub fn dataset_topics(&self) -> Vec<String> {
        self.blocks_topic()
            .into_iter()
            .chain(self.transactions_topic())
            .collect()
    }

    /// The chain topic, when the chain publishes it (`None` with `raw = false`).
    pub fn raw_topic(&self) -> Option<String> {
        self.raw.then(|| self.topic())
    }

    /// The proof level configured: `proof`, except that `verify_log_completeness = false`
    /// (its older spelling) makes `auto` `none`.
    pub fn proof_level(&self) -> crate::proof::Level {
        match (self.proof, self.verify_log_completeness) {
            (crate::proof::Level::Auto, false) => crate::proof::Level::None,
            (level, _) => level,
        }
    }

    /// The endpoints, most preferred first (`urls`, or `[ws_url]`).
    pub fn endpoints(&self) -> Vec<String> {
        match (&self.urls, &self.ws_url) {
            (Some(urls), _) => urls.clone(),
            (None, Some(one)) => vec![one.clone()],
            (None, None) => Vec::new(),
        }
    }

    /// Milliseconds as a [`Duration`].
    pub fn ms(value: u64) -> Duration {
        Duration::from_millis(value)
    }
}

mod defaults {
    use super::StartBlock;

    pub(super) fn shutdown_timeout_ms() -> u64 {
        30_000
    }
    pub(super) fn datasets() -> Vec<super::Dataset> {
        vec![super::Dataset::Logs]
    }
    pub(super) fn yes() -> bool {
        true
    }
    pub(super) fn health_listen_addr() -> String {
        "127.0.0.1:8686".into()
    }
    pub(super) fn stall_after_ms() -> u64 {
        60_000
    }
    pub(super) fn ready_max_lag_blocks() -> u64 {
        64
    }
    pub(super) fn health_max_connections() -> usize {
        32
    }
    pub(super) fn health_request_timeout_ms() -> u64 {
        5_000
    }
    pub(super) fn topic_partitions() -> i32 {
        1
    }
    pub(super) fn topic_replication_factor() -> i32 {
        1
    }
    pub(super) fn message_timeout_ms() -> u64 {
        300_000
    }
    pub(super) fn stall_warning_ms() -> u64 {
        10_000
    }
    pub(super) fn queue_max_messages() -> u64 {
        100_000
    }
    pub(super) fn queue_max_kbytes() -> u64 {
        32_768
    }
    pub(super) fn dedup_cache_capacity() -> usize {
        100_000
    }
    pub(super) fn resume_lookback_records() -> u64 {
        100_000
    }
    pub(super) fn admin_timeout_ms() -> u64 {
        30_000
    }
    pub(super) fn start_block() -> StartBlock {
        StartBlock::Latest
    }
    pub(super) fn connect_timeout_ms() -> u64 {
        10_000
    }
    pub(super) fn request_timeout_ms() -> u64 {
        30_000
    }
    pub(super) fn keepalive_interval_ms() -> u64 {
        10_000
    }
    pub(super) fn head_poll_interval_ms() -> u64 {
        2_000
    }
    pub(super) fn max_message_bytes() -> usize {
        256 << 20
    }
    pub(super) fn registry_timeout_ms() -> u64 {
        10_000
    }
    pub(super) fn registry_retry_timeout_ms() -> u64 {
        120_000
    }
    pub(super) fn rpc_batch_max() -> usize {
        100
    }
    pub(super) fn backfill_range_blocks() -> u64 {
        1_000
    }
    pub(super) fn backfill_target_logs() -> u64 {
        2_000
    }
    pub(super) fn backfill_concurrency() -> usize {
        4
    }
    pub(super) fn live_threshold_blocks() -> u64 {
        16
    }
    pub(super) fn status_interval_ms() -> u64 {
        10_000
    }
    pub(super) fn max_blocks_in_flight() -> usize {
        256
    }
    pub(super) fn reconnect_backoff_initial_ms() -> u64 {
        500
    }
    pub(super) fn reconnect_backoff_max_ms() -> u64 {
        30_000
    }
    pub(super) fn breaker_failure_threshold() -> u32 {
        5
    }
    pub(super) fn breaker_open_ms() -> u64 {
        30_000
    }
    pub(super) fn reorg_window_blocks() -> usize {
        128
    }
    pub(super) fn checkpoint_topic() -> String {
        "ingestor.checkpoints".into()
    }
    pub(super) fn transactional_id_prefix() -> String {
        "ethhook-ingestor".into()
    }
    pub(super) fn transaction_max_blocks() -> usize {
        100
    }
    pub(super) fn transaction_timeout_ms() -> u64 {
        60_000
    }
    pub(super) fn group_session_timeout_ms() -> u64 {
        10_000
    }
}
