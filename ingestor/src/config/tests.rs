use super::*;

const GOOD: &str = r#"
[kafka]
brokers = "127.0.0.1:9092"

[[chains]]
name = "ethereum"
chain_id = 1
ws_url = "ws://127.0.0.1:8545"
start_block = 0

[[chains]]
name = "base-sepolia"
chain_id = 84532
ws_url = "wss://node.example/KEY"
"#;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn err(text: &str, vars: &[(&str, &str)]) -> String {
    let e = parse("c.toml", text, env(vars))
        .expect_err("must fail")
        .to_string();
    assert!(!e.contains('\n'), "error must be one line: {e}");
    e
}

#[test]
fn defaults_apply() {
    let c = parse("c.toml", GOOD, env(&[])).expect("valid");
    assert_eq!(c.chains[0].start_block, StartBlock::Number(0));
    assert_eq!(c.chains[1].start_block, StartBlock::Latest);
    assert_eq!(c.chains[0].topic(), "evm.logs.1");
    assert_eq!(c.kafka.topic_partitions, 1);
    assert_eq!(c.shutdown_timeout_ms, 30_000);
}

#[test]
fn environment_overrides_file_values() {
    let c = parse(
        "c.toml",
        GOOD,
        env(&[
            ("INGESTOR_KAFKA__BROKERS", "10.0.0.1:9093"),
            ("INGESTOR_SHUTDOWN_TIMEOUT_MS", "5000"),
            ("INGESTOR_CHAINS__BASE_SEPOLIA__START_BLOCK", "7"),
            ("INGESTOR_CHAINS__ETHEREUM__TOPIC", "eth.logs"),
            ("INGESTOR_KAFKA__LIBRDKAFKA_OPTIONS__LINGER.MS", "10"),
            ("OTHER_VAR", "ignored"),
        ]),
    )
    .expect("valid");
    assert_eq!(c.kafka.brokers, "10.0.0.1:9093");
    assert_eq!(c.shutdown_timeout_ms, 5000);
    assert_eq!(c.chains[1].start_block, StartBlock::Number(7));
    assert_eq!(c.chains[0].topic(), "eth.logs");
    assert_eq!(
        c.kafka
            .librdkafka_options
            .get("linger.ms")
            .map(String::as_str),
        Some("10")
    );
}

#[test]
fn wrong_values_are_one_line_naming_the_key() {
    assert!(err("[kafka\n", &[]).contains("line 1"));
    assert!(
        err(&GOOD.replace("chain_id = 1\n", "chain_id = \"one\"\n"), &[])
            .contains("chains[0].chain_id")
    );
    assert!(
        err(
            &GOOD.replace("start_block = 0", "start_block = \"earliest\""),
            &[]
        )
        .contains("latest")
    );
    assert!(err(&GOOD.replace("brokers", "broker"), &[]).contains("unknown field"));
    assert!(err(&GOOD.replace("ws://", "http://"), &[]).contains("ws_url"));
    assert!(err(&GOOD.replace("chain_id = 84532", "chain_id = 1"), &[]).contains("chain_id"));
    assert!(
        err(GOOD, &[("INGESTOR_CHAINS__POLYGON__WS_URL", "ws://x")])
            .contains("no chain named `polygon`")
    );
    assert!(err(GOOD, &[("INGESTOR_KAFKA__NOPE", "1")]).contains("nope"));
    assert!(
        err(
            GOOD,
            &[("INGESTOR_CHAINS__ETHEREUM__BACKFILL_RANGE_BLOCKS", "0")]
        )
        .contains("backfill_range_blocks")
    );
    assert!(err("chains = []\n[kafka]\nbrokers = \"b:1\"\n", &[]).contains("no [[chains]]"));
}

#[test]
fn producer_queue_bounds() {
    let c = parse("c.toml", GOOD, env(&[])).expect("defaults");
    assert_eq!(
        (c.kafka.queue_max_messages, c.kafka.queue_max_kbytes),
        (100_000, 32_768)
    );
    let e = err(GOOD, &[("INGESTOR_KAFKA__QUEUE_MAX_KBYTES", "1024")]);
    assert!(
        e.contains("`kafka.queue_max_kbytes` must be at least 16384"),
        "{e}"
    );
    let e = err(GOOD, &[("INGESTOR_KAFKA__QUEUE_MAX_MESSAGES", "0")]);
    assert!(
        e.contains("`kafka.queue_max_messages` must be greater than 0"),
        "{e}"
    );
}

