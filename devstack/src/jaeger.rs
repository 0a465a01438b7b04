//! The pinned Jaeger (v2, an OpenTelemetry Collector build) as a child process: all in one,
//! in-memory storage, an OTLP/HTTP receiver and the query API on free loopback ports. A
//! config file of its own in the caller's directory (Jaeger's default config binds
//! 0.0.0.0 on fixed ports). Traces are read back through the query API
//! (`/api/traces`, what the Jaeger UI searches with).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

use crate::proc::{Managed, free_port, wait_for};

/// A running Jaeger.
pub struct Jaeger {
    /// The process.
    pub process: Managed,
    /// OTLP over HTTP (protobuf) on 127.0.0.1.
    pub otlp_http_port: u16,
    /// The query API (and UI) on 127.0.0.1.
    pub query_port: u16,
    agent: ureq::Agent,
}

impl Jaeger {
    /// Starts Jaeger (`JAEGER_BIN`) with its config and log in `dir`, and waits until its
    /// query API answers.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let bin = crate::tool("JAEGER_BIN")?;
        let (otlp_http_port, query_port, query_grpc_port) =
            (free_port()?, free_port()?, free_port()?);
        let config = dir.join("jaeger.yaml");
        std::fs::write(
            &config,
            format!(
                r#"service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info

extensions:
  jaeger_query:
    # On by default in v2: Jaeger would trace its own queries to 127.0.0.1:4317.
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:{query_port}
    grpc:
      endpoint: 127.0.0.1:{query_grpc_port}
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 10000

receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_http_port}

processors:
  batch:
    timeout: 100ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
"#
            ),
        )?;
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&config);
        let process = Managed::spawn("jaeger", cmd, dir.join("jaeger.log"))?;
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .build();
        let mut jaeger = Self {
            process,
            otlp_http_port,
            query_port,
            agent,
        };
        wait_for(
            &format!("Jaeger's query API on port {query_port}"),
            Duration::from_secs(60),
            || jaeger.get("/api/services", &[]).ok(),
        )?;
        if !jaeger.process.is_running() {
            anyhow::bail!("jaeger exited:\n{}", jaeger.process.log_tail(20));
        }
        Ok(jaeger)
    }

    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` is set to (with `http/protobuf`).
    pub fn otlp_http_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.otlp_http_port)
    }

    /// The UI's and query API's base URL.
    pub fn query_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.query_port)
    }

    /// `GET /api/traces?service=…` with further query parameters (e.g. `tags`,
    /// `minDuration`, `limit`): the traces of the answer's `data`, as Jaeger's JSON.
    pub fn traces(
        &self,
        service: &str,
        params: &[(&str, &str)],
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut query = vec![("service", service)];
        query.extend_from_slice(params);
        let answer = self.get("/api/traces", &query)?;
        match answer.get("data") {
            Some(serde_json::Value::Array(traces)) => Ok(traces.clone()),
            Some(serde_json::Value::Null) | None => Ok(Vec::new()),
            Some(other) => anyhow::bail!("/api/traces: data is not a list: {other}"),
        }
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> anyhow::Result<serde_json::Value> {
        let mut request = self.agent.get(&format!("{}{path}", self.query_url()));
        for (k, v) in query {
            request = request.query(k, v);
        }
        let response = request.call().with_context(|| format!("GET {path}"))?;
        response
            .into_json()
            .with_context(|| format!("GET {path}: not JSON"))
    }
}
