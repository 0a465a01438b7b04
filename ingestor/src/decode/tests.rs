//! Loading ABIs, naming and routing; the values themselves are checked against eth-abi
//! and fastavro in `tests/decoded_abi.rs`.

use std::path::Path;

use serde_json::json;

use super::*;

const ERC20: &str = r#"[
  {"type":"event","name":"Transfer","anonymous":false,"inputs":[
    {"name":"from","type":"address","indexed":true},
    {"name":"to","type":"address","indexed":true},
    {"name":"value","type":"uint256","indexed":false}]},
  {"type":"event","name":"Approval","anonymous":false,"inputs":[
    {"name":"owner","type":"address","indexed":true},
    {"name":"spender","type":"address","indexed":true},
    {"name":"value","type":"uint256","indexed":false}]},
  {"type":"function","name":"transfer","inputs":[],"outputs":[],"stateMutability":"nonpayable"}
]"#;

const ERC721: &str = r#"{"abi":[
  {"type":"event","name":"Transfer","anonymous":false,"inputs":[
    {"name":"from","type":"address","indexed":true},
    {"name":"to","type":"address","indexed":true},
    {"name":"tokenId","type":"uint256","indexed":true}]}
]}"#;

fn config(dir: &Path, entries: &str) -> Result<crate::config::Config, String> {
    let text = format!(
        "[kafka]\nbrokers = \"127.0.0.1:9092\"\n[[chains]]\nname = \"c\"\nchain_id = 5\nurls = [\"ws://127.0.0.1:1\"]\n{entries}"
    );
    let path = dir.join("ingestor.toml");
    std::fs::write(&path, &text).expect("write");
    crate::config::load_with_env(&path, Vec::new()).map_err(|e| e.to_string())
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    dir
}

fn log(topics: Vec<B256>, data: Vec<u8>) -> Log {
    Log {
        block_number: 9,
        block_hash: B256::new([1; 32]),
        transaction_hash: B256::new([2; 32]),
        transaction_index: 0,
        log_index: 4,
        address: Address::new([0xaa; 20]),
        topics,
        data,
    }
}

fn word(n: u8) -> B256 {
    let mut w = [0u8; 32];
    w[31] = n;
    B256::new(w)
}

#[test]
fn every_event_by_default_with_default_topics_relative_to_the_config() {
    let dir = dir_with(&[("erc20.json", ERC20)]);
    let c = config(dir.path(), "[[chains.events]]\nabi = \"erc20.json\"\n").expect("valid");
    let events = c.chains[0].catalog.events();
    let topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
    assert_eq!(topics, ["evm.events.5.Transfer", "evm.events.5.Approval"]);
    assert_eq!(events[0].signature, "Transfer(address,address,uint256)");
    assert_eq!(
        events[0].selector.to_string(),
        "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
    );
    let schema: serde_json::Value = serde_json::from_str(&events[0].schema_json).expect("json");
    assert_eq!(schema["namespace"], "ethhook.events");
    assert_eq!(schema["name"], "Transfer");
    let names: Vec<&str> = schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "chain_id",
            "block_number",
            "block_hash",
            "block_timestamp",
            "transaction_hash",
            "transaction_index",
            "log_index",
            "address",
            "from",
            "to",
            "value"
        ]
    );
    assert_eq!(
        schema["fields"][10]["type"],
        json!({"type": "bytes", "logicalType": "decimal", "precision": 78, "scale": 0})
    );
    apache_avro::Schema::parse_str(&events[0].schema_json).expect("apache-avro parses it");
}

