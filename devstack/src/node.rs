//! A minimal blocking HTTP JSON-RPC client for the node, independent of the ingestor's
//! WebSocket client, so tests never check the ingestor against itself.

use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// A node's HTTP endpoint.
#[derive(Clone)]
pub struct Node {
    url: String,
    agent: ureq::Agent,
}

impl Node {
    /// A client for `http://127.0.0.1:<port>`.
    pub fn new(port: u16) -> Self {
        Self::at(&format!("http://127.0.0.1:{port}"))
    }

    /// A client for any HTTP JSON-RPC URL (e.g. `http://anvil:8545` in compose).
    pub fn at(url: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(120))
            .build();
        Self {
            url: url.to_owned(),
            agent,
        }
    }

    /// Calls `method`; a JSON-RPC error is an `Err`.
    pub fn call(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let resp: Value = self
            .agent
            .post(&self.url)
            .send_json(body)
            .with_context(|| format!("{method} to {}", self.url))?
            .into_json()?;
        if let Some(err) = resp.get("error") {
            bail!("{method}: {err}");
        }
        resp.get("result")
            .cloned()
            .with_context(|| format!("{method}: no result"))
    }

    /// Calls `method` and returns the whole answer's text, unparsed (to time the node
    /// alone and measure its answer's size).
    pub fn call_text(&self, method: &str, params: Value) -> anyhow::Result<String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut self
                .agent
                .post(&self.url)
                .send_json(body)
                .with_context(|| format!("{method} to {}", self.url))?
                .into_reader(),
            &mut text,
        )?;
        Ok(text)
    }

    /// `eth_blockNumber`.
    pub fn head(&self) -> anyhow::Result<u64> {
        quantity(&self.call("eth_blockNumber", json!([]))?)
    }

    /// Mines `blocks` blocks now.
    pub fn mine(&self, blocks: u64) -> anyhow::Result<()> {
        self.call("anvil_mine", json!([format!("{blocks:#x}")]))?;
        Ok(())
    }

    /// `eth_getLogs` over `from..=to`.
    pub fn logs(&self, from: u64, to: u64) -> anyhow::Result<Vec<Value>> {
        let v = self.call(
            "eth_getLogs",
            json!([{"fromBlock": format!("{from:#x}"), "toBlock": format!("{to:#x}")}]),
        )?;
        v.as_array().cloned().context("eth_getLogs: not an array")
    }

    /// `eth_getBlockByNumber(n, false)`.
    pub fn block(&self, n: u64) -> anyhow::Result<Value> {
        self.call("eth_getBlockByNumber", json!([format!("{n:#x}"), false]))
    }
}

/// Parses a hex quantity.
pub fn quantity(v: &Value) -> anyhow::Result<u64> {
    let s = v.as_str().context("quantity is not a string")?;
    Ok(u64::from_str_radix(s.trim_start_matches("0x"), 16)?)
}
