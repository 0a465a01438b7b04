//! `ingestor`: the binary. Parses the command line and hands over to the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::collections::HashMap;

use ingestor::encode::{self, Framing};
use ingestor::registry::{self, Registry};
use ingestor::sink::Framings;
use ingestor::{checkpoint, config, group, health, shutdown, sink, supervisor, telemetry};
use tracing_subscriber::EnvFilter;

/// glibc's malloc tuned for this workload, unless the environment sets the same tunable
/// (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`, or either in `GLIBC_TUNABLES`):
/// - at most two arenas (its default is eight per core): as fast as mimalloc on the backfill
///   benchmark, with a third less peak memory than either;
/// - a fixed 128 KiB mmap threshold. By default glibc raises the threshold to the size of
///   each large block freed, so after the first node answer (megabytes) every later one is
///   carved from the heap, which then cannot shrink past the small, long-lived allocations
///   made in between: 12 MiB more at the peak of the memory benchmark.
///
/// See `docs/benchmark.md` ("Memory").
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |var: &str, tunable: &str| {
            std::env::var_os(var).is_some()
                || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains(tunable))
        };
        // SAFETY: called first in `main`, before any other thread exists; `mallopt` only
        // sets one of the allocator's tunables.
        unsafe {
            if !set("MALLOC_ARENA_MAX", "arena_max") {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
            if !set("MALLOC_MMAP_THRESHOLD_", "mmap_threshold") {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
            }
        }
    }
}

