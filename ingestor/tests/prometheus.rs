//! A real Prometheus (Debian's, `PROMETHEUS_BIN`) scrapes the service's `/metrics` every
//! second while it follows two anvil chains, and evaluates the shipped alert rules:
//! - every expression of every panel of every dashboard in `grafana/dashboards/` returns at
//!   least one series (template variables substituted: `$chain` → `.*`, `$__rate_interval`
//!   → `10s`, others their current value);
//! - on the healthy run no alert is pending or firing;
//! - a provider that answers one block's receipts short stalls a chain: its
//!   `EthhookChainStalled` goes pending, then firing, then away once the provider answers
//!   right; a reorganisation 3 blocks deep fires `EthhookDeepReorg`.
//!
//! The rules are the shipped `grafana/alerts/ethhook.rules.yml` with one substitution, so
//! that a test can watch them fire: every `for:` becomes `for: 3s` (the chain's
//! `health.stall_after_ms` is 2 s here).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::provider::{Habits, ProviderProxy};
use common::*;
use devstack::anvil::Anvil;
use devstack::proc::{Managed, free_port, wait_for, wait_for_port};
use devstack::service::Service;
use devstack::traffic::{LogShapes, Sender, reorg_with_logs};
use serde_json::Value;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const WAIT: Duration = Duration::from_secs(90);

/// A Prometheus server on a free loopback port, its data in the test's folder.
struct Prometheus {
    _process: Managed,
    addr: String,
}

