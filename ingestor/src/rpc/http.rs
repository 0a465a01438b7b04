//! The HTTP transport (`http://`, `https://`): one POST per request or batch, over a
//! keep-alive connection pool (reqwest with rustls).
//!
//! HTTP statuses are read the way providers use them: 429 is a rate limit (with
//! `Retry-After` when given); any other status whose body is a JSON-RPC answer (QuickNode
//! sends its range cap with 413) is that answer; a status without one is an
//! [`RpcError::Http`]. Bodies over `max_message_bytes` are [`RpcError::TooLarge`]: the
//! connection stays usable, and the range shrinks.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};

use super::client::RpcOptions;
use super::error::RpcError;
use super::frame::{Frame, FrameError, parse_batch};
use super::redact::redact_url;
use super::tls;

/// A JSON-RPC endpoint over HTTP. Cheap to clone (the pool is shared).
pub(super) struct HttpTransport {
    client: reqwest::Client,
    url: String,
    max_bytes: usize,
}

impl HttpTransport {
    /// A client for `url`. Nothing is sent yet: the first request opens the connection.
    pub(super) fn new(url: &str, opts: &RpcOptions) -> Result<Self, RpcError> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls((*opts.tls).clone())
            .connect_timeout(opts.connect_timeout)
            .timeout(opts.request_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| RpcError::Connect {
                url: redact_url(url),
                reason: e.without_url().to_string(),
            })?;
        Ok(Self {
            client,
            url: url.to_owned(),
            max_bytes: opts.max_message_bytes,
        })
    }

    /// POSTs `body` (one request or a batch) and parses the answer into frames.
    pub(super) async fn post(&self, body: String) -> Result<Vec<Frame>, RpcError> {
        let response = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = self.read_limited(response).await?;
        let (body, frames) = crate::cpu::offload(body.len(), move || {
            let frames = parse_batch(&body);
            (body, frames)
        })
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(RpcError::RateLimited {
                retry_after,
                detail: first_error(&frames).unwrap_or_else(|| snippet(&body)),
            });
        }
        match frames {
            Ok(frames) => Ok(frames),
            Err(_) if !status.is_success() => Err(RpcError::Http {
                status: status.as_u16(),
                detail: snippet(&body),
            }),
            Err(e) => Err(RpcError::Frame(e)),
        }
    }

    async fn read_limited(&self, mut response: reqwest::Response) -> Result<Vec<u8>, RpcError> {
        let too_large = RpcError::TooLarge {
            limit_bytes: self.max_bytes,
        };
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(e))?
        {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// A failed exchange, without the URL (reqwest's messages carry it, keys included).
    fn transport_error(&self, e: reqwest::Error) -> RpcError {
        let url = redact_url(&self.url);
        if let Some(r) = tls::find_rustls_error(&e) {
            return RpcError::Tls {
                url,
                reason: tls::describe(r),
            };
        }
        if e.is_timeout() {
            return RpcError::Timeout {
                method: "http",
                timeout_ms: 0,
            };
        }
        let connect = e.is_connect();
        let reason = e.without_url().to_string();
        if connect {
            RpcError::Connect { url, reason }
        } else {
            RpcError::Disconnected(format!("{url}: {reason}"))
        }
    }
}

/// The message of the first JSON-RPC error in an answer, if any.
fn first_error(frames: &Result<Vec<Frame>, FrameError>) -> Option<String> {
    frames.as_ref().ok()?.iter().find_map(|f| match f {
        Frame::Response { result: Err(e), .. } | Frame::Unmatched(e) => Some(e.to_string()),
        _ => None,
    })
}

/// The start of a body, on one line, for an error message.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
