//! The ingestor binary as a child process, with a generated configuration file.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::consumer::TopicReader;
use crate::proc::Managed;

/// One `[[chains]]` entry of a generated config.
#[derive(Debug, Clone)]
pub struct ChainEntry {
    /// `name`.
    pub name: String,
    /// `chain_id`.
    pub chain_id: u64,
    /// `ws_url` (used when `urls` is empty).
    pub ws_url: String,
    /// `urls`, when not empty (instead of `ws_url`).
    pub urls: Vec<String>,
    /// `start_block` as TOML (`0`, `"latest"`).
    pub start_block: String,
    /// Extra `key = value` lines for the chain table.
    pub extra: Vec<String>,
}

impl ChainEntry {
    /// A chain named `chain-<id>` starting at block 0.
    pub fn new(chain_id: u64, ws_url: String) -> Self {
        Self {
            name: format!("chain-{chain_id}"),
            chain_id,
            ws_url,
            urls: vec![],
            start_block: "0".into(),
            extra: vec![],
        }
    }

    /// A chain named `chain-<id>` starting at block 0, with `urls`.
    pub fn with_urls(chain_id: u64, urls: Vec<String>) -> Self {
        Self {
            urls,
            ..Self::new(chain_id, String::new())
        }
    }
}

/// Renders a config file for `brokers` and `chains`.
pub fn config_toml(brokers: &str, chains: &[ChainEntry], extra_top: &str) -> String {
    let mut s = format!("{extra_top}\n[kafka]\nbrokers = \"{brokers}\"\n");
    for c in chains {
        let endpoint = if c.urls.is_empty() {
            format!("ws_url = {:?}", c.ws_url)
        } else {
            format!("urls = {:?}", c.urls)
        };
        let _ = write!(
            s,
            "\n[[chains]]\nname = \"{}\"\nchain_id = {}\n{endpoint}\nstart_block = {}\n",
            c.name, c.chain_id, c.start_block
        );
        for line in &c.extra {
            let _ = writeln!(s, "{line}");
        }
    }
    s
}

/// A running `ingestor run`.
pub struct Service {
    /// The process.
    pub process: Managed,
    /// Its config file.
    pub config: PathBuf,
}

impl Service {
    /// Writes `toml` into `dir` and starts `bin run --config` on it.
    pub fn start(bin: &Path, dir: &Path, toml: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let config = dir.join("ingestor.toml");
        std::fs::write(&config, toml)?;
        let mut cmd = Command::new(bin);
        cmd.arg("run").arg("--config").arg(&config);
        cmd.env(
            "RUST_LOG",
            std::env::var("INGESTOR_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        // Many services run at once in tests: the health endpoint takes a free port (it is
        // logged); a test that queries it reads the address from the log.
        .env("INGESTOR_HEALTH__LISTEN_ADDR", "127.0.0.1:0")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let process = Managed::spawn("ingestor", cmd, dir.join("ingestor.log"))?;
        Ok(Self { process, config })
    }

    /// The health endpoint's address, once the service logged it.
    pub fn health_addr(&self) -> Option<String> {
        let log = self.process.log_text();
        let line = log
            .lines()
            .find(|l| l.contains("health endpoint listening"))?;
        let start = line.find("addr=")? + 5;
        Some(line[start..].split_whitespace().next()?.to_owned())
    }

    /// A reader of `topic` (librdkafka `options` added), once the topic exists; if the
    /// service exits before it does, fails at once with its exit status and log tail.
    pub fn reader(
        &mut self,
        brokers: &str,
        topic: &str,
        options: &[(&str, &str)],
    ) -> anyhow::Result<TopicReader> {
        TopicReader::open(brokers, topic, options, || self.process.ensure_running())
    }

    /// SIGTERM, then waits for the exit code.
    pub fn stop(&mut self, deadline: Duration) -> anyhow::Result<Option<i32>> {
        self.process.signal(libc::SIGTERM);
        self.process.wait_exit(deadline)
    }
}
