//! The health endpoint: `/healthz` (the process is alive), `/readyz` (every chain is
//! connected and within `ready_max_lag_blocks` of its head), `/status` (JSON per chain),
//! `/metrics` (the instruments in the Prometheus text format).
//!
//! Built on hyper's HTTP/1 server. At most `max_connections` connections are served at once
//! (more are closed on accept), and each connection gets `request_timeout_ms` to send its
//! request and receive the answer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::HealthConfig;
use crate::events;
use crate::telemetry::prometheus::{self, Scrape};
use crate::telemetry::status;

/// The endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error(
    "health endpoint cannot listen on {addr}: {source}; change `health.listen_addr` or set `health.enabled = false`"
)]
pub struct HealthError {
    /// The configured address.
    pub addr: String,
    /// Why.
    pub source: std::io::Error,
}

/// Binds the listener (so a taken port fails start-up) and serves until `stop`. Without
/// `scrape`, `/metrics` is not served.
pub async fn start(
    cfg: &HealthConfig,
    scrape: Option<Scrape>,
    stop: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HealthError> {
    let err = |source| HealthError {
        addr: cfg.listen_addr.clone(),
        source,
    };
    let listener = TcpListener::bind(&cfg.listen_addr).await.map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    events::HealthListening { addr: &addr }.emit();
    let cfg = Arc::new(cfg.clone());
    let task = tokio::spawn(serve(listener, cfg, scrape.map(Arc::new), stop));
    Ok((addr, task))
}

async fn serve(
    listener: TcpListener,
    cfg: Arc<HealthConfig>,
    scrape: Option<Arc<Scrape>>,
    stop: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let timeout = Duration::from_millis(cfg.request_timeout_ms);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(stream); // over the connection bound: refuse at once
            continue;
        };
        let cfg = cfg.clone();
        let scrape = scrape.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, cfg.clone(), scrape.clone()));
            let conn = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(timeout, conn).await;
            drop(permit);
        });
    }
}

async fn answer(
    req: Request<Incoming>,
    cfg: Arc<HealthConfig>,
    scrape: Option<Arc<Scrape>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (code, content_type, body) = match req.uri().path() {
        "/healthz" => (StatusCode::OK, "text/plain", "ok\n".to_owned()),
        "/readyz" => match status::not_ready(cfg.ready_max_lag_blocks).as_slice() {
            [] => (StatusCode::OK, "text/plain", "ready\n".to_owned()),
            why => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {}\n", why.join("; ")),
            ),
        },
        "/status" => (
            StatusCode::OK,
            "application/json",
            serde_json::to_string_pretty(
                &serde_json::json!({ "chains": status::snapshot(), "group": status::group() }),
            )
            .unwrap_or_default(),
        ),
        "/metrics" if scrape.is_some() => match scrape.as_deref().map(Scrape::render) {
            Some(Ok(text)) => (StatusCode::OK, prometheus::CONTENT_TYPE, text),
            Some(Err(e)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("{e}\n"),
            ),
            None => (StatusCode::NOT_FOUND, "text/plain", String::new()),
        },
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /healthz, /readyz, /status or /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::SdkMeterProvider;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_text_format() {
        let (scrape, reader) = Scrape::new();
        let provider = SdkMeterProvider::builder().with_reader(reader).build();
        let counter = provider
            .meter("test")
            .u64_counter("ethhook.test.things")
            .build();
        counter.add(7, &[]);
        let cfg = HealthConfig {
            listen_addr: "127.0.0.1:0".into(),
            ..HealthConfig::default()
        };
        let stop = CancellationToken::new();
        let (addr, task) = start(&cfg, Some(scrape), stop.clone())
            .await
            .expect("start");
        let answer = get(addr, "/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.contains("content-type: text/plain; version=0.0.4"),
            "{answer}"
        );
        assert!(
            answer.contains("\nethhook_test_things_total 7\n"),
            "{answer}"
        );
        stop.cancel();
        task.await.expect("server task");

        let stop = CancellationToken::new();
        let (addr, task) = start(&cfg, None, stop.clone()).await.expect("start");
        assert!(get(addr, "/metrics").await.starts_with("HTTP/1.1 404"));
        stop.cancel();
        task.await.expect("server task");
    }
}
