//! Telemetry: OTLP export of traces and metrics, the metric instruments, block spans, the
//! per-chain status behind the health endpoint, and librdkafka statistics.
//!
//! Configuration is the standard OpenTelemetry environment: `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or the per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `..._METRICS_ENDPOINT`),
//! `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc` or `http/protobuf`, default `http/protobuf`),
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_METRIC_EXPORT_INTERVAL`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_*`. With no endpoint, nothing is exported and
//! the instruments are only read by the health endpoint's `/metrics` ([`prometheus`]).
//! Export happens on background threads with bounded queues: an unreachable collector
//! drops telemetry, never blocks ingestion. An `https://` endpoint is
//! reached over rustls trusting what the nodes' TLS trusts (platform roots plus
//! `SSL_CERT_FILE`).

mod kafka_stats;
pub mod metrics;
pub mod prometheus;
pub mod rpc_metrics;
pub mod stall;
pub mod status;
pub mod trace;

use std::env;
use std::sync::Arc;

use opentelemetry::global;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
use opentelemetry_otlp::{
    MetricExporter, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use rdkafka::types::RDKafkaErrorCode;

pub use kafka_stats::KafkaContext;

/// The telemetry could not be set up from the environment.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// An unsupported `OTEL_EXPORTER_OTLP_PROTOCOL`.
    #[error(
        "OTEL_EXPORTER_OTLP_PROTOCOL={0:?} is not supported; use \"grpc\" or \"http/protobuf\""
    )]
    Protocol(String),
    /// The exporter refused its settings.
    #[error("OTLP exporter settings rejected: {0}")]
    Exporter(String),
    /// The TLS trust for an `https://` endpoint cannot be used.
    #[error("OTLP over https: {0}")]
    Tls(#[from] crate::rpc::tls::TlsConfigError),
}

/// Which OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Grpc,
    HttpProtobuf,
}

fn var(name: &str) -> Option<String> {
    env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn protocol(signal: &str) -> Result<Protocol, TelemetryError> {
    let raw = var(&format!("OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"))
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match raw.as_deref() {
        None | Some("http/protobuf") => Ok(Protocol::HttpProtobuf),
        Some("grpc") => Ok(Protocol::Grpc),
        Some(other) => Err(TelemetryError::Protocol(other.to_owned())),
    }
}

fn endpoint(signal: &str) -> Option<String> {
    var(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))
        .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// The transport settings both signals' exporters share.
struct Transport {
    /// For `http/protobuf`: a client with the service's TLS trust.
    http: Option<reqwest::blocking::Client>,
    /// For `grpc` to an `https://` endpoint.
    grpc_tls: Option<ClientTlsConfig>,
}

impl Transport {
    fn for_signals(signals: &[&str]) -> Result<Self, TelemetryError> {
        let mut http = None;
        let mut grpc_tls = None;
        for signal in signals {
            let Some(url) = endpoint(signal) else {
                continue;
            };
            match protocol(signal)? {
                Protocol::HttpProtobuf if http.is_none() => http = Some(blocking_client()?),
                Protocol::Grpc if url.starts_with("https") && grpc_tls.is_none() => {
                    let mut tls = ClientTlsConfig::new().with_enabled_roots();
                    if let Some(file) = crate::rpc::tls::Trust::from_env(None).ssl_cert_file {
                        let pem = std::fs::read(&file).map_err(|e| {
                            TelemetryError::Exporter(format!("{}: {e}", file.display()))
                        })?;
                        tls = tls.ca_certificate(Certificate::from_pem(pem));
                    }
                    grpc_tls = Some(tls);
                }
                _ => {}
            }
        }
        Ok(Self { http, grpc_tls })
    }

    fn http<B: WithHttpConfig + WithExportConfig>(&self, builder: B) -> B {
        let builder = builder.with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
        match &self.http {
            Some(client) => builder.with_http_client(client.clone()),
            None => builder,
        }
    }

    fn grpc<B: WithTonicConfig>(&self, builder: B) -> B {
        match &self.grpc_tls {
            Some(tls) => builder.with_tls_config(tls.clone()),
            None => builder,
        }
    }
}

/// A blocking HTTP client with the service's TLS trust. Built on its own thread: reqwest's
/// blocking client owns a runtime, which must not be created inside ours.
fn blocking_client() -> Result<reqwest::blocking::Client, TelemetryError> {
    let tls = crate::rpc::tls::Trust::from_env(None).client_config()?;
    let timeout = var("OTEL_EXPORTER_OTLP_TIMEOUT")
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_millis,
        );
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(timeout)
            .build()
    })
    .join()
    .map_err(|_| TelemetryError::Exporter("HTTP client thread panicked".into()))?
    .map_err(|e| TelemetryError::Exporter(e.to_string()))
}

