//! `ingestor tail` on real processes: it reads what the service published, in both wire
//! formats, tombstones included, and what it prints equals the node field by field.

mod common;

use std::process::Command;

use common::registry::TestRegistry;
use common::*;
use devstack::compare::{compare_compacted, expected_from_node};
use devstack::consumer::Record;
use devstack::service::Service;
use devstack::traffic::{LogShapes, Sender, reorg_with_logs};
use serde_json::Value;

/// Runs `ingestor tail` on the service's config; returns its stdout lines, or its stderr.
fn try_tail(service: &Service, args: &[&str]) -> Result<Vec<String>, String> {
    let out = Command::new(BIN)
        .arg("tail")
        .arg("--config")
        .arg(&service.config)
        .args(args)
        .output()
        .expect("run tail");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(str::to_owned)
        .collect())
}

fn tail(service: &Service, args: &[&str]) -> Vec<String> {
    try_tail(service, args).unwrap_or_else(|e| panic!("tail failed: {e}"))
}

/// `--format json` lines as records, to compare with the node.
fn records(lines: &[String]) -> Vec<Record> {
    lines
        .iter()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("json line");
            assert!(v.get("error").is_none(), "undecodable: {line}");
            let log = v.get("log").filter(|l| l.is_object()).map(|l| {
                devstack::avro_ref::log_from_json(l).unwrap_or_else(|e| panic!("{e:#}: {line}"))
            });
            assert_eq!(v["tombstone"].as_bool(), Some(log.is_none()), "{line}");
            Record {
                key: v["key"].as_str().expect("key").to_owned(),
                timestamp_ms: v["timestamp_ms"].as_i64(),
                partition: v["partition"].as_i64().expect("partition") as i32,
                offset: v["offset"].as_i64().expect("offset"),
                log,
                headers: vec![],
                raw: None,
            }
        })
        .collect()
}

/// Runs `tail --from-beginning --format json` until what it prints, compacted, equals the
/// node (or the deadline passes); returns the records of the last run.
fn tail_until_equal(service: &Service, stack: &Stack) -> Vec<Record> {
    let mut last = String::new();
    devstack::proc::wait_for("tail equal to the node", READ_DEADLINE, || {
        // Until the service created its topic, tail says it does not exist.
        let lines = match try_tail(service, &["--from-beginning", "--format", "json"]) {
            Ok(lines) => lines,
            Err(e) => {
                last = e;
                return None;
            }
        };
        let read = records(&lines);
        let head = stack.node.head().ok()?;
        let expected = expected_from_node(&stack.node, 31337, 0, head).ok()?;
        let report = compare_compacted(&expected, &read);
        last = report.to_string();
        report.is_clean().then_some(read)
    })
    .unwrap_or_else(|e| panic!("{e}: {last}; {}", service.process.log_tail(10)))
}

#[test]
fn tail_prints_both_wire_formats_and_tombstones_equal_to_the_node() {
    for with_registry in [false, true] {
        let registry = TestRegistry::start(None);
        let stack = Stack::start(91, 6);
        let mut toml = stack.config(&[]);
        if with_registry {
            toml.push_str(&format!(
                "\n[schema_registry]\nurl = \"{}\"\n",
                registry.url()
            ));
        }
        let mut service =
            Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
        let before = tail_until_equal(&service, &stack);
        assert!(before.iter().all(|r| r.log.is_some()));

        // A reorganisation of depth 2: its orphaned keys get tombstones.
        let mut shapes = LogShapes::new(92);
        reorg_with_logs(&stack.node, 2, &[shapes.logs(2), shapes.logs(3)]).expect("reorg");
        Sender::new(stack.node.clone())
            .expect("sender")
            .block(&[shapes.logs(1)])
            .expect("block");
        let after = tail_until_equal(&service, &stack);
        assert!(after.iter().any(|r| r.log.is_none()), "tombstones printed");

        let text = tail(&service, &["--chain", "chain-31337", "--from-beginning"]);
        assert_eq!(text.len(), after.len());
        assert!(text.iter().any(|l| l.starts_with("tombstone 31337:0x")));
        assert!(text.iter().any(|l| l.starts_with("block ")));
        if with_registry {
            assert!(
                registry
                    .id_of(&format!("{}-value", stack.topic()))
                    .is_some()
            );
        }
        stop_cleanly(&mut service);
    }
}
