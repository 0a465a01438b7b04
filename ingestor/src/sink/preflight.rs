//! The first contact with the cluster at start-up: an authentication or TLS failure is
//! reported as exactly that, in one line, instead of librdkafka retrying it forever.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;

use super::client::client_config;
use super::error::SinkError;

/// Keeps the first authentication or TLS error librdkafka reports.
#[derive(Clone, Default)]
struct FirstSecurityError(Arc<Mutex<Option<(RDKafkaErrorCode, String)>>>);

impl ClientContext for FirstSecurityError {
    fn error(&self, error: KafkaError, reason: &str) {
        let Some(mut code) = error.rdkafka_error_code() else {
            return;
        };
        // A failed handshake can also arrive as a transport failure whose reason names it
        // (librdkafka's wording), depending on which side closes first.
        if code == RDKafkaErrorCode::BrokerTransportFailure
            && (reason.contains("SSL handshake failed")
                || reason.contains("certificate verify failed"))
        {
            code = RDKafkaErrorCode::SSL;
        }
        if matches!(
            code,
            RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SSL
        ) {
            let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| (code, reason.to_owned()));
        }
    }
}

impl ProducerContext for FirstSecurityError {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

impl FirstSecurityError {
    fn take(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Asks the cluster for its metadata until it answers, a security error is reported, or
/// `admin_timeout_ms` passes (then the brokers are unreachable). Blocks: call from
/// `spawn_blocking`.
///
/// A producer rather than an admin client: librdkafka delivers errors on its main queue,
/// which only a producer's (or consumer's) `poll` serves.
pub fn check_cluster(k: &KafkaConfig) -> Result<(), SinkError> {
    let context = FirstSecurityError::default();
    let client: BaseProducer<FirstSecurityError> = client_config(k, "ethhook-ingestor-preflight")
        .create_with_context(context.clone())
        .map_err(|e| SinkError::Client(Box::new(e)))?;
    let deadline = Instant::now() + Duration::from_millis(k.admin_timeout_ms);
    loop {
        let answered = client
            .client()
            .fetch_metadata(None, Duration::from_millis(500))
            .is_ok();
        // rdkafka's `poll` serves one event and then stops if its time is up: with a zero
        // timeout, one event per metadata request, so a backlog of earlier errors could
        // keep a TLS failure waiting past the deadline. 50 ms serves everything queued.
        client.poll(Duration::from_millis(50));
        if let Some((code, reason)) = context.take() {
            return Err(SinkError::Security {
                what: if code == RDKafkaErrorCode::Authentication {
                    "authentication failed"
                } else {
                    "TLS handshake failed"
                },
                brokers: k.brokers.clone(),
                reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
                fix: if code == RDKafkaErrorCode::Authentication {
                    "check kafka.sasl_mechanism, kafka.sasl_username and kafka.sasl_password"
                } else {
                    "check kafka.ssl_ca_file (the CA that signed the brokers' certificates) and kafka.security_protocol"
                },
            });
        }
        if answered {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(SinkError::Unreachable {
                brokers: k.brokers.clone(),
                waited_ms: k.admin_timeout_ms,
            });
        }
    }
}
