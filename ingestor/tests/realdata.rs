//! Real chains, not anvil: every block recorded in `shared/realdata/` (one real block with
//! all its receipts per file, from Ethereum's eras to Arbitrum, Optimism, Polygon, Cronos and
//! Tempo) is served by [`RealNode`] and followed by the real ingestor binary into the shared
//! broker, on every path that fetches and proves a block:
//!
//! - catch-up over HTTP, receipts by `eth_getBlockReceipts` (ranged catch-up);
//! - live over WebSocket: the block appears while the ingestor waits at the head, and a
//!   `newHeads` notification carries its header;
//! - live over HTTP, polled;
//! - catch-up over WebSocket from a node without `eth_getBlockReceipts` (per transaction);
//! - catch-up over HTTP with `verify_log_completeness = false` (`eth_getLogs`, unproven).
//!
//! Each chain's topic is read back by the independent consumer and compared, record for
//! record and field by field, with the recorded receipts' logs. A chain that departs from
//! Ethereum's rules in a way the ingestor refuses is listed in [`DEPARTURES`] with its
//! reason: for it the test requires the refusal (and nothing published) instead.
//!
//! In process, the ingestor's own parsing and proof run on every recording too, whole and
//! short of its last receipt: the block's count of transactions refuses the short answer;
//! where a header lists none (`newHeads`) and the chain's last transaction uses no gas
//! ([`ZERO_GAS_LAST`]), the gas rule alone cannot tell.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use devstack::compare::{compare, expected_from_receipts};
use devstack::consumer::TopicReader;
use devstack::proc::wait_for;
use devstack::realnode::{Options, RealNode, Recorded, realdata_dir};
use devstack::service::{ChainEntry, Service};
use ingestor::follower::BlockLogs;
use ingestor::rpc::receipt::Receipt;
use ingestor::rpc::types::Header;

const WAIT: Duration = Duration::from_secs(90);

/// How a block reaches the ingestor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    CatchUpHttp,
    LiveWs,
    LiveHttp,
    CatchUpWsPerTransaction,
    CatchUpHttpGetLogs,
}

impl Route {
    fn name(self) -> &'static str {
        match self {
            Self::CatchUpHttp => "catch-up/http/block-receipts",
            Self::LiveWs => "live/ws/newHeads",
            Self::LiveHttp => "live/http/polled",
            Self::CatchUpWsPerTransaction => "catch-up/ws/transaction-receipts",
            Self::CatchUpHttpGetLogs => "catch-up/http/getLogs-unverified",
        }
    }

    fn live(self) -> bool {
        matches!(self, Self::LiveWs | Self::LiveHttp)
    }

    fn over_ws(self) -> bool {
        matches!(self, Self::LiveWs | Self::CatchUpWsPerTransaction)
    }

    fn options(self) -> Options {
        Options {
            block_receipts: self != Self::CatchUpWsPerTransaction,
            hidden: self.live(),
        }
    }

    /// `/status`'s `completeness` for the chain.
    fn completeness(self) -> &'static str {
        match self {
            Self::CatchUpWsPerTransaction => "transaction_receipts",
            Self::CatchUpHttpGetLogs => "none",
            _ => "block_receipts",
        }
    }

    /// The method the node must have served the block's logs with.
    fn logs_method(self) -> &'static str {
        match self {
            Self::CatchUpWsPerTransaction => "eth_getTransactionReceipt",
            Self::CatchUpHttpGetLogs => "eth_getLogs",
            _ => "eth_getBlockReceipts",
        }
    }

    /// Live routes: the method whose answer must have been the first to hold the block's
    /// data. Over `newHeads` the header came with the notification, so its receipts were
    /// asked first, unless the header cannot be read as the block hash covers it (Tempo's
    /// has fields of its own): under `proof = "auto"` the block is then fetched by number
    /// while the chain's header hash is undecided. Polled, the header was asked by number.
    fn first_served(self, rec: &Recorded) -> Option<&'static str> {
        let sealed = Header::parse(&rec.block.to_string())
            .map(|h| h.sealed.consensus.is_ok())
            .unwrap_or(false);
        match self {
            Self::LiveWs if sealed => Some("eth_getBlockReceipts"),
            Self::LiveWs | Self::LiveHttp => Some("eth_getBlockByNumber"),
            _ => None,
        }
    }

    fn extra(self) -> Vec<String> {
        let mut extra = Vec::new();
        if !self.live() {
            // The one block is more than 0 blocks ahead: the ranged catch-up fetches it.
            extra.push("live_threshold_blocks = 0".to_owned());
        }
        if self == Self::CatchUpHttpGetLogs {
            extra.push("verify_log_completeness = false".to_owned());
        }
        extra
    }
}