/// Follows EVM chains and publishes every event log to Kafka-API topics as Avro.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service until SIGINT/SIGTERM.
    Run {
        /// The TOML configuration file (environment variables INGESTOR_* override it).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the configuration file and exit.
    CheckConfig {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the Avro record schema of every decoded event the configuration selects, one
    /// JSON object per line: `{"chain", "topic", "event", "schema"}`.
    Schemas {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print a chain topic's records, decoded, from the cluster in the configuration (its
    /// security settings and `[schema_registry]` apply). Stops at the end unless --follow.
    Tail {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: PathBuf,
        /// The chain (by name) whose topic to read; default: the only chain.
        #[arg(long, conflicts_with = "topic")]
        chain: Option<String>,
        /// A topic to read instead of a chain's.
        #[arg(long)]
        topic: Option<String>,
        /// A decoded event's topic instead (by event name or signature, of the chain).
        #[arg(long, conflicts_with = "topic")]
        event: Option<String>,
        /// The chain's topic of a dataset instead: `blocks` or `transactions` (one line per
        /// block or transaction), or `logs` (the chain topic, the default).
        #[arg(long, conflicts_with_all = ["topic", "event"], value_parser = ["logs", "blocks", "transactions"])]
        dataset: Option<String>,
        /// Start at the oldest record (default: only records from now on).
        #[arg(long)]
        from_beginning: bool,
        /// Keep printing new records until Ctrl-C.
        #[arg(long)]
        follow: bool,
        /// `text` (one line per record) or `json` (one object per record).
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        format: String,
    },
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    // One rustls provider for every TLS client in the process (nodes, OTLP, librdkafka
    // does its own): ring. Installing it can only fail if one is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        Command::CheckConfig { config } => check(&config),
        Command::Run { config } => run(&config),
        Command::Schemas { config } => schemas(&config),
        Command::Tail {
            config,
            chain,
            topic,
            event,
            dataset,
            from_beginning,
            follow,
            format,
        } => tail(
            &config,
            chain,
            topic,
            event.map(Pick::Event).or(dataset.map(Pick::Dataset)),
            from_beginning,
            follow,
            format == "json",
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check(path: &std::path::Path) -> anyhow::Result<()> {
    let cfg = config::load(path)?;
    let names: Vec<_> = cfg
        .chains
        .iter()
        .map(|c| match c.raw_topic() {
            Some(topic) => format!(
                "{} ({} -> {})",
                c.name,
                c.chain_id,
                std::iter::once(topic)
                    .chain(c.dataset_topics())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("{} ({} -> decoded events only)", c.name, c.chain_id),
        })
        .collect();
    println!("config OK: {} chain(s): {}", names.len(), names.join(", "));
    if let Some(g) = &cfg.group {
        println!(
            "  group {}: chains shared with every instance of the group (session timeout {} ms)",
            g.id, g.session_timeout_ms
        );
    }
    for chain in &cfg.chains {
        for e in chain.catalog.events() {
            println!("  {}: {} -> {}", chain.name, e.signature, e.topic);
        }
    }
    Ok(())
}

fn schemas(path: &std::path::Path) -> anyhow::Result<()> {
    let cfg = config::load(path)?;
    for chain in &cfg.chains {
        for e in chain.catalog.events() {
            let schema: serde_json::Value = serde_json::from_str(&e.schema_json)?;
            let line = serde_json::json!({
                "chain": chain.name,
                "topic": e.topic,
                "event": e.signature,
                "schema": schema,
            });
            println!("{line}");
        }
    }
    Ok(())
}

fn run(path: &std::path::Path) -> anyhow::Result<()> {
    let cfg = config::load(path)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        // Before any event: events update the instruments of the installed providers.
        let telemetry = telemetry::init()?;
        let stop = shutdown::on_signal().context("cannot install signal handlers")?;
        let health_stop = tokio_util::sync::CancellationToken::new();
        let _health = match cfg.health.enabled {
            true => Some(
                health::start(&cfg.health, Some(telemetry.scrape()), health_stop.clone()).await?,
            ),
            false => None,
        };
        tokio::spawn(telemetry::stall::watch(
            cfg.health.stall_after_ms,
            health_stop.clone(),
        ));
        let _stop_health = health_stop.drop_guard();
        // Credentials and TLS first: a refusal is one line and exit 1, not endless retries.
        let kafka = cfg.kafka.clone();
        tokio::task::spawn_blocking(move || sink::check_cluster(&kafka))
            .await
            .context("cluster check failed")??;
        let producers = if cfg.kafka.transactional {
            supervisor::Producers::PerChain
        } else {
            supervisor::Producers::Shared(sink::producer(&cfg.kafka)?)
        };
        let topics: Vec<(String, Option<i32>)> =
            std::iter::once((cfg.kafka.checkpoint_topic.clone(), Some(1)))
                // A chain with `raw = false` has no chain topic.
                .chain(
                    cfg.chains
                        .iter()
                        .filter_map(|c| c.raw_topic().map(|t| (t, None))),
                )
                // Each dataset's topic (blocks, transactions), compacted like the chain topic.
                .chain(
                    cfg.chains
                        .iter()
                        .flat_map(|c| c.dataset_topics().into_iter().map(|t| (t, None))),
                )
                // Each decoded event's topic, compacted like the chain topic.
                .chain(
                    cfg.chains
                        .iter()
                        .flat_map(|c| c.catalog.events().iter().map(|e| (e.topic.clone(), None))),
                )
                // Group mode: one single-partition membership topic per chain.
                .chain(cfg.group.iter().flat_map(|g| {
                    cfg.chains
                        .iter()
                        .map(|c| (group::membership_topic(&g.id, c.chain_id), Some(1)))
                }))
                .collect();
        sink::ensure_topics(&cfg.kafka, &topics).await?;
        // Independent of each other, so at once: start-up time is time before the first
        // record.
        let kafka = cfg.kafka.clone();
        let checkpoints = async {
            tokio::task::spawn_blocking(move || checkpoint::load_all(&kafka))
                .await
                .context("checkpoint loader failed")?
                .map_err(anyhow::Error::from)
        };
        // A signal while the registry is being retried stops here: nothing is published yet.
        let mut stop = Box::pin(stop);
        let (framings, checkpoints) = tokio::select! {
            ready = async { tokio::try_join!(framings(&cfg), checkpoints) } => ready?,
            signal = &mut stop => {
                ingestor::events::StoppedBeforePublishing { signal }.emit();
                return Ok(());
            }
        };
        if cfg.group.is_some() {
            // Refuses to join a group whose live members list other chains.
            let c = cfg.clone();
            let (membership, commands) =
                tokio::task::spawn_blocking(move || group::Membership::start(&c))
                    .await
                    .context("group membership task failed")??;
            let rpc = telemetry.rpc_metrics();
            supervisor::run_group(cfg, membership, commands, framings, rpc, stop).await?;
            return Ok(());
        }
        let rpc = telemetry.rpc_metrics();
        supervisor::run(cfg, producers, checkpoints, framings, rpc, stop).await?;
        Ok(())
    })
}

/// With a registry: the schema id of each chain topic's subject and of each decoded
/// event topic's; without: single-object.
async fn framings(cfg: &config::Config) -> anyhow::Result<HashMap<u64, Framings>> {
    let Some(r) = &cfg.schema_registry else {
        return Ok(HashMap::new());
    };
    let registry = Registry::new(r)?;
    let mut out = HashMap::new();
    for chain in &cfg.chains {
        let register = async |topic: &str, schema: &str, what: &str| -> anyhow::Result<Framing> {
            let subject = registry::subject(topic);
            let schema_id = registry.register_retrying(&subject, schema, what).await?;
            ingestor::events::SchemaRegistered {
                chain: &chain.name,
                subject: &subject,
                schema_id,
            }
            .emit();
            Ok(Framing::Registry { schema_id })
        };
        let raw = match chain.raw_topic() {
            Some(topic) => {
                Some(register(&topic, encode::SCHEMA_JSON, "schemas/evm_log.avsc").await?)
            }
            None => None,
        };
        let mut framings = Framings {
            raw,
            events: Vec::new(),
            blocks: None,
            transactions: None,
        };
        if let Some(topic) = chain.blocks_topic() {
            framings.blocks = Some(
                register(
                    &topic,
                    encode::block::BLOCK_SCHEMA_JSON,
                    "schemas/evm_block.avsc",
                )
                .await?,
            );
        }
        if let Some(topic) = chain.transactions_topic() {
            framings.transactions = Some(
                register(
                    &topic,
                    encode::transaction::TRANSACTION_SCHEMA_JSON,
                    "schemas/evm_transaction.avsc",
                )
                .await?,
            );
        }
        for e in chain.catalog.events() {
            let what = format!("the schema of event {} ({})", e.signature, e.source);
            framings
                .events
                .push(register(&e.topic, &e.schema_json, &what).await?);
        }
        out.insert(chain.chain_id, framings);
    }
    Ok(out)
}

/// The topic of `chain`'s decoded event `e` (a name, record name or signature). A name
/// two events share on different topics (ERC-20 and ERC-721 `Transfer`) is refused:
/// printing one of them would hide the other.
fn event_topic(chain: &config::ChainConfig, e: &str) -> anyhow::Result<String> {
    let mut topics: Vec<&str> = chain
        .catalog
        .events()
        .iter()
        .filter(|spec| spec.name == e || spec.record == e || spec.signature == e)
        .map(|spec| spec.topic.as_str())
        .collect();
    topics.sort_unstable();
    topics.dedup();
    match topics.as_slice() {
        [] => anyhow::bail!(
            "chain `{}` decodes no event `{e}` ([[chains.events]])",
            chain.name
        ),
        [one] => Ok((*one).to_owned()),
        several => anyhow::bail!(
            "event `{e}` of chain `{}` is on several topics ({}); name one with --topic TOPIC",
            chain.name,
            several.join(", ")
        ),
    }
}

/// Which of a chain's topics `tail` reads, besides its chain topic.
enum Pick {
    /// A decoded event's, by name or signature.
    Event(String),
    /// A dataset's: `logs`, `blocks` or `transactions`.
    Dataset(String),
}

/// The topic of `dataset` on `chain`, or why it has none.
fn dataset_topic(chain: &config::ChainConfig, dataset: &str) -> anyhow::Result<String> {
    let topic = match dataset {
        "blocks" => chain.blocks_topic(),
        "transactions" => chain.transactions_topic(),
        _ => chain.raw_topic(),
    };
    topic.with_context(|| {
        format!(
            "chain `{}` does not publish the `{dataset}` dataset: add it to `datasets` in its [[chains]] table",
            chain.name
        )
    })
}

fn tail(
    path: &std::path::Path,
    chain: Option<String>,
    topic: Option<String>,
    pick: Option<Pick>,
    from_beginning: bool,
    follow: bool,
    json: bool,
) -> anyhow::Result<()> {
    let cfg = config::load(path)?;
    let topic = match (topic, chain) {
        (Some(t), _) => t,
        (None, chain) => {
            let chain = match chain {
                Some(name) => cfg
                    .chains
                    .iter()
                    .find(|c| c.name == name)
                    .with_context(|| format!("no chain named `{name}` in {}", path.display()))?,
                None if cfg.chains.len() == 1 => &cfg.chains[0],
                None => anyhow::bail!(
                    "the config has several chains; name one with --chain NAME or --topic TOPIC"
                ),
            };
            match pick {
                Some(Pick::Dataset(d)) => dataset_topic(chain, &d)?,
                None => chain.raw_topic().with_context(|| {
                    format!(
                        "chain `{}` has `raw = false`: it publishes no chain topic; name a decoded event with --event NAME or a topic with --topic TOPIC",
                        chain.name
                    )
                })?,
                Some(Pick::Event(e)) => event_topic(chain, &e)?,
            }
        }
    };
    let opts = ingestor::tail::TailOptions {
        topic,
        from_beginning,
        follow,
        json,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let signal = shutdown::on_signal().context("cannot install signal handlers")?;
        let flag = stop.clone();
        let watcher = tokio::spawn(async move {
            signal.await;
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        });
        let reader = tokio::task::spawn_blocking(move || {
            ingestor::tail::run(&cfg, &opts, &mut std::io::stdout().lock(), &stop)
        });
        let read = reader.await.context("tail task failed")?;
        watcher.abort();
        read?;
        Ok(())
    })
}
