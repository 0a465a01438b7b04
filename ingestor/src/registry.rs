//! The Schema Registry at start-up: `schemas/evm_log.avsc` is registered under each chain
//! topic's subject (`<topic>-value`, TopicNameStrategy, the Redpanda and Confluent default),
//! and each decoded event's schema under its topic's; the id each gets frames that topic's
//! values (see [`crate::encode::Framing`]).
//!
//! One request per chain: reqwest with the service's TLS trust, not a registry client crate
//! (they pin their own HTTP and Avro stacks for what is one POST here).
//!
//! A registry that cannot be reached or answers 5xx (also 408, 429) is taken as passing
//! trouble: [`Registry::register_retrying`] retries with capped exponential backoff for up
//! to `schema_registry.retry_timeout_ms`, logging each failure, then gives up with one
//! line. A refusal (409, 401/403, another 4xx) or a TLS failure is final at once. Nothing
//! is published before every chain's schema is registered.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backoff;
use crate::config::RegistryConfig;
use crate::rpc::redact::redact_url;
use crate::rpc::tls::{self, Trust};

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The registry refused or could not be reached. Each is one line and stops the service.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// HTTP 409: the subject holds a schema this one is not compatible with.
    #[error(
        "schema registry {url} refused {what} under subject `{subject}` as incompatible (HTTP 409: {message}); the subject holds another schema: relax its compatibility level or publish to a new topic"
    )]
    Incompatible {
        /// Redacted registry URL.
        url: String,
        /// The schema: `schemas/evm_log.avsc`, or a decoded event's.
        what: String,
        /// The subject.
        subject: String,
        /// The registry's message.
        message: String,
    },
    /// HTTP 401 or 403.
    #[error(
        "schema registry {url} refused our credentials (HTTP {status}); check schema_registry.username and schema_registry.password"
    )]
    Unauthorized {
        /// Redacted registry URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// Any other answer that is not an id.
    #[error("schema registry {url} answered HTTP {status} registering under `{subject}`: {body}")]
    Refused {
        /// Redacted registry URL.
        url: String,
        /// The subject.
        subject: String,
        /// The status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// No answer (connection, timeout).
    #[error("schema registry {url} unreachable: {reason}; check schema_registry.url")]
    Unreachable {
        /// Redacted registry URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The TLS handshake failed (the registry's certificate is not trusted, or no TLS).
    #[error(
        "schema registry {url} TLS handshake failed: {reason}; check schema_registry.url and schema_registry.ssl_ca_file"
    )]
    Handshake {
        /// Redacted registry URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A passing failure lasted longer than `schema_registry.retry_timeout_ms`.
    #[error(
        "{last}; gave up after {attempts} attempts in {waited_ms} ms (schema_registry.retry_timeout_ms)"
    )]
    GaveUp {
        /// The last failure.
        last: Box<RegistryError>,
        /// Requests made.
        attempts: u32,
        /// Time since the first one.
        waited_ms: u64,
    },
    /// The TLS trust settings cannot be used.
    #[error("schema registry: {0}")]
    Tls(#[from] tls::TlsConfigError),
}

impl RegistryError {
    /// Whether the failure may pass by itself, so that the request is worth retrying: no
    /// answer, or HTTP 5xx, 408 or 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::Refused { status, .. } => *status >= 500 || matches!(status, 408 | 429),
            Self::Incompatible { .. }
            | Self::Unauthorized { .. }
            | Self::Handshake { .. }
            | Self::GaveUp { .. }
            | Self::Tls(_) => false,
        }
    }
}

/// First and longest pause between attempts of [`Registry::register_retrying`].
const RETRY_INITIAL: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// The subject of a topic's values (TopicNameStrategy).
pub fn subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// A client for the configured registry.
pub struct Registry {
    client: reqwest::Client,
    cfg: RegistryConfig,
}