/// Files and routes where a real chain departs from Ethereum's rules and the ingestor
/// refuses the block: (file, route or `None` for every route, the refusal the log must
/// show, the reason).
const DEPARTURES: &[(&str, Option<Route>, &str, &str)] = &[];

/// Files whose last transaction used no gas: a receipts answer short of its last receipt
/// still adds up to the header's `gasUsed`, so where the header lists no transactions (a
/// `newHeads` header), the gas rule cannot tell it is short. With the reason.
const ZERO_GAS_LAST: &[(&str, &str)] = &[(
    "tempo-mainnet-17708868.json",
    "Tempo's last transaction (index 2, type 0x0, from and to the zero address, gas 0, no logs) is a system transaction that uses no gas",
)];

/// The proof `proof = "auto"` reaches on each recorded chain (`/status` `proof`): the
/// header hash and the receipts root hold on Ethereum from Frontier to Cancun, OP mainnet,
/// Arbitrum One and Polygon PoS; Tempo's header hash covers fields of its own, so only its
/// receipts root; Cronos's block hash is its consensus engine's and its `receiptsRoot` the
/// empty trie's whatever the receipts, so neither.
fn proof_reached(file: &str) -> &'static str {
    match file {
        f if f.starts_with("tempo-") => "receipts+receipts_root",
        f if f.starts_with("cronos-") => "receipts",
        _ => "receipts_root",
    }
}

fn departure(file: &str, route: Route) -> Option<(&'static str, &'static str)> {
    DEPARTURES
        .iter()
        .find(|(f, r, _, _)| *f == file && r.is_none_or(|r| r == route))
        .map(|(_, _, line, why)| (*line, *why))
}

/// Every recording, after checking the folder holds exactly the files `SOURCES.md` lists.
fn recordings() -> Vec<Arc<Recorded>> {
    let dir = realdata_dir().unwrap_or_else(|e| panic!("{e:#}"));
    let sources = std::fs::read_to_string(dir.join("SOURCES.md"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join("SOURCES.md").display()));
    let listed: BTreeSet<String> = sources
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .map(|l| l.trim().to_owned())
        .collect();
    assert_eq!(listed.len(), 10, "SOURCES.md lists {listed:?}");
    let all = Recorded::load_dir(&dir).unwrap_or_else(|e| panic!("{e:#}"));
    let present: BTreeSet<String> = all.iter().map(|r| r.file.clone()).collect();
    assert_eq!(present, listed, "files in {} vs SOURCES.md", dir.display());
    all.into_iter().map(Arc::new).collect()
}

/// The recordings split into groups without two of the same chain id (one ingestor
/// process each: a config names each chain id once).
fn groups(all: Vec<Arc<Recorded>>) -> Vec<Vec<Arc<Recorded>>> {
    let mut groups: Vec<Vec<Arc<Recorded>>> = Vec::new();
    for rec in all {
        match groups
            .iter_mut()
            .find(|g| g.iter().all(|o| o.chain_id != rec.chain_id))
        {
            Some(g) => g.push(rec),
            None => groups.push(vec![rec]),
        }
    }
    groups
}

/// One ingestor process following some recordings over one route.
struct Run {
    route: Route,
    names: Names,
    nodes: Vec<RealNode>,
    service: Service,
    /// Declared last: removed after the processes stopped.
    dir: tempfile::TempDir,
}

impl Run {
    fn start(route: Route, group: &[Arc<Recorded>]) -> Self {
        Self::start_with(route, group, |_, _| Vec::new())
    }

