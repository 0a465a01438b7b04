//! Kafka Connect in standalone mode as a child process, running one or more connectors: in
//! this project the shipped PostgreSQL sinks (`redpanda/connect/jdbc-sink*.json`: the logs,
//! the decoded ERC-20 `Transfer`, the blocks and the transactions), with only the settings
//! that name hosts replaced ([`ConnectorConfig::local_sink`]). The brokers go into the worker's properties;
//! the connectors' states are read from the worker's REST API
//! (`listeners=http://127.0.0.1:<port>`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::proc::{Managed, free_port, wait_for};

/// The sink connector of the chain topic as shipped.
pub const SHIPPED_SINK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../redpanda/connect/jdbc-sink.json"
);

/// The sink connector of the decoded ERC-20 `Transfer` topic as shipped.
pub const SHIPPED_TRANSFER_SINK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../redpanda/connect/jdbc-sink-erc20-transfer.json"
);

/// The table of [`SHIPPED_TRANSFER_SINK`], made before the sink runs (`NUMERIC(78,0)` for
/// `value`, which the sink would otherwise create narrower).
pub const SHIPPED_TRANSFER_TABLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../redpanda/connect/erc20_transfers.sql"
);

/// The sink connector of the `blocks` dataset's topic as shipped.
pub const SHIPPED_BLOCKS_SINK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../redpanda/connect/jdbc-sink-blocks.json"
);

/// The table of [`SHIPPED_BLOCKS_SINK`], made before the sink runs.
pub const SHIPPED_BLOCKS_TABLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../redpanda/connect/evm_blocks.sql"
);

/// The sink connector of the `transactions` dataset's topic as shipped.
pub const SHIPPED_TRANSACTIONS_SINK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../redpanda/connect/jdbc-sink-transactions.json"
);

/// The table of [`SHIPPED_TRANSACTIONS_SINK`], made before the sink runs.
pub const SHIPPED_TRANSACTIONS_TABLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../redpanda/connect/evm_transactions.sql"
);

/// A connector as Connect's REST API and `ConnectStandalone` take it:
/// `{"name": ..., "config": {...}}`.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    name: String,
    config: Map<String, Value>,
}

impl ConnectorConfig {
    /// Reads a connector file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut json: Value =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        let name = json["name"]
            .as_str()
            .with_context(|| format!("{}: no \"name\"", path.display()))?
            .to_owned();
        let Some(Value::Object(config)) = json.get_mut("config").map(Value::take) else {
            bail!("{}: no \"config\" object", path.display());
        };
        Ok(Self { name, config })
    }

    /// A shipped sink (`file`: [`SHIPPED_SINK`], [`SHIPPED_TRANSFER_SINK`]) pointed at local
    /// processes: `topics`, the JDBC URL and the converter's registry URL replaced, nothing
    /// else.
    pub fn local_sink(
        file: &str,
        topics: &str,
        jdbc_url: &str,
        registry_url: &str,
    ) -> anyhow::Result<Self> {
        let mut sink = Self::from_file(Path::new(file))?;
        sink.set("topics", topics)?;
        sink.set("connection.url", jdbc_url)?;
        sink.set("value.converter.apicurio.registry.url", registry_url)?;
        Ok(sink)
    }

    /// Replaces `key`, which the file must already set: a setting renamed in the file fails
    /// here instead of being added beside it.
    pub fn set(&mut self, key: &str, value: &str) -> anyhow::Result<()> {
        let Some(slot) = self.config.get_mut(key) else {
            bail!("connector {}: no setting {key} to replace", self.name);
        };
        *slot = Value::from(value);
        Ok(())
    }

    /// A setting's value, if it is a string.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }

    /// The connector's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn to_json(&self) -> String {
        serde_json::json!({ "name": self.name, "config": self.config }).to_string()
    }
}

/// `GET /connectors/<name>/status`.
#[derive(Debug, Clone, Deserialize)]
pub struct ConnectorStatus {
    /// The connector's own state.
    pub connector: WorkerState,
    /// Its tasks' states (none until the connector has started them).
    pub tasks: Vec<TaskState>,
}

