//! A managed cluster on real processes: Apache Kafka terminating TLS on its own client
//! listener, with PEM key material from a CA made in the test. Each test starts a broker of
//! its own:
//!
//! - `SASL_SSL` with a SCRAM-SHA-512 user created when the storage is formatted: the
//!   ingestor publishes (password from `INGESTOR_KAFKA__SASL_PASSWORD`), an independent
//!   consumer reads back over `SASL_SSL` and the topic equals the node; a wrong password and
//!   a broker certificate nobody trusts are each one line and exit 1.
//! - mutual TLS (`SSL`, client certificates required, signed by a CA of their own): with
//!   `ssl_cert_file`/`ssl_key_file` everything is published and read back; an expired client
//!   certificate is one line and exit 1.
//!
//! - `SASL_PLAINTEXT` behind a proxy that breaks the first connection as it asks for the
//!   SASL handshake: a connection lost mid-handshake is not a refused password, and the
//!   service connects again and publishes everything.
//!
//! No secret (the password, a private key) appears in any log.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::tls::TestCa;
use common::*;
use devstack::anvil::Anvil;
use devstack::kafka::{Kafka, KafkaOptions, Listener};
use devstack::service::{ChainEntry, Service, config_toml};
use devstack::traffic::{LogShapes, Sender};

const USER: &str = "ingestor";
const PASSWORD: &str = "s3cret-Passw0rd";
const TOPIC: &str = "evm.logs.31337";

/// The service's config with these `[kafka]` security lines.
fn secured_config(brokers: &str, ws_url: String, kafka: &str) -> String {
    config_toml(brokers, &[ChainEntry::new(31337, ws_url)], "").replace(
        "[kafka]\n",
        &format!("[kafka]\nadmin_timeout_ms = 20000\n{kafka}"),
    )
}

fn sasl_ssl_lines(ca: Option<&Path>) -> String {
    let mut kafka = String::from(
        "security_protocol = \"sasl_ssl\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"ingestor\"\n",
    );
    if let Some(ca) = ca {
        kafka.push_str(&format!("ssl_ca_file = {:?}\n", ca.display().to_string()));
    }
    kafka
}

fn mutual_tls_lines(ca: &Path, cert: &Path, key: &Path) -> String {
    format!(
        "security_protocol = \"ssl\"\nssl_ca_file = {:?}\nssl_cert_file = {:?}\nssl_key_file = {:?}\n",
        ca.display().to_string(),
        cert.display().to_string(),
        key.display().to_string()
    )
}

/// Starts the service, which must stop by itself with exit 1 and a last log line starting
/// with `want`; none of `secrets` may appear in its log. Returns the last line.
fn assert_refused(
    dir: &Path,
    toml: &str,
    env: &[(&str, &str)],
    want: &str,
    secrets: &[&str],
) -> String {
    let mut service = Service::start(BIN.as_ref(), dir, toml, env).expect("ingestor");
    let code = service
        .process
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}: {}", service.process.log_tail(60)));
    let log = service.process.log_text();
    let last = log.lines().last().unwrap_or_default().to_owned();
    eprintln!("{last}");
    assert_eq!(code, Some(1), "{log}");
    assert!(
        last.starts_with(want),
        "want {want:?}, last line: {last}\nLOG:\n{log}"
    );
    for secret in secrets {
        assert!(!log.contains(secret), "a secret was logged:\n{log}");
    }
    last
}

/// Anvil with a varied history mined.
fn chain(dir: &Path, seed: u64) -> Anvil {
    let anvil = Anvil::start(31337, dir).expect("anvil");
    let mut sender = Sender::new(anvil.node()).expect("sender");
    let mut shapes = LogShapes::new(seed);
    mine_history(&mut sender, &mut shapes, 8).expect("history");
    anvil
}

