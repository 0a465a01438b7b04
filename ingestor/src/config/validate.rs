//! Checks that span fields: each failure is one sentence saying what to fix.

use std::collections::HashSet;

use super::{ChainConfig, Config, KafkaConfig, RegistryConfig};
use crate::rpc::redact::redact_url;
use crate::rpc::tls::Trust;

/// Returns the first problem found.
pub(super) fn check(c: &Config) -> Result<(), String> {
    if c.kafka.brokers.trim().is_empty() {
        return Err("`kafka.brokers` is empty; set it to host:port[,host:port]".into());
    }
    if c.kafka.topic_partitions < 1 {
        return Err("`kafka.topic_partitions` must be at least 1".into());
    }
    if c.kafka.topic_replication_factor < 1 && c.kafka.topic_replication_factor != -1 {
        return Err(
            "`kafka.topic_replication_factor` must be at least 1 (or -1 for the broker default)"
                .into(),
        );
    }
    let min_kbytes = (crate::sink::MAX_MESSAGE_BYTES / 1024) as u64;
    if c.kafka.queue_max_kbytes < min_kbytes {
        return Err(format!(
            "`kafka.queue_max_kbytes` must be at least {min_kbytes} (one record of the largest size)"
        ));
    }
    if c.kafka.queue_max_messages == 0 {
        return Err("`kafka.queue_max_messages` must be greater than 0".into());
    }
    if c.kafka.transactional && c.kafka.transaction_max_blocks == 0 {
        return Err("`kafka.transaction_max_blocks` must be greater than 0".into());
    }
    if let Some(g) = &c.group {
        group(g, &c.kafka)?;
    }
    kafka_security(&c.kafka)?;
    if let Some(r) = &c.schema_registry {
        registry(r)?;
    }
    if c.kafka.checkpoint_topic.trim().is_empty() {
        return Err("`kafka.checkpoint_topic` is empty; set a topic name".into());
    }
    if c.health.enabled {
        if c.health
            .listen_addr
            .parse::<std::net::SocketAddr>()
            .is_err()
        {
            return Err(format!(
                "`health.listen_addr` {:?} is not an ip:port address (e.g. \"127.0.0.1:8686\")",
                c.health.listen_addr
            ));
        }
        if c.health.max_connections == 0 || c.health.request_timeout_ms == 0 {
            return Err(
                "`health.max_connections` and `health.request_timeout_ms` must be greater than 0"
                    .into(),
            );
        }
    }
    if c.health.stall_after_ms == 0 {
        return Err("`health.stall_after_ms` must be greater than 0".into());
    }
    if c.chains.is_empty() {
        return Err("no [[chains]] configured; add at least one".into());
    }
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    let mut topics = HashSet::new();
    for (i, ch) in c.chains.iter().enumerate() {
        let at = format!("chains[{i}] ({})", ch.name);
        if ch.name.is_empty()
            || !ch
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        {
            return Err(format!(
                "{at}: `name` must be non-empty ASCII letters, digits, `-` or `_`"
            ));
        }
        if !names.insert(ch.name.to_ascii_lowercase().replace('-', "_")) {
            return Err(format!("{at}: `name` is used by another chain"));
        }
        if !ids.insert(ch.chain_id) {
            return Err(format!(
                "{at}: `chain_id` {} is used by another chain",
                ch.chain_id
            ));
        }
        if !ch.raw && ch.events.is_empty() {
            return Err(format!(
                "{at}: `raw = false` publishes decoded events only, and the chain has no [[chains.events]]; add one or remove `raw = false`"
            ));
        }
        if !ch.raw && c.kafka.dedup_cache_capacity == 0 {
            return Err(format!(
                "{at}: `raw = false` needs `kafka.dedup_cache_capacity` greater than 0: a crash replay must skip what the decoded topics hold, or their read-back at start-up cannot be bounded by block number"
            ));
        }
        endpoints(&at, ch)?;
        if !ch.publishes(super::Dataset::Logs) {
            return Err(format!(
                "{at}: `datasets` must include \"logs\" (the chain topic carries the resume point); add it"
            ));
        }
        for topic in ch.dataset_topics() {
            topic_name(&at, &topic, &c.kafka.checkpoint_topic, &mut topics)?;
        }
        // Without the chain topic, its name is not used: only decoded topics are checked
        // (when their ABIs are loaded).
        if ch.raw {
            chain_topic(&at, ch, &c.kafka.checkpoint_topic, &mut topics)?;
        }
        let positive = [
            ("connect_timeout_ms", ch.connect_timeout_ms),
            ("request_timeout_ms", ch.request_timeout_ms),
            ("keepalive_interval_ms", ch.keepalive_interval_ms),
            ("head_poll_interval_ms", ch.head_poll_interval_ms),
            ("status_interval_ms", ch.status_interval_ms),
            ("backfill_range_blocks", ch.backfill_range_blocks),
            ("backfill_target_logs", ch.backfill_target_logs),
            ("backfill_concurrency", ch.backfill_concurrency as u64),
            ("max_blocks_in_flight", ch.max_blocks_in_flight as u64),
            ("max_message_bytes", ch.max_message_bytes as u64),
            ("reorg_window_blocks", ch.reorg_window_blocks as u64),
            (
                "breaker_failure_threshold",
                u64::from(ch.breaker_failure_threshold),
            ),
            (
                "reconnect_backoff_initial_ms",
                ch.reconnect_backoff_initial_ms,
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{at}: `{key}` must be greater than 0"));
        }
        if c.kafka.transactional && ch.checkpoint_interval_ms > 0 {
            return Err(format!(
                "{at}: `checkpoint_interval_ms` applies to the idempotent mode only (a transaction always carries its checkpoint); remove it or set kafka.transactional = false"
            ));
        }
        if !ch.verify_log_completeness
            && matches!(
                ch.proof,
                crate::proof::Level::Receipts | crate::proof::Level::ReceiptsRoot
            )
        {
            return Err(format!(
                "{at}: `verify_log_completeness = false` contradicts `proof = \"{}\"`; set only `proof`",
                ch.proof.as_str()
            ));
        }
        if ch.rpc_batch_max == 0 {
            return Err(format!("{at}: `rpc_batch_max` must be greater than 0"));
        }
        if let Some(path) = &ch.tls_ca_file {
            Trust {
                ssl_cert_file: None,
                ca_file: Some(path.clone()),
            }
            .roots()
            .map_err(|e| format!("{at}: {e}"))?;
        }
        if ch.reconnect_backoff_max_ms < ch.reconnect_backoff_initial_ms {
            return Err(format!(
                "{at}: `reconnect_backoff_max_ms` must be at least `reconnect_backoff_initial_ms`"
            ));
        }
    }
    Ok(())
}

/// The chain topic's name: valid, not the checkpoint topic, not another chain's.
fn chain_topic(
    at: &str,
    ch: &ChainConfig,
    checkpoint_topic: &str,
    taken: &mut HashSet<String>,
) -> Result<(), String> {
    topic_name(at, &ch.topic(), checkpoint_topic, taken)
}

/// A topic's name: valid, not the checkpoint topic, not used by another chain or dataset.
fn topic_name(
    at: &str,
    topic: &str,
    checkpoint_topic: &str,
    taken: &mut HashSet<String>,
) -> Result<(), String> {
    if topic.is_empty()
        || topic.len() > 249
        || !topic
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'))
    {
        return Err(format!(
            "{at}: topic `{topic}` must be 1-249 of [a-zA-Z0-9._-]"
        ));
    }
    if topic == checkpoint_topic {
        return Err(format!("{at}: topic `{topic}` is the checkpoint topic"));
    }
    if !taken.insert(topic.to_owned()) {
        return Err(format!(
            "{at}: topic `{topic}` is used by another chain or dataset"
        ));
    }
    Ok(())
}

/// `urls` (or the `ws_url` shorthand): one or more endpoints of a scheme the service speaks.
fn endpoints(at: &str, ch: &ChainConfig) -> Result<(), String> {
    match (&ch.urls, &ch.ws_url) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{at}: set `urls` or `ws_url`, not both (`ws_url` is the one-endpoint shorthand)"
            ));
        }
        (None, None) => {
            return Err(format!(
                "{at}: no endpoint; set `urls = [\"wss://…\", \"https://…\"]` (or `ws_url`)"
            ));
        }
        (Some(urls), None) if urls.is_empty() => {
            return Err(format!("{at}: `urls` is empty; list at least one endpoint"));
        }
        (None, Some(one)) => {
            return match url::Url::parse(one) {
                Ok(u) if u.scheme() == "ws" || u.scheme() == "wss" => Ok(()),
                _ => Err(format!(
                    "{at}: `ws_url` must be a ws:// or wss:// URL (use `urls` for http:// or https://)"
                )),
            };
        }
        (Some(_), None) => {}
    }
    for (i, raw) in ch.endpoints().iter().enumerate() {
        match url::Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "ws" | "wss" | "http" | "https") && u.has_host() => {}
            Ok(u) => {
                return Err(format!(
                    "{at}: `urls[{i}]` ({}) has scheme `{}`; use ws://, wss://, http:// or https://",
                    redact_url(raw),
                    u.scheme()
                ));
            }
            Err(e) => return Err(format!("{at}: `urls[{i}]` is not a URL: {e}")),
        }
    }
    Ok(())
}