/// A connector's state: `UNASSIGNED`, `RUNNING`, `PAUSED`, `FAILED`...
#[derive(Debug, Clone, Deserialize)]
pub struct WorkerState {
    /// The state's name.
    pub state: String,
    /// The stack trace of a `FAILED` state.
    #[serde(default)]
    pub trace: Option<String>,
}

/// A task's state.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskState {
    /// Task number.
    pub id: u32,
    /// The state's name.
    pub state: String,
    /// The stack trace of a `FAILED` state.
    #[serde(default)]
    pub trace: Option<String>,
}

impl ConnectorStatus {
    /// The connector and at least one task run, and no task is in another state.
    pub fn is_running(&self) -> bool {
        self.connector.state == "RUNNING"
            && !self.tasks.is_empty()
            && self.tasks.iter().all(|t| t.state == "RUNNING")
    }

    /// The first failure's state and trace, if the connector or a task failed.
    pub fn failure(&self) -> Option<String> {
        let failed = |state: &str, trace: &Option<String>| {
            (state == "FAILED").then(|| trace.clone().unwrap_or_default())
        };
        failed(&self.connector.state, &self.connector.trace).or_else(|| {
            self.tasks
                .iter()
                .find_map(|t| failed(&t.state, &t.trace).map(|tr| format!("task {}: {tr}", t.id)))
        })
    }
}

/// A standalone worker running one or more connectors.
pub struct Connect {
    /// The process.
    pub process: Managed,
    /// Its REST port on 127.0.0.1.
    pub port: u16,
    /// The connectors' names, in the order they were given.
    names: Vec<String>,
    agent: ureq::Agent,
}

impl Connect {
    /// Starts a worker (`CONNECT_LIBS`; `CONNECT_JAVA` or `java` on the PATH) against
    /// `brokers`, with the plugins under `plugin_path` (`CONNECT_PLUGINS`), running
    /// `connectors`; its files (offsets, logs, the connectors' JSON) go under `dir/connect`.
    /// Returns once every connector and its tasks run; fails if one of them fails first.
    pub fn start(
        dir: &Path,
        brokers: &str,
        plugin_path: &Path,
        connectors: &[ConnectorConfig],
    ) -> anyhow::Result<Self> {
        let mut connect = Self::launch(dir, brokers, plugin_path, connectors)?;
        connect.wait_running(Duration::from_secs(180))?;
        Ok(connect)
    }

    /// As [`Connect::start`], but returns as soon as the worker is spawned, whatever
    /// becomes of the connectors (see [`Connect::wait_failed`], [`Connect::wait_running`]).
    pub fn launch(
        dir: &Path,
        brokers: &str,
        plugin_path: &Path,
        connectors: &[ConnectorConfig],
    ) -> anyhow::Result<Self> {
        if connectors.is_empty() {
            bail!("a Connect worker needs at least one connector");
        }
        let libs = crate::tool("CONNECT_LIBS")?;
        let java = std::env::var_os("CONNECT_JAVA")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("java"));
        let work = dir.join("connect");
        std::fs::create_dir_all(&work)?;
        let port = free_port()?;
        let worker = work.join("worker.properties");
        std::fs::write(
            &worker,
            format!(
                "bootstrap.servers={brokers}\n\
                 listeners=http://127.0.0.1:{port}\n\
                 plugin.path={plugins}\n\
                 plugin.discovery=service_load\n\
                 offset.storage.file.filename={offsets}\n\
                 offset.flush.interval.ms=1000\n\
                 key.converter=org.apache.kafka.connect.storage.StringConverter\n\
                 value.converter=org.apache.kafka.connect.json.JsonConverter\n",
                plugins = plugin_path.display(),
                offsets = work.join("offsets").display(),
            ),
        )?;
        let mut connector_files = Vec::new();
        for (i, connector) in connectors.iter().enumerate() {
            let file = work.join(format!("connector-{i}.json"));
            std::fs::write(&file, connector.to_json())?;
            connector_files.push(file);
        }

