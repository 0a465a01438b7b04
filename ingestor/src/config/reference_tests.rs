//! `docs/configuration.md` against the code: every key the serde derives accept is
//! documented with its default and unit, the page names no other key, and each default
//! written as a TOML value is the real one.
//!
//! A default is checked by parsing a minimal configuration twice, once without the key and
//! once with the documented value, and comparing the two `Config`s. A `required` key is
//! checked by leaving it out, which must fail. The README's example configuration must be
//! valid too.

use std::collections::BTreeSet;

use super::keys::Keys;
use super::parse;

const DOC: &str = include_str!("../../../docs/configuration.md");

const MINIMAL: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"

[[chains]]
name = "ethereum"
chain_id = 1
urls = ["ws://127.0.0.1:8545"]

[schema_registry]
url = "http://127.0.0.1:8081"
"#;

/// The minimal configuration in group mode, for the `[group]` keys.
const MINIMAL_GROUP: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"
transactional = true

[[chains]]
name = "ethereum"
chain_id = 1
urls = ["ws://127.0.0.1:8545"]

[schema_registry]
url = "http://127.0.0.1:8081"

[group]
id = "g"
"#;

/// The configuration a key's default is checked against.
fn minimal(key: &str) -> &'static str {
    if key.starts_with("group.") {
        MINIMAL_GROUP
    } else {
        MINIMAL
    }
}

/// Defaults that are described rather than written as a value.
const DESCRIBED: &[&str] = &[
    "chains[].topic",
    "chains[].events[].topic",
    "chains[].blocks_topic",
    "chains[].transactions_topic",
];

/// One row of a `| key | default | unit | meaning and cost |` table.
#[derive(Debug)]
struct Row {
    key: String,
    default: String,
    unit: String,
}

fn rows() -> Vec<Row> {
    let mut out = Vec::new();
    let mut in_table = false;
    for line in DOC.lines() {
        if line.starts_with("| key | default | unit |") {
            in_table = true;
            continue;
        }
        if !line.starts_with('|') {
            in_table = false;
            continue;
        }
        if !in_table || line.starts_with("|---") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "", key, default, unit, meaning…, ""
        assert!(cells.len() >= 6, "a row needs 4 cells: {line}");
        let key = cells[1]
            .strip_prefix('`')
            .and_then(|k| k.strip_suffix('`'))
            .filter(|k| !k.contains('`'))
            .unwrap_or_else(|| panic!("the key cell must be one `key`: {line}"));
        assert!(!cells[4].is_empty(), "{key}: no meaning");
        out.push(Row {
            key: key.to_owned(),
            default: cells[2].to_owned(),
            unit: cells[3].to_owned(),
        });
    }
    out
}

/// `doc` with `key` set to `value` (or removed with `None`).
fn with(key: &str, value: Option<toml::Value>) -> String {
    let mut root: toml::Table = minimal(key).parse().expect("minimal config");
    let (table, leaf) = match key.split_once('.') {
        None => (&mut root, key),
        Some(("chains[]", leaf)) if leaf.starts_with("events[].") => {
            let chain = root
                .get_mut("chains")
                .and_then(toml::Value::as_array_mut)
                .and_then(|a| a.first_mut())
                .and_then(toml::Value::as_table_mut)
                .expect("a chain");
            let mut entry = toml::Table::new();
            entry.insert("abi".into(), "no-such-abi.json".into());
            chain.insert(
                "events".into(),
                toml::Value::Array(vec![toml::Value::Table(entry)]),
            );
            let events = chain
                .get_mut("events")
                .and_then(toml::Value::as_array_mut)
                .and_then(|a| a.first_mut())
                .and_then(toml::Value::as_table_mut)
                .expect("an entry");
            (events, &leaf["events[].".len()..])
        }
        Some(("chains[]", leaf)) => {
            let chain = root
                .get_mut("chains")
                .and_then(toml::Value::as_array_mut)
                .and_then(|a| a.first_mut())
                .and_then(toml::Value::as_table_mut)
                .expect("a chain");
            (chain, leaf)
        }
        Some((section, leaf)) => {
            let table = root
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a section");
            (table, leaf)
        }
    };
    match value {
        Some(v) => table.insert(leaf.to_owned(), v),
        None => table.remove(leaf),
    };
    root.to_string()
}

fn config_debug(text: &str) -> Result<String, String> {
    parse("doc", text, Vec::new())
        .map(|c| format!("{c:?}"))
        .map_err(|e| e.to_string())
}

#[test]
fn every_key_is_documented_and_no_other() {
    let keys = Keys::get().expect("keys");
    let code: BTreeSet<String> = keys.leaves().into_iter().collect();
    let rows = rows();
    let mut doc = BTreeSet::new();
    for row in &rows {
        assert!(doc.insert(row.key.clone()), "{} documented twice", row.key);
    }
    let missing: Vec<_> = code.difference(&doc).collect();
    let unknown: Vec<_> = doc.difference(&code).collect();
    assert!(
        missing.is_empty(),
        "keys missing from docs/configuration.md: {missing:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/configuration.md names keys the service does not accept: {unknown:?}"
    );
}

#[test]
fn units_follow_the_names() {
    for row in rows() {
        let want = if row.key.ends_with("_kbytes") {
            Some("KiB")
        } else if row.key.ends_with("_bytes") {
            Some("bytes")
        } else if row.key.ends_with("_ms") {
            Some("ms")
        } else {
            None
        };
        if let Some(want) = want {
            assert_eq!(row.unit, want, "unit of {}", row.key);
        }
    }
}

#[test]
fn documented_defaults_are_the_real_ones() {
    let mut checked = 0;
    for row in rows() {
        let baseline = config_debug(minimal(&row.key)).expect("the minimal config is valid");
        if row.default.starts_with("required") {
            let without = config_debug(&with(&row.key, None));
            assert!(
                without.is_err(),
                "{} is documented as required, but a config without it is valid",
                row.key
            );
            continue;
        }
        if row.default == "none" || DESCRIBED.contains(&row.key.as_str()) {
            continue;
        }
        let literal = row
            .default
            .strip_prefix('`')
            .and_then(|d| d.strip_suffix('`'))
            .unwrap_or_else(|| panic!("{}: default {:?} is not a `value`", row.key, row.default));
        let value: toml::Table = format!("v = {literal}")
            .parse()
            .unwrap_or_else(|e| panic!("{}: default {literal} is not TOML: {e}", row.key));
        let explicit = config_debug(&with(&row.key, value.get("v").cloned()))
            .unwrap_or_else(|e| panic!("{} = {literal} is refused: {e}", row.key));
        assert_eq!(
            explicit, baseline,
            "{}: the documented default {literal} is not the default",
            row.key
        );
        checked += 1;
    }
    assert!(checked >= 40, "only {checked} defaults checked");
}

#[test]
fn the_readme_configuration_is_valid() {
    let readme = include_str!("../../../README.md");
    let block = readme
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a TOML block in the README");
    let env = [
        (
            "INGESTOR_CHAINS__ETHEREUM__URLS",
            r#"["wss://eth-mainnet.g.alchemy.com/v2/KEY", "https://mainnet.infura.io/v3/KEY"]"#,
        ),
        ("INGESTOR_KAFKA__SASL_PASSWORD", "secret"),
        ("INGESTOR_SCHEMA_REGISTRY__PASSWORD", "secret"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let config = parse("README.md", block, env).expect("the README's configuration is valid");
    assert_eq!(config.chains[0].endpoints().len(), 2);
    assert!(config.kafka.security_protocol.sasl() && config.kafka.security_protocol.tls());
    assert!(config.schema_registry.is_some());
}
