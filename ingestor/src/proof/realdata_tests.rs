//! The proofs on real blocks of real chains (`/work/shared/realdata`, or the folder
//! `ETHHOOK_REALDATA_DIR` names): each file is one block with all its receipts, as the
//! chain's node answered, read by the service's own parsers.

use std::path::PathBuf;

use serde_json::Value;

use crate::follower::BlockLogs;
use crate::rpc::receipt::Receipt;
use crate::rpc::types::Header;

use super::*;

fn dir() -> PathBuf {
    std::env::var_os("ETHHOOK_REALDATA_DIR").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/realdata"
            ))
        },
        PathBuf::from,
    )
}

/// The file's JSON (`{"chain", "chain_id", "block", "receipts"}`).
fn file(name: &str) -> Value {
    let path = dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "real-data file {} cannot be read ({e}): the real blocks are missing; set \
             ETHHOOK_REALDATA_DIR to their folder",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("real-data file is JSON")
}

/// The block's header and receipts, read by the service's parsers.
fn parse(v: &Value) -> (Header, Vec<Receipt>) {
    let header = Header::parse(&v["block"].to_string()).expect("header parses");
    let receipts = Receipt::parse_list(&v["receipts"].to_string()).expect("receipts parse");
    (header, receipts)
}

/// Which proofs hold on each file: (file, header hash, receipts root).
const EXPECTED: [(&str, bool, bool); 10] = [
    ("ethereum-mainnet-483920", true, true),
    ("ethereum-mainnet-1000000", true, true),
    ("ethereum-mainnet-4370006", true, true),
    ("ethereum-mainnet-15573637", true, true),
    ("ethereum-mainnet-19433903", true, true),
    // Deposit receipt (0x7e) with its nonce and version.
    ("optimism-mainnet-154497277", true, true),
    // ArbOS internal transaction (0x6a): a receipt shaped like Ethereum's typed ones.
    ("arbitrum-one-150000000", true, true),
    ("polygon-pos-50000000", true, true),
    // Ethermint: the block hash is the Tendermint header's, and `receiptsRoot` is the
    // empty trie's root whatever the receipts.
    ("cronos-mainnet-6542", false, false),
    // Tempo: its header hash covers fields of its own (uncovered); its 0x76 receipts are
    // shaped like Ethereum's typed ones.
    ("tempo-mainnet-17708868", false, true),
];

#[test]
fn which_proofs_hold_on_each_chain() {
    for (name, hash, root) in EXPECTED {
        let (header, receipts) = parse(&file(name));
        let h = check_header_hash(&header);
        let r = check_receipts_root(&header, &receipts);
        assert_eq!(h == Verdict::Holds, hash, "{name}: header hash: {h:?}");
        assert_eq!(r == Verdict::Holds, root, "{name}: receipts root: {r:?}");
        // Today's checks hold everywhere.
        BlockLogs::from_receipts(header, receipts)
            .unwrap_or_else(|e| panic!("{name}: receipts checks: {e}"));
    }
    let (tempo, _) = parse(&file("tempo-mainnet-17708868"));
    assert!(
        matches!(
            check_header_hash(&tempo),
            Verdict::Uncovered(Uncovered::HeaderField(_))
        ),
        "Tempo's header is named uncovered, not a mismatch"
    );
}

