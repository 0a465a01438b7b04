//! Error cases on real processes: each gives a clear error, and nothing wrong is published.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use devstack::anvil::Anvil;
use devstack::consumer::TopicReader;
use devstack::kafka::Kafka;
use devstack::proc::free_port;
use devstack::service::{ChainEntry, Service, config_toml};
use devstack::traffic::{LogShapes, Sender};

#[test]
fn wrong_chain_id_is_a_clear_error_and_publishes_nothing() {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    let anvil = Anvil::start(5, dir.path()).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    sender
        .block(&[LogShapes::new(1).logs(10)])
        .expect("logs on chain 5");

    let entry = ChainEntry::new(6, anvil.ws_url());
    let toml = names.config(&brokers, &[entry], "");
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
    let code = service
        .process
        .wait_exit(Duration::from_secs(60))
        .expect("ingestor exits by itself");
    let log = service.process.log_text();
    assert_ne!(code, Some(0), "{log}");
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: chain chain-6: node at ws://127.0.0.1:")
            && last.contains("reports chain id 5, but the config says chain_id = 6"),
        "last line: {last}"
    );

    let mut reader = TopicReader::new(&brokers, &names.topic(6)).expect("topic exists");
    let mut records = Vec::new();
    reader
        .read_to_end(&mut records, Duration::from_secs(30))
        .expect("read");
    assert!(records.is_empty(), "nothing may be published: {records:?}");
}

fn run_bin(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run ingestor");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn bad_configs_are_one_line_and_a_nonzero_exit() {
    let dir = tempdir();
    let good = config_toml(
        "127.0.0.1:1",
        &[ChainEntry::new(1, "ws://127.0.0.1:2".into())],
        "",
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, &good).expect("write");
    let path_s = path.to_str().expect("utf-8 path");
    let (code, stdout, _) = run_bin(&["check-config", "--config", path_s], &[]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("config OK: 1 chain(s)"), "{stdout}");

    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../ingestor.example.toml");
    let (code, stdout, stderr) = run_bin(&["check-config", "--config", example], &[]);
    assert_eq!(
        code,
        Some(0),
        "the example config in the repository must stay valid: {stderr}"
    );
    assert!(stdout.contains("config OK: 2 chain(s)"), "{stdout}");

    let ws_line = "ws_url = \"ws://127.0.0.1:2\"";
    let cases: [Case; 9] = [
        (
            &good.replace(
                ws_line,
                "urls = [\"ws://127.0.0.1:2\", \"ftp://127.0.0.1:3/KEY\"]",
            ),
            &[],
            "`urls[1]` (ftp://127.0.0.1:3/<redacted>) has scheme `ftp`; use ws://, wss://, http:// or https://",
        ),
        (&good.replace(ws_line, "urls = []"), &[], "`urls` is empty"),
        (
            &good,
            &[("SSL_CERT_FILE", "/nonexistent/ca.pem")],
            "environment variable SSL_CERT_FILE: SSL_CERT_FILE /nonexistent/ca.pem: cannot read",
        ),
        (
            &good.replace("chain_id = 1", "chain_id = \"one\""),
            &[],
            "`chains[0].chain_id`",
        ),
        (
            &good.replace("brokers", "brokerz"),
            &[],
            "unknown field `brokerz` in [kafka]; did you mean `brokers`?",
        ),
        (
            &good.replace("ws://", "http://"),
            &[],
            "`ws_url` must be a ws:// or wss:// URL",
        ),
        (&good.replace("[kafka]", "[kafka"), &[], "line 2"),
        (
            &good,
            &[("INGESTOR_CHAINS__CHAIN_1__START_BLOCK", "soon")],
            "expected a block number or \"latest\"",
        ),
        (
            &good,
            &[("INGESTOR_CHAINS__NOPE__WS_URL", "ws://x")],
            "INGESTOR_CHAINS__NOPE__WS_URL: no chain named `nope`",
        ),
    ];
    for (text, env, want) in cases {
        std::fs::write(&path, text).expect("write");
        for command in ["check-config", "run"] {
            let (code, _, stderr) = run_bin(&[command, "--config", path_s], env);
            assert_eq!(code, Some(1), "{command} {want}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
            assert!(
                stderr.starts_with("error: ") && stderr.contains(want),
                "{command}: want {want:?} in {stderr}"
            );
        }
    }
    let (code, _, stderr) = run_bin(&["run", "--config", "/nonexistent/ingestor.toml"], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("cannot read"), "{stderr}");
}

#[test]
fn a_dead_node_does_not_delay_another_chain() {
    let dir = tempdir();
    let (brokers, names) = (shared_brokers(), Names::new());
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(3);
    mine_history(&mut sender, &mut shapes, 6).expect("history");

    let dead = ChainEntry::new(
        999,
        format!("ws://127.0.0.1:{}", free_port().expect("port")),
    );
    let live = ChainEntry::new(31337, anvil.ws_url());
    let toml = names.config(&brokers, &[dead, live], "");
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
    for _ in 0..3 {
        sender.block(&[shapes.logs(4)]).expect("live block");
    }
    assert_topic_matches_node(&brokers, &names.topic(31337), &anvil.node(), 31337);
    // The dead chain is retried and logged.
    wait_for_log(&service, "chain=\"chain-999\"");
    stop_cleanly(&mut service);
}

#[test]
fn a_broker_that_is_down_is_a_clear_error() {
    let dir = tempdir();
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let brokers = format!("127.0.0.1:{}", free_port().expect("port"));
    let toml = config_toml(&brokers, &[ChainEntry::new(31337, anvil.ws_url())], "");
    let toml = toml.replace("[kafka]\n", "[kafka]\nadmin_timeout_ms = 3000\n");
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
    let code = service
        .process
        .wait_exit(Duration::from_secs(60))
        .expect("exits by itself");
    assert_eq!(code, Some(1));
    let log = service.process.log_text();
    let last = log.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: kafka brokers 127.0.0.1:")
            && last.contains("did not answer within 3000 ms")
            && last.ends_with("check `kafka.brokers` and that the broker is up"),
        "{last}"
    );
}

