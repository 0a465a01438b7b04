//! Apache Kafka (KRaft) as a child process: one JVM that is both broker and controller
//! (`process.roles=broker,controller`), on free loopback ports, with its data and its log
//! under the caller's directory. The jars come from `KAFKA_LIBS` and the JVM from `JAVA_BIN`
//! (both set by `scripts/deps.sh env`).
//!
//! A node has three listeners: `CLIENT` (what [`Kafka::brokers`] names: plaintext, SASL
//! SCRAM, SASL SCRAM over TLS, or mutual TLS; see [`Listener`]), `INTERNAL` (plaintext:
//! between brokers, and the readiness check) and `CONTROLLER` (the KRaft quorum).
//!
//! TLS key material is PEM, as Kafka reads it without a Java keystore
//! (`ssl.keystore.type=PEM`, `ssl.truststore.type=PEM`), set on the `CLIENT` listener only
//! (`listener.name.client.ssl.*`).
//!
//! [`KafkaCluster`] runs several such nodes as one replicated cluster: each is broker and
//! controller, all formatted with the same cluster id, with a static quorum
//! (`controller.quorum.voters` naming every node). Topics default to a replication factor of
//! the cluster's size and `min.insync.replicas=2`. Note that with every node a controller, a
//! majority of nodes down also loses the KRaft quorum: the survivor keeps serving with the
//! metadata it has, but nothing (leaders, ISR) changes until a majority is back.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::proc::{Managed, free_port, wait_for_port};

/// How long a broker may take to answer metadata after its JVM started.
const START_DEADLINE: Duration = Duration::from_secs(90);

/// How clients reach the broker.
#[derive(Debug, Clone, Default)]
pub enum Listener {
    /// No TLS, no authentication.
    #[default]
    Plaintext,
    /// SASL (SCRAM-SHA-512) without TLS (`SASL_PLAINTEXT`), for these users (name,
    /// password), which are created when the storage is formatted.
    SaslScram {
        /// (user, password) pairs.
        users: Vec<(String, String)>,
    },
    /// SASL (SCRAM-SHA-512) over TLS (`SASL_SSL`), as managed clusters offer: the users of
    /// [`Listener::SaslScram`], and the broker's key and certificate.
    SaslScramSsl {
        /// (user, password) pairs.
        users: Vec<(String, String)>,
        /// A PEM file holding the broker's PKCS#8 private key (unencrypted) followed by its
        /// certificate chain, leaf first (`ssl.keystore.type=PEM`).
        keystore_pem: PathBuf,
    },
    /// Mutual TLS (`SSL` with `ssl.client.auth=required`): a client must present a
    /// certificate signed by a CA of `client_ca_pem`.
    MutualTls {
        /// As in [`Listener::SaslScramSsl`].
        keystore_pem: PathBuf,
        /// PEM certificates of the CAs trusted to sign client certificates
        /// (`ssl.truststore.type=PEM`).
        client_ca_pem: PathBuf,
    },
}

impl Listener {
    /// The listener's `security.protocol`.
    fn protocol(&self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::SaslScram { .. } => "SASL_PLAINTEXT",
            Self::SaslScramSsl { .. } => "SASL_SSL",
            Self::MutualTls { .. } => "SSL",
        }
    }

    /// The SCRAM users created when the storage is formatted.
    fn scram_users(&self) -> &[(String, String)] {
        match self {
            Self::SaslScram { users } | Self::SaslScramSsl { users, .. } => users,
            Self::Plaintext | Self::MutualTls { .. } => &[],
        }
    }

    /// `server.properties` settings of the `CLIENT` listener's SASL and TLS.
    fn properties(&self) -> Vec<(String, String)> {
        let mut p = Vec::new();
        let mut set = |k: &str, v: String| p.push((format!("listener.name.client.{k}"), v));
        if matches!(self, Self::SaslScram { .. } | Self::SaslScramSsl { .. }) {
            set("sasl.enabled.mechanisms", "SCRAM-SHA-512".into());
            set(
                "scram-sha-512.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;".into(),
            );
        }
        if let Self::SaslScramSsl { keystore_pem, .. } | Self::MutualTls { keystore_pem, .. } = self
        {
            set("ssl.keystore.type", "PEM".into());
            set("ssl.keystore.location", keystore_pem.display().to_string());
        }
        if let Self::MutualTls { client_ca_pem, .. } = self {
            set("ssl.truststore.type", "PEM".into());
            set(
                "ssl.truststore.location",
                client_ca_pem.display().to_string(),
            );
            set("ssl.client.auth", "required".into());
        }
        p
    }
}