/// Proves the block until `policy` accepts it: the refusals on the way (`auto` deciding).
fn prove_until_ok(name: &str, policy: &Policy) -> Vec<&'static str> {
    let (header, receipts) = parse(&file(name));
    let mut refused = Vec::new();
    loop {
        match BlockLogs::prove(header.clone(), Some(receipts.clone()), policy) {
            Ok(_) => return refused,
            Err(Refusal::Inconsistent(i)) if refused.len() < 10 => refused.push(i.check),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn auto_picks_the_strongest_proof_that_holds() {
    for (name, hash, root) in EXPECTED {
        let policy = Policy::new(name, Level::Auto);
        let refused = prove_until_ok(name, &policy);
        let want = match (hash, root) {
            (true, true) => "receipts_root",
            (true, false) => "receipts+header_hash",
            (false, true) => "receipts+receipts_root",
            (false, false) => "receipts",
        };
        assert_eq!(policy.label(), want, "{name}");
        // A mismatch is refused until AUTO_MISMATCHES in a row; an uncovered one is not.
        let expected_refusals = match name {
            "cronos-mainnet-6542" => 2 * (AUTO_MISMATCHES as usize - 1),
            _ => 0,
        };
        assert_eq!(refused.len(), expected_refusals, "{name}: {refused:?}");
    }
}

/// `v` with the last log of the last receipt that has logs removed (the block's last log:
/// the log indexes still run without a gap).
fn without_last_log(mut v: Value) -> Value {
    let receipts = v["receipts"].as_array_mut().expect("receipts");
    let r = receipts
        .iter_mut()
        .rev()
        .find(|r| !r["logs"].as_array().expect("logs").is_empty())
        .expect("a receipt with logs");
    r["logs"].as_array_mut().expect("logs").pop();
    v
}

/// `v` with one byte of the first log's data (with data) flipped.
fn with_data_flipped(mut v: Value) -> Value {
    let log = v["receipts"]
        .as_array_mut()
        .expect("receipts")
        .iter_mut()
        .flat_map(|r| r["logs"].as_array_mut().expect("logs").iter_mut())
        .find(|l| l["data"].as_str().is_some_and(|d| d.len() > 2))
        .expect("a log with data");
    let data = log["data"].as_str().expect("data").to_owned();
    let flipped = if data.ends_with('0') { '1' } else { '0' };
    log["data"] = Value::String(format!("{}{flipped}", &data[..data.len() - 1]));
    v
}

/// `v` with the header's timestamp one second later.
fn with_timestamp_moved(mut v: Value) -> Value {
    let ts = v["block"]["timestamp"].as_str().expect("timestamp");
    let n = u64::from_str_radix(&ts[2..], 16).expect("quantity") + 1;
    v["block"]["timestamp"] = Value::String(format!("{n:#x}"));
    v
}

/// The check that refuses `v` under `policy`, or `None` when it is accepted.
fn refused_by(v: &Value, policy: &Policy) -> Option<&'static str> {
    let (header, receipts) = parse(v);
    match BlockLogs::prove(header, Some(receipts), policy) {
        Ok(_) => None,
        Err(Refusal::Inconsistent(i)) => Some(i.check),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn tampered_real_blocks_are_refused_by_the_right_check() {
    for (name, hash, root) in EXPECTED {
        let v = file(name);
        let policy = Policy::new(name, Level::Auto);
        prove_until_ok(name, &policy);
        let receipts_only = Policy::new(name, Level::Receipts);

        // The block's last log gone: the bloom tells when no other log sets its bits, else
        // only the receipts root does.
        let cut = without_last_log(v.clone());
        let bloom_tells = refused_by(&cut, &receipts_only) == Some("bloom");
        let want = match (bloom_tells, root) {
            (true, _) => Some("bloom"),
            (false, true) => Some("receipts_root"),
            (false, false) => None,
        };
        assert_eq!(refused_by(&cut, &policy), want, "{name}: last log removed");

        // One byte of a log's data: no bloom covers it, the receipts root does.
        let flipped = with_data_flipped(v.clone());
        assert_eq!(
            refused_by(&flipped, &receipts_only),
            None,
            "{name}: the old hole"
        );
        let want = root.then_some("receipts_root");
        assert_eq!(
            refused_by(&flipped, &policy),
            want,
            "{name}: data byte flipped"
        );

        // The header's timestamp: only its hash covers it.
        let moved = with_timestamp_moved(v);
        let want = hash.then_some("header_hash");
        assert_eq!(
            refused_by(&moved, &policy),
            want,
            "{name}: timestamp changed"
        );
    }
}

#[test]
fn an_explicit_receipts_root_stops_on_what_it_cannot_encode() {
    let policy = Policy::new("tempo", Level::ReceiptsRoot);
    let (header, receipts) = parse(&file("tempo-mainnet-17708868"));
    let err = BlockLogs::prove(header, Some(receipts), &policy).expect_err("uncovered");
    assert!(
        matches!(
            err,
            Refusal::Uncovered {
                check: "header_hash",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("timestampMillisPart"), "{err}");

    // An OP block read by a proof that does not know deposits would be refused the same
    // way: here, a type no chain uses.
    let mut v = file("optimism-mainnet-154497277");
    v["receipts"][0]["type"] = Value::String("0x55".into());
    let (header, receipts) = parse(&v);
    let policy = Policy::new("op", Level::ReceiptsRoot);
    let err = BlockLogs::prove(header, Some(receipts), &policy).expect_err("uncovered");
    assert!(err.to_string().contains("type 0x55"), "{err}");
    assert!(matches!(
        err,
        Refusal::Uncovered {
            check: "receipts_root",
            ..
        }
    ));
}

#[test]
fn a_polygon_state_sync_receipt_is_outside_the_receipts_root() {
    let mut v = file("polygon-pos-50000000");
    let (header, _) = parse(&v);
    // Bor lists it after the block's receipts, with the hash made from the block.
    let receipts = v["receipts"].as_array_mut().expect("receipts");
    let mut sync = receipts.last().expect("a receipt").clone();
    let hash = bor_state_sync_hash(header.number, &header.hash);
    sync["transactionHash"] = Value::String(format!("{hash}"));
    sync["transactionIndex"] = Value::String(format!("{:#x}", receipts.len()));
    sync["logs"] = Value::Array(Vec::new());
    sync["logsBloom"] = Value::String(format!("0x{}", "00".repeat(256)));
    receipts.push(sync);
    let (header, with_sync) = parse(&v);
    assert_eq!(check_receipts_root(&header, &with_sync), Verdict::Holds);
    // Any other extra receipt is in the root.
    let receipts = v["receipts"].as_array_mut().expect("receipts");
    let last = receipts.len() - 1;
    receipts[last]["transactionHash"] = Value::String(format!("0x{}", "ab".repeat(32)));
    let (header, with_other) = parse(&v);
    assert!(matches!(
        check_receipts_root(&header, &with_other),
        Verdict::Mismatch(_)
    ));
}

#[test]
fn auto_never_lowers_a_proof_once_a_block_held() {
    let name = "ethereum-mainnet-19433903";
    let policy = Policy::new(name, Level::Auto);
    assert!(prove_until_ok(name, &policy).is_empty());
    assert_eq!(policy.label(), "receipts_root");
    // Mismatches after that are lying answers, however many: refused, never a downgrade.
    let moved = with_timestamp_moved(file(name));
    for _ in 0..2 * AUTO_MISMATCHES {
        assert_eq!(refused_by(&moved, &policy), Some("header_hash"));
    }
    // A block it cannot encode is refused too (retried, the chain stalls visibly), not
    // followed with less proof; under `auto` it does not stop the chain.
    let mut unknown = file(name);
    unknown["receipts"][0]["type"] = Value::String("0x55".into());
    assert_eq!(refused_by(&unknown, &policy), Some("receipts_root"));
    assert_eq!(policy.label(), "receipts_root");
}
