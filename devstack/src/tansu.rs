//! The pinned tansu broker as a child process.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::proc::{Managed, free_port, wait_for_port};

/// A running single-node tansu broker.
pub struct Tansu {
    /// The process.
    pub process: Managed,
    /// Its Kafka port.
    pub port: u16,
}

impl Tansu {
    /// Starts tansu on a free loopback port with in-memory storage.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, free_port()?, "memory://tansu/")
    }

    /// Starts tansu on `port` with `storage` (`memory://tansu/` or `sqlite://FILE`; tansu
    /// resolves FILE relative to its working directory, which is `dir`).
    pub fn start_with(dir: &Path, port: u16, storage: &str) -> anyhow::Result<Self> {
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new(crate::tool("TANSU_BIN")?);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ])
        .args(["--storage-engine", storage])
        .current_dir(dir)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env("RUST_LOG", "warn");
        let process = Managed::spawn("tansu", cmd, dir.join("tansu.log"))?;
        wait_for_port(port, Duration::from_secs(30))?;
        Ok(Self { process, port })
    }

    /// `bootstrap.servers` for clients.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
