//! The health endpoint: `/healthz` (the process is alive), `/readyz` (every chain is
//! connected and within `ready_max_lag_blocks` of its head), `/status` (JSON per chain).
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

/// Binds the listener (so a taken port fails start-up) and serves until `stop`.
pub async fn start(
    cfg: &HealthConfig,
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
    let task = tokio::spawn(serve(listener, cfg, stop));
    Ok((addr, task))
}

async fn serve(listener: TcpListener, cfg: Arc<HealthConfig>, stop: CancellationToken) {
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
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, cfg.clone()));
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
            serde_json::to_string_pretty(&serde_json::json!({ "chains": status::snapshot() }))
                .unwrap_or_default(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /healthz, /readyz or /status\n".to_owned(),
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