/// Shuts the exporters down (flushing what is queued, within their timeouts) when dropped.
pub struct Guard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
    scrape: prometheus::Scrape,
    rpc: Arc<rpc_metrics::RpcMetrics>,
}

impl Guard {
    /// The handle `/metrics` renders the instruments through.
    pub fn scrape(&self) -> prometheus::Scrape {
        self.scrape.clone()
    }

    /// The per-endpoint node metrics, for the chains' followers.
    pub fn rpc_metrics(&self) -> Arc<rpc_metrics::RpcMetrics> {
        self.rpc.clone()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(t) = self.tracer.take() {
            let _ = t.shutdown();
        }
        if let Some(m) = self.meter.take() {
            let _ = m.shutdown();
        }
    }
}

/// Installs the global tracer and meter providers from the environment. Call inside the
/// Tokio runtime (the gRPC transport needs it), before any event is emitted.
pub fn init() -> Result<Guard, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(var("OTEL_SERVICE_NAME").unwrap_or_else(|| "ethhook-ingestor".into()))
        .build();
    let err = |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Exporter(e.to_string());
    let transport = Transport::for_signals(&["TRACES", "METRICS"])?;
    let tracer = if endpoint("TRACES").is_some() {
        let exporter = match protocol("TRACES")? {
            Protocol::Grpc => transport.grpc(SpanExporter::builder().with_tonic()).build(),
            Protocol::HttpProtobuf => transport.http(SpanExporter::builder().with_http()).build(),
        }
        .map_err(err)?;
        let provider = SdkTracerProvider::builder()
            .with_resource(resource.clone())
            .with_batch_exporter(exporter)
            .build();
        global::set_tracer_provider(provider.clone());
        Some(provider)
    } else {
        None
    };
    // Always a meter provider: `/metrics` reads it; OTLP export is added when configured.
    let (scrape, reader) = prometheus::Scrape::new();
    let mut meter = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(reader);
    let otlp_metrics = endpoint("METRICS").is_some();
    if otlp_metrics {
        let exporter = match protocol("METRICS")? {
            Protocol::Grpc => transport
                .grpc(MetricExporter::builder().with_tonic())
                .build(),
            Protocol::HttpProtobuf => transport
                .http(MetricExporter::builder().with_http())
                .build(),
        }
        .map_err(err)?;
        meter = meter.with_periodic_exporter(exporter);
    }
    let meter = meter.build();
    global::set_meter_provider(meter.clone());
    let rpc = Arc::new(rpc_metrics::RpcMetrics::new(&meter.meter(metrics::SCOPE)));
    let scrape = scrape.with_rpc(rpc.clone());
    crate::events::TelemetryStarted {
        traces: tracer.is_some(),
        metrics: otlp_metrics,
    }
    .emit();
    Ok(Guard {
        tracer,
        meter: Some(meter),
        scrape,
        rpc,
    })
}

/// A bounded label for a librdkafka error code.
pub fn code_label(code: RDKafkaErrorCode) -> &'static str {
    match code {
        RDKafkaErrorCode::BrokerTransportFailure => "broker_transport",
        RDKafkaErrorCode::AllBrokersDown => "all_brokers_down",
        RDKafkaErrorCode::MessageTimedOut => "message_timed_out",
        RDKafkaErrorCode::QueueFull => "queue_full",
        RDKafkaErrorCode::Resolve => "resolve",
        RDKafkaErrorCode::Authentication => "authentication",
        _ => "other",
    }
}
