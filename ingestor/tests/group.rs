//! Group mode (`[group]`) on the real Kafka broker, with the real ingestor binary and real
//! anvil nodes under live traffic. Every scenario ends with each chain's topic equal to its
//! node for a `read_committed` reader: nothing missing, nothing extra, nothing twice.
//!
//! - three instances share six chains; one is killed (`kill -9`): its chains move to the
//!   survivors and continue;
//! - one instance, then three (the chains spread), a rolling restart of all three (SIGTERM
//!   hands each one's chains over after their last commit), then one again (the chains
//!   gather);
//! - one of two instances is paused (`SIGSTOP`) for twice the session timeout: the other
//!   takes its chain; once resumed it publishes nothing of what it lost, and says that it
//!   rejoined;
//! - the broker (the group coordinator) is killed and restarted while a third instance
//!   joins two others: the group settles with every chain owned once;
//! - two instances whose configurations list different chains: the second refuses to join
//!   with one line naming both sets, and exits 1.
//!
//! Waits are on what the processes say (`/status`, log lines) and on topic contents.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use devstack::anvil::Anvil;
use devstack::proc::wait_for;
use devstack::service::Service;
use devstack::traffic::{LogShapes, Sender};

/// The session timeout the instances use (the broker's minimum).
const SESSION_MS: u64 = 6_000;
/// Time allowed for the group to settle (joins, rebalances, hand-overs).
const SETTLE: Duration = Duration::from_secs(120);

const ENV: &[(&str, &str)] = &[
    ("INGESTOR_KAFKA__TRANSACTIONAL", "true"),
    ("INGESTOR_KAFKA__TRANSACTION_TIMEOUT_MS", "10000"),
    ("INGESTOR_KAFKA__ADMIN_TIMEOUT_MS", "5000"),
    ("RUST_LOG", "info"),
];

/// A chain: its node and a thread mining live traffic until stopped.
struct Chain {
    id: u64,
    anvil: Anvil,
    traffic: Option<JoinHandle<()>>,
}

/// Several anvil chains with history and live traffic, this test's names on the shared
/// broker, and a group id of its own.
struct Fleet {
    /// The broker: the shared one, or a test's own.
    brokers: String,
    names: Names,
    group: String,
    chains: Vec<Chain>,
    stop: Arc<AtomicBool>,
    /// Declared last: removed after the processes stopped.
    dir: tempfile::TempDir,
}

impl Fleet {
    /// `count` chains on the shared broker.
    fn start(count: u64) -> Self {
        Self::start_on(count, shared_brokers(), tempdir())
    }