impl Registry {
    /// A client with the service's TLS trust plus `ssl_ca_file`.
    pub fn new(cfg: &RegistryConfig) -> Result<Self, RegistryError> {
        let trust = Trust::from_env(cfg.ssl_ca_file.as_deref()).client_config()?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*trust).clone())
            .timeout(Duration::from_millis(cfg.request_timeout_ms))
            .build()
            .map_err(|e| RegistryError::Unreachable {
                url: redact_url(&cfg.url),
                reason: e.without_url().to_string(),
            })?;
        Ok(Self {
            client,
            cfg: cfg.clone(),
        })
    }

    /// [`Registry::register`], retrying a transient failure
    /// ([`RegistryError::is_transient`]) with backoff until `retry_timeout_ms` has passed
    /// since the first attempt; each failure is logged ([`crate::events::RegistryRetrying`]).
    pub async fn register_retrying(
        &self,
        subject: &str,
        schema: &str,
        what: &str,
    ) -> Result<u32, RegistryError> {
        let started = Instant::now();
        let bound = Duration::from_millis(self.cfg.retry_timeout_ms);
        let mut attempt = 0u32;
        loop {
            let error = match self.register(subject, schema, what).await {
                Ok(id) => return Ok(id),
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(e),
            };
            attempt += 1;
            let waited = started.elapsed();
            if waited >= bound {
                return Err(RegistryError::GaveUp {
                    last: Box::new(error),
                    attempts: attempt,
                    waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                });
            }
            let pause =
                backoff::jittered(attempt - 1, RETRY_INITIAL, RETRY_MAX).min(bound - waited);
            crate::events::RegistryRetrying {
                subject,
                attempt,
                retry_in_ms: u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
                error: &error,
            }
            .emit();
            tokio::time::sleep(pause).await;
        }
    }

    /// Registers `schema` (Avro JSON; `what` names it in errors) under `subject`; returns
    /// its id. Registering a schema the subject already has returns the existing id.
    pub async fn register(
        &self,
        subject: &str,
        schema: &str,
        what: &str,
    ) -> Result<u32, RegistryError> {
        let shown = redact_url(&self.cfg.url);
        let url = format!(
            "{}/subjects/{subject}/versions",
            self.cfg.url.trim_end_matches('/')
        );
        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .header(reqwest::header::ACCEPT, CONTENT_TYPE)
            .body(json!({ "schema": schema }).to_string());
        if let (Some(user), Some(password)) = (&self.cfg.username, &self.cfg.password) {
            request = request.basic_auth(user, Some(password.expose()));
        }
        let response = request
            .send()
            .await
            .map_err(|e| match tls::find_rustls_error(&e) {
                Some(r) => RegistryError::Handshake {
                    url: shown.clone(),
                    reason: tls::describe(r),
                },
                None => RegistryError::Unreachable {
                    url: shown.clone(),
                    reason: e.without_url().to_string(),
                },
            })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_str(&body).ok();
        let message = parsed
            .as_ref()
            .and_then(|v| v["message"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| body.split_whitespace().collect::<Vec<_>>().join(" "));
        match status {
            StatusCode::CONFLICT => Err(RegistryError::Incompatible {
                url: shown,
                what: what.to_owned(),
                subject: subject.to_owned(),
                message,
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Unauthorized {
                url: shown,
                status: status.as_u16(),
            }),
            s if s.is_success() => parsed
                .as_ref()
                .and_then(|v| v["id"].as_u64())
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| RegistryError::Refused {
                    url: shown,
                    subject: subject.to_owned(),
                    status: s.as_u16(),
                    body: format!("no schema id in the answer: {message:.200}"),
                }),
            s => Err(RegistryError::Refused {
                url: shown,
                subject: subject.to_owned(),
                status: s.as_u16(),
                body: format!("{message:.200}"),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16) -> RegistryError {
        RegistryError::Refused {
            url: "http://r".into(),
            subject: "t-value".into(),
            status,
            body: String::new(),
        }
    }

    #[test]
    fn only_passing_failures_are_retried() {
        for status in [500, 502, 503, 504, 408, 429] {
            assert!(refused(status).is_transient(), "{status}");
        }
        for status in [400, 404, 422] {
            assert!(!refused(status).is_transient(), "{status}");
        }
        let url = || "http://r".to_owned();
        assert!(
            RegistryError::Unreachable {
                url: url(),
                reason: "connection refused".into()
            }
            .is_transient()
        );
        assert!(
            !RegistryError::Handshake {
                url: url(),
                reason: "unknown issuer".into()
            }
            .is_transient()
        );
        assert!(
            !RegistryError::Unauthorized {
                url: url(),
                status: 401
            }
            .is_transient()
        );
        assert!(
            !RegistryError::Incompatible {
                url: url(),
                what: "schemas/evm_log.avsc".into(),
                subject: "t-value".into(),
                message: String::new()
            }
            .is_transient()
        );
    }
}