impl Prometheus {
    fn start(dir: &Path, target: &str, rules: &Path) -> Self {
        let port = free_port().expect("port");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 rule_files:\n  - {}\n\
                 scrape_configs:\n  - job_name: ethhook\n    static_configs:\n      - targets: [\"{target}\"]\n",
                rules.display()
            ),
        )
        .expect("prometheus.yml");
        let bin = devstack::tool("PROMETHEUS_BIN").unwrap_or_else(|e| panic!("{e}"));
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.console.templates=/nonexistent")
            .arg("--web.console.libraries=/nonexistent");
        let process =
            Managed::spawn("prometheus", cmd, dir.join("prometheus.log")).expect("prometheus");
        wait_for_port(port, WAIT).expect("prometheus listens");
        Self {
            _process: process,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// The `data` of a GET on the HTTP API (`None` while it answers no success).
    fn api(&self, path: &str) -> Option<Value> {
        let (code, body) = http_get_10(&self.addr, path);
        let v: Value = serde_json::from_str(&body).ok()?;
        (code == 200 && v["status"] == "success").then(|| v["data"].clone())
    }

    /// The series `expr` returns now.
    fn query(&self, expr: &str) -> Vec<Value> {
        self.api(&format!("/api/v1/query?query={}", encode(expr)))
            .and_then(|d| d["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The pending and firing alerts.
    fn alerts(&self) -> Vec<Value> {
        self.api("/api/v1/alerts")
            .and_then(|d| d["alerts"].as_array().cloned())
            .unwrap_or_default()
    }

    /// The state (`pending`, `firing`) of alert `name` for `chain`, if it is active.
    fn alert_state(&self, name: &str, chain: &str) -> Option<String> {
        self.alerts()
            .iter()
            .find(|a| a["labels"]["alertname"] == name && a["labels"]["chain"] == chain)
            .and_then(|a| a["state"].as_str().map(str::to_owned))
    }

    /// Samples of the service's scrape so far.
    fn scrapes(&self) -> usize {
        self.query("count_over_time(up{job=\"ethhook\"}[1h])")
            .first()
            .and_then(|s| s["value"][1].as_str()?.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `n` more scrapes (and as many rule evaluations) have happened.
    fn wait_scrapes(&self, n: usize) {
        let start = self.scrapes();
        wait_for(&format!("{n} more scrapes"), WAIT, || {
            (self.scrapes() >= start + n).then_some(())
        })
        .expect("scrapes");
    }
}

/// A GET in HTTP/1.0 (so the answer is not chunked): the status code and the body.
fn http_get_10(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    if write!(s, "GET {path} HTTP/1.0\r\nhost: {addr}\r\n\r\n").is_err() {
        return (0, String::new());
    }
    let mut text = String::new();
    if s.read_to_string(&mut text).is_err() {
        return (0, String::new());
    }
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (code, body)
}

/// Percent-encoding of a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Every Prometheus `expr` of every panel of every dashboard, with its dashboard and panel
/// title, template variables substituted.
fn dashboard_queries() -> Vec<(String, String)> {
    fn walk(v: &Value, title: &str, vars: &[(String, String)], out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                let title = m.get("title").and_then(Value::as_str).unwrap_or(title);
                if let Some(expr) = m.get("expr").and_then(Value::as_str) {
                    let mut expr = expr.to_owned();
                    for (name, value) in vars {
                        expr = expr.replace(&format!("${{{name}}}"), value);
                        expr = expr.replace(&format!("${name}"), value);
                    }
                    out.push((title.to_owned(), expr));
                }
                for (k, v) in m {
                    if k != "templating" {
                        walk(v, title, vars, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, title, vars, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/grafana/dashboards")).expect("dashboards") {
        let path = entry.expect("entry").path();
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("dashboard"))
            .expect("dashboard JSON");
        // Grafana's own variables first (longest names first), then the dashboard's.
        let mut vars: Vec<(String, String)> = [
            ("__rate_interval", "10s"),
            ("__interval", "10s"),
            ("__range", "10s"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for var in json["templating"]["list"].as_array().into_iter().flatten() {
            let name = var["name"].as_str().expect("variable name").to_owned();
            let value = match var["current"]["value"].as_str() {
                Some("$__all") => var["allValue"].as_str().unwrap_or(".*").to_owned(),
                Some(v) => v.to_owned(),
                None => ".*".to_owned(),
            };
            vars.push((name, value));
        }
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let mut queries = Vec::new();
        walk(&json, "", &vars, &mut queries);
        out.extend(
            queries
                .into_iter()
                .map(|(title, expr)| (format!("{name}: {title}"), expr)),
        );
    }
    out
}

/// The shipped rules with every `for:` at 3 s.
fn test_rules(dir: &Path) -> std::path::PathBuf {
    let shipped =
        std::fs::read_to_string(format!("{ROOT}/grafana/alerts/ethhook.rules.yml")).expect("rules");
    let rules: String = shipped
        .lines()
        .map(|l| match l.trim_start().strip_prefix("for:") {
            Some(_) => format!("{}for: 3s", &l[..l.len() - l.trim_start().len()]),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("ethhook.rules.yml");
    std::fs::write(&path, rules).expect("test rules");
    path
}

fn wait_delivered(service: &Service, chain: &str, head: u64) {
    wait_for(&format!("{chain} delivered to {head}"), WAIT, || {
        chain_status(service, chain)
            .and_then(|s| s["delivered"].as_u64())
            .filter(|d| *d >= head)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", service.process.log_tail(30)));
}

#[test]
fn a_real_prometheus_reads_every_dashboard_query_and_the_alerts_fire_on_real_faults() {
    let mut stack = Stack::start(311, 3);
    // A second chain, behind a provider that can answer its receipts short.
    let anvil_b = Anvil::start(31338, stack.dir.path()).expect("anvil 31338");
    let node_b = anvil_b.node();
    let mut sender_b = Sender::new(node_b.clone()).expect("sender");
    let mut shapes_b = LogShapes::new(312);
    mine_history(&mut sender_b, &mut shapes_b, 2).expect("history");
    let stuck = Arc::new(AtomicBool::new(false));
    let proxy = ProviderProxy::start(
        anvil_b.port,
        Habits {
            stuck_receipts: Some(stuck.clone()),
            ..Habits::default()
        },
    );
    let mut entry_b = fast_retry_entry(31338, String::new());
    entry_b.urls = vec![proxy.url()];
    let toml = stack.names.config(
        &stack.brokers(),
        &[fast_retry_entry(31337, stack.anvil.ws_url()), entry_b],
        "[health]\nstall_after_ms = 2000\n",
    );
    let service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    let (a, b) = ("chain-31337", "chain-31338");
    wait_delivered(&service, a, stack.node.head().expect("head"));
    wait_delivered(&service, b, node_b.head().expect("head"));

    let health = wait_for("the health address", WAIT, || service.health_addr()).expect("health");
    let rules = test_rules(stack.dir.path());
    let prometheus = Prometheus::start(stack.dir.path(), &health, &rules);
    prometheus.wait_scrapes(2);
    // Traffic on both chains while Prometheus watches.
    stack.sender.block(&[stack.shapes.logs(5)]).expect("block");
    sender_b.block(&[shapes_b.logs(4)]).expect("block");
    wait_delivered(&service, a, stack.node.head().expect("head"));
    wait_delivered(&service, b, node_b.head().expect("head"));
    prometheus.wait_scrapes(2);

    // Every dashboard query returns a series.
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{queries:?}");
    let empty = |p: &Prometheus| -> Vec<String> {
        queries
            .iter()
            .filter(|(_, expr)| p.query(expr).is_empty())
            .map(|(panel, expr)| format!("{panel}: {expr}"))
            .collect()
    };
    if let Err(e) = wait_for("every dashboard query to return a series", WAIT, || {
        empty(&prometheus).is_empty().then_some(())
    }) {
        panic!("{e}: no series for\n{}", empty(&prometheus).join("\n"));
    }

    // The healthy run: the rules were evaluated, and nothing is pending or firing.
    prometheus.wait_scrapes(4);
    let groups = prometheus.api("/api/v1/rules").expect("rules")["groups"].clone();
    let loaded: BTreeSet<String> = groups
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert!(loaded.contains("EthhookChainStalled"), "{loaded:?}");
    assert!(loaded.len() >= 16, "{loaded:?}");
    let active = prometheus.alerts();
    assert!(active.is_empty(), "alerts on a healthy run: {active:#?}");

    // A provider that answers every receipts request of chain b short: b stalls.
    stuck.store(true, Ordering::SeqCst);
    sender_b.block(&[shapes_b.logs(3)]).expect("block");
    let alert = "EthhookChainStalled";
    wait_for(&format!("{alert} pending for {b}"), WAIT, || {
        (prometheus.alert_state(alert, b).as_deref() == Some("pending")).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", prometheus.alerts()));
    wait_for(&format!("{alert} firing for {b}"), WAIT, || {
        (prometheus.alert_state(alert, b).as_deref() == Some("firing")).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", prometheus.alerts()));
    assert_eq!(prometheus.alert_state(alert, a), None, "{a} is not stalled");
    let firing = prometheus
        .alerts()
        .into_iter()
        .find(|x| x["labels"]["alertname"] == alert && x["labels"]["chain"] == b)
        .expect("the alert");
    assert_eq!(
        firing["annotations"]["runbook"], "docs/operations.md#chain-stalled",
        "{firing}"
    );

    // The provider answers right again: b moves on and the alert goes away.
    stuck.store(false, Ordering::SeqCst);
    wait_delivered(&service, b, node_b.head().expect("head"));
    wait_for(&format!("{alert} resolved for {b}"), WAIT, || {
        prometheus.alert_state(alert, b).is_none().then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", prometheus.alerts()));

    // A reorganisation 3 blocks deep on chain a (its blocks published first).
    stack.sender.block(&[stack.shapes.logs(2)]).expect("block");
    stack.sender.block(&[stack.shapes.logs(2)]).expect("block");
    stack.sender.block(&[stack.shapes.logs(2)]).expect("block");
    wait_delivered(&service, a, stack.node.head().expect("head"));
    assert_eq!(prometheus.alert_state("EthhookDeepReorg", a), None);
    reorg_with_logs(&stack.node, 3, &[stack.shapes.logs(1)]).expect("reorg");
    Sender::new(stack.node.clone())
        .expect("sender")
        .block(&[stack.shapes.logs(1)])
        .expect("block");
    wait_delivered(&service, a, stack.node.head().expect("head"));
    wait_for(&format!("EthhookDeepReorg firing for {a}"), WAIT, || {
        (prometheus.alert_state("EthhookDeepReorg", a).as_deref() == Some("firing")).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{:#?}", prometheus.alerts()));
    assert_eq!(prometheus.alert_state("EthhookDeepReorg", b), None);
}
