//! The test binary's broker: one Apache Kafka shared by all its tests, each test under
//! names of its own ([`Names`]): its topics, its checkpoint topic, its transactional ids.
//! Tests that kill, restart or reconfigure a broker start their own
//! ([`devstack::kafka::Kafka`]).
//!
//! The shared broker is started by a thread that lives as long as the process: the JVM is
//! spawned with `PR_SET_PDEATHSIG`, which fires when the *spawning thread* exits, and a
//! test's thread exits when its test ends. Statics are never dropped, so an `atexit`
//! handler kills the JVM and removes its directory when the test binary exits (printing the
//! tail of its log first if a test failed); if the binary is killed instead, the death
//! signal still takes the JVM with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use devstack::kafka::Kafka;
use devstack::service::{ChainEntry, config_toml};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

static BROKERS: OnceLock<Result<String, String>> = OnceLock::new();
/// The shared broker and its directory, taken and dropped at exit.
static HELD: Mutex<Option<(Kafka, tempfile::TempDir)>> = Mutex::new(None);

/// `bootstrap.servers` of the shared broker, started on first use.
pub fn shared_brokers() -> String {
    BROKERS
        .get_or_init(start_shared)
        .clone()
        .unwrap_or_else(|e| panic!("the shared Kafka broker did not start: {e}"))
}

fn start_shared() -> Result<String, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("shared-kafka".into())
        .spawn(move || {
            let dir = super::tempdir();
            let kafka = match Kafka::start(dir.path()) {
                Ok(kafka) => kafka,
                Err(e) => {
                    let _ = tx.send(Err(format!("{e:#}")));
                    return;
                }
            };
            let brokers = kafka.brokers();
            if let Ok(mut held) = HELD.lock() {
                *held = Some((kafka, dir));
            }
            // SAFETY: registers a plain `extern "C" fn` with no arguments.
            unsafe {
                libc::atexit(stop_shared);
            }
            let _ = tx.send(Ok(brokers));
            // Keeps this thread, and so the JVM's parent-death signal, for the process's life.
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| format!("cannot spawn its thread: {e}"))?;
    rx.recv()
        .map_err(|_| "its thread ended without a word".to_owned())?
}

extern "C" fn stop_shared() {
    if let Ok(mut held) = HELD.lock() {
        // A test of this binary failed: the broker's log may say why (it is not dropped by
        // the failing test, so it does not print by itself).
        if devstack::proc::any_panicked()
            && let Some((kafka, _)) = held.as_ref()
        {
            kafka.process.print_tail();
        }
        // SIGKILL and reap the JVM, then remove its directory.
        drop(held.take());
    }
}

/// Creates `topic` with `partitions` and topic `configs`, as an operator would before the
/// service starts.
pub fn create_topic(brokers: &str, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let results = runtime
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .expect("create");
    for r in results {
        r.expect("topic created");
    }
}

/// `topic`'s setting `name` as the broker describes it (empty when it has none).
pub fn topic_config(brokers: &str, topic: &str, name: &str) -> String {
    use rdkafka::admin::ResourceSpecifier;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let described = runtime
        .block_on(admin.describe_configs(
            [&ResourceSpecifier::Topic(topic)],
            &AdminOptions::new().request_timeout(Some(std::time::Duration::from_secs(30))),
        ))
        .expect("describe");
    let resource = described
        .into_iter()
        .next()
        .expect("one")
        .expect("described");
    resource
        .entries
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
        .unwrap_or_default()
}

/// One test's names on a broker: `<test>-<n>.evm.logs.<chain>`, `<test>-<n>.checkpoints`
/// and transactional ids prefixed `<test>-<n>`, unique within the test binary.
#[derive(Debug, Clone)]
pub struct Names {
    prefix: String,
}

impl Names {
    /// Names for the calling test (its thread's name) and a counter.
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let test: String = std::thread::current()
            .name()
            .unwrap_or("test")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Self {
            prefix: format!("{test}-{n}"),
        }
    }

    /// The topic of chain `chain_id`.
    pub fn topic(&self, chain_id: u64) -> String {
        format!("{}.evm.logs.{chain_id}", self.prefix)
    }

    /// The checkpoint topic.
    pub fn checkpoints(&self) -> String {
        format!("{}.checkpoints", self.prefix)
    }

    /// The `transactional_id_prefix`: chain 31337's transactional id is `<this>-31337`.
    pub fn transactional_id_prefix(&self) -> &str {
        &self.prefix
    }

    /// [`config_toml`] under these names: each chain's topic (unless its entry names one),
    /// the checkpoint topic and the transactional-id prefix.
    pub fn config(&self, brokers: &str, chains: &[ChainEntry], extra_top: &str) -> String {
        let chains: Vec<ChainEntry> = chains
            .iter()
            .map(|c| {
                let mut c = c.clone();
                if !c.extra.iter().any(|l| l.trim_start().starts_with("topic")) {
                    c.extra
                        .push(format!("topic = {:?}", self.topic(c.chain_id)));
                }
                c
            })
            .collect();
        config_toml(brokers, &chains, extra_top).replacen(
            "[kafka]\n",
            &format!(
                "[kafka]\ncheckpoint_topic = {:?}\ntransactional_id_prefix = {:?}\n",
                self.checkpoints(),
                self.transactional_id_prefix()
            ),
            1,
        )
    }
}

impl Default for Names {
    fn default() -> Self {
        Self::new()
    }
}