#[test]
fn status_interval_defaults_to_ten_seconds_and_refuses_zero() {
    let c = parse("c.toml", GOOD, env(&[])).expect("defaults");
    assert_eq!(c.chains[0].status_interval_ms, 10_000);
    let fast = GOOD.replace(
        "start_block = 0",
        "start_block = 0\nstatus_interval_ms = 200",
    );
    let c = parse("c.toml", &fast, env(&[])).expect("valid");
    assert_eq!(c.chains[0].status_interval_ms, 200);
    let e = err(
        GOOD,
        &[("INGESTOR_CHAINS__ETHEREUM__STATUS_INTERVAL_MS", "0")],
    );
    assert!(
        e.contains("chains[0] (ethereum): `status_interval_ms` must be greater than 0"),
        "{e}"
    );
}

#[test]
fn proof_levels_and_their_older_spelling() {
    use crate::proof::Level;
    let level = |extra: &str| {
        let text = GOOD.replace("start_block = 0", &format!("start_block = 0\n{extra}"));
        parse("c.toml", &text, env(&[])).map(|c| c.chains[0].proof_level())
    };
    assert_eq!(level("").expect("default"), Level::Auto);
    assert_eq!(
        level("proof = \"receipts_root\"").expect("explicit"),
        Level::ReceiptsRoot
    );
    assert_eq!(
        level("verify_log_completeness = false").expect("older spelling"),
        Level::None
    );
    assert_eq!(
        level("verify_log_completeness = false\nproof = \"none\"").expect("both"),
        Level::None
    );
    let text = GOOD.replace(
        "start_block = 0",
        "start_block = 0\nverify_log_completeness = false\nproof = \"receipts\"",
    );
    let e = err(&text, &[]);
    assert!(e.contains("contradicts `proof = \"receipts\"`"), "{e}");
    assert!(level("proof = \"header\"").is_err());
}

#[test]
fn checkpoint_interval_is_for_the_idempotent_mode() {
    let c = parse("c.toml", GOOD, env(&[])).expect("defaults");
    assert_eq!(c.chains[0].checkpoint_interval_ms, 0);
    let spaced = GOOD.replace(
        "start_block = 0",
        "start_block = 0\ncheckpoint_interval_ms = 5000",
    );
    let c = parse("c.toml", &spaced, env(&[])).expect("idempotent");
    assert_eq!(c.chains[0].checkpoint_interval_ms, 5000);
    let e = err(&spaced, &[("INGESTOR_KAFKA__TRANSACTIONAL", "true")]);
    assert!(
        e.contains("`checkpoint_interval_ms` applies to the idempotent mode only"),
        "{e}"
    );
}

#[test]
fn endpoints_lists_and_their_errors() {
    let urls = GOOD.replace(
        "ws_url = \"ws://127.0.0.1:8545\"",
        "urls = [\"wss://a.example/KEY\", \"https://b.example/KEY\", \"http://127.0.0.1:8545\"]",
    );
    let c = parse("c.toml", &urls, env(&[])).expect("urls");
    assert_eq!(c.chains[0].endpoints().len(), 3);
    assert_eq!(c.chains[1].endpoints(), ["wss://node.example/KEY"]);
    let over = parse(
        "c.toml",
        &urls,
        env(&[(
            "INGESTOR_CHAINS__ETHEREUM__URLS",
            r#"["wss://c.example/K2"]"#,
        )]),
    )
    .expect("env array");
    assert_eq!(over.chains[0].endpoints(), ["wss://c.example/K2"]);

    let e = err(
        &urls.replace("https://b.example/KEY", "ftp://b.example/KEY"),
        &[],
    );
    assert!(
        e.contains("`urls[1]` (ftp://b.example/<redacted>) has scheme `ftp`"),
        "{e}"
    );
    assert!(!e.contains("KEY"), "{e}");
    assert!(err(&urls.replace("urls = [", "urls = [] #"), &[]).contains("`urls` is empty"));
    let both = urls.replace("urls = [", "ws_url = \"ws://x:1\"\nurls = [");
    assert!(err(&both, &[]).contains("not both"));
    let none = GOOD.replace("ws_url = \"ws://127.0.0.1:8545\"\n", "");
    assert!(err(&none, &[]).contains("no endpoint"));
}