/// What a broker is started with.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// The client listener.
    pub listener: Listener,
    /// The client listener's port, when something must know it before the broker starts;
    /// by default a free one.
    pub client_port: Option<u16>,
    /// The port clients are told to connect to, when something (a proxy) stands in front of
    /// the broker; by default the client listener's own.
    pub advertised_port: Option<u16>,
    /// Extra `server.properties` settings, last (so they win).
    pub properties: Vec<(String, String)>,
    /// Compile with C1 only: a quicker start, slower once warm. Right for tests; the
    /// benchmark turns it off.
    pub quick_start: bool,
    /// The JVM's maximum heap (`-Xmx`), in MiB. Default 512.
    pub heap_mb: u32,
}

impl Default for KafkaOptions {
    fn default() -> Self {
        Self {
            listener: Listener::Plaintext,
            client_port: None,
            advertised_port: None,
            properties: Vec::new(),
            quick_start: true,
            heap_mb: 512,
        }
    }
}

/// One node's identity and ports; kept across a restart.
#[derive(Debug, Clone)]
pub struct Node {
    /// `node.id`.
    pub id: u32,
    /// The `CLIENT` listener's port.
    pub client_port: u16,
    /// The `INTERNAL` (plaintext, inter-broker) listener's port.
    pub internal_port: u16,
    /// The `CONTROLLER` listener's port.
    pub controller_port: u16,
}

impl Node {
    fn on_free_ports(id: u32, client_port: Option<u16>) -> anyhow::Result<Self> {
        Ok(Self {
            id,
            client_port: client_port.map_or_else(free_port, Ok)?,
            internal_port: free_port()?,
            controller_port: free_port()?,
        })
    }
}

/// A running single-node Kafka; killed when dropped.
pub struct Kafka {
    /// The JVM.
    pub process: Managed,
    node: Node,
    options: KafkaOptions,
    /// Where its configuration, data and `kafka.log` are.
    dir: PathBuf,
}

impl Kafka {
    /// A plaintext broker in `dir/kafka`.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(dir, KafkaOptions::default())
    }

    /// A plaintext broker in `dir/kafka`, fully compiled (C2): for the demo and the
    /// benchmark, which measure throughput and latency, not start-up.
    pub fn start_compiled(dir: &Path) -> anyhow::Result<Self> {
        Self::start_with(
            dir,
            KafkaOptions {
                quick_start: false,
                ..KafkaOptions::default()
            },
        )
    }

    /// A broker in `dir/kafka` started with `options`.
    pub fn start_with(dir: &Path, options: KafkaOptions) -> anyhow::Result<Self> {
        let node = Node::on_free_ports(1, options.client_port)?;
        let dir = dir.join("kafka");
        std::fs::create_dir_all(&dir)?;
        let mut process = spawn(&dir, &node, &options, &Quorum::Standalone)?;
        wait_until_serving(&mut process, &node)?;
        Ok(Self {
            process,
            node,
            options,
            dir,
        })
    }

    /// `bootstrap.servers` for clients (the advertised client address).
    pub fn brokers(&self) -> String {
        let port = self
            .options
            .advertised_port
            .unwrap_or(self.node.client_port);
        format!("127.0.0.1:{port}")
    }

    /// The node's identity and ports.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The broker's log (log4j and the JVM's own output).
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("kafka.log")
    }

    /// SIGKILL, and waits until the JVM is gone.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.process.signal(libc::SIGKILL);
        self.process.wait_exit(Duration::from_secs(30))?;
        Ok(())
    }

    /// Starts the broker again on the same ports and data (after [`Kafka::kill`]).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.process.is_running() {
            self.kill()?;
        }
        self.process = spawn(&self.dir, &self.node, &self.options, &Quorum::Standalone)?;
        wait_until_serving(&mut self.process, &self.node)
    }
}

/// How long a broker may take to stop after SIGTERM (a controlled shutdown moves its
/// partition leaders away first).
const STOP_DEADLINE: Duration = Duration::from_secs(60);