    /// `count` chains on `brokers`, in `dir`.
    fn start_on(count: u64, brokers: String, dir: tempfile::TempDir) -> Self {
        let names = Names::new();
        let group = names.transactional_id_prefix().to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let chains = (0..count)
            .map(|i| {
                let id = 31337 + i;
                let anvil = Anvil::start(id, dir.path()).expect("anvil");
                let mut sender = Sender::new(anvil.node()).expect("sender");
                let mut shapes = LogShapes::new(id);
                mine_history(&mut sender, &mut shapes, 4).expect("history");
                let stop = stop.clone();
                let traffic = std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        sender
                            .block(&[shapes.logs(8), shapes.logs(4)])
                            .expect("live block");
                        std::thread::sleep(Duration::from_millis(250)); // the traffic's pace
                    }
                });
                Chain {
                    id,
                    anvil,
                    traffic: Some(traffic),
                }
            })
            .collect();
        Self {
            brokers,
            names,
            group,
            chains,
            stop,
            dir,
        }
    }

    /// A group-mode config for the chains `ids`.
    fn config(&self, ids: &[u64]) -> String {
        let entries: Vec<_> = self
            .chains
            .iter()
            .filter(|c| ids.contains(&c.id))
            .map(|c| fast_retry_entry(c.id, c.anvil.ws_url()))
            .collect();
        format!(
            "{}\n[group]\nid = {:?}\nsession_timeout_ms = {SESSION_MS}\n",
            self.names.config(&self.brokers, &entries, ""),
            self.group
        )
    }

    fn ids(&self) -> Vec<u64> {
        self.chains.iter().map(|c| c.id).collect()
    }

    /// Starts instance `name` (its own directory and log) for the chains `ids`.
    fn instance(&self, name: &str, ids: &[u64]) -> Service {
        let dir = self.instance_dir(name);
        std::fs::create_dir_all(&dir).expect("instance dir");
        Service::start(BIN.as_ref(), &dir, &self.config(ids), ENV).expect("ingestor")
    }

    fn instance_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Stops the traffic, then checks every chain's topic against its node.
    fn stop_traffic_and_compare(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for c in &mut self.chains {
            if let Some(t) = c.traffic.take() {
                t.join().expect("traffic thread");
            }
        }
        for c in &self.chains {
            let report = assert_topic_matches_node(
                &self.brokers,
                &self.names.topic(c.id),
                &c.anvil.node(),
                c.id,
            );
            eprintln!("chain {}: {report}", c.id);
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The chain names an instance owns, from its `/status`.
fn owned(service: &Service) -> Option<BTreeSet<String>> {
    let addr = service.health_addr()?;
    let (code, body) = http_get(&addr, "/status");
    if code != 200 {
        return None;
    }
    let status: serde_json::Value = serde_json::from_str(&body).ok()?;
    let owned = status["group"]["owned"].as_array()?;
    Some(
        owned
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect(),
    )
}

fn chain_names(ids: &[u64]) -> BTreeSet<String> {
    ids.iter().map(|id| format!("chain-{id}")).collect()
}

/// Waits until the instances own every chain of `ids` between them, each exactly once and
/// each instance at least one; returns who owns what.
fn wait_spread(instances: &[&Service], ids: &[u64]) -> Vec<BTreeSet<String>> {
    let want = chain_names(ids);
    wait_for("the chains spread over the instances", SETTLE, || {
        let owned: Vec<_> = instances.iter().map(|s| owned(s)).collect::<Option<_>>()?;
        let total: usize = owned.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<String> = owned.iter().flatten().cloned().collect();
        (total == want.len() && union == want && owned.iter().all(|o| !o.is_empty()))
            .then_some(owned)
    })
    .unwrap_or_else(|e| {
        let logs: Vec<String> = instances.iter().map(|s| s.process.log_tail(30)).collect();
        panic!("{e}\n{}", logs.join("\n-----\n"))
    })
}

/// Waits until `service` logged `needle` `times` times.
fn wait_for_lines(service: &Service, needle: &str, times: usize) {
    wait_for(needle, SETTLE, || {
        (service.process.log_text().matches(needle).count() >= times).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(40)));
}

#[test]
fn a_killed_instance_hands_its_chains_to_the_survivors() {
    let mut fleet = Fleet::start(6);
    let ids = fleet.ids();
    let a = fleet.instance("a", &ids);
    wait_spread(&[&a], &ids);
    let b = fleet.instance("b", &ids);
    let c = fleet.instance("c", &ids);
    let spread = wait_spread(&[&a, &b, &c], &ids);
    let mut instances = vec![a, b, c];
    // The instance with the most chains dies.
    let victim = (0..3).max_by_key(|&i| spread[i].len()).expect("three");
    let moved = spread[victim].clone();
    let mut dead = instances.remove(victim);
    dead.process.signal(libc::SIGKILL);
    dead.process
        .wait_exit(Duration::from_secs(30))
        .expect("killed");
    let survivors: Vec<&Service> = instances.iter().collect();
    wait_spread(&survivors, &ids);
    // Each moved chain committed on its new owner.
    for chain in &moved {
        let owner = survivors
            .iter()
            .find(|s| owned_by(s, chain))
            .expect("an owner");
        wait_for(&format!("{chain} taken over"), SETTLE, || {
            owner
                .process
                .log_text()
                .lines()
                .any(|l| {
                    l.contains("chain taken over") && l.contains(&format!("chain=\"{chain}\""))
                })
                .then_some(())
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", owner.process.log_tail(40)));
    }
    fleet.stop_traffic_and_compare();
    for s in &mut instances {
        stop_cleanly(s);
    }
}

fn owned_by(service: &Service, chain: &str) -> bool {
    owned(service).is_some_and(|o| o.contains(chain))
}

#[test]
fn a_paused_instance_loses_its_chain_publishes_nothing_of_it_and_rejoins() {
    let mut fleet = Fleet::start(2);
    let ids = fleet.ids();
    let mut a = fleet.instance("a", &ids);
    wait_spread(&[&a], &ids);
    let mut b = fleet.instance("b", &ids);
    let spread = wait_spread(&[&a, &b], &ids);
    let lost: String = spread[0].iter().next().expect("a chain").clone();
    let took_over_before = b.process.log_text().matches("chain taken over").count();

    let paused = Instant::now();
    a.process.signal(libc::SIGSTOP);
    // B takes every chain once A's session expired.
    wait_for("b owns every chain", SETTLE, || {
        (owned(&b)? == chain_names(&ids)).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", b.process.log_tail(40)));
    wait_for_lines(&b, "chain taken over", took_over_before + 1);
    // The pause lasts twice the session timeout (the scenario, not a wait for an effect).
    let pause = Duration::from_millis(2 * SESSION_MS);
    if let Some(left) = pause.checked_sub(paused.elapsed()) {
        std::thread::sleep(left);
    }
    a.process.signal(libc::SIGCONT);
    wait_for_log(&a, "rejoined the group after losing its chains");
    let log =
        std::fs::read_to_string(fleet.instance_dir("a").join("ingestor.log")).expect("a's log");
    assert!(
        log.contains("chains lost") || log.contains("chain lost to another member"),
        "a says it lost {lost}:\n{log}"
    );
    fleet.stop_traffic_and_compare();
    stop_cleanly(&mut a);
    stop_cleanly(&mut b);
}

#[test]
fn members_with_other_chains_are_refused_with_one_line() {
    let fleet = Fleet::start(2);
    let ids = fleet.ids();
    let mut a = fleet.instance("a", &ids);
    wait_spread(&[&a], &ids);
    let mut b = fleet.instance("b", &ids[..1]);
    let code = b
        .process
        .wait_exit(Duration::from_secs(60))
        .expect("b exits");
    assert_eq!(code, Some(1), "{}", b.process.log_tail(20));
    let log = b.process.log_text();
    let line = log
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{log}"));
    assert!(
        line.contains(&format!("follows chains {{{}, {}}}", ids[0], ids[1]))
            && line.contains(&format!("configured for {{{}}}", ids[0])),
        "{line}"
    );
    assert_eq!(log.lines().filter(|l| l.starts_with("error: ")).count(), 1);
    stop_cleanly(&mut a);
}

#[test]
fn scaling_out_a_rolling_restart_and_scaling_in_keep_every_chain_exactly_once() {
    let mut fleet = Fleet::start(3);
    let ids = fleet.ids();
    let first = fleet.instance("a0", &ids);
    wait_spread(&[&first], &ids);
    let mut instances = vec![
        first,
        fleet.instance("b0", &ids),
        fleet.instance("c0", &ids),
    ];
    wait_spread(&instances.iter().collect::<Vec<_>>(), &ids);
    // Rolling restart: each in turn stops cleanly, the others take its chains, and its
    // replacement takes some back.
    for (i, name) in ["a1", "b1", "c1"].into_iter().enumerate() {
        let mut leaving = instances.remove(i);
        stop_cleanly(&mut leaving);
        // From the signal on: every chain committed, none aborted, then handed over.
        let log = leaving.process.log_text();
        let stopping = log
            .split_once("shutting down")
            .map(|(_, after)| after)
            .unwrap_or_default();
        assert!(
            stopping.contains("chains revoked: committed and handed over")
                && !stopping.contains("aborted"),
            "{}",
            leaving.process.log_tail(30)
        );
        wait_spread(&instances.iter().collect::<Vec<_>>(), &ids);
        instances.insert(i, fleet.instance(name, &ids));
        wait_spread(&instances.iter().collect::<Vec<_>>(), &ids);
    }
    // Scaling in: two leave, the last one gathers every chain.
    for mut leaving in instances.drain(1..) {
        stop_cleanly(&mut leaving);
    }
    wait_spread(&[&instances[0]], &ids);
    fleet.stop_traffic_and_compare();
    stop_cleanly(&mut instances[0]);
}

#[test]
fn the_coordinator_restarted_during_a_rebalance_leaves_every_chain_owned_once() {
    let dir = tempdir();
    let mut kafka = devstack::kafka::Kafka::start(dir.path()).expect("kafka");
    let mut fleet = Fleet::start_on(3, kafka.brokers(), dir);
    let ids = fleet.ids();
    let a = fleet.instance("a", &ids);
    wait_spread(&[&a], &ids);
    let b = fleet.instance("b", &ids);
    wait_spread(&[&a, &b], &ids);
    let rebalances = a.process.log_text().matches("group rebalanced").count();
    let c = fleet.instance("c", &ids);
    // The rebalance c's join starts has begun on a: the broker dies in it.
    wait_for_lines(&a, "group rebalanced", rebalances + 1);
    kafka.kill().expect("kill the broker");
    kafka.restart().expect("restart the broker");
    let mut instances = vec![a, b, c];
    wait_spread(&instances.iter().collect::<Vec<_>>(), &ids);
    fleet.stop_traffic_and_compare();
    for s in &mut instances {
        stop_cleanly(s);
    }
}

/// Started at the same moment, neither sees the other before joining: after the rebalance
/// one of them says the members disagree (or, if it saw the other first, refuses to join),
/// and no chain is owned twice.
#[test]
fn members_with_other_chains_started_together_are_reported() {
    let fleet = Fleet::start(2);
    let ids = fleet.ids();
    let mut a = fleet.instance("a", &ids);
    let mut b = fleet.instance("b", &ids[..1]);
    let said = wait_for("a disagreement reported", SETTLE, || {
        [&mut a, &mut b].into_iter().find_map(|s| {
            let log = s.process.log_text();
            (log.contains("group members disagree") || log.contains("follows chains")).then_some(())
        })
    });
    said.unwrap_or_else(|e| {
        panic!(
            "{e}\n{}\n-----\n{}",
            a.process.log_tail(30),
            b.process.log_tail(30)
        )
    });
    // Each chain has its own membership topic: whoever runs owns each chain once.
    let running: Vec<&Service> = [&a, &b]
        .into_iter()
        .filter(|s| !s.process.log_text().contains("follows chains"))
        .collect();
    let owned: Vec<BTreeSet<String>> = running.iter().filter_map(|s| owned(s)).collect();
    let total: usize = owned.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<String> = owned.iter().flatten().cloned().collect();
    assert_eq!(total, union.len(), "a chain owned twice: {owned:?}");
    for s in [&mut a, &mut b] {
        if s.process.is_running() {
            stop_cleanly(s);
        }
    }
}