/// `kafka.security_protocol` and the keys that go with it.
fn kafka_security(k: &KafkaConfig) -> Result<(), String> {
    let p = k.security_protocol;
    let sasl_keys =
        k.sasl_mechanism.is_some() || k.sasl_username.is_some() || k.sasl_password.is_some();
    if sasl_keys && !p.sasl() {
        return Err(format!(
            "`kafka.sasl_*` is set but `kafka.security_protocol` is `{}`; use `sasl_ssl` (or `sasl_plaintext`)",
            p.as_str()
        ));
    }
    if p.sasl()
        && (k.sasl_mechanism.is_none() || k.sasl_username.is_none() || k.sasl_password.is_none())
    {
        return Err(format!(
            "`kafka.security_protocol = \"{}\"` needs `kafka.sasl_mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), `kafka.sasl_username` and `kafka.sasl_password` (or INGESTOR_KAFKA__SASL_PASSWORD)",
            p.as_str()
        ));
    }
    let files = [
        ("ssl_ca_file", &k.ssl_ca_file),
        ("ssl_cert_file", &k.ssl_cert_file),
        ("ssl_key_file", &k.ssl_key_file),
    ];
    if !p.tls() && files.iter().any(|(_, f)| f.is_some()) {
        return Err(format!(
            "`kafka.ssl_*` is set but `kafka.security_protocol` is `{}`; use `ssl` or `sasl_ssl`",
            p.as_str()
        ));
    }
    if k.ssl_cert_file.is_some() != k.ssl_key_file.is_some() {
        return Err(
            "`kafka.ssl_cert_file` and `kafka.ssl_key_file` go together (mutual TLS)".into(),
        );
    }
    for (key, file) in files {
        let Some(path) = file else { continue };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("`kafka.{key}` {}: cannot read: {e}", path.display()))?;
        let want = if key == "ssl_key_file" {
            "PRIVATE KEY-----"
        } else {
            "-----BEGIN CERTIFICATE-----"
        };
        if !text.contains(want) {
            return Err(format!(
                "`kafka.{key}` {}: not a PEM file with {want}",
                path.display()
            ));
        }
    }
    Ok(())
}

