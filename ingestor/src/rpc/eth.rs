//! The `eth_*` calls the follower makes, with their results validated.

use serde_json::json;
use serde_json::value::RawValue;

use super::client::RpcClient;
use super::error::RpcError;
use super::hex::{B256, decode_quantity, quantity};
use super::json::is_null;
use super::types::{Header, Log, TypeError};

fn invalid(method: &'static str) -> impl Fn(TypeError) -> RpcError {
    move |source| RpcError::Invalid { method, source }
}

/// A result that must be a JSON string.
fn as_string(method: &'static str, v: &RawValue) -> Result<String, RpcError> {
    serde_json::from_str::<String>(v.get()).map_err(|_| RpcError::Invalid {
        method,
        source: TypeError::Missing("result"),
    })
}

fn as_quantity(method: &'static str, v: &RawValue) -> Result<u64, RpcError> {
    let s = as_string(method, v)?;
    decode_quantity("result", &s).map_err(|e| RpcError::Invalid {
        method,
        source: e.into(),
    })
}

/// An `eth_getLogs` result: a large one is parsed on the CPU pool.
async fn logs(method: &'static str, v: Box<RawValue>) -> Result<Vec<Log>, RpcError> {
    crate::cpu::offload(v.get().len(), move || Log::parse_list(v.get()))
        .await
        .map_err(invalid(method))
}

const GET_BLOCK: &str = "eth_getBlockByNumber";

/// A block result that must be block `number`, or null.
fn header_numbered(v: &RawValue, number: u64) -> Result<Option<Header>, RpcError> {
    if is_null(v.get()) {
        return Ok(None);
    }
    let header = Header::parse(v.get()).map_err(invalid(GET_BLOCK))?;
    if header.number != number {
        return Err(RpcError::Invalid {
            method: GET_BLOCK,
            source: TypeError::Hex(super::hex::HexError::new(
                "number",
                format!("asked for block {number}, got block {}", header.number),
            )),
        });
    }
    Ok(Some(header))
}

impl RpcClient {
    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, RpcError> {
        const M: &str = "eth_chainId";
        as_quantity(M, &self.request(M, json!([])).await?)
    }

    /// `eth_blockNumber`: the node's head.
    pub async fn block_number(&self) -> Result<u64, RpcError> {
        const M: &str = "eth_blockNumber";
        as_quantity(M, &self.request(M, json!([])).await?)
    }

    /// `eth_getBlockByNumber(n, false)`; `None` when the node does not have it (yet).
    pub async fn header_by_number(&self, number: u64) -> Result<Option<Header>, RpcError> {
        let v = self
            .request(GET_BLOCK, json!([quantity(number), false]))
            .await?;
        header_numbered(&v, number)
    }

    /// [`RpcClient::header_by_number`] for `from..=to`, as one batch (over HTTP).
    pub async fn headers_by_number(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<Option<Header>>, RpcError> {
        let params = (from..=to).map(|n| json!([quantity(n), false])).collect();
        let values = self.batch(GET_BLOCK, params).await?;
        values
            .iter()
            .zip(from..=to)
            .map(|(v, n)| header_numbered(v, n))
            .collect()
    }

    /// `eth_getBlockByNumber(tag, false)` for a tag (`latest`, `safe`, `finalized`); `None`
    /// when the node has no such block yet (e.g. nothing finalized).
    pub async fn header_by_tag(&self, tag: &str) -> Result<Option<Header>, RpcError> {
        const M: &str = "eth_getBlockByNumber";
        let v = self.request(M, json!([tag, false])).await?;
        if is_null(v.get()) {
            return Ok(None);
        }
        Ok(Some(Header::parse(v.get()).map_err(invalid(M))?))
    }

    /// `eth_getLogs {blockHash}`: every log of one block.
    pub async fn logs_by_block_hash(&self, hash: &B256) -> Result<Vec<Log>, RpcError> {
        const M: &str = "eth_getLogs";
        let v = self
            .request(M, json!([{"blockHash": hash.to_string()}]))
            .await?;
        logs(M, v).await
    }

    /// Ranged `eth_getLogs {fromBlock, toBlock}`, both inclusive.
    pub async fn logs_in_range(&self, from: u64, to: u64) -> Result<Vec<Log>, RpcError> {
        const M: &str = "eth_getLogs";
        let v = self
            .request(
                M,
                json!([{"fromBlock": quantity(from), "toBlock": quantity(to)}]),
            )
            .await?;
        logs(M, v).await
    }

    /// `eth_subscribe newHeads`; returns the subscription id.
    pub async fn subscribe_new_heads(&self) -> Result<String, RpcError> {
        const M: &str = "eth_subscribe";
        let v = self.request(M, json!(["newHeads"])).await?;
        as_string(M, &v)
    }
}
