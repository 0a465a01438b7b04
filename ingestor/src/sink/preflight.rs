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

/// Why the cluster refused us at first contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// SASL: wrong mechanism, user or password.
    Authentication,
    /// We did not trust the broker's certificate (or TLS was not spoken).
    Handshake,
    /// The broker did not accept our client certificate (mutual TLS): it sent a TLS alert
    /// about a certificate. With TLS 1.3 that alert comes after our side of the handshake
    /// completed, so librdkafka reports it as a failed receive, not a failed handshake.
    ClientCertificate,
}

impl Refusal {
    /// Classifies one error librdkafka reported (its code and its reason text).
    fn of(code: RDKafkaErrorCode, reason: &str) -> Option<Self> {
        let reason = reason.to_ascii_lowercase();
        // OpenSSL names a received alert `ssl/tls alert <description>` (`sslv3 alert` in
        // older releases); the broker sends one about a certificate only for ours.
        if matches!(
            code,
            RDKafkaErrorCode::SSL | RDKafkaErrorCode::BrokerTransportFailure
        ) && reason.contains("alert")
            && reason.contains("certificate")
        {
            return Some(Self::ClientCertificate);
        }
        match code {
            RDKafkaErrorCode::Authentication => Some(Self::Authentication),
            RDKafkaErrorCode::SSL => Some(Self::Handshake),
            // A failed handshake can also arrive as a transport failure whose reason names
            // it (librdkafka's wording), depending on which side closes first.
            RDKafkaErrorCode::BrokerTransportFailure
                if reason.contains("ssl handshake failed")
                    || reason.contains("certificate verify failed") =>
            {
                Some(Self::Handshake)
            }
            _ => None,
        }
    }

    fn what(self) -> &'static str {
        match self {
            Self::Authentication => "authentication failed",
            Self::Handshake => "TLS handshake failed",
            Self::ClientCertificate => "TLS client certificate refused",
        }
    }

    fn fix(self) -> &'static str {
        match self {
            Self::Authentication => {
                "check kafka.sasl_mechanism, kafka.sasl_username and kafka.sasl_password"
            }
            Self::Handshake => {
                "check kafka.ssl_ca_file (the CA that signed the brokers' certificates) and kafka.security_protocol"
            }
            Self::ClientCertificate => {
                "check kafka.ssl_cert_file and kafka.ssl_key_file: a certificate the brokers require, signed by a CA they trust and not expired"
            }
        }
    }
}

/// Keeps the first authentication or TLS refusal librdkafka reports.
#[derive(Clone, Default)]
struct FirstSecurityError(Arc<Mutex<Option<(Refusal, String)>>>);

impl ClientContext for FirstSecurityError {
    fn error(&self, error: KafkaError, reason: &str) {
        let Some(refusal) = error
            .rdkafka_error_code()
            .and_then(|code| Refusal::of(code, reason))
        else {
            return;
        };
        let mut first = self.0.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| (refusal, reason.to_owned()));
    }
}

impl ProducerContext for FirstSecurityError {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

impl FirstSecurityError {
    fn take(&self) -> Option<(Refusal, String)> {
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
        if let Some((refusal, reason)) = context.take() {
            return Err(SinkError::Security {
                what: refusal.what(),
                brokers: k.brokers.clone(),
                reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
                fix: refusal.fix(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_told_apart_by_librdkafkas_code_and_reason() {
        use RDKafkaErrorCode::{Authentication, BrokerTransportFailure, SSL};
        let cases = [
            // Kafka 4.1 refusing an expired client certificate over TLS 1.3 (as printed).
            (
                BrokerTransportFailure,
                "ssl://127.0.0.1:43881/bootstrap: Receive failed: error:0A000416:SSL routines::ssl/tls alert certificate unknown: SSL alert number 46 (after 0ms in state APIVERSION_QUERY)",
                Some(Refusal::ClientCertificate),
            ),
            (
                SSL,
                "SSL handshake failed: error:0A000412:SSL routines::sslv3 alert bad certificate",
                Some(Refusal::ClientCertificate),
            ),
            (
                BrokerTransportFailure,
                "Receive failed: error:0A00045C:SSL routines::tlsv13 alert certificate required",
                Some(Refusal::ClientCertificate),
            ),
            (
                SSL,
                "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified",
                Some(Refusal::Handshake),
            ),
            (
                BrokerTransportFailure,
                "SSL handshake failed: Disconnected",
                Some(Refusal::Handshake),
            ),
            (
                Authentication,
                "SASL authentication error: Authentication failed during authentication due to invalid credentials",
                Some(Refusal::Authentication),
            ),
            (
                BrokerTransportFailure,
                "Connect to ipv4#127.0.0.1:9 failed: Connection refused",
                None,
            ),
        ];
        for (code, reason, want) in cases {
            assert_eq!(Refusal::of(code, reason), want, "{reason}");
        }
    }
}
