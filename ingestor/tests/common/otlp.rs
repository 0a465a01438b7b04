//! An OTLP/HTTP receiver that lives in the test: it decodes `/v1/traces` and `/v1/metrics`
//! request bodies with the `opentelemetry-proto` types (the real protocol, protobuf), and
//! keeps what arrived.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

#[derive(Default)]
struct Received {
    spans: Vec<Span>,
    resources: Vec<BTreeMap<String, String>>,
    /// name -> (unit, kind), kind one of gauge, sum, monotonic_sum, histogram.
    metrics: BTreeMap<String, (String, &'static str)>,
    /// Every attribute value seen on a metric data point.
    metric_attributes: Vec<(String, String)>,
    requests: usize,
}

pub struct OtlpReceiver {
    pub port: u16,
    received: Arc<Mutex<Received>>,
}

pub fn value_text(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

pub fn attrs(kv: &[KeyValue]) -> BTreeMap<String, String> {
    kv.iter()
        .map(|kv| (kv.key.clone(), value_text(&kv.value)))
        .collect()
}

/// The gRPC side: the collector services from `opentelemetry-proto`, served by tonic.
mod grpc {
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService;
    use opentelemetry_proto::tonic::collector::metrics::v1::{
        ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    };
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use tonic::{Request, Response, Status};

    use super::Received;

    #[derive(Clone)]
    pub struct Sink(pub Arc<Mutex<Received>>);

    #[tonic::async_trait]
    impl TraceService for Sink {
        async fn export(
            &self,
            req: Request<ExportTraceServiceRequest>,
        ) -> Result<Response<ExportTraceServiceResponse>, Status> {
            super::record_traces(req.into_inner(), &self.0);
            Ok(Response::new(ExportTraceServiceResponse::default()))
        }
    }

    #[tonic::async_trait]
    impl MetricsService for Sink {
        async fn export(
            &self,
            req: Request<ExportMetricsServiceRequest>,
        ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
            super::record_metrics(req.into_inner(), &self.0);
            Ok(Response::new(ExportMetricsServiceResponse::default()))
        }
    }
}

impl OtlpReceiver {
    /// An OTLP/gRPC receiver (tonic, in its own runtime thread).
    pub fn start_grpc() -> Self {
        use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer;
        use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceServiceServer;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let received = Arc::new(Mutex::new(Received::default()));
        let sink = grpc::Sink(received.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let _ = tonic::transport::Server::builder()
                    .add_service(TraceServiceServer::new(sink.clone()))
                    .add_service(MetricsServiceServer::new(sink))
                    .serve_with_incoming(incoming)
                    .await;
            });
        });
        Self { port, received }
    }

    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = Arc::new(Mutex::new(Received::default()));
        let r = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let r = r.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &r);
                });
            }
        });
        Self { port, received }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn spans(&self) -> Vec<Span> {
        self.lock().spans.clone()
    }

    pub fn resources(&self) -> Vec<BTreeMap<String, String>> {
        self.lock().resources.clone()
    }

    pub fn metrics(&self) -> BTreeMap<String, (String, &'static str)> {
        self.lock().metrics.clone()
    }

    pub fn metric_attributes(&self) -> Vec<(String, String)> {
        self.lock().metric_attributes.clone()
    }

    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The Prometheus names an OTLP metric gets (OpenTelemetry → Prometheus translation with
/// unit and type suffixes, as Prometheus' OTLP receiver and the collector's exporter do).
pub fn prometheus_names(name: &str, unit: &str, kind: &str) -> Vec<String> {
    let mut base = name.replace(['.', '-'], "_");
    let suffix = match unit {
        "s" => Some("seconds"),
        "ms" => Some("milliseconds"),
        "By" => Some("bytes"),
        "1" if kind == "gauge" => Some("ratio"),
        u if u.is_empty() || u.starts_with('{') || u == "1" => None,
        other => Some(other),
    };
    if let Some(s) = suffix
        && !base.ends_with(s)
    {
        base = format!("{base}_{s}");
    }
    match kind {
        "monotonic_sum" => vec![format!("{base}_total")],
        "histogram" => ["bucket", "sum", "count"]
            .iter()
            .map(|s| format!("{base}_{s}"))
            .collect(),
        _ => vec![base],
    }
}

fn serve(stream: TcpStream, received: &Mutex<Received>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_owned();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        record(&path, &body, received);
        out.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
        )?;
    }
}

fn record(path: &str, body: &[u8], received: &Mutex<Received>) {
    if path.ends_with("/v1/traces") {
        if let Ok(req) = ExportTraceServiceRequest::decode(body) {
            record_traces(req, received);
        }
    } else if path.ends_with("/v1/metrics")
        && let Ok(req) = ExportMetricsServiceRequest::decode(body)
    {
        record_metrics(req, received);
    }
}

fn record_traces(req: ExportTraceServiceRequest, received: &Mutex<Received>) {
    let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
    r.requests += 1;
    {
        for rs in req.resource_spans {
            if let Some(res) = &rs.resource {
                r.resources.push(attrs(&res.attributes));
            }
            for ss in rs.scope_spans {
                r.spans.extend(ss.spans);
            }
        }
    }
}

fn record_metrics(req: ExportMetricsServiceRequest, received: &Mutex<Received>) {
    let mut r = received.lock().unwrap_or_else(|e| e.into_inner());
    r.requests += 1;
    {
        for rm in req.resource_metrics {
            if let Some(res) = &rm.resource {
                r.resources.push(attrs(&res.attributes));
            }
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    let (kind, points): (&'static str, Vec<&[KeyValue]>) = match &m.data {
                        Some(Data::Gauge(g)) => (
                            "gauge",
                            g.data_points
                                .iter()
                                .map(|p| p.attributes.as_slice())
                                .collect(),
                        ),
                        Some(Data::Sum(s)) if s.is_monotonic => (
                            "monotonic_sum",
                            s.data_points
                                .iter()
                                .map(|p| p.attributes.as_slice())
                                .collect(),
                        ),
                        Some(Data::Sum(s)) => (
                            "sum",
                            s.data_points
                                .iter()
                                .map(|p| p.attributes.as_slice())
                                .collect(),
                        ),
                        Some(Data::Histogram(h)) => (
                            "histogram",
                            h.data_points
                                .iter()
                                .map(|p| p.attributes.as_slice())
                                .collect(),
                        ),
                        _ => ("other", vec![]),
                    };
                    let mut point_attrs = Vec::new();
                    for p in points {
                        point_attrs.extend(attrs(p));
                    }
                    r.metric_attributes.extend(point_attrs);
                    r.metrics.insert(m.name.clone(), (m.unit.clone(), kind));
                }
            }
        }
    }
}
