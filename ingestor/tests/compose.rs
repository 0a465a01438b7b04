//! The compose stack, checked without a Docker engine (none runs on these machines): every
//! image pinned, every port on 127.0.0.1, every mounted file present, every dependency a
//! service, and the files that must agree do: the ingestor's config (valid under
//! `check-config`), the registry URL Console and the Connect sink decode with, the topic the
//! sink reads, the chain id anvil runs, the topics script, and the traffic source in the
//! image.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::BIN;
use serde_yaml::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).expect(path);
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compose_stack_is_pinned_local_and_consistent() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_mapping().expect("services");
    let names: Vec<&str> = services.keys().filter_map(Value::as_str).collect();
    for want in [
        "redpanda", "topics", "console", "anvil", "traffic", "ingestor", "postgres", "connect",
        "grafana",
    ] {
        assert!(names.contains(&want), "service {want}");
    }
    for (name, s) in services {
        let name = name.as_str().expect("name");
        match s["image"].as_str() {
            Some(image) => {
                let tag = image
                    .rsplit('/')
                    .next()
                    .and_then(|last| last.split_once(':'))
                    .map(|t| t.1);
                assert!(
                    s.get("build").is_some() || tag.is_some_and(|t| !t.is_empty() && t != "latest"),
                    "{name}: image {image} is not pinned"
                );
            }
            None => assert!(s.get("build").is_some(), "{name}: neither image nor build"),
        }
        for port in strings(&s["ports"]) {
            assert!(
                port.starts_with("127.0.0.1:"),
                "{name}: port {port} is not on 127.0.0.1"
            );
        }
        for volume in strings(&s["volumes"]) {
            let source = volume.split(':').next().expect("source");
            if source.starts_with('.') {
                assert!(
                    root().join(source).exists(),
                    "{name}: mounts {source}, which is missing"
                );
            }
        }
        if let Some(deps) = s["depends_on"].as_mapping() {
            for dep in deps.keys().filter_map(Value::as_str) {
                assert!(names.contains(&dep), "{name} depends on unknown {dep}");
            }
        }
    }

    // The ingestor's config is valid, and uses the registry and brokers of the stack.
    let config = root().join("compose/ingestor.toml");
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .expect("check-config");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = ingestor::config::load_with_env(&config, Vec::new()).expect("config");
    let registry = cfg
        .schema_registry
        .as_ref()
        .expect("[schema_registry]")
        .url
        .clone();
    assert_eq!(registry, "http://redpanda:8081");
    let redpanda_cmd = strings(&services[&Value::from("redpanda")]["command"]).join(" ");
    assert!(redpanda_cmd.contains("--schema-registry-addr=internal://0.0.0.0:8081"));
    assert!(redpanda_cmd.contains(&format!("internal://{}", cfg.kafka.brokers)));
    let chain = &cfg.chains[0];
    let anvil_cmd = strings(&services[&Value::from("anvil")]["command"]).join(" ");
    assert!(
        anvil_cmd.contains(&format!("--chain-id {}", chain.chain_id)),
        "{anvil_cmd}"
    );
    assert!(
        anvil_cmd.contains("--no-mining"),
        "blocks come from the traffic source"
    );
    let ingestor = &services[&Value::from("ingestor")];
    assert!(
        strings(&ingestor["volumes"])
            .iter()
            .any(|v| v.starts_with("./compose/ingestor.toml:"))
    );

    // Console decodes through the same registry, from the same brokers.
    let console = yaml("redpanda/console.yaml");
    assert_eq!(
        console["kafka"]["schemaRegistry"]["enabled"].as_bool(),
        Some(true)
    );
    assert!(strings(&console["kafka"]["schemaRegistry"]["urls"]).contains(&registry));
    assert!(strings(&console["kafka"]["brokers"]).contains(&cfg.kafka.brokers));

    // The Connect sink reads the chain's topic, decodes through the registry, upserts by
    // key and deletes on tombstones.
    let pipeline = yaml("redpanda/connect/postgres.yaml");
    assert!(strings(&pipeline["input"]["kafka_franz"]["topics"]).contains(&chain.topic()));
    let cases = pipeline["output"]["switch"]["cases"]
        .as_sequence()
        .expect("cases");
    let tombstone = &cases[0];
    assert_eq!(tombstone["check"].as_str(), Some("content().length() == 0"));
    assert!(
        tombstone["output"]["sql_raw"]["query"]
            .as_str()
            .expect("query")
            .starts_with("DELETE FROM evm_logs WHERE key")
    );
    let upsert = &cases[1]["output"];
    assert_eq!(
        upsert["processors"][0]["schema_registry_decode"]["url"].as_str(),
        Some(registry.as_str())
    );
    assert!(
        upsert["sql_raw"]["query"]
            .as_str()
            .expect("query")
            .contains("ON CONFLICT (key) DO UPDATE")
    );
    let dsn = upsert["sql_raw"]["dsn"].as_str().expect("dsn");
    let pg = &services[&Value::from("postgres")]["environment"];
    assert!(dsn.contains(&format!(
        "{}:{}@postgres:5432/{}",
        pg["POSTGRES_USER"].as_str().expect("user"),
        pg["POSTGRES_PASSWORD"].as_str().expect("password"),
        pg["POSTGRES_DB"].as_str().expect("db")
    )));

    // The Kafka Connect JDBC sink: the same contract.
    let jdbc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("redpanda/connect/jdbc-sink.json")).expect("jdbc"),
    )
    .expect("jdbc json");
    let c = &jdbc["config"];
    for (k, v) in [
        ("pk.mode", "record_key"),
        ("pk.fields", "key"),
        ("delete.enabled", "true"),
        ("insert.mode", "upsert"),
        (
            "key.converter",
            "org.apache.kafka.connect.storage.StringConverter",
        ),
        ("value.converter", "io.confluent.connect.avro.AvroConverter"),
    ] {
        assert_eq!(c[k].as_str(), Some(v), "{k}");
    }
    assert_eq!(
        c["value.converter.schema.registry.url"].as_str(),
        Some(registry.as_str())
    );
    assert_eq!(c["topics"].as_str(), Some(chain.topic().as_str()));

    // The topics are created before the ingestor, by a script that parses.
    let topics = &services[&Value::from("topics")];
    assert_eq!(
        strings(&topics["entrypoint"]),
        ["bash", "/redpanda/topics.sh", &chain.chain_id.to_string()]
    );
    let syntax = Command::new("bash")
        .arg("-n")
        .arg(root().join("redpanda/topics.sh"))
        .status()
        .expect("bash");
    assert!(syntax.success());
    assert_eq!(
        ingestor["depends_on"]["topics"]["condition"].as_str(),
        Some("service_completed_successfully")
    );

    // The traffic source is in the image the stack builds.
    let traffic = strings(&services[&Value::from("traffic")]["entrypoint"]);
    assert_eq!(&traffic[..2], ["devstack", "traffic"]);
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("-p ingestor -p devstack"));
    assert!(dockerfile.contains("/usr/local/bin/devstack"));
}