        let mut cmd = Command::new(java);
        cmd.args(["-Xms64m", "-Xmx384m", "-XX:+UseSerialGC"])
            .arg(format!("-Djava.io.tmpdir={}", work.display()))
            // Log4j's default configuration, at INFO instead of ERROR, on stdout.
            .arg("-Dlog4j2.level=INFO")
            .arg("-cp")
            .arg(format!("{}/*", libs.display()))
            .arg("org.apache.kafka.connect.cli.ConnectStandalone")
            .arg(&worker)
            .args(&connector_files)
            .current_dir(&work);
        let process = Managed::spawn("connect", cmd, work.join("connect.log"))?;
        Ok(Self {
            process,
            port,
            names: connectors.iter().map(|c| c.name().to_owned()).collect(),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .build(),
        })
    }

    /// `http://127.0.0.1:<port>`, the worker's REST API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What a failing test prints about the worker: each connector's status, and the last
    /// 30 lines of the worker's log.
    pub fn report(&self) -> String {
        let states: Vec<_> = self
            .names()
            .iter()
            .map(|n| (n, self.status_of(n)))
            .collect();
        format!("connectors: {states:?}\n{}", self.process.log_tail(30))
    }

    /// The connectors' names, in the order they were given.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The first connector's current status.
    pub fn status(&self) -> anyhow::Result<ConnectorStatus> {
        self.status_of(&self.names[0])
    }

    /// The current status of the connector `name`.
    pub fn status_of(&self, name: &str) -> anyhow::Result<ConnectorStatus> {
        let url = format!("{}/connectors/{name}/status", self.url());
        Ok(self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?
            .into_json()?)
    }

    /// `POST /connectors/<name>/restart?includeTasks=true&onlyFailed=true` for every
    /// connector: what an operator does once the cause of a task's failure is fixed. A
    /// standalone worker answers after it has stopped the failed tasks and started them again,
    /// so a later [`Connect::wait_failed`] sees a new failure, never the one restarted.
    pub fn restart_failed(&self) -> anyhow::Result<()> {
        for name in &self.names {
            let url = format!(
                "{}/connectors/{name}/restart?includeTasks=true&onlyFailed=true",
                self.url(),
            );
            self.agent
                .post(&url)
                .call()
                .with_context(|| format!("POST {url}"))?;
        }
        Ok(())
    }

    /// The first failure of a connector or one of its tasks, if any
    /// ([`ConnectorStatus::failure`]); `None` also while a status cannot be read.
    fn failure(&self) -> Option<String> {
        self.names
            .iter()
            .find_map(|name| self.status_of(name).ok()?.failure())
    }

    /// Waits until a connector or one of its tasks is `FAILED`; returns the failure
    /// ([`ConnectorStatus::failure`]). Fails if the worker exits first.
    pub fn wait_failed(&mut self, deadline: Duration) -> anyhow::Result<String> {
        let what = format!("a connector of {:?} to fail", self.names);
        let seen = wait_for(&what, deadline, || {
            if !self.process.is_running() {
                return Some(None);
            }
            self.failure().map(Some)
        })?;
        seen.with_context(|| format!("connect exited:\n{}", self.process.log_tail(40)))
    }

    /// Waits until every connector and its tasks run; fails at once if one of them failed or
    /// the worker exited.
    pub fn wait_running(&mut self, deadline: Duration) -> anyhow::Result<()> {
        enum Seen {
            Running,
            Failed(String),
            Exited,
        }
        let what = format!("connectors {:?} to run", self.names);
        let seen = wait_for(&what, deadline, || {
            if !self.process.is_running() {
                return Some(Seen::Exited);
            }
            let mut running = true;
            for name in &self.names {
                let status = self.status_of(name).ok()?;
                if let Some(failure) = status.failure() {
                    return Some(Seen::Failed(format!("{name}: {failure}")));
                }
                running &= status.is_running();
            }
            running.then_some(Seen::Running)
        })?;
        match seen {
            Seen::Running => Ok(()),
            Seen::Failed(trace) => bail!("connector {trace}"),
            Seen::Exited => bail!("connect exited:\n{}", self.process.log_tail(40)),
        }
    }
}
