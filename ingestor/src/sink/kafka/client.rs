//! Building the rdkafka clients: the settings every client shares, and the producer.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::{Producer as _, ThreadedProducer};

use crate::config::KafkaConfig;

use super::acks::AckContext;
use crate::sink::SinkError;

/// What every client of the service needs: the brokers, and how to reach them securely
/// (the first-class `kafka.security_protocol`, `sasl_*`, `ssl_*` keys, then any `security.*`,
/// `sasl.*` or `ssl.*` of `librdkafka_options`, which win).
pub fn client_config(k: &KafkaConfig, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &k.brokers)
        .set("client.id", client_id)
        // TCP_NODELAY: a small produce request must not wait for the broker's delayed ACK.
        .set("socket.nagle.disable", "true")
        .set("security.protocol", k.security_protocol.as_str());
    if let Some(m) = k.sasl_mechanism {
        c.set("sasl.mechanism", m.as_str());
    }
    if let Some(u) = &k.sasl_username {
        c.set("sasl.username", u);
    }
    if let Some(p) = &k.sasl_password {
        c.set("sasl.password", p.expose());
    }
    if k.security_protocol.tls() {
        // Statically linked OpenSSL has no usable default store: probe the platform's.
        let ca = k
            .ssl_ca_file
            .as_ref()
            .map_or_else(|| "probe".to_owned(), |f| f.display().to_string());
        c.set("ssl.ca.location", ca);
    }
    if let (Some(cert), Some(key)) = (&k.ssl_cert_file, &k.ssl_key_file) {
        c.set("ssl.certificate.location", cert.display().to_string())
            .set("ssl.key.location", key.display().to_string());
    }
    for (key, value) in &k.librdkafka_options {
        if key.starts_with("security.") || key.starts_with("sasl.") || key.starts_with("ssl.") {
            c.set(key, value);
        }
    }
    c
}

pub(in crate::sink) fn base_config(k: &KafkaConfig) -> ClientConfig {
    client_config(k, "ethhook-ingestor")
}

/// The producer type: delivery reports count into each update's acknowledgements, and
/// librdkafka statistics feed the metrics ([`AckContext`]).
pub type Producer = ThreadedProducer<AckContext>;

/// Largest record the producer sends (a log's data can be large; the topic's
/// `max.message.bytes` is checked against it at start-up).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// The idempotent producer all chains share (one librdkafka instance, one I/O thread set).
pub fn producer(k: &KafkaConfig) -> Result<Producer, SinkError> {
    producer_config(k)
        .create_with_context(AckContext)
        .map_err(|e| SinkError::Client(Box::new(e)))
}

/// Producer settings: the service's defaults, then `librdkafka_options`, then idempotence.
pub(in crate::sink) fn producer_config(k: &KafkaConfig) -> ClientConfig {
    let mut c = base_config(k);
    c.set("message.timeout.ms", k.message_timeout_ms.to_string())
        .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
        .set(
            "queue.buffering.max.messages",
            k.queue_max_messages.to_string(),
        )
        .set("queue.buffering.max.kbytes", k.queue_max_kbytes.to_string())
        // A live block's records go out at once: batches still form on their own while a
        // request is in flight (catch-up), so waiting for more only adds latency.
        .set("linger.ms", "0")
        // Java's default: Kafka Connect and Java producers send the same key to the same
        // partition (librdkafka's own default, consistent_random, does not).
        .set("partitioner", "murmur2_random")
        .set("statistics.interval.ms", "5000")
        .set("acks", "all");
    for (key, value) in &k.librdkafka_options {
        c.set(key, value);
    }
    // Idempotence is part of the contract (ordering and no duplicates on retry): not overridable.
    c.set("enable.idempotence", "true");
    c
}

/// Waits up to `timeout` for every queued record to be acknowledged.
pub fn flush(producer: &Producer, timeout: Duration) -> Result<(), String> {
    producer.flush(timeout).map_err(|e| e.to_string())
}