#[test]
fn erc20_and_erc721_transfer_need_their_own_topics() {
    let dir = dir_with(&[("erc20.json", ERC20), ("erc721.json", ERC721)]);
    let both = "[[chains.events]]\nabi = \"erc20.json\"\nnames = [\"Transfer\"]\n[[chains.events]]\nabi = \"erc721.json\"\n";
    let err = config(dir.path(), both).expect_err("conflict");
    assert!(
        err.contains("chains[0].events[0] (erc20.json) and chains[0].events[1] (erc721.json)")
            && err.contains("evm.events.5.Transfer")
            && err.contains("own `topic`"),
        "{err}"
    );
    let fixed = format!("{both}topic = \"evm.events.5.NftTransfer\"\n");
    let c = config(dir.path(), &fixed).expect("valid with a topic");
    let catalog = &c.chains[0].catalog;
    let erc20 = log(
        vec![catalog.events()[0].selector, word(1), word(2)],
        word(7).0.to_vec(),
    );
    let erc721 = log(
        vec![catalog.events()[0].selector, word(1), word(2), word(7)],
        vec![],
    );
    match catalog.route(5, 1, &erc20) {
        Routed::Decoded(d) => assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), [0]),
        other => panic!("{other:?}"),
    }
    match catalog.route(5, 1, &erc721) {
        Routed::Decoded(d) => assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), [1]),
        other => panic!("{other:?}"),
    }
    // The same ABI twice, the same record: one topic, the contracts of both.
    let twice = "[[chains.events]]\nabi = \"erc20.json\"\nnames = [\"Approval\"]\naddresses = [\"0x00000000000000000000000000000000000000aa\"]\n[[chains.events]]\nabi = \"erc20.json\"\nnames = [\"Approval\"]\naddresses = [\"0x00000000000000000000000000000000000000bb\"]\n";
    let c = config(dir.path(), twice).expect("same record");
    assert_eq!(c.chains[0].catalog.events().len(), 1);
    assert_eq!(
        c.chains[0].catalog.events()[0]
            .addresses
            .as_ref()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn logs_that_do_not_decode_are_failures_and_others_unrelated() {
    let dir = dir_with(&[("erc20.json", ERC20)]);
    let c = config(
        dir.path(),
        "[[chains.events]]\nabi = \"erc20.json\"\naddresses = [\"0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"]\n",
    )
    .expect("valid");
    let catalog = &c.chains[0].catalog;
    let sel = catalog.events()[0].selector;
    let fail = |l: Log| match catalog.route(5, 1, &l) {
        Routed::Failed { event, error } => (event, error.reason()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        fail(log(vec![sel, word(1), word(2), word(3)], vec![])),
        (0, "topic_count")
    );
    assert_eq!(
        fail(log(vec![sel, word(1), word(2)], vec![1; 31])),
        (0, "data")
    );
    assert_eq!(
        fail(log(vec![sel, word(1), word(2)], vec![1; 64])),
        (0, "value"),
        "trailing bytes"
    );
    let mut dirty = word(1);
    dirty.0[0] = 1; // an address with high bytes set
    assert_eq!(
        fail(log(vec![sel, dirty, word(2)], word(7).0.to_vec())),
        (0, "value")
    );
    let mut other = log(vec![sel, word(1), word(2)], word(7).0.to_vec());
    other.address = Address::new([0xbb; 20]);
    assert_eq!(
        catalog.route(5, 1, &other),
        Routed::Unrelated,
        "another contract"
    );
    assert_eq!(
        catalog.route(5, 1, &log(vec![word(9)], vec![])),
        Routed::Unrelated
    );
    assert_eq!(catalog.route(5, 1, &log(vec![], vec![])), Routed::Unrelated);
}

#[test]
fn names_avro_refuses_are_mapped() {
    let abi = json!([{"type":"event","name":"Odd$Event","anonymous":false,"inputs":[
        {"name":"address","type":"address","indexed":true},
        {"name":"","type":"uint8","indexed":false},
        {"name":"a$b","type":"bool","indexed":false},
        {"name":"a_b","type":"bool","indexed":false},
        {"name":"s","type":"tuple","indexed":false,"components":[
            {"name":"x","type":"uint64"}]},
        {"name":"t","type":"tuple[]","indexed":false,"components":[
            {"name":"x","type":"uint64"}]},
        {"name":"tag","type":"string","indexed":true}]}]);
    let spec = abi::spec_from_json(1, &abi[0], "t").expect("spec");
    let names: Vec<&str> = spec.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["address_", "arg1", "a_b", "a_b_", "s", "t"]
            .into_iter()
            .chain(["tag"])
            .collect::<Vec<_>>()
    );
    assert_eq!(spec.record, "Odd_Event");
    assert_eq!(spec.topic, "evm.events.1.Odd_Event");
    assert_eq!(spec.params[6].kind, shape::Kind::TopicHash);
    assert_eq!(
        spec.params[1].kind,
        shape::Kind::Long {
            signed: false,
            bits: 8
        }
    );
    // `s` and `t` are the same unnamed struct shape but different fields: both defined once.
    let schema = apache_avro::Schema::parse_str(&spec.schema_json).expect("valid Avro");
    let apache_avro::Schema::Record(r) = schema else {
        panic!("record")
    };
    assert_eq!(r.fields.len(), 15);
}

#[test]
fn abi_errors_are_one_line_naming_the_file() {
    let dir = dir_with(&[
        ("erc20.json", ERC20),
        ("bad.json", "{not json"),
        ("obj.json", "{\"contractName\": \"X\"}"),
        (
            "type.json",
            r#"[{"type":"event","name":"E","anonymous":false,"inputs":[{"name":"x","type":"uint257","indexed":false}]}]"#,
        ),
        (
            "over.json",
            r#"[{"type":"event","name":"E","anonymous":false,"inputs":[]},{"type":"event","name":"E","anonymous":false,"inputs":[{"name":"x","type":"bool","indexed":false}]}]"#,
        ),
    ]);
    let cases = [
        (
            "abi = \"missing.json\"",
            "ABI missing.json (chains[0].events[0]): cannot read",
        ),
        (
            "abi = \"bad.json\"",
            "ABI bad.json (chains[0].events[0]): not JSON",
        ),
        (
            "abi = \"obj.json\"",
            "neither a JSON array nor an artifact with an `abi` array",
        ),
        (
            "abi = \"type.json\"",
            "ABI type.json (chains[0].events[0]): event `E`",
        ),
        (
            "abi = \"erc20.json\"\nnames = [\"Tranfser\"]",
            "no event `Tranfser` in this ABI (it has: Transfer, Approval)",
        ),
        (
            "abi = \"erc20.json\"\naddresses = [\"0x1234\"]",
            "address `0x1234` is not 20 bytes",
        ),
        (
            "abi = \"over.json\"",
            "event `E` is overloaded (E(), E(bool))",
        ),
        ("abi = \"erc20.json\"\ntopic = \"t\"", "selects 2 events"),
        (
            "abi = \"erc20.json\"\nnames = [\"Transfer\"]\ntopic = \"evm.logs.5\"",
            "is a chain's or the checkpoint topic",
        ),
    ];
    for (entry, want) in cases {
        let err = config(dir.path(), &format!("[[chains.events]]\n{entry}\n")).expect_err(entry);
        assert!(err.contains(want), "{entry}: {err}");
        assert!(!err.contains('\n'), "one line: {err}");
    }
    let picked = config(
        dir.path(),
        "[[chains.events]]\nabi = \"over.json\"\nnames = [\"E(bool)\"]\ntopic = \"e.bool\"\n",
    )
    .expect("an overload picked by signature");
    assert_eq!(picked.chains[0].catalog.events()[0].signature, "E(bool)");
}

