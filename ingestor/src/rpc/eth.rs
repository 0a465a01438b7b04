//! The `eth_*` calls the follower makes, with their results validated.

use serde_json::json;
use serde_json::value::RawValue;

use super::body::Body;
use super::client::RpcClient;
use super::error::RpcError;
use super::hex::{B256, decode_quantity, quantity};
use super::json::is_null;
use super::receipt::Receipt;
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

/// An `eth_getBlockReceipts` result (`null` for a block the node does not have): a large
/// one is parsed on the CPU pool.
async fn receipts(
    method: &'static str,
    v: Box<RawValue>,
    fields: bool,
) -> Result<Option<Vec<Receipt>>, RpcError> {
    if is_null(v.get()) {
        return Ok(None);
    }
    crate::cpu::offload(v.get().len(), move || {
        Receipt::parse_list_with(v.get(), fields)
    })
    .await
    .map(Some)
    .map_err(invalid(method))
}

/// A block object read as a [`Body`] (`null` for a block the node does not have): a large
/// one on the CPU pool.
async fn body(method: &'static str, v: &RawValue, full: bool) -> Result<Option<Body>, RpcError> {
    if is_null(v.get()) {
        return Ok(None);
    }
    let text = v.get().to_owned();
    crate::cpu::offload(text.len(), move || Body::parse(&text, full))
        .await
        .map(Some)
        .map_err(invalid(method))
}

const GET_BLOCK: &str = "eth_getBlockByNumber";
const GET_RECEIPTS: &str = "eth_getBlockReceipts";
const GET_TX_RECEIPT: &str = "eth_getTransactionReceipt";

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

    /// `eth_getBlockReceipts(hash)`: every receipt of one block, with its logs (and with
    /// `fields`, what the transactions dataset reads of it); `None` when the node does not
    /// have that block.
    pub async fn block_receipts(
        &self,
        hash: &B256,
        fields: bool,
    ) -> Result<Option<Vec<Receipt>>, RpcError> {
        let v = self
            .request(GET_RECEIPTS, json!([hash.to_string()]))
            .await?;
        receipts(GET_RECEIPTS, v, fields).await
    }

    /// [`RpcClient::block_receipts`] for several blocks, as one batch (over HTTP).
    pub async fn blocks_receipts(
        &self,
        hashes: &[B256],
        fields: bool,
    ) -> Result<Vec<Option<Vec<Receipt>>>, RpcError> {
        let params = hashes.iter().map(|h| json!([h.to_string()])).collect();
        let mut out = Vec::with_capacity(hashes.len());
        for v in self.batch(GET_RECEIPTS, params).await? {
            out.push(receipts(GET_RECEIPTS, v, fields).await?);
        }
        Ok(out)
    }

    /// `eth_getBlockByHash(hash, full)` read as a [`Body`] (with its transaction objects
    /// when `full`); `None` when the node does not have that block.
    pub async fn block_body(&self, hash: &B256, full: bool) -> Result<Option<Body>, RpcError> {
        const M: &str = "eth_getBlockByHash";
        let v = self.request(M, json!([hash.to_string(), full])).await?;
        body(M, &v, full).await
    }

    /// [`RpcClient::block_body`] for several blocks, as one batch (over HTTP).
    pub async fn block_bodies(
        &self,
        hashes: &[B256],
        full: bool,
    ) -> Result<Vec<Option<Body>>, RpcError> {
        const M: &str = "eth_getBlockByHash";
        let params = hashes
            .iter()
            .map(|h| json!([h.to_string(), full]))
            .collect();
        let mut out = Vec::with_capacity(hashes.len());
        for v in self.batch(M, params).await? {
            out.push(body(M, &v, full).await?);
        }
        Ok(out)
    }

    /// Whether the node serves `eth_getBlockReceipts`: asks for the genesis block's (none).
    /// `Ok(false)` when it answers that the method does not exist.
    pub async fn serves_block_receipts(&self) -> Result<bool, RpcError> {
        match self.request(GET_RECEIPTS, json!(["0x0"])).await {
            Ok(_) => Ok(true),
            Err(RpcError::Node { source, .. }) if super::provider::is_method_missing(&source) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// The receipts of block `hash` one transaction at a time, for a node without
    /// `eth_getBlockReceipts`: the block's transaction hashes (`eth_getBlockByHash`), then
    /// `eth_getTransactionReceipt` for each, as one batch. `None` when the node does not
    /// have the block, or not yet a receipt of it.
    pub async fn receipts_by_transaction(
        &self,
        hash: &B256,
        fields: bool,
    ) -> Result<Option<Vec<Receipt>>, RpcError> {
        const M: &str = "eth_getBlockByHash";
        let v = self.request(M, json!([hash.to_string(), false])).await?;
        if is_null(v.get()) {
            return Ok(None);
        }
        let txs = super::types::transaction_hashes(v.get()).map_err(invalid(M))?;
        let params = txs.iter().map(|t| json!([t.to_string()])).collect();
        let mut out = Vec::with_capacity(txs.len());
        for v in self.batch(GET_TX_RECEIPT, params).await? {
            if is_null(v.get()) {
                return Ok(None);
            }
            out.push(Receipt::parse_with(v.get(), fields).map_err(invalid(GET_TX_RECEIPT))?);
        }
        Ok(Some(out))
    }

    /// `eth_subscribe newHeads`; returns the subscription id.
    pub async fn subscribe_new_heads(&self) -> Result<String, RpcError> {
        const M: &str = "eth_subscribe";
        let v = self.request(M, json!(["newHeads"])).await?;
        as_string(M, &v)
    }
}
