//! Decoded events: typed Avro records made from a contract's ABI, published beside the raw
//! `EvmLog` records (which stay complete).
//!
//! - [`abi`]: loading the `[[chains.events]]` entries' ABI files, selecting their events,
//!   and the checks that make two entries agree on each topic ([`Catalog::load`]).
//! - [`shape`]: each event parameter's Avro shape and name; the record schema of an event.
//! - [`write`]: decoding one log against an event and writing its Avro body.
//! - `words`: the fast path of that for events whose parameters are each one word.
//!
//! # Invariants
//! - A log is routed by its first topic (the event's selector) and its address; it goes to
//!   every event's topic whose ABI decodes it exactly (re-encoding the values gives back the
//!   log's topics and data), at most once per topic.
//! - A log no selected event decodes is a decode failure: it stays on the raw topic only.

pub mod abi;
pub mod shape;
mod words;
pub mod write;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

pub use abi::AbiError;
pub use write::DecodeError;

use crate::rpc::hex::{Address, B256};
use crate::rpc::types::Log;

use shape::Param;

/// One event as configured: where it is published and how its records look.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// The event's name in the ABI.
    pub name: String,
    /// The Avro record's name (the event name made a valid Avro name).
    pub record: String,
    /// Its canonical signature, e.g. `Transfer(address,address,uint256)`.
    pub signature: String,
    /// Its full declaration, with `indexed` and the parameter names.
    pub full: String,
    /// `keccak256(signature)`: the log's first topic.
    pub selector: B256,
    /// The topic its records are published to.
    pub topic: String,
    /// Only logs of these contracts; `None`: any contract.
    pub addresses: Option<Vec<Address>>,
    /// The parameters in ABI order, with their Avro names and shapes.
    pub params: Vec<Param>,
    /// The record schema (Avro JSON).
    pub schema_json: String,
    /// Where it was configured: `chains[0].events[1] (abis/erc20.json)`.
    pub source: String,
    /// Whether every parameter is one 32-byte word, decoded in place (see `words`).
    pub one_word: bool,
}

impl EventSpec {
    /// Whether a log of `address` is one this event takes.
    pub fn accepts(&self, address: &Address) -> bool {
        self.addresses.as_ref().is_none_or(|a| a.contains(address))
    }

    /// Topics a log of this event has: the selector and one per indexed parameter.
    pub fn topic_count(&self) -> usize {
        1 + self.params.iter().filter(|p| p.indexed).count()
    }
}

/// The events one chain decodes, routed by selector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    events: Vec<EventSpec>,
    by_selector: HashMap<B256, Vec<usize>>,
}

/// What routing one log found.
#[derive(Debug, PartialEq)]
pub enum Routed {
    /// No configured event has its selector and address.
    Unrelated,
    /// Decoded by these events (indexes into [`Catalog::events`]), each body written.
    Decoded(Vec<(usize, Vec<u8>)>),
    /// Candidates exist, but none decodes it: the first candidate and why.
    Failed {
        /// The first candidate's index.
        event: usize,
        /// Why it does not decode.
        error: DecodeError,
    },
}

impl Catalog {
    /// A catalog of `events` (already checked to agree per topic).
    pub fn new(events: Vec<EventSpec>) -> Self {
        let mut by_selector: HashMap<B256, Vec<usize>> = HashMap::new();
        for (i, e) in events.iter().enumerate() {
            by_selector.entry(e.selector).or_default().push(i);
        }
        Self {
            events,
            by_selector,
        }
    }

    /// Every event, in configuration order.
    pub fn events(&self) -> &[EventSpec] {
        &self.events
    }

    /// Whether no event is configured.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Decodes `log` against every event its selector and address select; each body is
    /// the Avro binary of that event's record, without framing.
    pub fn route(&self, chain_id: u64, block_timestamp_s: u64, log: &Log) -> Routed {
        let mut fields = Vec::with_capacity(256);
        crate::encode::body::write_log_fields(&mut fields, chain_id, block_timestamp_s, log);
        self.route_framed(&fields, log, |_| &[])
    }

    /// [`Catalog::route`] given the log's fields already written (`EvmLog`'s first eight,
    /// see `write_log_fields`), each body written after `head(i)` for event `i` (its value
    /// header) in one buffer sized for both.
    pub fn route_framed<'h>(
        &self,
        fields: &[u8],
        log: &Log,
        head: impl Fn(usize) -> &'h [u8],
    ) -> Routed {
        let Some(candidates) = log.topics.first().and_then(|t| self.by_selector.get(t)) else {
            return Routed::Unrelated;
        };
        let mut decoded = Vec::with_capacity(candidates.len());
        let mut first_error = None;
        // Room for the header and the body: fixed fields, each topic and the data, at most
        // twice their raw size in Avro.
        let room = fields.len() + 64 * log.topics.len() + 2 * log.data.len();
        for &i in candidates {
            let event = &self.events[i];
            if !event.accepts(&log.address) {
                continue;
            }
            let h = head(i);
            let mut body = Vec::with_capacity(h.len() + room);
            body.extend_from_slice(h);
            match write::body(&mut body, event, fields, log) {
                Ok(()) => decoded.push((i, body)),
                Err(error) => {
                    first_error.get_or_insert((i, error));
                }
            }
        }
        match (decoded.is_empty(), first_error) {
            (false, _) => Routed::Decoded(decoded),
            (true, Some((event, error))) => Routed::Failed { event, error },
            (true, None) => Routed::Unrelated,
        }
    }
}