/// The one-word fast path writes what the general path writes, and refuses what it refuses,
/// on words of every kind: canonical values, their extremes, and dirty padding.
#[test]
fn the_one_word_path_agrees_with_the_general_path() {
    use rand::{Rng, SeedableRng};
    const ABI: &str = r#"[{"type":"event","name":"Words","anonymous":false,"inputs":[
      {"name":"a","type":"address","indexed":true},
      {"name":"s","type":"string","indexed":true},
      {"name":"i","type":"int256","indexed":true},
      {"name":"b","type":"bool","indexed":false},
      {"name":"u8","type":"uint8","indexed":false},
      {"name":"i16","type":"int16","indexed":false},
      {"name":"u56","type":"uint56","indexed":false},
      {"name":"i64","type":"int64","indexed":false},
      {"name":"u64","type":"uint64","indexed":false},
      {"name":"i72","type":"int72","indexed":false},
      {"name":"u","type":"uint256","indexed":false},
      {"name":"b4","type":"bytes4","indexed":false},
      {"name":"f","type":"function","indexed":false}]}]"#;
    let dir = dir_with(&[("words.json", ABI)]);
    let c = config(dir.path(), "[[chains.events]]\nabi = \"words.json\"\n").expect("valid");
    let fast = c.chains[0].catalog.events()[0].clone();
    assert!(fast.one_word);
    let general = EventSpec {
        one_word: false,
        ..fast.clone()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // A word of `bits` significant bits, sign-extended or not, sometimes made dirty.
    let value = |bits: usize, signed: bool, rng: &mut rand::rngs::StdRng| {
        let mut w = [0u8; 32];
        rng.fill(&mut w[32 - bits / 8..]);
        match rng.random_range(0..6) {
            0 => w = [0; 32],
            1 => w[32 - bits / 8..].fill(0xff),
            _ => {}
        }
        if signed && w[32 - bits / 8] & 0x80 != 0 {
            w[..32 - bits / 8].fill(0xff);
        }
        if rng.random_range(0..8) == 0 {
            let at = rng.random_range(0..32);
            w[at] ^= 1 << rng.random_range(0..8);
        }
        w
    };
    let (mut ok, mut refused) = (0, 0);
    for round in 0..4000 {
        let bytes_left = |n: usize, rng: &mut rand::rngs::StdRng| {
            let mut w = [0u8; 32];
            rng.fill(&mut w[..n]);
            if rng.random_range(0..8) == 0 {
                w[rng.random_range(0..32)] |= 1;
            }
            w
        };
        let topics = vec![
            fast.selector,
            B256::new(value(160, false, &mut rng)),
            B256::new(rng.random()),
            B256::new(value(256, true, &mut rng)),
        ];
        let mut data = Vec::new();
        let mut b = [0u8; 32];
        b[31] = rng.random_range(0..3);
        data.extend_from_slice(&b);
        for (bits, signed) in [
            (8, false),
            (16, true),
            (56, false),
            (64, true),
            (64, false),
            (72, true),
            (256, false),
        ] {
            data.extend_from_slice(&value(bits, signed, &mut rng));
        }
        data.extend_from_slice(&bytes_left(4, &mut rng));
        data.extend_from_slice(&bytes_left(24, &mut rng));
        if round % 97 == 0 {
            data.push(0);
        }
        let l = log(topics, data);
        let fields = b"fields";
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (ra, rb) = (
            write::body(&mut a, &fast, fields, &l),
            write::body(&mut b, &general, fields, &l),
        );
        assert_eq!(ra, rb, "round {round}");
        if ra.is_ok() {
            assert_eq!(a, b, "round {round}");
            ok += 1;
        } else {
            refused += 1;
        }
    }
    assert!(
        ok > 100 && refused > 100,
        "both outcomes met: {ok} decoded, {refused} refused"
    );
}
