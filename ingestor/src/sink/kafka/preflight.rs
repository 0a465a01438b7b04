//! The first contact with the cluster at start-up: an authentication or TLS failure, or an
//! address that is not a broker's client listener of the configured protocol, is reported
//! as exactly that, in one line, instead of librdkafka retrying it forever.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, Producer as _, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;

use super::client::client_config;
use crate::sink::SinkError;

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

    /// Whether `reason` is the broker's verdict on us, not a connection that broke during
    /// the exchange. librdkafka reports any failure of a SASL handshake as an
    /// authentication error, a lost connection or a timeout too (`mechanism handshake
    /// failed: Local: Broker transport failure`), and a TLS handshake whose peer went
    /// away as a failed handshake (`SSL handshake failed: Disconnected`). On a busy host,
    /// or a broker still starting, those happen and the next connection succeeds; a
    /// wrong password or an untrusted certificate never does.
    fn definite(self, reason: &str) -> bool {
        match self {
            Self::Authentication => !reason.contains("Local: "),
            Self::Handshake => {
                let reason = reason.to_ascii_lowercase();
                !(reason.contains("disconnected") || reason.contains("local: "))
            }
            Self::ClientCertificate => true,
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

/// Whether a connection failure librdkafka logged (facility `FAIL`) says the peer closed
/// a connection it had accepted (`Disconnected: connection closed by peer ...`,
/// `Disconnected while requesting ApiVersion ...`), rather than that nothing listens
/// (`Connect to ... failed`).
fn closed_by_peer(failure: &str) -> bool {
    failure.contains("Disconnected") && !failure.contains("SSL handshake failed")
}

/// What librdkafka reported during the first contact.
#[derive(Default)]
struct Seen {
    /// The first authentication or TLS refusal.
    refusal: Option<(Refusal, String)>,
    /// The last connection failure, when it was a connection the peer accepted and closed.
    closed: Option<String>,
}

/// Keeps what [`Seen`] holds from librdkafka's error and log callbacks. Connection
/// failures reach only the log (the error callback says no more than "all brokers down").
#[derive(Clone, Default)]
struct FirstContact(Arc<Mutex<Seen>>);

impl ClientContext for FirstContact {
    fn error(&self, error: KafkaError, reason: &str) {
        let Some(code) = error.rdkafka_error_code() else {
            return;
        };
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(refusal) = Refusal::of(code, reason) {
            seen.refusal
                .get_or_insert_with(|| (refusal, reason.to_owned()));
        }
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if fac == "FAIL" {
            // `[thrd:<broker>]: <broker>: <failure>`. The last failure decides: a broker
            // that closed connections and is now gone is down, not a wrong listener.
            let failure = log_message
                .split_once("]: ")
                .map_or(log_message, |(_, rest)| rest);
            let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
            seen.closed = closed_by_peer(failure).then(|| failure.to_owned());
        }
        // What the default callback does.
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {log_message}")
            }
            RDKafkaLogLevel::Warning => {
                tracing::warn!(target: "librdkafka", "librdkafka: {fac} {log_message}")
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "librdkafka: {fac} {log_message}")
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(target: "librdkafka", "librdkafka: {fac} {log_message}")
            }
        }
    }
}

impl ProducerContext for FirstContact {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

impl FirstContact {
    fn take_refusal(&self) -> Option<(Refusal, String)> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refusal
            .take()
    }

    fn last_closed(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed
            .clone()
    }
}

/// The error of a refusal.
fn refused(k: &KafkaConfig, refusal: Refusal, reason: &str) -> SinkError {
    SinkError::Security {
        what: refusal.what(),
        brokers: k.brokers.clone(),
        reason: one_line(reason),
        fix: refusal.fix(),
    }
}