    /// [`Run::start`] with `more` chain lines for each chain (by this run's names and the
    /// chain id).
    fn start_with(
        route: Route,
        group: &[Arc<Recorded>],
        more: impl Fn(&Names, u64) -> Vec<String>,
    ) -> Self {
        let dir = tempdir();
        let names = Names::new();
        let nodes: Vec<RealNode> = group
            .iter()
            .map(|r| RealNode::start(r.clone(), route.options()).expect("real node"))
            .collect();
        let entries: Vec<ChainEntry> = nodes
            .iter()
            .map(|node| {
                let rec = node.recorded();
                let mut e = fast_retry_entry(rec.chain_id, String::new());
                e.name = rec.chain.clone();
                e.urls = vec![match route.over_ws() {
                    true => node.ws_url(),
                    false => node.http_url(),
                }];
                e.start_block = rec.number.to_string();
                if route == Route::LiveWs {
                    // No polling: only the notification can tell of the block.
                    e.extra.retain(|l| !l.starts_with("head_poll_interval_ms"));
                    e.extra.push("head_poll_interval_ms = 600000".to_owned());
                }
                e.extra.extend(route.extra());
                e.extra.extend(more(&names, rec.chain_id));
                e
            })
            .collect();
        let toml = names.config(&shared_brokers(), &entries, "");
        let service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
        Self {
            route,
            names,
            nodes,
            service,
            dir,
        }
    }

    fn fail(&self, what: impl std::fmt::Display) -> ! {
        panic!(
            "{}: {what}\n--- ingestor log (last 40 lines)\n{}",
            self.route.name(),
            self.service.process.log_tail(40)
        )
    }

    fn status(&self, rec: &Recorded) -> serde_json::Value {
        chain_status(&self.service, &rec.chain).unwrap_or_default()
    }

    /// Live routes: waits until each chain follows its head one block short of the
    /// recorded one (subscribed over WebSocket), then shows the block.
    fn release_at_the_head(&self) {
        for node in &self.nodes {
            let rec = node.recorded();
            let want_heads = match self.route {
                Route::LiveWs => "subscribed",
                _ => "polled",
            };
            let waited = wait_for(
                &format!(
                    "{} live at head {} ({want_heads})",
                    rec.chain,
                    rec.number - 1
                ),
                WAIT,
                || {
                    let s = self.status(rec);
                    (s["phase"] == "live"
                        && s["head"].as_u64() == Some(rec.number - 1)
                        && s["heads"] == want_heads)
                        .then_some(())
                },
            );
            if let Err(e) = waited {
                self.fail(e);
            }
            node.release();
        }
    }

    /// Checks each chain: its block delivered and its topic equal to the recorded logs, or
    /// (for a listed departure) the refusal in the log and nothing delivered.
    fn check(&self) {
        for node in &self.nodes {
            let rec = node.recorded();
            match departure(&rec.file, self.route) {
                None => self.check_delivered(node),
                Some((line, why)) => self.check_refused(rec, line, why),
            }
        }
    }

    fn check_delivered(&self, node: &RealNode) {
        let rec = node.recorded();
        let delivered = wait_for(
            &format!("{} delivered to block {}", rec.chain, rec.number),
            WAIT,
            || {
                let s = self.status(rec);
                s["delivered"]
                    .as_u64()
                    .filter(|d| *d >= rec.number)
                    .map(|_| s)
            },
        );
        let status = delivered.unwrap_or_else(|e| self.fail(e));
        let expected = expected_from_receipts(rec.chain_id, &rec.block, rec.receipt_list())
            .unwrap_or_else(|e| self.fail(format!("{}: {e:#}", rec.file)));
        let topic = self.names.topic(rec.chain_id);
        let mut reader = TopicReader::new(&shared_brokers(), &topic).expect("reader");
        let mut records = Vec::new();
        if let Err(e) =
            reader.read_until(&mut records, READ_DEADLINE, |r| r.len() >= expected.len())
        {
            self.fail(format!("{}: {e:#}", rec.file));
        }
        if let Err(e) = reader.read_to_end(&mut records, READ_DEADLINE) {
            self.fail(format!("{}: {e:#}", rec.file));
        }
        let report = compare(&expected, &records);
        println!(
            "{:<34} chain {:<17} block {:>9} txs {:>3} logs {:>4} path {:<34} completeness {} proof {} -> {report}",
            rec.file,
            rec.chain,
            rec.number,
            rec.tx_count(),
            rec.log_count(),
            self.route.name(),
            status["completeness"],
            status["proof"]
        );
        if !report.is_clean() || report.records != rec.log_count() {
            self.fail(format!("{} ({}): {report}", rec.file, rec.log_count()));
        }
        let proof = match self.route.completeness() {
            "none" => "none",
            _ => proof_reached(&rec.file),
        };
        if status["proof"] != proof {
            self.fail(format!(
                "{}: proof {} in /status, expected {proof}",
                rec.file, status["proof"]
            ));
        }
        if status["completeness"] != self.route.completeness() {
            self.fail(format!(
                "{}: completeness {} in /status",
                rec.file, status["completeness"]
            ));
        }
        let served = node.served();
        if let Some(first) = self.route.first_served(rec)
            && served.first().map(String::as_str) != Some(first)
        {
            self.fail(format!(
                "{}: the block's data went first to {:?}, expected {}; calls: {:?}",
                rec.file,
                served.first(),
                first,
                node.all_calls()
            ));
        }
        if self.route == Route::LiveWs && node.calls("eth_subscription") == 0 {
            self.fail(format!("{}: no newHeads notification sent", rec.file));
        }
        let caught_up = format!(
            "catch-up started chain=\"{}\" from={}",
            rec.chain, rec.number
        );
        if self.service.process.log_text().contains(&caught_up) == self.route.live() {
            self.fail(format!(
                "{}: `{caught_up}` in the log is {} for this route",
                rec.file,
                !self.route.live()
            ));
        }
        if node.calls(self.route.logs_method()) == 0 {
            self.fail(format!(
                "{}: the node never served {}; calls: {:?}",
                rec.file,
                self.route.logs_method(),
                node.all_calls()
            ));
        }
    }

