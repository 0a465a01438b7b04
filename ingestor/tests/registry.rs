//! The Schema Registry wire format on real processes: the ingestor registers the schema
//! under `<topic>-value` with a registry that lives in the test, frames every value with the
//! id it got, and a consumer that knows only the registry (no schema file) decodes every
//! record, field by field equal to the node. An incompatible subject and wrong credentials
//! are one line and exit 1.

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
    let registry = TestRegistry::start(Some(("ingestor", "registry-secret")));
    let stack = Stack::start(71, 10);
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

    let id = registry
        .id_of(&subject)
        .expect("schema registered under the topic's subject");
    let mut header = vec![0u8];
    header.extend_from_slice(&id.to_be_bytes());
    for r in &records {
        let raw = r.raw.as_deref().expect("value");
        assert_eq!(&raw[..5], &header[..], "{}: 0x00 + schema id {id}", r.key);
    }
    stop_cleanly(&mut service);
    assert!(!service.process.log_text().contains("registry-secret"));

    // A restart registers the same schema again and gets the same id.
    let mut again = Service::start(BIN.as_ref(), stack.dir.path(), &toml, &env).expect("ingestor");
    devstack::proc::wait_for("second registration", Duration::from_secs(60), || {
        (registry.registrations() >= 2).then_some(())
    })
    .expect("registered again");
    assert_eq!(registry.id_of(&subject), Some(id));
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
            last.starts_with("error: schema registry http://127.0.0.1:") && last.contains(want),
            "want {want:?}: {last}"
        );
    }
}