/// One node of a [`KafkaCluster`].
struct Member {
    process: Managed,
    node: Node,
    dir: PathBuf,
}

/// A replicated Apache Kafka cluster of KRaft nodes on loopback (see the module docs);
/// every node is killed when dropped.
pub struct KafkaCluster {
    members: Vec<Member>,
    options: KafkaOptions,
    quorum: Quorum,
}

impl KafkaCluster {
    /// `size` nodes in `dir/kafka-<id>`, with 384 MiB of heap each.
    pub fn start(dir: &Path, size: u32) -> anyhow::Result<Self> {
        Self::start_with(
            dir,
            size,
            KafkaOptions {
                heap_mb: 384,
                ..KafkaOptions::default()
            },
        )
    }

    /// `size` nodes started with `options` (its `client_port` and `advertised_port` are
    /// ignored: each node has its own). Replication settings for the cluster's size come
    /// before `options.properties`, which win.
    pub fn start_with(dir: &Path, size: u32, mut options: KafkaOptions) -> anyhow::Result<Self> {
        if size == 0 {
            bail!("a cluster has at least one node");
        }
        options.client_port = None;
        options.advertised_port = None;
        let nodes = (1..=size)
            .map(|id| Node::on_free_ports(id, None))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let voters = nodes
            .iter()
            .map(|n| format!("{}@127.0.0.1:{}", n.id, n.controller_port))
            .collect::<Vec<_>>()
            .join(",");
        let quorum = Quorum::Voters {
            voters,
            cluster_id: cluster_id(),
        };
        let replicas = size.to_string();
        let min_isr = size.min(2).to_string();
        let mut properties: Vec<(String, String)> = [
            ("default.replication.factor", replicas.clone()),
            ("min.insync.replicas", min_isr.clone()),
            ("offsets.topic.replication.factor", replicas.clone()),
            ("transaction.state.log.replication.factor", replicas.clone()),
            ("transaction.state.log.min.isr", min_isr.clone()),
            ("share.coordinator.state.topic.replication.factor", replicas),
            ("share.coordinator.state.topic.min.isr", min_isr),
            // A dead follower leaves the ISR after 10 s (not 30), and a dead broker is
            // fenced (its leaderships moved) after 6 s (not 9).
            ("replica.lag.time.max.ms", "10000".into()),
            ("broker.heartbeat.interval.ms", "1000".into()),
            ("broker.session.timeout.ms", "6000".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        properties.append(&mut options.properties);
        options.properties = properties;
        // Every node must be up before any can serve (the quorum needs a majority): spawn
        // them all, then wait for each.
        let mut members = Vec::new();
        for node in nodes {
            let dir = dir.join(format!("kafka-{}", node.id));
            std::fs::create_dir_all(&dir)?;
            let process = spawn(&dir, &node, &options, &quorum)?;
            members.push(Member { process, node, dir });
        }
        for m in &mut members {
            wait_until_serving(&mut m.process, &m.node)
                .with_context(|| format!("kafka node {}", m.node.id))?;
        }
        Ok(Self {
            members,
            options,
            quorum,
        })
    }

    /// `bootstrap.servers` naming every node.
    pub fn brokers(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("127.0.0.1:{}", m.node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many nodes the cluster has.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Node `i`'s identity and ports (`i` counts from 0; its `node.id` is `i + 1`).
    pub fn node(&self, i: usize) -> anyhow::Result<&Node> {
        Ok(&self.member(i)?.node)
    }

    /// Node `i`'s log.
    pub fn log_file(&self, i: usize) -> anyhow::Result<PathBuf> {
        Ok(self.member(i)?.dir.join("kafka.log"))
    }

    /// Whether node `i`'s JVM is running.
    pub fn is_running(&mut self, i: usize) -> anyhow::Result<bool> {
        Ok(self.member_mut(i)?.process.is_running())
    }

    /// SIGKILL to node `i`, and waits until its JVM is gone.
    pub fn kill(&mut self, i: usize) -> anyhow::Result<()> {
        let m = self.member_mut(i)?;
        if m.process.is_running() {
            m.process.signal(libc::SIGKILL);
            m.process.wait_exit(Duration::from_secs(30))?;
        }
        Ok(())
    }

    /// SIGTERM to node `i` (a controlled shutdown), and waits until its JVM is gone.
    pub fn stop(&mut self, i: usize) -> anyhow::Result<()> {
        let m = self.member_mut(i)?;
        if m.process.is_running() {
            m.process.signal(libc::SIGTERM);
            m.process
                .wait_exit(STOP_DEADLINE)
                .with_context(|| format!("kafka node {} after SIGTERM", m.node.id))?;
        }
        Ok(())
    }

    /// Starts node `i` again on its ports and data, stopping it first (SIGTERM) if it runs;
    /// returns once it lists itself in a metadata answer.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.stop(i)?;
        let (options, quorum) = (&self.options, &self.quorum);
        let m = self.members.get_mut(i).context("no such node")?;
        m.process = spawn(&m.dir, &m.node, options, quorum)?;
        wait_until_serving(&mut m.process, &m.node)
            .with_context(|| format!("kafka node {}", m.node.id))
    }

    /// The index of the node leading `topic`'s `partition`, as the cluster's metadata says
    /// (asked of any running node); `None` while it has no leader.
    pub fn leader_of(&self, topic: &str, partition: i32) -> anyhow::Result<Option<usize>> {
        let metadata = self.metadata(topic)?;
        let leader = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic && t.error().is_none())
            .and_then(|t| t.partitions().iter().find(|p| p.id() == partition))
            .map(|p| p.leader());
        Ok(leader.and_then(|id| self.members.iter().position(|m| m.node.id as i32 == id)))
    }

    /// Waits until every partition of `topic` has every node in its in-sync replicas (what
    /// an operator checks between two steps of a rolling restart).
    pub fn wait_in_sync(&self, topic: &str, deadline: Duration) -> anyhow::Result<()> {
        let size = self.members.len();
        crate::proc::wait_for(
            &format!("every partition of {topic} to have {size} in-sync replicas"),
            deadline,
            || {
                let metadata = self.metadata(topic).ok()?;
                let t = metadata.topics().iter().find(|t| t.name() == topic)?;
                (t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions()
                        .iter()
                        .all(|p| p.isr().len() == size && p.leader() >= 0))
                .then_some(())
            },
        )
    }

    fn metadata(&self, topic: &str) -> anyhow::Result<rdkafka::metadata::Metadata> {
        let client: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .create()?;
        Ok(client.fetch_metadata(Some(topic), Duration::from_secs(5))?)
    }

    fn member(&self, i: usize) -> anyhow::Result<&Member> {
        self.members
            .get(i)
            .with_context(|| format!("no node {i} in a cluster of {}", self.members.len()))
    }

    fn member_mut(&mut self, i: usize) -> anyhow::Result<&mut Member> {
        let size = self.members.len();
        self.members
            .get_mut(i)
            .with_context(|| format!("no node {i} in a cluster of {size}"))
    }
}

/// How a node finds the KRaft quorum.
enum Quorum {
    /// A single node, its own only voter (formatted `--standalone`, dynamic quorum).
    Standalone,
    /// A static quorum: `controller.quorum.voters` (`id@host:port,...`) and the cluster id
    /// every node is formatted with.
    Voters { voters: String, cluster_id: String },
}

/// Formats the storage (first start only), then starts the JVM; does not wait for it.
fn spawn(
    dir: &Path,
    node: &Node,
    options: &KafkaOptions,
    quorum: &Quorum,
) -> anyhow::Result<Managed> {
    let properties = dir.join("server.properties");
    std::fs::write(&properties, server_properties(dir, node, options, quorum))?;
    std::fs::write(dir.join("log4j2.properties"), log4j2_properties(dir))?;
    let log = dir.join("kafka.log");
    if !dir.join("data/meta.properties").exists() {
        let mut format = java(dir, options)?;
        format.args(["kafka.tools.StorageTool", "format"]);
        match quorum {
            Quorum::Standalone => {
                format
                    .arg("--standalone")
                    .arg("--cluster-id")
                    .arg(cluster_id());
            }
            Quorum::Voters { cluster_id, .. } => {
                format.arg("--cluster-id").arg(cluster_id);
            }
        }
        format.arg("--config").arg(&properties);
        for (name, password) in options.listener.scram_users() {
            format
                .arg("--add-scram")
                .arg(format!("SCRAM-SHA-512=[name={name},password={password}]"));
        }
        let mut formatting = Managed::spawn("kafka-storage format", format, log.clone())?;
        let code = formatting.wait_exit(Duration::from_secs(60))?;
        if code != Some(0) {
            bail!(
                "kafka storage format exited with {code:?}:\n{}",
                formatting.log_tail(20)
            );
        }
    }
    let mut cmd = java(dir, options)?;
    cmd.arg("kafka.Kafka").arg(&properties);
    Managed::spawn("kafka", cmd, log)
}

/// `java` with the broker's class path, a bounded heap and the log4j2 file.
fn java(dir: &Path, options: &KafkaOptions) -> anyhow::Result<Command> {
    let libs = crate::tool("KAFKA_LIBS")?;
    let mut cmd = Command::new(crate::tool("JAVA_BIN")?);
    cmd.args(["-Xms64m", "-XX:+UseSerialGC", "-XX:-UsePerfData"])
        .arg(format!("-Xmx{}m", options.heap_mb))
        .arg("-Djava.awt.headless=true")
        .arg(format!(
            "-Dlog4j2.configurationFile={}",
            dir.join("log4j2.properties").display()
        ));
    if options.quick_start {
        cmd.arg("-XX:TieredStopAtLevel=1");
    }
    // The class archive scripts/deps.sh wrote; a JVM that cannot use it starts without.
    if let Some(archive) = libs.parent().map(|d| d.join("kafka.jsa"))
        && archive.is_file()
    {
        cmd.arg(format!("-XX:SharedArchiveFile={}", archive.display()));
    }
    cmd.arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .current_dir(dir)
        .env_remove("JAVA_TOOL_OPTIONS");
    Ok(cmd)
}

/// Ready = the broker lists itself in a metadata answer on its internal listener (a fenced
/// or still starting broker does not); fails early if the JVM exits.
fn wait_until_serving(process: &mut Managed, node: &Node) -> anyhow::Result<()> {
    let start = Instant::now();
    let remaining = |start: Instant| START_DEADLINE.saturating_sub(start.elapsed());
    wait_for_port(node.internal_port, remaining(start)).with_context(|| process.log_tail(30))?;
    let client: BaseConsumer = ClientConfig::new()
        .set(
            "bootstrap.servers",
            format!("127.0.0.1:{}", node.internal_port),
        )
        .set("group.id", "devstack-readiness")
        .create()?;
    loop {
        if !process.is_running() {
            bail!("kafka exited while starting:\n{}", process.log_tail(30));
        }
        if let Ok(metadata) = client.fetch_metadata(None, Duration::from_secs(1))
            && metadata.brokers().iter().any(|b| b.id() == node.id as i32)
        {
            return Ok(());
        }
        if start.elapsed() > START_DEADLINE {
            bail!(
                "kafka did not list itself within {START_DEADLINE:?}:\n{}",
                process.log_tail(30)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `server.properties`: settings for small, fast, deterministic runs.
fn server_properties(dir: &Path, node: &Node, options: &KafkaOptions, quorum: &Quorum) -> String {
    let advertised = options.advertised_port.unwrap_or(node.client_port);
    let client_protocol = options.listener.protocol();
    let mut p: Vec<(String, String)> = [
        ("process.roles", "broker,controller".to_owned()),
        ("node.id", node.id.to_string()),
        (
            "listeners",
            format!(
                "CLIENT://127.0.0.1:{},INTERNAL://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                node.client_port, node.internal_port, node.controller_port
            ),
        ),
        (
            "advertised.listeners",
            format!(
                "CLIENT://127.0.0.1:{advertised},INTERNAL://127.0.0.1:{}",
                node.internal_port
            ),
        ),
        (
            "listener.security.protocol.map",
            format!("CLIENT:{client_protocol},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ),
        ("inter.broker.listener.name", "INTERNAL".into()),
        ("controller.listener.names", "CONTROLLER".into()),
        match quorum {
            Quorum::Standalone => (
                "controller.quorum.bootstrap.servers",
                format!("127.0.0.1:{}", node.controller_port),
            ),
            Quorum::Voters { voters, .. } => ("controller.quorum.voters", voters.clone()),
        },
        ("log.dirs", dir.join("data").display().to_string()),
        // The ingestor creates its topics; a client that writes to a missing one is wrong.
        ("auto.create.topics.enable", "false".into()),
        ("num.partitions", "1".into()),
        ("default.replication.factor", "1".into()),
        ("min.insync.replicas", "1".into()),
        ("offsets.topic.replication.factor", "1".into()),
        ("offsets.topic.num.partitions", "1".into()),
        ("transaction.state.log.replication.factor", "1".into()),
        ("transaction.state.log.min.isr", "1".into()),
        ("transaction.state.log.num.partitions", "1".into()),
        (
            "share.coordinator.state.topic.replication.factor",
            "1".into(),
        ),
        ("share.coordinator.state.topic.min.isr", "1".into()),
        ("group.initial.rebalance.delay.ms", "0".into()),
        // The log cleaner and retention start a second after start-up (not 30 s) and
        // look for work every half second (not 15 s): compaction is observable in a test.
        ("log.initial.task.delay.ms", "1000".into()),
        ("log.cleaner.backoff.ms", "500".into()),
        ("log.cleaner.dedupe.buffer.size", "8388608".into()),
        ("num.network.threads", "2".into()),
        ("num.io.threads", "2".into()),
        ("background.threads", "2".into()),
        ("num.recovery.threads.per.data.dir", "1".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    p.extend(options.listener.properties());
    p.extend(options.properties.iter().cloned());
    let mut text = String::new();
    for (k, v) in p {
        let _ = writeln!(text, "{k}={v}");
    }
    text
}

/// log4j2: warnings and errors into `dir/kafka.log`, plus the line saying the server started.
fn log4j2_properties(dir: &Path) -> String {
    format!(
        "status = warn\n\
         appender.file.type = File\n\
         appender.file.name = file\n\
         appender.file.fileName = {}\n\
         appender.file.layout.type = PatternLayout\n\
         appender.file.layout.pattern = [%d] %p %m (%c)%n\n\
         rootLogger.level = warn\n\
         rootLogger.appenderRef.file.ref = file\n\
         logger.server.name = kafka.server.KafkaRaftServer\n\
         logger.server.level = info\n",
        dir.join("kafka.log").display()
    )
}

/// A random cluster id as Kafka writes one: 16 bytes, URL-safe base64 without padding. The
/// first byte's top bit is clear, so the text never starts with `-` (read as a flag).
fn cluster_id() -> String {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    base64_url(&bytes)
}

fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_listeners_read_pem_key_material_on_the_client_listener_only() {
        let node = Node::on_free_ports(1, None).expect("ports");
        let listener = Listener::MutualTls {
            keystore_pem: "/k/broker.pem".into(),
            client_ca_pem: "/k/clients.pem".into(),
        };
        let text = server_properties(
            Path::new("/d"),
            &node,
            &KafkaOptions {
                listener,
                ..KafkaOptions::default()
            },
            &Quorum::Standalone,
        );
        for line in [
            "listener.security.protocol.map=CLIENT:SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "listener.name.client.ssl.keystore.type=PEM",
            "listener.name.client.ssl.keystore.location=/k/broker.pem",
            "listener.name.client.ssl.truststore.type=PEM",
            "listener.name.client.ssl.truststore.location=/k/clients.pem",
            "listener.name.client.ssl.client.auth=required",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(!text.contains("sasl"), "{text}");
        let sasl_ssl = Listener::SaslScramSsl {
            users: vec![("u".into(), "p".into())],
            keystore_pem: "/k/broker.pem".into(),
        };
        let text = server_properties(
            Path::new("/d"),
            &node,
            &KafkaOptions {
                listener: sasl_ssl,
                ..KafkaOptions::default()
            },
            &Quorum::Standalone,
        );
        assert!(text.contains("CLIENT:SASL_SSL,"), "{text}");
        assert!(text.contains("listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512"));
        assert!(!text.contains("client.auth"), "{text}");
    }

    #[test]
    fn cluster_ids_are_22_url_safe_characters() {
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
        assert_eq!(base64_url(b"Man"), "TWFu");
        for _ in 0..100 {
            let id = cluster_id();
            assert_eq!(id.len(), 22, "{id}");
            assert!(!id.starts_with('-'), "{id}");
        }
    }
}
