//! A managed-cluster setup on real processes: Apache Kafka requiring SASL on its client
//! listener (a SCRAM-SHA-512 user created when its storage is formatted), reached over TLS
//! through a terminating proxy that is the advertised listener, with a CA made in the test. The ingestor publishes over
//! SASL_SSL; an independent consumer reads back over SASL_SSL and compares with the node.
//! A wrong password and an untrusted broker certificate are each one line and exit 1. Then
//! the listener requires client certificates (mutual TLS): with `ssl_cert_file` and
//! `ssl_key_file` everything is published (and `ingestor tail` reads it back over the same
//! settings); without them, one line and exit 1.

mod common;

use std::time::Duration;

use common::tls::{TestCa, TlsProxy};
use common::*;
use devstack::anvil::Anvil;
use devstack::consumer::TopicReader;
use devstack::kafka::{Kafka, KafkaOptions, Listener};
use devstack::proc::free_port;
use devstack::service::{ChainEntry, Service, config_toml};
use devstack::traffic::{LogShapes, Sender};

const USER: &str = "ingestor";
const PASSWORD: &str = "s3cret-Passw0rd";

fn secured_config(brokers: &str, ws_url: String, ca: Option<&str>) -> String {
    secured_config_with(brokers, ws_url, ca, None)
}

fn secured_config_with(
    brokers: &str,
    ws_url: String,
    ca: Option<&str>,
    client: Option<(&str, &str)>,
) -> String {
    let mut kafka = String::from(
        "security_protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"ingestor\"\n",
    );
    if let Some(ca) = ca {
        kafka.push_str(&format!("ssl_ca_file = {ca:?}\n"));
    }
    if let Some((cert, key)) = client {
        kafka.push_str(&format!(
            "ssl_cert_file = {cert:?}\nssl_key_file = {key:?}\n"
        ));
    }
    config_toml(brokers, &[ChainEntry::new(31337, ws_url)], "").replace(
        "[kafka]\n",
        &format!("[kafka]\nadmin_timeout_ms = 20000\n{kafka}"),
    )
}

#[test]
fn sasl_ssl_with_scram_sha_512_publishes_everything_and_refuses_bad_credentials() {
    let dir = tempdir();
    let ca = TestCa::new(dir.path(), "kafka-ca");
    let ca_file = ca.pem_file.display().to_string();
    let kafka_port = free_port().expect("port");
    let client_ca = TestCa::new(dir.path(), "client-ca");
    let tls = TlsProxy::start_with_client_ca(&ca, kafka_port, false, &client_ca);
    // A broker of its own: SASL on its client listener, the proxy as its advertised address.
    let options = KafkaOptions {
        listener: Listener::SaslScram {
            users: vec![(USER.into(), PASSWORD.into())],
        },
        client_port: Some(kafka_port),
        advertised_port: Some(tls.port),
        ..KafkaOptions::default()
    };
    let _kafka = Kafka::start_with(dir.path(), options).expect("kafka");
    let brokers = format!("127.0.0.1:{}", tls.port);
    let anvil = Anvil::start(31337, dir.path()).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(61);
    mine_history(&mut sender, &mut shapes, 8).expect("history");

    let toml = secured_config(&brokers, anvil.ws_url(), Some(&ca_file));
    let password_env = [("INGESTOR_KAFKA__SASL_PASSWORD", PASSWORD)];
    let mut service =
        Service::start(BIN.as_ref(), dir.path(), &toml, &password_env).expect("ingestor");
    let reader_options = [
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", USER),
        ("sasl.password", PASSWORD),
        ("ssl.ca.location", ca_file.as_str()),
    ];
    let mut reader = TopicReader::with_options(&brokers, "evm.logs.31337", &reader_options)
        .expect("secured reader");
    assert_reader_matches_node(&mut reader, &anvil.node(), 31337, dir.path());
    stop_cleanly(&mut service);
    assert!(
        !service.process.log_text().contains(PASSWORD),
        "the password was logged"
    );

    // A wrong password, then a broker certificate nobody trusts: one line each, exit 1.
    for (env, ca, want) in [
        (
            [("INGESTOR_KAFKA__SASL_PASSWORD", "wrong-password")],
            Some(ca_file.as_str()),
            "error: kafka authentication failed at brokers",
        ),
        (
            password_env,
            None,
            "error: kafka TLS handshake failed at brokers",
        ),
    ] {
        let toml = secured_config(&brokers, anvil.ws_url(), ca);
        let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
        let code = service
            .process
            .wait_exit(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}: {}", service.process.log_tail(60)));
        let log = service.process.log_text();
        let last = log.lines().last().unwrap_or_default();
        eprintln!("{last}");
        assert_eq!(code, Some(1), "{log}");
        assert!(
            last.starts_with(want),
            "want {want:?}, last line: {last}\nLOG:\n{log}"
        );
        assert!(
            !log.contains(PASSWORD) && !log.contains("wrong-password"),
            "{log}"
        );
    }
}
