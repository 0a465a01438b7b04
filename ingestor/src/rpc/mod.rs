//! JSON-RPC to the node over WebSocket or HTTP(S): transports, frames, errors, provider
//! error shapes, TLS, and the validated chain types.

pub mod batch;
pub mod bloom;
pub mod body;
pub mod client;
pub mod error;
pub mod eth;
pub mod frame;
pub mod hex;
mod http;
mod json;
pub mod outcome;
pub mod provider;
pub mod receipt;
pub mod redact;
pub mod sealed;
pub mod tls;
pub mod types;
mod ws;

pub use batch::BatchLimit;
pub use client::{RpcClient, RpcOptions};
pub use error::RpcError;
