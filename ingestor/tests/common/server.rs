//! What the test servers (proxies, the registry) share: a free loopback port, and a
//! one-thread runtime that accepts connections until the server is dropped.

use std::convert::Infallible;
use std::future::Future;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// A server running in the background; dropping it stops it.
pub struct Background {
    pub port: u16,
    _runtime: tokio::runtime::Runtime,
}

/// Hands every connection accepted on a free loopback port to `on_connection` (each on
/// its own task).
pub fn accept_loop<F, Fut>(on_connection: F) -> Background
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(on_connection(tcp));
        }
    });
    Background {
        port,
        _runtime: runtime,
    }
}

/// An HTTP/1 server answering every request with `handler`.
pub fn http<F, Fut>(handler: F) -> Background
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    accept_loop(move |tcp| {
        let handler = handler.clone();
        async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .await;
        }
    })
}
