//! The shipped alert rules (`grafana/alerts/ethhook.rules.yml`): `promtool check rules`
//! accepts them, their unit tests (`ethhook.rules.test.yml`) pass under `promtool test
//! rules`, and every rule has a case that fires it and a case that does not. The rules run
//! against the live service in `prometheus.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn alerts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../grafana/alerts")
}

fn yaml(name: &str) -> Value {
    let path = alerts_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Runs promtool with `args` in the rules' folder; fails with its output unless it succeeds.
fn promtool(args: &[&str]) {
    let bin = devstack::tool("PROMTOOL_BIN").unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(&bin)
        .args(args)
        .current_dir(alerts_dir())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    assert!(
        out.status.success(),
        "promtool {}: {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn promtool_accepts_the_rules_and_their_unit_tests_pass() {
    promtool(&["check", "rules", "ethhook.rules.yml"]);
    promtool(&["test", "rules", "ethhook.rules.test.yml"]);
}

#[test]
fn every_rule_has_a_firing_and_a_quiet_case_and_a_runbook() {
    let rules = yaml("ethhook.rules.yml");
    let mut names = BTreeSet::new();
    let operations = std::fs::read_to_string(alerts_dir().join("../../docs/operations.md"))
        .expect("docs/operations.md");
    let anchors: BTreeSet<String> = operations
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("every rule is an alert");
            assert!(names.insert(name.to_owned()), "{name} twice");
            for key in ["summary", "description", "runbook"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|v| !v.is_empty()),
                    "{name}: no {key} annotation"
                );
            }
            let runbook = rule["annotations"]["runbook"].as_str().unwrap_or_default();
            let anchor = runbook
                .strip_prefix("docs/operations.md#")
                .unwrap_or_else(|| {
                    panic!("{name}: runbook {runbook} is not in docs/operations.md")
                });
            assert!(
                anchors.contains(anchor),
                "{name}: docs/operations.md has no section #{anchor}"
            );
        }
    }

    // alertname -> (cases that expect it to fire, cases that expect nothing).
    let mut cases: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let tests = yaml("ethhook.rules.test.yml");
    for test in tests["tests"].as_sequence().expect("tests") {
        for case in test["alert_rule_test"].as_sequence().into_iter().flatten() {
            let name = case["alertname"].as_str().expect("alertname");
            let expected = case["exp_alerts"].as_sequence().map_or(0, Vec::len);
            let entry = cases.entry(name.to_owned()).or_default();
            match expected {
                0 => entry.1 += 1,
                _ => entry.0 += 1,
            }
        }
    }
    for name in &names {
        let (firing, quiet) = cases.get(name).copied().unwrap_or_default();
        assert!(firing > 0, "{name}: no test case fires it");
        assert!(quiet > 0, "{name}: no test case where it stays quiet");
    }
    for name in cases.keys() {
        assert!(
            names.contains(name),
            "a test case names {name}, which is no rule"
        );
    }
}
