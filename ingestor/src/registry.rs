//! The Schema Registry at start-up: `schemas/evm_log.avsc` is registered under each chain
//! topic's subject (`<topic>-value`, TopicNameStrategy, the Redpanda and Confluent default),
//! and each decoded event's schema under its topic's; the id each gets frames that topic's
//! values (see [`crate::encode::Framing`]).
//!
//! One request per chain, once: reqwest with the service's TLS trust, not a registry
//! client crate (they pin their own HTTP and Avro stacks for what is one POST here).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

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
    /// No answer (connection, TLS, timeout).
    #[error("schema registry {url} unreachable: {reason}; check schema_registry.url")]
    Unreachable {
        /// Redacted registry URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The TLS trust settings cannot be used.
    #[error("schema registry: {0}")]
    Tls(#[from] tls::TlsConfigError),
}

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
        let response = request.send().await.map_err(|e| {
            let reason = match tls::find_rustls_error(&e) {
                Some(r) => tls::describe(r),
                None => e.without_url().to_string(),
            };
            RegistryError::Unreachable {
                url: shown.clone(),
                reason,
            }
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
