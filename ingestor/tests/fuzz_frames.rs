//! Property-based fuzzing of everything parsed from the node: JSON-RPC frames, headers and
//! logs. Inputs are random text, random JSON shaped like our answers, and byte-level
//! mutations of real anvil answers. The property: a typed error or a value, never a panic.
//! Each test prints how many inputs it tried (`cargo test --test fuzz_frames -- --nocapture`);
//! `ETHHOOK_FUZZ_CASES` raises the count per strategy.

use std::sync::atomic::{AtomicU64, Ordering};

use ingestor::rpc::frame::{Frame, parse_frame};
use ingestor::rpc::types::{Header, Log};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("ETHHOOK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000)
}

/// Parses `text` the way the client does: frame, then a header or a log list from the result.
fn parse_all(text: &str) {
    if let Ok(Frame::Response { result: Ok(v), .. } | Frame::Notification { result: v, .. }) =
        parse_frame(text)
    {
        let _ = Header::parse(v.get());
        let _ = Log::parse_list(v.get());
        let _ = Log::parse(v.get());
    }
}

fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value))
where
    S::Value: std::fmt::Debug,
{
    let tried = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |v| {
            tried.fetch_add(1, Ordering::Relaxed);
            test(v);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!(
        "{name}: {} inputs tried, no panic",
        tried.load(Ordering::Relaxed)
    );
}

fn hexish() -> impl Strategy<Value = String> {
    prop_oneof![
        "0x[0-9a-f]{0,70}",
        "0x[0-9a-fA-FxX]{0,20}",
        "[0-9]{0,20}",
        Just("0x".to_owned()),
        ".{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        hexish().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("number".to_owned()),
                    Just("hash".to_owned()),
                    Just("parentHash".to_owned()),
                    Just("logsBloom".to_owned()),
                    Just("timestamp".to_owned()),
                    Just("blockHash".to_owned()),
                    Just("blockNumber".to_owned()),
                    Just("transactionHash".to_owned()),
                    Just("transactionIndex".to_owned()),
                    Just("logIndex".to_owned()),
                    Just("address".to_owned()),
                    Just("topics".to_owned()),
                    Just("data".to_owned()),
                    Just("removed".to_owned()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..12
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A real `eth_getBlockByNumber` and `eth_getLogs` answer, as anvil sends them.
const HEADER_FRAME: &str = r#"{"jsonrpc":"2.0","id":7,"result":{"number":"0x1b","hash":"0x2f0b9d3e1c4a5b6c7d8e9f00112233445566778899aabbccddeeff0011223344","parentHash":"0x1f0b9d3e1c4a5b6c7d8e9f00112233445566778899aabbccddeeff0011223344","timestamp":"0x6553f100","gasUsed":"0x0","logsBloom":"0x00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000","transactions":[]}}"#;
const LOGS_FRAME: &str = r#"{"jsonrpc":"2.0","id":8,"result":[{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","topics":["0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"],"data":"0x0000000000000000000000000000000000000000000000000000000000000001","blockHash":"0x2f0b9d3e1c4a5b6c7d8e9f00112233445566778899aabbccddeeff0011223344","blockNumber":"0x1b","transactionHash":"0x3f0b9d3e1c4a5b6c7d8e9f00112233445566778899aabbccddeeff0011223344","transactionIndex":"0x0","logIndex":"0x0","removed":false}]}"#;
const NOTE_FRAME: &str = r#"{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0xabc","result":{"number":"0x1c"}}}"#;

#[test]
fn random_text_never_panics() {
    run("random text", ".{0,300}", |s: String| parse_all(&s));
}

#[test]
fn random_json_shaped_like_answers_never_panics() {
    run(
        "random answers",
        (json_value(), any::<u64>(), any::<bool>()),
        |(v, id, as_note)| {
            let frame = if as_note {
                json!({"jsonrpc": "2.0", "method": "eth_subscription",
                       "params": {"subscription": "0x1", "result": v}})
            } else {
                json!({"jsonrpc": "2.0", "id": id, "result": v})
            };
            parse_all(&frame.to_string());
            parse_all(&v.to_string());
        },
    );
}

#[test]
fn mutated_real_answers_never_panic() {
    let mutation = (
        0usize..3,
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    );
    run("mutated answers", mutation, |(which, edits)| {
        let mut bytes = [HEADER_FRAME, LOGS_FRAME, NOTE_FRAME][which]
            .as_bytes()
            .to_vec();
        for (at, byte, op) in edits {
            let i = at.index(bytes.len().max(1));
            match op {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i.min(bytes.len()), byte),
                _ if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => {}
            }
        }
        parse_all(&String::from_utf8_lossy(&bytes));
    });
}

#[test]
fn the_real_answers_parse() {
    let Ok(Frame::Response { result: Ok(h), .. }) = parse_frame(HEADER_FRAME) else {
        panic!("header frame");
    };
    assert_eq!(Header::parse(h.get()).expect("header").number, 0x1b);
    let Ok(Frame::Response { result: Ok(l), .. }) = parse_frame(LOGS_FRAME) else {
        panic!("logs frame");
    };
    assert_eq!(Log::parse_list(l.get()).expect("logs").len(), 1);
}