#[test]
fn tls_files_must_hold_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("ca.pem");
    std::fs::write(&bad, "not a certificate").expect("write");
    let with_ca = GOOD.replace(
        "start_block = 0",
        &format!(
            "start_block = 0\ntls_ca_file = {:?}",
            bad.display().to_string()
        ),
    );
    assert!(err(&with_ca, &[]).contains("tls_ca_file"));
    let bad_s = bad.display().to_string();
    let e = err(GOOD, &[("SSL_CERT_FILE", bad_s.as_str())]);
    assert!(e.starts_with("environment variable SSL_CERT_FILE:"), "{e}");
}

#[test]
fn kafka_security_keys_go_together_and_the_password_is_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let secured = GOOD.replace(
        "brokers = \"127.0.0.1:9092\"",
        &format!(
            "brokers = \"b:9093\"\nsecurity_protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"u\"\nssl_ca_file = {:?}",
            ca.display().to_string()
        ),
    );
    let c = parse(
        "c.toml",
        &secured,
        env(&[("INGESTOR_KAFKA__SASL_PASSWORD", "hunter2")]),
    )
    .expect("secured config");
    assert_eq!(
        c.kafka.sasl_password.as_ref().map(Secret::expose),
        Some("hunter2")
    );
    assert!(
        !format!("{c:?}").contains("hunter2"),
        "Debug shows the password"
    );

    assert!(
        err(&secured, &[]).contains("needs `kafka.sasl_mechanism`"),
        "no password"
    );
    let plain = secured.replace(
        "security_protocol = \"sasl_ssl\"",
        "security_protocol = \"plaintext\"",
    );
    assert!(
        err(&plain, &[("INGESTOR_KAFKA__SASL_PASSWORD", "x")]).contains("`kafka.sasl_*` is set")
    );
    let e = err(
        &secured.replace("SCRAM-SHA-512", "SCRAM-SHA-1"),
        &[("INGESTOR_KAFKA__SASL_PASSWORD", "x")],
    );
    assert!(e.contains("sasl_mechanism"), "{e}");
    let half_mtls = secured.replace(
        "sasl_username",
        &format!(
            "ssl_cert_file = {:?}\nsasl_username",
            ca.display().to_string()
        ),
    );
    assert!(err(&half_mtls, &[("INGESTOR_KAFKA__SASL_PASSWORD", "x")]).contains("go together"));
    let missing = secured.replace(&ca.display().to_string(), "/nonexistent/ca.pem");
    assert!(err(&missing, &[("INGESTOR_KAFKA__SASL_PASSWORD", "x")]).contains("cannot read"));
}

#[test]
fn unknown_keys_get_the_closest_known_key() {
    assert_eq!(
        err(
            &GOOD.replace(
                "ws_url = \"ws://127.0.0.1:8545\"",
                "urlz = [\"ws://127.0.0.1:8545\"]"
            ),
            &[]
        ),
        "config c.toml: unknown field `urlz` in chains[0] (ethereum); did you mean `urls`?"
    );
    assert_eq!(
        err(&GOOD.replace("brokers", "brokerz"), &[]),
        "config c.toml: unknown field `brokerz` in [kafka]; did you mean `brokers`?"
    );
    assert_eq!(
        err(
            GOOD,
            &[("INGESTOR_CHAINS__BASE_SEPOLIA__URLZ", "[\"wss://x\"]")]
        ),
        "environment variable INGESTOR_CHAINS__BASE_SEPOLIA__URLZ: unknown field `urlz` in the chain named `base_sepolia`; did you mean `urls`?"
    );
}