#[test]
fn sasl_ssl_with_scram_sha_512_publishes_everything_and_refuses_bad_credentials() {
    let dir = tempdir();
    let ca = TestCa::new(dir.path(), "kafka-ca");
    let options = KafkaOptions {
        listener: Listener::SaslScramSsl {
            users: vec![(USER.into(), PASSWORD.into())],
            keystore_pem: ca.server_keystore(dir.path(), "broker"),
        },
        ..KafkaOptions::default()
    };
    let kafka = Kafka::start_with(dir.path(), options).expect("kafka");
    let brokers = kafka.brokers();
    let anvil = chain(dir.path(), 61);

    let toml = secured_config(
        &brokers,
        anvil.ws_url(),
        &sasl_ssl_lines(Some(&ca.pem_file)),
    );
    let password_env = [("INGESTOR_KAFKA__SASL_PASSWORD", PASSWORD)];
    let mut service =
        Service::start(BIN.as_ref(), dir.path(), &toml, &password_env).expect("ingestor");
    let ca_file = ca.pem_file.display().to_string();
    let reader_options = [
        ("security.protocol", "sasl_ssl"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", USER),
        ("sasl.password", PASSWORD),
        ("ssl.ca.location", ca_file.as_str()),
    ];
    let mut reader = service
        .reader(&brokers, TOPIC, &reader_options)
        .unwrap_or_else(|e| panic!("secured reader: {e:#}"));
    assert_reader_matches_node(&mut reader, &anvil.node(), 31337, dir.path());
    stop_cleanly(&mut service);
    assert!(
        !service.process.log_text().contains(PASSWORD),
        "the password was logged"
    );

    // A wrong password, then a broker certificate nobody trusts: one line each, exit 1.
    let toml = secured_config(
        &brokers,
        anvil.ws_url(),
        &sasl_ssl_lines(Some(&ca.pem_file)),
    );
    assert_refused(
        dir.path(),
        &toml,
        &[("INGESTOR_KAFKA__SASL_PASSWORD", "wrong-password")],
        "error: kafka authentication failed at brokers",
        &[PASSWORD, "wrong-password"],
    );
    let toml = secured_config(&brokers, anvil.ws_url(), &sasl_ssl_lines(None));
    assert_refused(
        dir.path(),
        &toml,
        &password_env,
        "error: kafka TLS handshake failed at brokers",
        &[PASSWORD],
    );
}

#[test]
fn mutual_tls_publishes_everything_and_refuses_an_expired_client_certificate() {
    let dir = tempdir();
    let ca = TestCa::new(dir.path(), "kafka-ca");
    let client_ca = TestCa::new(dir.path(), "client-ca");
    let options = KafkaOptions {
        listener: Listener::MutualTls {
            keystore_pem: ca.server_keystore(dir.path(), "broker"),
            client_ca_pem: client_ca.pem_file.clone(),
        },
        ..KafkaOptions::default()
    };
    let kafka = Kafka::start_with(dir.path(), options).expect("kafka");
    let brokers = kafka.brokers();
    let anvil = chain(dir.path(), 62);

    let (cert, key) = client_ca.client_cert(dir.path(), "ingestor-client");
    let toml = secured_config(
        &brokers,
        anvil.ws_url(),
        &mutual_tls_lines(&ca.pem_file, &cert, &key),
    );
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &[]).expect("ingestor");
    let (ca_file, cert_file, key_file) = (
        ca.pem_file.display().to_string(),
        cert.display().to_string(),
        key.display().to_string(),
    );
    let reader_options = [
        ("security.protocol", "ssl"),
        ("ssl.ca.location", ca_file.as_str()),
        ("ssl.certificate.location", cert_file.as_str()),
        ("ssl.key.location", key_file.as_str()),
    ];
    let mut reader = service
        .reader(&brokers, TOPIC, &reader_options)
        .unwrap_or_else(|e| panic!("mutual TLS reader: {e:#}"));
    assert_reader_matches_node(&mut reader, &anvil.node(), 31337, dir.path());
    stop_cleanly(&mut service);
    let key_pem = std::fs::read_to_string(&key).expect("key");
    let key_body = key_pem.lines().nth(1).expect("a PEM line");
    assert!(
        !service.process.log_text().contains(key_body),
        "the private key was logged"
    );

    // A client certificate from the right CA, but expired: one line, exit 1. Kafka answers
    // with the TLS alert `certificate unknown` (it names no expiry), after the client's side
    // of a TLS 1.3 handshake completed.
    let (cert, key) = client_ca.client_cert_valid(dir.path(), "expired-client", true);
    let key_pem = std::fs::read_to_string(&key).expect("key");
    let key_body = key_pem.lines().nth(1).expect("a PEM line");
    let toml = secured_config(
        &brokers,
        anvil.ws_url(),
        &mutual_tls_lines(&ca.pem_file, &cert, &key),
    );
    assert_refused(
        dir.path(),
        &toml,
        &[],
        "error: kafka TLS client certificate refused at brokers",
        &[key_body],
    );
}

