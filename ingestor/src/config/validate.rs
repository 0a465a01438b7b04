//! Checks that span fields: each failure is one sentence saying what to fix.

use std::collections::HashSet;

use super::Config;

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
    if c.kafka.transactional && c.kafka.transaction_max_blocks == 0 {
        return Err("`kafka.transaction_max_blocks` must be greater than 0".into());
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
        match url::Url::parse(&ch.ws_url) {
            Ok(u) if u.scheme() == "ws" || u.scheme() == "wss" => {}
            _ => return Err(format!("{at}: `ws_url` must be a ws:// or wss:// URL")),
        }
        let topic = ch.topic();
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
        if topic == c.kafka.checkpoint_topic {
            return Err(format!("{at}: topic `{topic}` is the checkpoint topic"));
        }
        if !topics.insert(topic.clone()) {
            return Err(format!("{at}: topic `{topic}` is used by another chain"));
        }
        let positive = [
            ("connect_timeout_ms", ch.connect_timeout_ms),
            ("request_timeout_ms", ch.request_timeout_ms),
            ("keepalive_interval_ms", ch.keepalive_interval_ms),
            ("head_poll_interval_ms", ch.head_poll_interval_ms),
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
        if ch.reconnect_backoff_max_ms < ch.reconnect_backoff_initial_ms {
            return Err(format!(
                "{at}: `reconnect_backoff_max_ms` must be at least `reconnect_backoff_initial_ms`"
            ));
        }
    }
    Ok(())
}