/// `[schema_registry]`.
fn registry(r: &RegistryConfig) -> Result<(), String> {
    match url::Url::parse(&r.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {}
        _ => {
            return Err(format!(
                "`schema_registry.url` ({}) must be an http:// or https:// URL",
                redact_url(&r.url)
            ));
        }
    }
    if r.username.is_some() != r.password.is_some() {
        return Err(
            "`schema_registry.username` and `schema_registry.password` go together (or INGESTOR_SCHEMA_REGISTRY__PASSWORD)"
                .into(),
        );
    }
    if r.request_timeout_ms == 0 {
        return Err("`schema_registry.request_timeout_ms` must be greater than 0".into());
    }
    if let Some(path) = &r.ssl_ca_file {
        Trust {
            ssl_cert_file: None,
            ca_file: Some(path.clone()),
        }
        .roots()
        .map_err(|e| format!("schema_registry: {e}"))?;
    }
    Ok(())
}

/// `[group]`: ownership moves between members, and only transactional ids and the group's
/// generation fence the member that lost a chain.
fn group(g: &super::GroupConfig, k: &KafkaConfig) -> Result<(), String> {
    if !k.transactional {
        return Err(
            "`[group]` requires exactly-once mode (a member that lost a chain is fenced by its transactional id); set kafka.transactional = true or remove [group]"
                .into(),
        );
    }
    if g.id.trim().is_empty()
        || g.id
            .contains(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
    {
        return Err(format!(
            "`group.id` {:?} must be non-empty ASCII letters, digits, `.`, `_` or `-` (it names the membership topics)",
            g.id
        ));
    }
    if !(6_000..=300_000).contains(&g.session_timeout_ms) {
        return Err("`group.session_timeout_ms` must be between 6000 and 300000 (the broker's default bounds)".into());
    }
    Ok(())
}
