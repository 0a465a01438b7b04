//! The pinned anvil node as a child process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::node::Node;
use crate::proc::{Managed, free_port, wait_for};

/// A running anvil with automine off: blocks are mined only by `anvil_mine`.
pub struct Anvil {
    /// The process.
    pub process: Managed,
    /// Its port (HTTP and WebSocket on the same port).
    pub port: u16,
    /// Its chain id.
    pub chain_id: u64,
}

impl Anvil {
    /// Starts anvil with `chain_id` on a free loopback port, logging into `dir`.
    pub fn start(chain_id: u64, dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        Self::start_on(chain_id, port, dir)
    }

    /// Starts anvil on a given port (used to restart a node where it was).
    pub fn start_on(chain_id: u64, port: u16, dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(chain_id, port, dir, &[])
    }

    /// Starts anvil on `port` with extra command-line arguments (e.g.
    /// `--slots-in-an-epoch 2`, which puts `safe` 2 and `finalized` 4 blocks behind the head).
    pub fn start_with(
        chain_id: u64,
        port: u16,
        dir: &Path,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut cmd = Command::new(crate::tool("ANVIL_BIN")?);
        cmd.args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--chain-id",
            &chain_id.to_string(),
        ])
        .args([
            "--no-mining",
            "--gas-limit",
            "1000000000",
            "--disable-code-size-limit",
        ])
        .args(["--accounts", "4", "--balance", "1000000"])
        // Past a few hundred blocks anvil writes old states to disk, by default under
        // ~/.foundry/anvil/tmp, and removes them only on a clean exit: a killed anvil left
        // gigabytes there. Under `dir` they go with the test's or bench's directory.
        .arg("--cache-path")
        .arg(Self::cache_path(dir, chain_id, port))
        .args(extra)
        .env_remove("ETH_RPC_URL");
        let process = Managed::spawn(
            &format!("anvil-{chain_id}"),
            cmd,
            dir.join(format!("anvil-{chain_id}.log")),
        )?;
        let anvil = Self {
            process,
            port,
            chain_id,
        };
        let node = anvil.node();
        wait_for(
            &format!("anvil {chain_id} on port {port}"),
            Duration::from_secs(30),
            || node.call("eth_chainId", serde_json::json!([])).ok(),
        )?;
        Ok(anvil)
    }

    /// Where this anvil keeps the states it writes to disk.
    fn cache_path(dir: &Path, chain_id: u64, port: u16) -> PathBuf {
        dir.join(format!("anvil-{chain_id}-{port}-states"))
    }

    /// The WebSocket URL the ingestor uses.
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    /// An HTTP client for it.
    pub fn node(&self) -> Node {
        Node::new(self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enough blocks make anvil write states to disk: they land in the given directory.
    #[test]
    fn states_written_to_disk_stay_in_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let anvil = Anvil::start(31337, dir.path()).expect("anvil");
        anvil
            .node()
            .call("anvil_mine", serde_json::json!(["0x200"]))
            .expect("mine");
        let cache = Anvil::cache_path(dir.path(), anvil.chain_id, anvil.port);
        let files = walk(&cache);
        assert!(files > 0, "no state written under {}", cache.display());
    }

    fn walk(path: &Path) -> usize {
        std::fs::read_dir(path).map_or(0, |entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => walk(&e.path()),
                    _ => 1,
                })
                .sum()
        })
    }
}