    fn check_refused(&self, rec: &Recorded, line: &str, why: &str) {
        // The refusal in the log, or the block delivered after all (then the listing is
        // wrong: fail at once rather than at the deadline).
        let seen = wait_for(&format!("{}: the refusal `{line}`", rec.file), WAIT, || {
            if self.status(rec)["delivered"]
                .as_u64()
                .is_some_and(|d| d >= rec.number)
            {
                return Some(Err(()));
            }
            self.service
                .process
                .log_text()
                .lines()
                .find(|l| l.contains(line))
                .map(|l| Ok(l.to_owned()))
        });
        let seen = match seen {
            Ok(Ok(seen)) => seen,
            Ok(Err(())) => self.fail(format!(
                "{}: listed as refused ({why}) but delivered: remove it from DEPARTURES",
                rec.file
            )),
            Err(e) => self.fail(e),
        };
        println!(
            "{:<34} chain {:<17} block {:>9} txs {:>3} logs {:>4} path {:<34} EXPECTED REFUSAL ({why}): {seen}",
            rec.file,
            rec.chain,
            rec.number,
            rec.tx_count(),
            rec.log_count(),
            self.route.name(),
        );
    }

    fn stop(mut self) {
        stop_cleanly(&mut self.service);
        drop(self.dir);
    }
}

/// Every recording over `route`: one ingestor per group of distinct chain ids, all running
/// at once.
fn follow_every_recording(route: Route) {
    let started = Instant::now();
    let runs: Vec<Run> = groups(recordings())
        .iter()
        .map(|g| Run::start(route, g))
        .collect();
    if route.live() {
        for run in &runs {
            run.release_at_the_head();
        }
    }
    for run in &runs {
        run.check();
    }
    for run in runs {
        run.stop();
    }
    println!("{}: {:?}", route.name(), started.elapsed());
}

#[test]
fn catch_up_over_http_with_block_receipts() {
    follow_every_recording(Route::CatchUpHttp);
}

#[test]
fn live_over_websocket_with_new_heads() {
    follow_every_recording(Route::LiveWs);
}

#[test]
fn live_over_http_polled() {
    follow_every_recording(Route::LiveHttp);
}

#[test]
fn catch_up_over_websocket_per_transaction() {
    follow_every_recording(Route::CatchUpWsPerTransaction);
}

#[test]
fn catch_up_over_http_with_get_logs_unverified() {
    follow_every_recording(Route::CatchUpHttpGetLogs);
}

