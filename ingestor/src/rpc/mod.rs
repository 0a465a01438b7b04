//! WebSocket JSON-RPC: transport, frames, errors and validated chain types.

pub mod client;
pub mod error;
pub mod eth;
pub mod frame;
pub mod hex;
pub mod redact;
pub mod types;

pub use client::{RpcClient, WsOptions};
pub use error::RpcError;
