//! The Schema Registry wire format on real processes: the ingestor registers the schema
//! under `<topic>-value` with Apicurio Registry's Confluent-compatible API, frames every
//! value with the id it got, and a consumer that knows only the registry (no schema file)
//! decodes every record, field by field equal to the node. The registry double inside the
//! test only injects failures: an incompatible subject (409) and wrong credentials (401)
//! are one line and exit 1; a registry answering 503 at start-up is retried, logged, and
//! once it answers every record is published in its wire format; one that never recovers
//! is one line and exit 1 after `retry_timeout_ms`. The password is never logged.

mod common;

use std::time::Duration;

use common::registry::TestRegistry;
use common::*;
use devstack::consumer::TopicReader;
use devstack::service::Service;

fn with_registry(toml: String, url: &str) -> String {
    format!("{toml}\n[schema_registry]\nurl = \"{url}\"\nusername = \"ingestor\"\n")
}

#[test]
fn values_use_the_registry_wire_format_and_a_registry_only_consumer_decodes_them() {
    let stack = Stack::start(71, 10);
    // A real registry: Apicurio Registry, through its Confluent-compatible API.
    let registry = devstack::apicurio::Apicurio::start(stack.dir.path()).expect("apicurio");
    let toml = format!(
        "{}\n[schema_registry]\nurl = \"{}\"\n",
        stack.config(&[]),
        registry.ccompat_url()
    );
    let mut service = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");

    let subject = format!("{}-value", stack.topic());
    let mut reader = TopicReader::new(&stack.brokers(), &stack.topic())
        .expect("reader")
        .with_registry(&registry.ccompat_url())
        .keep_raw();
    let records = assert_reader_matches_node(&mut reader, &stack.node, 31337, stack.dir.path());

    // Registering the same schema again under the subject gives the id it already has.
    let id = registry
        .register(&subject, ingestor::encode::SCHEMA_JSON)
        .expect("schema registered under the topic's subject");
    let mut header = vec![0u8];
    header.extend_from_slice(&id.to_be_bytes());
    for r in &records {
        let raw = r.raw.as_deref().expect("value");
        assert_eq!(&raw[..5], &header[..], "{}: 0x00 + schema id {id}", r.key);
    }
    stop_cleanly(&mut service);

    // A restart registers the same schema again and frames with the same id.
    let mut again = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &[]).expect("ingestor");
    // The log file is shared with the first run: its second registration line.
    devstack::proc::wait_for("a second registration", Duration::from_secs(60), || {
        (again
            .process
            .log_text()
            .matches("schema registered")
            .count()
            >= 2)
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", again.process.log_tail(20)));
    assert_eq!(
        registry
            .register(&subject, ingestor::encode::SCHEMA_JSON)
            .expect("register"),
        id
    );
    stop_cleanly(&mut again);
}

#[test]
fn an_incompatible_subject_and_wrong_credentials_are_one_line_and_exit_1() {
    let registry = TestRegistry::start(Some(("ingestor", "registry-secret")));
    let (brokers, names) = (shared_brokers(), Names::new());
    let subject = format!("{}-value", names.topic(31337));
    registry.refuse_as_incompatible(&subject);
    let dir = tempdir();
    let anvil = devstack::anvil::Anvil::start(31337, dir.path()).expect("anvil");
    let toml = with_registry(
        names.config(&brokers, &[fast_retry_entry(31337, anvil.ws_url())], ""),
        &registry.url(),
    );
    let incompatible =
        format!("refused schemas/evm_log.avsc under subject `{subject}` as incompatible (HTTP 409");
    for (password, want) in [
        ("registry-secret", incompatible.as_str()),
        ("wrong", "refused our credentials (HTTP 401)"),
    ] {
        let env = [("INGESTOR_SCHEMA_REGISTRY__PASSWORD", password)];
        let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
        let code = service
            .process
            .wait_exit(Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("{e}: {}", service.process.log_tail(10)));
        let log = service.process.log_text();
        let last = log.lines().last().unwrap_or_default();
        assert_eq!(code, Some(1), "{log}");
        assert!(
            !log.contains("registry-secret"),
            "the password is never logged"
        );
        assert!(
            last.starts_with("error: schema registry http://127.0.0.1:") && last.contains(want),
            "want {want:?}: {last}"
        );
    }
}

#[test]
fn a_registry_answering_503_at_start_up_is_retried_and_nothing_is_lost() {
    let stack = Stack::start(73, 6);
    let registry = TestRegistry::start(Some(("ingestor", "registry-secret")));
    registry.unavailable_for(3);
    let toml = with_registry(stack.config(&[]), &registry.url());
    let env = [("INGESTOR_SCHEMA_REGISTRY__PASSWORD", "registry-secret")];
    let mut service =
        Service::start(BIN.as_ref(), stack.dir.path(), &toml, &env).expect("ingestor");

    let subject = format!("{}-value", stack.topic());
    let mut reader = TopicReader::new(&stack.brokers(), &stack.topic())
        .expect("reader")
        .with_registry(&registry.url())
        .keep_raw();
    let records = assert_reader_matches_node(&mut reader, &stack.node, 31337, stack.dir.path());
    assert!(!records.is_empty());
    // Every record, the first included, carries the id registered after the retries.
    let id = registry.id_of(&subject).expect("registered");
    let mut header = vec![0u8];
    header.extend_from_slice(&id.to_be_bytes());
    for r in &records {
        let raw = r.raw.as_deref().expect("value");
        assert_eq!(&raw[..5], &header[..], "{}: 0x00 + schema id {id}", r.key);
    }
    assert_eq!(registry.refused_unavailable(), 3);
    let log = service.process.log_text();
    let retries: Vec<_> = log
        .lines()
        .filter(|l| l.contains("schema registry not ready, retrying"))
        .collect();
    assert_eq!(retries.len(), 3, "{log}");
    assert!(
        retries[0].contains(&format!("subject=\"{subject}\""))
            && retries[0].contains("attempt=1")
            && retries[0].contains("answered HTTP 503"),
        "{}",
        retries[0]
    );
    let registered = log.find("schema registered").expect("registered line");
    assert!(
        log.rfind("retrying").is_some_and(|r| r < registered),
        "{log}"
    );
    assert!(
        !log.contains("registry-secret"),
        "the password is never logged"
    );
    stop_cleanly(&mut service);
}

#[test]
fn a_registry_that_never_recovers_is_one_line_and_exit_1() {
    let registry = TestRegistry::start(Some(("ingestor", "registry-secret")));
    registry.unavailable_for(usize::MAX);
    let (brokers, names) = (shared_brokers(), Names::new());
    let dir = tempdir();
    let anvil = devstack::anvil::Anvil::start(31337, dir.path()).expect("anvil");
    let toml = with_registry(
        names.config(&brokers, &[fast_retry_entry(31337, anvil.ws_url())], ""),
        &registry.url(),
    ) + "retry_timeout_ms = 3000\n";
    let env = [("INGESTOR_SCHEMA_REGISTRY__PASSWORD", "registry-secret")];
    let started = std::time::Instant::now();
    let mut service = Service::start(BIN.as_ref(), dir.path(), &toml, &env).expect("ingestor");
    let code = service
        .process
        .wait_exit(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}: {}", service.process.log_tail(10)));
    let took = started.elapsed();
    let log = service.process.log_text();
    let last = log.lines().last().unwrap_or_default();
    assert_eq!(code, Some(1), "{log}");
    assert!(
        last.starts_with(&format!(
            "error: schema registry {} answered HTTP 503 registering under `{}-value`: Service Unavailable: the registry is starting; gave up after ",
            registry.url(),
            names.topic(31337)
        )) && last.ends_with(" ms (schema_registry.retry_timeout_ms)"),
        "{last}"
    );
    assert!(
        registry.refused_unavailable() >= 2,
        "retried before giving up"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(
        !log.contains("registry-secret"),
        "the password is never logged"
    );

    let mut reader = TopicReader::new(&brokers, &names.topic(31337)).expect("topic exists");
    let mut records = Vec::new();
    reader
        .read_to_end(&mut records, Duration::from_secs(30))
        .expect("read");
    assert!(records.is_empty(), "nothing may be published: {records:?}");
}
