//! The compose stack, checked without a Docker engine (none runs on these machines): every
//! image pinned, every port on 127.0.0.1, every mounted file present, every dependency a
//! service, and the files that must agree do: the ingestor's config (valid under
//! `check-config`), the registry Console and the Connect sinks decode with, the sinks' topics
//! and database, the transfers table's columns against the decoded `Transfer` schema, the
//! chain id anvil runs, the topics script (decoded topics included), the shipped alert rules
//! loaded by Prometheus, and the traffic source in the image. The sink configs themselves run
//! on real processes in `sink_postgres.rs`.

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

/// The shipped `redpanda/connect/<table>.sql` makes `table` with a column per field of the
/// record `schema` (but `left_out`) after `key`, in order, every `decimal(78, 0)` field
/// `numeric(78, 0)`; `docker-compose.yml` runs it when the database is first initialised.
fn assert_table_of_schema(table: &str, schema: &serde_json::Value, left_out: &[&str]) {
    let file = format!("{table}.sql");
    let ddl = std::fs::read_to_string(root().join("redpanda/connect").join(&file)).expect("ddl");
    assert!(
        ddl.contains(&format!("CREATE TABLE IF NOT EXISTS {table} (")),
        "{ddl}"
    );
    let columns: Vec<(String, String)> = ddl
        .lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix('"')?;
            let (name, rest) = l.split_once('"')?;
            Some((name.to_owned(), rest.trim().to_owned()))
        })
        .collect();
    let fields: Vec<&serde_json::Value> = schema["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter(|f| !left_out.contains(&f["name"].as_str().expect("name")))
        .collect();
    let mut want = vec!["key"];
    want.extend(fields.iter().map(|f| f["name"].as_str().expect("name")));
    let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, want, "{ddl}");
    let is_decimal = |t: &serde_json::Value| t["logicalType"] == "decimal";
    for f in fields {
        let decimal = match &f["type"] {
            serde_json::Value::Array(union) => union.iter().any(is_decimal),
            t => is_decimal(t),
        };
        let name = f["name"].as_str().expect("name");
        let ty = &columns.iter().find(|(n, _)| n == name).expect("column").1;
        assert_eq!(
            decimal,
            ty.starts_with("numeric(78, 0)"),
            "{table}.{name}: {ty}"
        );
    }
    let postgres = &yaml("docker-compose.yml")["services"]["postgres"];
    let mount = format!("./redpanda/connect/{file}:/docker-entrypoint-initdb.d/{file}:ro");
    assert!(
        strings(&postgres["volumes"]).contains(&mount),
        "{:?}",
        postgres["volumes"]
    );
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
        "redpanda",
        "topics",
        "apicurio",
        "console",
        "anvil",
        "traffic",
        "ingestor",
        "postgres",
        "connect",
        "connect-sink",
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
    // Apicurio Registry's Confluent-compatible API, whose ids are content ids.
    assert_eq!(registry, "http://apicurio:8080/apis/ccompat/v7");
    let apicurio = &services[&Value::from("apicurio")];
    assert_eq!(
        apicurio["environment"]["APICURIO_CCOMPAT_LEGACY_ID_MODE_ENABLED"].as_str(),
        Some("false")
    );
    let redpanda_cmd = strings(&services[&Value::from("redpanda")]["command"]).join(" ");
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

    // The Kafka Connect sinks, posted as shipped: the chain's topic, and its decoded ERC-20
    // `Transfer` topic, into the compose database, upsert by the record key, delete on
    // tombstones, values through the same registry (its v2 API, content ids, the Confluent
    // framing).
    let pg = &services[&Value::from("postgres")]["environment"];
    let sink = |file: &str| -> serde_json::Value {
        let jdbc: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root().join("redpanda/connect").join(file)).expect(file),
        )
        .expect("jdbc json");
        let c = jdbc["config"].clone();
        for (k, v) in [
            (
                "connector.class",
                "io.debezium.connector.jdbc.JdbcSinkConnector",
            ),
            ("insert.mode", "upsert"),
            ("delete.enabled", "true"),
            ("primary.key.mode", "record_key"),
            ("primary.key.fields", "key"),
            (
                "transforms.keyToStruct.type",
                "org.apache.kafka.connect.transforms.HoistField$Key",
            ),
            ("transforms.keyToStruct.field", "key"),
            (
                "key.converter",
                "org.apache.kafka.connect.storage.StringConverter",
            ),
            (
                "value.converter",
                "io.apicurio.registry.utils.converter.AvroConverter",
            ),
            (
                "value.converter.apicurio.registry.id-handler",
                "io.apicurio.registry.serde.Legacy4ByteIdHandler",
            ),
            ("value.converter.apicurio.registry.use-id", "contentId"),
            ("value.converter.apicurio.registry.headers.enabled", "false"),
        ] {
            assert_eq!(c[k].as_str(), Some(v), "{file}: {k}");
        }
        assert_eq!(
            c["value.converter.apicurio.registry.url"].as_str(),
            Some(
                registry
                    .replace("/apis/ccompat/v7", "/apis/registry/v2")
                    .as_str()
            ),
            "{file}"
        );
        assert_eq!(
            c["connection.url"].as_str(),
            Some(
                format!(
                    "jdbc:postgresql://postgres:5432/{}",
                    pg["POSTGRES_DB"].as_str().expect("db")
                )
                .as_str()
            ),
            "{file}"
        );
        assert_eq!(
            c["connection.username"],
            pg["POSTGRES_USER"].as_str().expect("user")
        );
        assert_eq!(
            c["connection.password"],
            pg["POSTGRES_PASSWORD"].as_str().expect("password")
        );
        c
    };
    let raw_sink = sink("jdbc-sink.json");
    assert_eq!(raw_sink["topics"].as_str(), Some(chain.topic().as_str()));

    // The decoded Transfer topic into a table made beforehand by the database's init script,
    // whose columns are the record's fields (and the key), `value` numeric(78,0).
    let events = chain.catalog.events();
    let transfer = events
        .iter()
        .find(|e| e.signature == "Transfer(address,address,uint256)")
        .expect("the compose config decodes ERC-20 Transfer");
    let transfer_sink = sink("jdbc-sink-erc20-transfer.json");
    assert_eq!(
        transfer_sink["topics"].as_str(),
        Some(transfer.topic.as_str())
    );
    assert_eq!(
        transfer_sink["collection.name.format"].as_str(),
        Some("erc20_transfers")
    );
    assert_eq!(transfer_sink["schema.evolution"].as_str(), Some("none"));
    assert_eq!(transfer_sink["quote.identifiers"].as_str(), Some("true"));
    let schema: serde_json::Value = serde_json::from_str(&transfer.schema_json).expect("schema");
    assert_table_of_schema("erc20_transfers", &schema, &[]);

    // The datasets' topics into tables made beforehand the same way, every field of the
    // schema a column but `extra`, which the sinks leave out (their `dropExtra` transform).
    let datasets = [
        ("blocks", chain.blocks_topic(), "schemas/evm_block.avsc"),
        (
            "transactions",
            chain.transactions_topic(),
            "schemas/evm_transaction.avsc",
        ),
    ];
    for (dataset, topic, schema) in datasets {
        let file = format!("jdbc-sink-{dataset}.json");
        let table = format!("evm_{dataset}");
        let c = sink(&file);
        assert_eq!(
            c["topics"].as_str(),
            Some(
                topic
                    .expect("the compose chain publishes the dataset")
                    .as_str()
            ),
            "{file}"
        );
        for (k, v) in [
            ("collection.name.format", table.as_str()),
            ("schema.evolution", "none"),
            ("quote.identifiers", "true"),
            ("transforms", "keyToStruct,dropExtra"),
            (
                "transforms.dropExtra.type",
                "org.apache.kafka.connect.transforms.ReplaceField$Value",
            ),
            ("transforms.dropExtra.exclude", "extra"),
        ] {
            assert_eq!(c[k].as_str(), Some(v), "{file}: {k}");
        }
        let schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root().join(schema)).expect("schema"))
                .expect("schema json");
        assert_table_of_schema(&table, &schema, &["extra"]);
    }
    let made: Vec<String> = services[&Value::from("topics")]["environment"]["DATASETS"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(|d| format!("evm.{d}.{}", chain.chain_id))
        .collect();
    assert_eq!(
        made,
        [chain.blocks_topic(), chain.transactions_topic()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
    );
    // The ABI is mounted where the config, read from /etc/ethhook, finds it.
    for entry in &chain.events {
        let abi = entry.abi.display();
        assert!(
            strings(&ingestor["volumes"])
                .iter()
                .any(|v| v.starts_with(&format!("./compose/{abi}:/etc/ethhook/{abi}"))),
            "the ingestor mounts compose/{abi}"
        );
    }

    let connect = &services[&Value::from("connect")];
    assert_eq!(
        connect["environment"]["ENABLE_APICURIO_CONVERTERS"].as_str(),
        Some("true")
    );
    assert_eq!(
        connect["environment"]["BOOTSTRAP_SERVERS"].as_str(),
        Some(cfg.kafka.brokers.as_str())
    );
    let poster = &services[&Value::from("connect-sink")];
    let script = strings(&poster["command"]).join("\n");
    for file in [
        "jdbc-sink.json",
        "jdbc-sink-erc20-transfer.json",
        "jdbc-sink-blocks.json",
        "jdbc-sink-transactions.json",
    ] {
        assert!(
            strings(&poster["volumes"])
                .iter()
                .any(|v| v.starts_with(&format!("./redpanda/connect/{file}:/connect/{file}"))),
            "connect-sink mounts {file}"
        );
        assert!(script.contains(&format!("/connect/{file}")), "{script}");
    }
    assert!(script.contains("--data @$$sink"), "{script}");
    assert!(
        script.contains("http://connect:8083/connectors"),
        "{script}"
    );

    // The topics are created before the ingestor, by a script that parses.
    let topics = &services[&Value::from("topics")];
    assert_eq!(
        strings(&topics["entrypoint"]),
        ["bash", "/redpanda/topics.sh", &chain.chain_id.to_string()]
    );
    // The decoded topics too, under the names the ingestor publishes to.
    let made: Vec<String> = topics["environment"]["EVENTS"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .map(|event| format!("evm.events.{}.{event}", chain.chain_id))
        .collect();
    let decoded: Vec<String> = events.iter().map(|e| e.topic.clone()).collect();
    assert_eq!(made, decoded);
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

    // Prometheus loads the shipped alert rules: each of its rule files is a mount of one.
    let prometheus = &services[&Value::from("prometheus")];
    let mounts = strings(&prometheus["volumes"]);
    let rule_files = strings(&yaml("compose/prometheus.yml")["rule_files"]);
    assert!(
        !rule_files.is_empty(),
        "compose/prometheus.yml loads no rules"
    );
    for file in &rule_files {
        assert!(
            mounts.iter().any(|v| {
                let mut parts = v.split(':');
                parts.next() == Some("./grafana/alerts/ethhook.rules.yml")
                    && parts.next() == Some(file.as_str())
            }),
            "prometheus loads {file}, which is no mount of grafana/alerts/ethhook.rules.yml: {mounts:?}"
        );
    }

    // The traffic source is in the image the stack builds.
    let traffic = strings(&services[&Value::from("traffic")]["entrypoint"]);
    assert_eq!(&traffic[..2], ["devstack", "traffic"]);
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    assert!(dockerfile.contains("-p ingestor -p devstack"));
    assert!(dockerfile.contains("/usr/local/bin/devstack"));
}