#[test]
fn a_failed_delivery_stops_the_chain_with_a_clear_error() {
    let dir = tempdir();
    // A broker of its own: this test kills it.
    let mut kafka = Kafka::start(dir.path()).expect("kafka");
    let (brokers, names) = (kafka.brokers(), Names::new());
    let topic = names.topic(31337);
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(11);
    let first = sender.block(&[shapes.logs(5)]).expect("block");
    let first_block = sender.node().head().expect("head");

    let toml = names
        .config(&brokers, &[ChainEntry::new(31337, anvil.ws_url())], "")
        .replace("[kafka]\n", "[kafka]\nmessage_timeout_ms = 2000\n");
    let (mut service, _, _) = start_and_wait_for(dir.path(), &brokers, &toml, &topic, first);
    // The first block's checkpoint is acknowledged before the broker dies, so that what
    // fails is the next block's record, not a checkpoint write still in flight.
    let mut checkpoints = TopicReader::new(&brokers, &names.checkpoints())
        .expect("checkpoint reader")
        .undecoded();
    let mut read = Vec::new();
    checkpoints
        .read_until(&mut read, Duration::from_secs(60), |records| {
            records.iter().any(|r| {
                r.raw
                    .as_deref()
                    .and_then(|v| ingestor::checkpoint::decode(v).ok())
                    .is_some_and(|c| c.block_number >= first_block)
            })
        })
        .expect("the first block's checkpoint");

    // The broker dies; the next block's records cannot be acknowledged.
    kafka.kill().expect("broker gone");
    sender
        .block(&[shapes.logs(3)])
        .expect("block after the broker died");

    let code = service
        .process
        .wait_exit(Duration::from_secs(120))
        .expect("ingestor stops by itself");
    let log = service.process.log_text();
    let last = log.lines().last().unwrap_or_default();
    assert_eq!(code, Some(1), "{last}");
    assert!(
        last.starts_with("error: chain chain-31337: delivery of record 31337:0x")
            && last.contains(&format!("to `{topic}` failed")),
        "{last}"
    );
}

#[test]
fn a_wrong_listener_is_one_line_naming_it_and_publishes_nothing() {
    use common::tls::TestCa;
    use devstack::kafka::{KafkaOptions, Listener};
    let dir = tempdir();
    // A broker of its own: a managed cluster's SASL_SSL listener, and its KRaft controller.
    let ca = TestCa::new(dir.path(), "kafka-ca");
    let options = KafkaOptions {
        listener: Listener::SaslScramSsl {
            users: vec![("ingestor".into(), "pw-123456".into())],
            keystore_pem: ca.server_keystore(dir.path(), "broker"),
        },
        ..KafkaOptions::default()
    };
    let kafka = Kafka::start_with(dir.path(), options).expect("kafka");
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    sender
        .block(&[LogShapes::new(4).logs(5)])
        .expect("logs to publish");
    let client = kafka.brokers();
    let controller = format!("127.0.0.1:{}", kafka.node().controller_port);
    let cases = [
        (
            client.clone(),
            format!(
                "error: kafka brokers {client} accepted connections but closed them without answering within 5000 ms (kafka.admin_timeout_ms) ("
            ),
            "the address is likely a listener of another security protocol (TLS or SASL) than kafka.security_protocol = \"plaintext\": check kafka.brokers and kafka.security_protocol",
        ),
        (
            controller.clone(),
            format!(
                "error: kafka brokers {controller} answered but serve no metadata (UnsupportedFeature (Local: Required feature not supported by broker))"
            ),
            "this looks like a KRaft controller listener, not a broker's: point kafka.brokers at the brokers' client listeners",
        ),
    ];
    for (brokers, starts, ends) in cases {
        let toml = config_toml(&brokers, &[ChainEntry::new(31337, anvil.ws_url())], "")
            .replace("[kafka]\n", "[kafka]\nadmin_timeout_ms = 5000\n");
        let started = std::time::Instant::now();
        let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
        let code = service
            .process
            .wait_exit(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}: {}", service.process.log_tail(20)));
        let took = started.elapsed();
        let log = service.process.log_text();
        let last = log.lines().last().unwrap_or_default();
        assert_eq!(code, Some(1), "{log}");
        assert!(last.starts_with(&starts) && last.ends_with(ends), "{last}");
        assert!(took < Duration::from_secs(30), "{brokers}: took {took:?}");
    }
    // Nothing reached the cluster: no chain topic, no checkpoint topic (read over the
    // broker's plaintext inter-broker listener).
    let internal = format!("127.0.0.1:{}", kafka.node().internal_port);
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &internal)
        .create()
        .expect("consumer");
    let metadata =
        rdkafka::consumer::Consumer::fetch_metadata(&consumer, None, Duration::from_secs(30))
            .expect("metadata");
    let topics: Vec<_> = metadata
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|t| !t.starts_with("__"))
        .collect();
    assert!(topics.is_empty(), "nothing may be published: {topics:?}");
}
