//! `devstack`: the local stack for EthHook Ingestor (`up`), its benchmark (`bench`), both
//! expecting ANVIL_BIN, KAFKA_LIBS and JAVA_BIN as set by `scripts/deps.sh env`; and `traffic`, the
//! traffic source for any anvil (the compose stack ships it in the ingestor's image).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use devstack::{bench, demo};

#[derive(Parser)]
#[command(about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Two anvil chains, Apache Kafka, the ingestor and traffic; prints decoded records. Ctrl-C stops.
    Up {
        /// Path of the ingestor binary.
        #[arg(long)]
        ingestor: PathBuf,
        /// Milliseconds between mined blocks on each chain.
        #[arg(long, default_value_t = 1500)]
        block_interval_ms: u64,
    },
    /// Mines blocks with varied logs on an anvil (now and then reorganising the last 2)
    /// until SIGINT/SIGTERM.
    Traffic {
        /// The node's HTTP JSON-RPC URL.
        #[arg(long, default_value = "http://127.0.0.1:8545")]
        rpc_url: String,
        /// Milliseconds between blocks.
        #[arg(long, default_value_t = 2000)]
        block_interval_ms: u64,
        /// Seed of the log shapes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Builds a chain and measures the node's and the ingestor's logs/s.
    Bench {
        /// Path of the ingestor binary.
        #[arg(long)]
        ingestor: PathBuf,
        /// Blocks with logs.
        #[arg(long, default_value_t = 500)]
        blocks: u64,
        /// Logs per block.
        #[arg(long, default_value_t = 400)]
        logs_per_block: usize,
        /// Logs per transaction.
        #[arg(long, default_value_t = 100)]
        logs_per_tx: usize,
        /// Blocks per ranged eth_getLogs.
        #[arg(long, default_value_t = 200)]
        range_blocks: u64,
        /// Also run the ingestor exporting OTLP to a collector that is down, and compare.
        #[arg(long)]
        dead_collector: bool,
        /// Measure live latency over this many blocks instead (and the broker's floor).
        #[arg(long)]
        latency: Option<usize>,
        /// With --latency: a second chain backfills this many logs meanwhile.
        #[arg(long, default_value_t = 0)]
        backfill_logs: usize,
        /// Measure peak memory instead: 4 live chains, one backfilling --blocks blocks of
        /// --logs-per-block logs.
        #[arg(long)]
        memory: bool,
        /// Measure the log completeness check instead: a chain of this many logs (1500 per
        /// block; 60000 when no number is given) whose every block's logsBloom is
        /// saturated; backfill with the check off and on, and live latency with it on and off.
        #[arg(long, value_name = "LOGS", num_args = 0..=1, default_missing_value = "60000")]
        completeness: Option<usize>,
        /// With --completeness: live blocks timed with the check on, and as many with it off.
        #[arg(long, default_value_t = 20)]
        live_blocks: usize,
        /// Also run the ingestor decoding every log as an ERC-20 Transfer onto its own topic,
        /// against the raw-only run, and print the ratio.
        #[arg(long)]
        decoded: bool,
        /// Also run the ingestor publishing the blocks and transactions datasets beside the
        /// logs, against logs only, and print the ratio.
        #[arg(long)]
        datasets: bool,
        /// With --completeness: pairs of backfills (one per proof), alternating which goes
        /// first; with --decoded: rounds of runs (raw only, decoded, decoded only), rotating;
        /// with --datasets: rounds of runs (logs only, all three datasets), alternating.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// With --completeness: the two `chains[].proof` levels compared, the baseline
        /// first (`receipts,receipts_root`: the cost of the proof by the block hash).
        #[arg(long, value_delimiter = ',', default_values_t = ["none".to_owned(), "auto".to_owned()])]
        proofs: Vec<String>,
        /// Measure group mode instead: failover after `kill -9`, hand-over on SIGTERM, and
        /// what membership costs one instance following six chains.
        #[arg(long)]
        failover: bool,
        /// With --failover: the group's `session_timeout_ms`.
        #[arg(long, default_value_t = 10_000)]
        session_timeout_ms: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up {
            ingestor,
            block_interval_ms,
        } => demo::up(&ingestor, Duration::from_millis(block_interval_ms)),
        Command::Traffic {
            rpc_url,
            block_interval_ms,
            seed,
        } => {
            let node = devstack::node::Node::at(&rpc_url);
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = stop.clone();
            ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::SeqCst))?;
            // Wait for the node (it may start after us in compose).
            let chain_id = devstack::proc::wait_for("the node", Duration::from_secs(120), || {
                node.call("eth_chainId", serde_json::json!([]))
                    .ok()
                    .and_then(|v| devstack::node::quantity(&v).ok())
            })?;
            eprintln!("devstack: traffic on chain {chain_id} at {rpc_url}");
            demo::traffic_loop(
                &node,
                chain_id,
                seed,
                Duration::from_millis(block_interval_ms),
                &stop,
            );
            Ok(())
        }
        Command::Bench {
            ingestor,
            blocks,
            logs_per_block,
            logs_per_tx,
            range_blocks,
            dead_collector,
            latency,
            memory,
            backfill_logs,
            completeness,
            live_blocks,
            decoded,
            datasets,
            rounds,
            failover,
            session_timeout_ms,
            proofs,
        } => {
            if failover {
                println!(
                    "command: scripts/bench.sh --failover --session-timeout-ms {session_timeout_ms}"
                );
                return devstack::failover::run(&ingestor, session_timeout_ms);
            }
            if memory {
                println!(
                    "command: scripts/bench.sh --memory --blocks {blocks} --logs-per-block {logs_per_block}"
                );
                return devstack::memory::run(&ingestor, blocks as usize, logs_per_block);
            }
            if let Some(blocks) = latency {
                println!(
                    "command: scripts/bench.sh --latency {blocks}{}",
                    if backfill_logs > 0 {
                        format!(" --backfill-logs {backfill_logs}")
                    } else {
                        String::new()
                    }
                );
                return devstack::latency::run(&ingestor, blocks, backfill_logs);
            }
            if let Some(logs) = completeness {
                anyhow::ensure!(
                    proofs.len() == 2,
                    "--proofs takes two levels, e.g. receipts,receipts_root"
                );
                println!(
                    "command: scripts/bench.sh --completeness {logs} --live-blocks {live_blocks} --rounds {rounds} --proofs {}",
                    proofs.join(",")
                );
                let params = bench::Params {
                    blocks,
                    logs_per_block,
                    logs_per_tx,
                    range_blocks,
                    dead_collector,
                    decoded: false,
                    datasets: false,
                    rounds,
                    completeness: Some(devstack::completeness::Params {
                        logs,
                        live_blocks,
                        rounds,
                        proofs: [proofs[0].clone(), proofs[1].clone()],
                    }),
                };
                return bench::run(&ingestor, &params);
            }
            let params = bench::Params {
                blocks,
                logs_per_block,
                logs_per_tx,
                range_blocks,
                dead_collector,
                decoded,
                datasets,
                rounds,
                completeness: None,
            };
            println!(
                "command: scripts/bench.sh --blocks {blocks} --logs-per-block {logs_per_block} --logs-per-tx {logs_per_tx} --range-blocks {range_blocks}{}{}{}{}",
                if dead_collector {
                    " --dead-collector"
                } else {
                    ""
                },
                if decoded { " --decoded" } else { "" },
                if datasets { " --datasets" } else { "" },
                if decoded || datasets {
                    format!(" --rounds {rounds}")
                } else {
                    String::new()
                }
            );
            bench::run(&ingestor, &params)
        }
    }
}
