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
        Self::spawn(dir, port, port, storage, false)
    }

    /// A broker that requires SASL (SCRAM-SHA-512) for `user`, listening on `port` and
    /// advertising `advertised_port` (a TLS-terminating proxy in front of it: tansu 0.6's
    /// own `--cert` and `--key` cannot be given together). The user is created while the
    /// broker runs without `--authentication` on a sqlite file, then it restarts with it.
    pub fn start_secured(
        dir: &Path,
        port: u16,
        advertised_port: u16,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Self> {
        let storage = "sqlite://tansu-secured.db";
        let mut open = Self::spawn(dir, port, port, storage, false)?;
        let out = Command::new(crate::tool("TANSU_BIN")?)
            .args([
                "user",
                "create",
                "--broker",
                &format!("tcp://127.0.0.1:{port}"),
                user,
                password,
            ])
            .current_dir(dir)
            .env("RUST_LOG", "warn")
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "tansu user create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        open.process.signal(libc::SIGTERM);
        open.process.wait_exit(Duration::from_secs(30))?;
        drop(open);
        Self::spawn(dir, port, advertised_port, storage, true)
    }

    fn spawn(
        dir: &Path,
        port: u16,
        advertised_port: u16,
        storage: &str,
        authentication: bool,
    ) -> anyhow::Result<Self> {
        let url = format!("tcp://127.0.0.1:{port}");
        let advertised = format!("tcp://127.0.0.1:{advertised_port}");
        let mut cmd = Command::new(crate::tool("TANSU_BIN")?);
        cmd.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &advertised,
        ])
        .args(["--storage-engine", storage]);
        if authentication {
            cmd.arg("--authentication");
        }
        cmd.current_dir(dir)
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
