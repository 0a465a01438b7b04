//! `devstack`: the local stack for EthHook Ingestor (`up`) and its benchmark (`bench`).
//! Both expect ANVIL_BIN and TANSU_BIN, as set by `scripts/deps.sh env`.

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
    /// Two anvil chains, tansu, the ingestor and traffic; prints decoded records. Ctrl-C stops.
    Up {
        /// Path of the ingestor binary.
        #[arg(long)]
        ingestor: PathBuf,
        /// Milliseconds between mined blocks on each chain.
        #[arg(long, default_value_t = 1500)]
        block_interval_ms: u64,
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
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Up {
            ingestor,
            block_interval_ms,
        } => demo::up(&ingestor, Duration::from_millis(block_interval_ms)),
        Command::Bench {
            ingestor,
            blocks,
            logs_per_block,
            logs_per_tx,
            range_blocks,
            dead_collector,
        } => {
            let params = bench::Params {
                blocks,
                logs_per_block,
                logs_per_tx,
                range_blocks,
                dead_collector,
            };
            println!(
                "command: scripts/bench.sh --blocks {blocks} --logs-per-block {logs_per_block} --logs-per-tx {logs_per_tx} --range-blocks {range_blocks}{}",
                if dead_collector {
                    " --dead-collector"
                } else {
                    ""
                }
            );
            bench::run(&ingestor, &params)
        }
    }
}