/// A TCP proxy in front of a `SASL_PLAINTEXT` listener that breaks the first `cuts`
/// connections when their client asks for the SASL handshake (Kafka's `SaslHandshake`
/// request, API key 17), as a network, or a broker too busy to keep a connection, may.
/// Returns the proxy and how many connections it broke.
fn sasl_handshake_cutter(
    upstream: u16,
    cuts: usize,
) -> (common::server::Background, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let broken = Arc::new(AtomicUsize::new(0));
    let counter = broken.clone();
    let server = common::server::accept_loop(move |client| {
        let counter = counter.clone();
        async move {
            let Ok(broker) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
                return;
            };
            let (mut client_read, mut client_write) = client.into_split();
            let (mut broker_read, mut broker_write) = broker.into_split();
            let answers = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut broker_read, &mut client_write).await;
            });
            // Requests, one frame at a time: a 4-byte size, then the API key.
            loop {
                let mut size = [0u8; 4];
                if client_read.read_exact(&mut size).await.is_err() {
                    break;
                }
                let mut frame = vec![0u8; u32::from_be_bytes(size) as usize];
                if client_read.read_exact(&mut frame).await.is_err() {
                    break;
                }
                if frame.starts_with(&[0, 17])
                    && counter
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                            (n < cuts).then_some(n + 1)
                        })
                        .is_ok()
                {
                    break;
                }
                if broker_write.write_all(&size).await.is_err()
                    || broker_write.write_all(&frame).await.is_err()
                {
                    break;
                }
            }
            // Both halves of both connections dropped: the client sees it closed.
            answers.abort();
            let _ = answers.await;
        }
    });
    (server, broken)
}

#[test]
fn a_connection_lost_during_the_sasl_handshake_is_retried_not_refused() {
    let dir = tempdir();
    let options = KafkaOptions {
        listener: Listener::SaslScram {
            users: vec![(USER.into(), PASSWORD.into())],
        },
        ..KafkaOptions::default()
    };
    let kafka = Kafka::start_with(dir.path(), options).expect("kafka");
    let (proxy, broken) = sasl_handshake_cutter(kafka.node().client_port, 1);
    let anvil = chain(dir.path(), 63);

    let sasl = "security_protocol = \"sasl_plaintext\"\nsasl_mechanism = \"SCRAM-SHA-512\"\nsasl_username = \"ingestor\"\n";
    let toml = secured_config(&format!("127.0.0.1:{}", proxy.port), anvil.ws_url(), sasl);
    let password_env = [("INGESTOR_KAFKA__SASL_PASSWORD", PASSWORD)];
    let mut service =
        Service::start(BIN.as_ref(), dir.path(), &toml, &password_env).expect("ingestor");
    let reader_options = [
        ("security.protocol", "sasl_plaintext"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        ("sasl.username", USER),
        ("sasl.password", PASSWORD),
    ];
    let mut reader = service
        .reader(&kafka.brokers(), TOPIC, &reader_options)
        .unwrap_or_else(|e| panic!("reader: {e:#}"));
    assert_eq!(broken.load(Ordering::SeqCst), 1, "one handshake was broken");
    assert_reader_matches_node(&mut reader, &anvil.node(), 31337, dir.path());
    stop_cleanly(&mut service);
}