/// librdkafka's reason on one line.
fn one_line(reason: &str) -> String {
    reason.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Asks the cluster for its metadata until it answers, a security error is reported, or
/// `admin_timeout_ms` passes. Blocks: call from `spawn_blocking`.
///
/// An answer wins over any refusal reported meanwhile (it came over a connection that
/// authenticated). A refusal that may be a broken connection ([`Refusal::definite`]) is
/// retried until the deadline, and reported then.
///
/// An address that answers but serves no metadata is a KRaft controller's listener: an
/// error at once. At the deadline, a peer that accepted connections and closed them is a
/// listener of another protocol ([`SinkError::WrongListener`]); no answer at all is
/// [`SinkError::Unreachable`].
///
/// A producer rather than an admin client: librdkafka delivers errors on its main queue,
/// which only a producer's (or consumer's) `poll` serves.
pub fn check_cluster(k: &KafkaConfig) -> Result<(), SinkError> {
    let context = FirstContact::default();
    let client: BaseProducer<FirstContact> = client_config(k, "ethhook-ingestor-preflight")
        .create_with_context(context.clone())
        .map_err(|e| SinkError::Client(Box::new(e)))?;
    let deadline = Instant::now() + Duration::from_millis(k.admin_timeout_ms);
    let mut maybe_refused = None;
    loop {
        let answer = client
            .client()
            .fetch_metadata(None, Duration::from_millis(500));
        // A KRaft controller answers ApiVersions without the Metadata API; librdkafka then
        // fails the request at once, and would forever.
        if let Err(KafkaError::MetadataFetch(RDKafkaErrorCode::UnsupportedFeature)) = &answer {
            return Err(SinkError::WrongListener {
                brokers: k.brokers.clone(),
                seen: "answered but serve no metadata".into(),
                reason: RDKafkaErrorCode::UnsupportedFeature.to_string(),
                likely: "this looks like a KRaft controller listener, not a broker's: point kafka.brokers at the brokers' client listeners".into(),
            });
        }
        if answer.is_ok() {
            return Ok(());
        }
        // rdkafka's `poll` serves one event and then stops if its time is up: with a zero
        // timeout, one event per metadata request, so a backlog of earlier errors could
        // keep a TLS failure waiting past the deadline. 50 ms serves everything queued.
        client.poll(Duration::from_millis(50));
        if let Some((refusal, reason)) = context.take_refusal() {
            if refusal.definite(&reason) {
                return Err(refused(k, refusal, &reason));
            }
            tracing::debug!(target: "librdkafka", "first contact: retrying after {reason}");
            maybe_refused = Some((refusal, reason));
        }
        if Instant::now() >= deadline {
            if let Some((refusal, reason)) = maybe_refused {
                return Err(refused(k, refusal, &reason));
            }
            if let Some(reason) = context.last_closed() {
                return Err(SinkError::WrongListener {
                    brokers: k.brokers.clone(),
                    seen: format!(
                        "accepted connections but closed them without answering within {} ms (kafka.admin_timeout_ms)",
                        k.admin_timeout_ms
                    ),
                    reason: one_line(&reason),
                    likely: format!(
                        "the address is likely a listener of another security protocol (TLS or SASL) than kafka.security_protocol = \"{}\": check kafka.brokers and kafka.security_protocol",
                        k.security_protocol.as_str()
                    ),
                });
            }
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

    #[test]
    fn a_connection_lost_during_a_handshake_is_not_a_verdict() {
        use RDKafkaErrorCode::{Authentication, BrokerTransportFailure, SSL};
        let cases = [
            // The broker's answers: at once.
            (
                Authentication,
                "SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 243ms in state AUTH_REQ)",
                true,
            ),
            (
                Authentication,
                "SASL SCRAM-SHA-512 mechanism handshake failed: Broker: Unsupported SASL mechanism: broker's supported mechanisms: PLAIN",
                true,
            ),
            (
                SSL,
                "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified",
                true,
            ),
            (
                BrokerTransportFailure,
                "Receive failed: error:0A000416:SSL routines::ssl/tls alert certificate unknown: SSL alert number 46",
                true,
            ),
            // A connection that broke or timed out mid-handshake: retried until the deadline.
            (
                Authentication,
                "SASL SCRAM-SHA-512 mechanism handshake failed: Local: Broker transport failure: broker's supported mechanisms: (n/a)",
                false,
            ),
            (
                Authentication,
                "SASL SCRAM-SHA-512 mechanism handshake failed: Local: Timed out: broker's supported mechanisms: (n/a)",
                false,
            ),
            (
                BrokerTransportFailure,
                "SSL handshake failed: Disconnected",
                false,
            ),
        ];
        for (code, reason, want) in cases {
            let refusal = Refusal::of(code, reason).expect(reason);
            assert_eq!(refusal.definite(reason), want, "{reason}");
        }
    }

    #[test]
    fn a_closed_connection_is_told_from_a_refused_one() {
        let cases = [
            // Kafka 4.1's SASL_SSL listener, reached without TLS (as printed).
            (
                "127.0.0.1:33847/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN (after 83ms in state APIVERSION_QUERY)",
                true,
            ),
            (
                "127.0.0.1:9/bootstrap: Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?) or broker version is < 0.10 (see api.version.request)",
                true,
            ),
            (
                "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused (after 0ms in state CONNECT)",
                false,
            ),
            (
                "127.0.0.1:9/bootstrap: SSL handshake failed: Disconnected",
                false,
            ),
        ];
        for (failure, want) in cases {
            assert_eq!(closed_by_peer(failure), want, "{failure}");
        }
    }
}