#[test]
fn a_chain_without_its_raw_topic_needs_decoded_events() {
    let raw_off = GOOD.replace("start_block = 0\n", "start_block = 0\nraw = false\n");
    assert_eq!(
        err(&raw_off, &[]),
        "config c.toml: chains[0] (ethereum): `raw = false` publishes decoded events only, and the chain has no [[chains.events]]; add one or remove `raw = false`"
    );
    let c = parse(
        "c.toml",
        &GOOD.replace("start_block = 0\n", "start_block = 0\nraw = true\n"),
        env(&[]),
    )
    .expect("raw = true is the default");
    assert!(c.chains.iter().all(|ch| ch.raw));

    let dir = tempfile::tempdir().expect("tempdir");
    let abi = r#"[{"type":"event","name":"Transfer","anonymous":false,"inputs":[
        {"name":"from","type":"address","indexed":true},
        {"name":"to","type":"address","indexed":true},
        {"name":"value","type":"uint256","indexed":false}]}]"#;
    std::fs::write(dir.path().join("erc20.json"), abi).expect("abi");
    let path = dir.path().join("c.toml");
    // Its chain topic's name is not used: not even another chain's topic is refused.
    let text = raw_off.replace(
        "start_block = 0\nraw = false\n",
        "start_block = 0\nraw = false\ntopic = \"shared\"\n[[chains.events]]\nabi = \"erc20.json\"\n",
    ) + "topic = \"shared\"\n";
    std::fs::write(&path, &text).expect("config");
    let c = load_with_env(&path, Vec::new()).expect("raw = false with an event");
    assert!(!c.chains[0].raw);
    assert_eq!(c.chains[0].catalog.events().len(), 1);
    assert!(c.chains[1].raw);
    let e = load_with_env(&path, env(&[("INGESTOR_KAFKA__DEDUP_CACHE_CAPACITY", "0")]))
        .expect_err("no dedup")
        .to_string();
    assert!(
        e.ends_with("chains[0] (ethereum): `raw = false` needs `kafka.dedup_cache_capacity` greater than 0: a crash replay must skip what the decoded topics hold, or their read-back at start-up cannot be bounded by block number"),
        "{e}"
    );
}

#[test]
fn group_mode_requires_the_transactional_mode() {
    let grouped = format!("{GOOD}\n[group]\nid = \"prod\"\n");
    let e = err(&grouped, &[]);
    assert!(e.contains("`[group]` requires exactly-once mode"), "{e}");
    assert!(e.contains("set kafka.transactional = true"), "{e}");
    let c = parse(
        "c.toml",
        &grouped,
        env(&[("INGESTOR_KAFKA__TRANSACTIONAL", "true")]),
    )
    .expect("group mode");
    let g = c.group.expect("a group");
    assert_eq!((g.id.as_str(), g.session_timeout_ms), ("prod", 10_000));
    let e = err(
        &grouped.replace("\"prod\"", "\"a b\""),
        &[("INGESTOR_KAFKA__TRANSACTIONAL", "true")],
    );
    assert!(e.contains("`group.id`"), "{e}");
}

#[test]
fn datasets_default_to_logs_and_name_their_topics() {
    let c = parse("c.toml", GOOD, env(&[])).expect("valid");
    assert_eq!(c.chains[0].datasets, [Dataset::Logs]);
    assert!(c.chains[0].dataset_topics().is_empty());
    let all = GOOD.replace(
        "start_block = 0\n",
        "start_block = 0\ndatasets = [\"logs\", \"blocks\", \"transactions\"]\nblocks_topic = \"eth.blocks\"\n",
    );
    let c = parse("c.toml", &all, env(&[])).expect("valid");
    assert_eq!(
        c.chains[0].dataset_topics(),
        ["eth.blocks", "evm.transactions.1"]
    );
    let unknown = GOOD.replace(
        "start_block = 0\n",
        "start_block = 0\ndatasets = [\"traces\"]\n",
    );
    let e = err(&unknown, &[]);
    assert!(
        e.contains("`traces`") && e.contains("`logs`, `blocks`, `transactions`"),
        "{e}"
    );
    let no_logs = GOOD.replace(
        "start_block = 0\n",
        "start_block = 0\ndatasets = [\"blocks\"]\n",
    );
    assert!(err(&no_logs, &[]).contains("must include \"logs\""));
    let clash = all.replace("\"eth.blocks\"", "\"evm.logs.1\"");
    assert!(err(&clash, &[]).contains("used by another chain or dataset"));
}
