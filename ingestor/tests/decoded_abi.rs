//! Decoded events against an independent implementation: eth-abi (Python) encodes event
//! logs of every kind of parameter (`2**256-1`, negative `int256`, nested tuples, fixed and
//! dynamic arrays, empty `bytes` and `string`, indexed dynamic parameters), the service's
//! decoder writes their records, and fastavro reads them back: every field must be the value
//! eth-abi encoded. `ETHABI_PYTHON` (set by `scripts/deps.sh env`) is the venv's interpreter.

use std::process::Command;

use devstack::traffic::ERC20_ABI;
use ingestor::decode::{Catalog, Routed, abi};
use ingestor::encode::{Framing, header};
use ingestor::rpc::hex::{Address, B256};
use ingestor::rpc::types::Log;
use serde_json::{Value, json};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/eth_abi_ref.py");

fn python(args: &[&str]) -> String {
    let python = devstack::tool("ETHABI_PYTHON").expect("ETHABI_PYTHON");
    let out = Command::new(&python)
        .arg(SCRIPT)
        .args(args)
        .output()
        .expect("run eth_abi_ref.py");
    assert!(
        out.status.success(),
        "eth_abi_ref.py {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn hex_bytes(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).expect("hex")
}

#[test]
fn eth_abi_encodings_decode_to_the_same_values_through_fastavro() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases_path = dir.path().join("cases.json");
    let decoded_path = dir.path().join("decoded.json");
    python(&["cases", cases_path.to_str().expect("path")]);
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&cases_path).expect("cases")).expect("json");
    assert!(cases.len() >= 6);
    let mut decoded = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let spec = abi::spec_from_json(31337, &case["event"], "test").expect("spec");
        let mut topics = vec![spec.selector];
        for t in case["topics"].as_array().expect("topics") {
            topics.push(B256::parse("topic", t.as_str().expect("str")).expect("topic"));
        }
        let log = Log {
            block_number: 1_000_000 + n as u64,
            block_hash: B256::new([0x11; 32]),
            transaction_hash: B256::new([0x22; 32]),
            transaction_index: 3,
            log_index: n as u64,
            address: Address::new([0x5a; 20]),
            topics,
            data: hex_bytes(case["data"].as_str().expect("data")),
        };
        let schema = spec.schema_json.clone();
        let catalog = Catalog::new(vec![spec]);
        let body = match catalog.route(31337, 1_700_000_000, &log) {
            Routed::Decoded(mut v) if v.len() == 1 => v.remove(0).1,
            other => panic!("case {n}: {other:?}"),
        };
        let mut value = header(&schema, Framing::SingleObject).expect("header");
        value.extend_from_slice(&body);
        decoded.push(json!({
            "schema": schema,
            "value": hex::encode(&value),
            "log": {
                "chain_id": 31337,
                "block_number": log.block_number,
                "block_hash": log.block_hash.to_string(),
                "block_timestamp": 1_700_000_000_000u64,
                "transaction_hash": log.transaction_hash.to_string(),
                "transaction_index": 3,
                "log_index": log.log_index,
                "address": log.address.to_string(),
            },
        }));
    }
    std::fs::write(&decoded_path, Value::Array(decoded).to_string()).expect("write");
    let out = python(&[
        "check",
        cases_path.to_str().expect("path"),
        decoded_path.to_str().expect("path"),
    ]);
    assert_eq!(out.trim(), format!("ok {}", cases.len()));
}

fn run_bin(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ingestor"))
        .args(args)
        .output()
        .expect("run ingestor");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn with_events(events: &str) -> String {
    format!(
        "[kafka]\nbrokers = \"127.0.0.1:1\"\n\n[[chains]]\nname = \"ethereum\"\nchain_id = 1\nurls = [\"ws://127.0.0.1:2\"]\n{events}"
    )
}

#[test]
fn schemas_and_check_config_list_the_events_and_bad_abis_are_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("abis")).expect("mkdir");
    std::fs::write(dir.path().join("abis/erc20.json"), ERC20_ABI).expect("write");
    std::fs::write(
        dir.path().join("abis/erc721.json"),
        r#"{"contractName":"Nft","abi":[{"type":"event","name":"Transfer","anonymous":false,"inputs":[
            {"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},
            {"name":"tokenId","type":"uint256","indexed":true}]}]}"#,
    )
    .expect("write");
    std::fs::write(dir.path().join("abis/broken.json"), "[{").expect("write");
    std::fs::write(
        dir.path().join("abis/types.json"),
        r#"[{"type":"event","name":"Odd","anonymous":false,"inputs":[{"name":"x","type":"fixed128x18","indexed":false}]}]"#,
    )
    .expect("write");
    let path = dir.path().join("ingestor.toml");
    let path_s = path.to_str().expect("utf-8");
    std::fs::write(
        &path,
        with_events("[[chains.events]]\nabi = \"abis/erc20.json\"\n"),
    )
    .expect("write");
    let (code, stdout, stderr) = run_bin(&["check-config", "--config", path_s]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("ethereum: Transfer(address,address,uint256) -> evm.events.1.Transfer")
            && stdout
                .contains("ethereum: Approval(address,address,uint256) -> evm.events.1.Approval"),
        "{stdout}"
    );
    let (code, stdout, stderr) = run_bin(&["schemas", "--config", path_s]);
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["topic"], "evm.events.1.Transfer");
    assert_eq!(lines[0]["schema"]["namespace"], "ethhook.events");
    assert_eq!(lines[1]["schema"]["name"], "Approval");

    let cases = [
        (
            "abi = \"abis/none.json\"",
            "ABI abis/none.json (chains[0].events[0]): cannot read:",
        ),
        (
            "abi = \"abis/broken.json\"",
            "ABI abis/broken.json (chains[0].events[0]): not JSON:",
        ),
        (
            "abi = \"abis/types.json\"",
            "ABI abis/types.json (chains[0].events[0]): event `Odd` parameter `x`: unknown type `fixed128x18`",
        ),
        (
            "abi = \"abis/erc20.json\"\nnames = [\"Mint\"]",
            "ABI abis/erc20.json (chains[0].events[0]): no event `Mint` in this ABI (it has: Transfer, Approval)",
        ),
        (
            "abi = \"abis/erc20.json\"\naddresses = [\"0xa0b8\"]",
            "ABI abis/erc20.json (chains[0].events[0]): address `0xa0b8` is not 20 bytes of 0x-prefixed hex",
        ),
        (
            "abi = \"abis/erc20.json\"\n[[chains.events]]\nabi = \"abis/erc721.json\"",
            "chains[0].events[0] (abis/erc20.json) and chains[0].events[1] (abis/erc721.json) both publish to topic `evm.events.1.Transfer` with different records",
        ),
        ("abii = \"abis/erc20.json\"", "unknown field `abii`"),
    ];
    for (entry, want) in cases {
        std::fs::write(&path, with_events(&format!("[[chains.events]]\n{entry}\n")))
            .expect("write");
        for command in ["check-config", "run", "schemas"] {
            let (code, _, stderr) = run_bin(&[command, "--config", path_s]);
            assert_eq!(code, Some(1), "{command} {want}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(
                stderr.starts_with("error: config ") && stderr.contains(want),
                "{command}: want {want:?} in {stderr}"
            );
        }
    }
}