/// The ingestor's own parsing and proof, in process, on every recording: the recorded
/// answer proves the block with exactly its logs, and an answer short of its last receipt
/// is refused, by the count of the block's transactions. A `newHeads` header lists no
/// transactions: then only the gas rule is left, which cannot tell where the chain's last
/// transaction uses no gas ([`ZERO_GAS_LAST`]).
#[test]
fn the_proof_holds_on_every_recorded_block_and_refuses_it_short_of_its_last_receipt() {
    for rec in recordings() {
        let header = Header::parse(&rec.block.to_string())
            .unwrap_or_else(|e| panic!("{}: header: {e}", rec.file));
        assert_eq!(
            header.transactions,
            Some(rec.tx_count() as u64),
            "{}",
            rec.file
        );
        let receipts = Receipt::parse_list(&rec.receipts.to_string())
            .unwrap_or_else(|e| panic!("{}: receipts: {e}", rec.file));
        let block = BlockLogs::from_receipts(header.clone(), receipts.clone())
            .unwrap_or_else(|e| panic!("{}: check={}: {e}", rec.file, e.check));
        assert_eq!(block.logs.len(), rec.log_count(), "{}", rec.file);
        let mut short = receipts;
        short.pop();
        let e = BlockLogs::from_receipts(header.clone(), short.clone())
            .expect_err("an answer short of its last receipt");
        assert_eq!(e.check, "receipts", "{}: {e}", rec.file);
        // The same header as `newHeads` announces it: no transaction list.
        let announced = Header {
            transactions: None,
            ..header
        };
        match (
            ZERO_GAS_LAST.iter().find(|(f, _)| *f == rec.file),
            BlockLogs::from_receipts(announced, short),
        ) {
            (None, Err(e)) => assert_eq!(e.check, "receipts", "{}: {e}", rec.file),
            (Some((_, why)), Ok(_)) => println!("{}: short answer accepted: {why}", rec.file),
            (None, Ok(_)) => panic!(
                "{}: an answer short of its last receipt was accepted",
                rec.file
            ),
            (Some(_), Err(e)) => panic!(
                "{}: listed in ZERO_GAS_LAST but refused ({e}): remove it from the list",
                rec.file
            ),
        }
    }
}

/// The dataset topics of a run's chain `chain_id`: blocks, then transactions.
fn dataset_topics(names: &Names, chain_id: u64) -> (String, String) {
    let logs = names.topic(chain_id);
    (format!("{logs}.blocks"), format!("{logs}.transactions"))
}

/// With every dataset on (`datasets = ["logs", "blocks", "transactions"]`), each recorded
/// block and every one of its transactions, OP-stack deposits (0x7e), Arbitrum's internal
/// transaction (0x6a) and Tempo's 0x76 included, land on their topics equal field by field
/// to the recorded block and transaction objects and receipts; the members the schemas do
/// not name (L2 fee fields, a chain's own) are in `extra`. A transaction type without a
/// `value` or an `input` (Tempo's 0x76) has 0 and empty bytes, as `docs/records.md` says.
#[test]
fn every_recorded_block_and_transaction_through_the_datasets() {
    use common::datasets::{assert_dataset_view, block_record, transaction_record};
    use devstack::datasets::{BLOCK_SCHEMA_PATH, TRANSACTION_SCHEMA_PATH, View};
    let runs: Vec<Run> = groups(recordings())
        .iter()
        .map(|g| {
            Run::start_with(Route::CatchUpHttp, g, |names, id| {
                let (blocks, transactions) = dataset_topics(names, id);
                vec![
                    r#"datasets = ["logs", "blocks", "transactions"]"#.to_owned(),
                    format!("blocks_topic = {blocks:?}"),
                    format!("transactions_topic = {transactions:?}"),
                ]
            })
        })
        .collect();
    for run in &runs {
        run.check();
        for node in &run.nodes {
            let rec = node.recorded();
            let b = &rec.block;
            let mut blocks = View::new();
            blocks.insert(
                format!("{}:{}", rec.chain_id, rec.number),
                block_record(rec.chain_id, b),
            );
            let mut transactions = View::new();
            let txs = b["transactions"].as_array().expect("transactions");
            let receipts = rec.receipts.as_array().expect("receipts");
            assert_eq!(txs.len(), receipts.len(), "{}", rec.file);
            for (t, r) in txs.iter().zip(receipts) {
                let mut record = transaction_record(rec.chain_id, b, t, r);
                if t.get("value").is_none() {
                    record["value"] = serde_json::json!("0");
                }
                if t.get("input").is_none() {
                    record["input"] = serde_json::json!("0x");
                }
                let hash = t["hash"].as_str().expect("hash");
                transactions.insert(format!("{}:{hash}", rec.chain_id), record);
            }
            let (blocks_topic, transactions_topic) = dataset_topics(&run.names, rec.chain_id);
            assert_dataset_view(&shared_brokers(), &blocks_topic, BLOCK_SCHEMA_PATH, &blocks);
            assert_dataset_view(
                &shared_brokers(),
                &transactions_topic,
                TRANSACTION_SCHEMA_PATH,
                &transactions,
            );
            println!(
                "{:<34} block and {} transactions equal the recording on their topics",
                rec.file,
                txs.len()
            );
        }
    }
    for run in runs {
        run.stop();
    }
}
