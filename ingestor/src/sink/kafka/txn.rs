//! The chain's transactional producer (`transactional.id = <prefix>-<chain_id>`) and how
//! its errors are read: being fenced stops the chain, a fatal error rebuilds the producer,
//! anything else aborts the transaction.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;
use crate::sink::SinkError;

use super::acks::AckContext;
use super::client::{Producer, producer_config};

/// `<prefix>-<chain_id>`.
pub fn transactional_id(k: &KafkaConfig, chain_id: u64) -> String {
    format!("{}-{chain_id}", k.transactional_id_prefix)
}

/// Creates the chain's transactional producer and initialises transactions (which fences
/// any earlier instance with the same id).
pub async fn transactional_producer(k: &KafkaConfig, chain_id: u64) -> Result<Producer, SinkError> {
    let id = transactional_id(k, chain_id);
    let mut c: ClientConfig = producer_config(k);
    // librdkafka requires message.timeout.ms <= transaction.timeout.ms.
    let message_timeout_ms = k.message_timeout_ms.min(k.transaction_timeout_ms);
    c.set("transactional.id", &id)
        .set(
            "transaction.timeout.ms",
            k.transaction_timeout_ms.to_string(),
        )
        .set("message.timeout.ms", message_timeout_ms.to_string());
    let producer: Producer = c
        .create_with_context(AckContext)
        .map_err(|e| SinkError::Client(Box::new(e)))?;
    let timeout = Duration::from_millis(k.transaction_timeout_ms);
    let p = producer.clone();
    tokio::task::spawn_blocking(move || p.init_transactions(timeout))
        .await
        .map_err(|e| aborted(format!("init_transactions task: {e}"), true))?
        .map_err(|e| classify(&id, e))?;
    Ok(producer)
}

/// The transaction was aborted; `recreate_producer` when the producer cannot go on.
pub(in crate::sink) fn aborted(reason: String, recreate_producer: bool) -> SinkError {
    SinkError::Aborted {
        reason,
        recreate_producer,
    }
}

fn is_fenced(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::Fenced
            | RDKafkaErrorCode::ProducerFenced
            | RDKafkaErrorCode::InvalidProducerEpoch
    )
}

/// Maps a transactional API error: fenced stops, fatal recreates, anything else aborts.
pub(in crate::sink) fn classify(transactional_id: &str, e: KafkaError) -> SinkError {
    if e.rdkafka_error_code().is_some_and(is_fenced) {
        return SinkError::Fenced {
            transactional_id: transactional_id.to_owned(),
        };
    }
    let fatal = matches!(&e, KafkaError::Transaction(t) if t.is_fatal());
    aborted(e.to_string(), fatal)
}
