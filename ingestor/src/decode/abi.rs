//! Loading `[[chains.events]]`: each entry's ABI file (a JSON array, or a Foundry/Hardhat
//! artifact with an `abi` member), the events it selects, their topics and record schemas.
//!
//! Checks, each failing with one line that names the file (or both entries): the file is
//! readable JSON; every selected event's parameter types are known; every name in `names`
//! is an event of the ABI; every address is 20 bytes of hex; an overloaded name is selected
//! by its signature in an entry of its own with a `topic`; `topic` is set only on an entry
//! that selects one event; two entries that publish to one topic declare the same record
//! there (ERC-20 and ERC-721 `Transfer` share a selector but not a record: one needs its
//! own `topic`).

use std::path::Path;

use alloy_json_abi::{Event, InternalType, Param as AbiParam};
use serde_json::{Value, json};

use crate::config::{ChainConfig, EventsConfig};
use crate::rpc::hex::{Address, B256};

use super::shape::{self, Kind, LOG_FIELDS, Param, RecordNames};
use super::{Catalog, EventSpec};

/// An ABI entry that cannot be used. Its `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum AbiError {
    /// The file could not be read.
    #[error("ABI {file} ({entry}): cannot read: {reason}")]
    Read {
        /// The file, as configured.
        file: String,
        /// `chains[i].events[j]`.
        entry: String,
        /// The OS reason.
        reason: String,
    },
    /// The file is not JSON.
    #[error("ABI {file} ({entry}): not JSON: {reason}")]
    NotJson {
        /// The file, as configured.
        file: String,
        /// `chains[i].events[j]`.
        entry: String,
        /// The parser's reason.
        reason: String,
    },
    /// The JSON is not an ABI, or what the entry asks of it is wrong.
    #[error("ABI {file} ({entry}): {problem}")]
    Invalid {
        /// The file, as configured.
        file: String,
        /// `chains[i].events[j]`.
        entry: String,
        /// What is wrong.
        problem: String,
    },
    /// Two entries publish different records to one topic.
    #[error(
        "{first} and {second} both publish to topic `{topic}` with different records ({first_event} vs {second_event}); give one of them its own `topic`"
    )]
    Conflict {
        /// The first entry and its file.
        first: String,
        /// The second entry and its file.
        second: String,
        /// The topic.
        topic: String,
        /// The first's event, in full.
        first_event: String,
        /// The second's event, in full.
        second_event: String,
    },
}

/// The default topic of an event's records.
pub fn default_topic(chain_id: u64, record: &str) -> String {
    format!("evm.events.{chain_id}.{record}")
}

impl Catalog {
    /// Loads chain `index`'s `[[chains.events]]` entries; relative ABI paths are read from
    /// `base`. `taken` are the topics the events may not use (chain and checkpoint topics).
    pub fn load(
        index: usize,
        chain: &ChainConfig,
        base: &Path,
        taken: &[String],
    ) -> Result<Self, AbiError> {
        let mut specs: Vec<EventSpec> = Vec::new();
        for (j, entry) in chain.events.iter().enumerate() {
            let at = format!("chains[{index}].events[{j}]");
            for spec in load_entry(&at, chain.chain_id, entry, base, taken)? {
                match specs.iter_mut().find(|s| s.topic == spec.topic) {
                    None => specs.push(spec),
                    Some(same) if same.schema_json == spec.schema_json => {
                        // One record, two entries: the union of their contracts.
                        same.addresses = match (same.addresses.take(), spec.addresses) {
                            (Some(mut a), Some(b)) => {
                                for x in b {
                                    if !a.contains(&x) {
                                        a.push(x);
                                    }
                                }
                                Some(a)
                            }
                            _ => None,
                        };
                    }
                    Some(other) => {
                        return Err(AbiError::Conflict {
                            first: other.source.clone(),
                            second: spec.source,
                            topic: spec.topic,
                            first_event: other.full.clone(),
                            second_event: spec.full,
                        });
                    }
                }
            }
        }
        Ok(Catalog::new(specs))
    }
}

fn load_entry(
    at: &str,
    chain_id: u64,
    entry: &EventsConfig,
    base: &Path,
    taken: &[String],
) -> Result<Vec<EventSpec>, AbiError> {
    let file = entry.abi.display().to_string();
    let invalid = |problem: String| AbiError::Invalid {
        file: file.clone(),
        entry: at.to_owned(),
        problem,
    };
    let path = base.join(&entry.abi);
    let text = std::fs::read_to_string(&path).map_err(|e| AbiError::Read {
        file: file.clone(),
        entry: at.to_owned(),
        reason: e.to_string(),
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|e| AbiError::NotJson {
        file: file.clone(),
        entry: at.to_owned(),
        reason: e.to_string(),
    })?;
    let items = match &json {
        Value::Array(items) => items,
        Value::Object(o) => match o.get("abi") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(invalid(
                    "neither a JSON array nor an artifact with an `abi` array".into(),
                ));
            }
        },
        _ => {
            return Err(invalid(
                "neither a JSON array nor an artifact with an `abi` array".into(),
            ));
        }
    };
    let mut events = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.get("type").and_then(Value::as_str) != Some("event") {
            continue;
        }
        let event: Event = serde_json::from_value(item.clone()).map_err(|e| {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("?");
            invalid(format!("event #{i} `{name}`: {e}"))
        })?;
        events.push(event);
    }
    let selected: Vec<&Event> = match &entry.names {
        None => {
            let all: Vec<&Event> = events.iter().filter(|e| !e.anonymous).collect();
            for e in &all {
                overloaded(e, &all).map_err(&invalid)?;
            }
            all
        }
        Some(names) => {
            let mut out = Vec::new();
            for want in names {
                let found: Vec<&Event> = events
                    .iter()
                    .filter(|e| match want.contains('(') {
                        true => e.signature() == want.replace(' ', ""),
                        false => e.name == *want,
                    })
                    .collect();
                match found.as_slice() {
                    [] => {
                        let mut have: Vec<String> = events.iter().map(|e| e.name.clone()).collect();
                        have.dedup();
                        return Err(invalid(format!(
                            "no event `{want}` in this ABI (it has: {})",
                            if have.is_empty() {
                                "no events".into()
                            } else {
                                have.join(", ")
                            }
                        )));
                    }
                    [e] if e.anonymous => {
                        return Err(invalid(format!(
                            "event `{want}` is anonymous: its logs carry no signature topic to recognise them by"
                        )));
                    }
                    [e] => out.push(*e),
                    _ => {
                        overloaded(found[0], &found).map_err(&invalid)?;
                        out.push(found[0]);
                    }
                }
            }
            out
        }
    };
    if let Some(topic) = &entry.topic
        && selected.len() != 1
    {
        return Err(invalid(format!(
            "`topic` = `{topic}` is set but the entry selects {} events; give each event an entry of its own",
            selected.len()
        )));
    }
    let addresses = match &entry.addresses {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|a| {
                    Address::parse("address", a.trim()).map_err(|_| {
                        invalid(format!("address `{a}` is not 20 bytes of 0x-prefixed hex"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let source = format!("{at} ({file})");
    let mut out = Vec::new();
    for event in selected {
        let mut spec = spec(chain_id, event, &source).map_err(&invalid)?;
        if let Some(topic) = &entry.topic {
            spec.topic = topic.clone();
        }
        check_topic(&spec.topic, taken).map_err(&invalid)?;
        spec.addresses = addresses.clone();
        out.push(spec);
    }
    Ok(out)
}

/// An error if another event of `among` has `e`'s name but another signature.
fn overloaded(e: &Event, among: &[&Event]) -> Result<(), String> {
    let sigs: Vec<String> = among
        .iter()
        .filter(|o| o.name == e.name)
        .map(|o| o.signature())
        .collect();
    if sigs.iter().any(|s| *s != e.signature()) {
        return Err(format!(
            "event `{}` is overloaded ({}): select one by its signature in `names`, in an entry of its own with a `topic`",
            e.name,
            sigs.join(", ")
        ));
    }
    Ok(())
}

fn check_topic(topic: &str, taken: &[String]) -> Result<(), String> {
    if topic.is_empty()
        || topic.len() > 249
        || !topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!("topic `{topic}` must be 1-249 of [a-zA-Z0-9._-]"));
    }
    if taken.iter().any(|t| t == topic) {
        return Err(format!(
            "topic `{topic}` is a chain's or the checkpoint topic"
        ));
    }
    Ok(())
}

/// The spec of one ABI event item (a JSON object of `"type": "event"`).
pub fn spec_from_json(chain_id: u64, item: &Value, source: &str) -> Result<EventSpec, String> {
    let event: Event = serde_json::from_value(item.clone()).map_err(|e| e.to_string())?;
    spec(chain_id, &event, source)
}

/// The spec of `event`: its parameters' shapes, names and record schema.
pub fn spec(chain_id: u64, event: &Event, source: &str) -> Result<EventSpec, String> {
    let record = shape::avro_name(&event.name);
    let mut names = RecordNames::new(&record);
    let mut taken: Vec<String> = LOG_FIELDS.iter().map(|s| (*s).to_owned()).collect();
    let mut params = Vec::new();
    for (i, p) in event.inputs.iter().enumerate() {
        let name = field_name(&p.name, i, &mut taken);
        let mut kind = kind(
            &p.ty,
            &p.components,
            p.internal_type.as_ref(),
            &record,
            &name,
            &mut names,
        )
        .map_err(|e| format!("event `{}` parameter `{name}`: {e}", event.name))?;
        let hashed = matches!(
            kind,
            Kind::String
                | Kind::Bytes
                | Kind::Array(_)
                | Kind::FixedArray(..)
                | Kind::Record { .. }
        );
        if p.indexed && hashed {
            kind = Kind::TopicHash;
        }
        params.push(Param {
            name,
            abi_name: p.name.clone(),
            solidity: p.ty.clone(),
            indexed: p.indexed,
            kind,
        });
    }
    let signature = event.signature();
    let log: Value = serde_json::from_str(crate::encode::SCHEMA_JSON)
        .map_err(|e| format!("embedded schemas/evm_log.avsc: {e}"))?;
    let mut fields: Vec<Value> = log["fields"]
        .as_array()
        .map(|f| f.iter().take(LOG_FIELDS.len()).cloned().collect())
        .unwrap_or_default();
    let mut defined = Vec::new();
    fields.extend(params.iter().map(|p| shape::field(p, &mut defined)));
    let schema = json!({
        "type": "record",
        "name": record,
        "namespace": "ethhook.events",
        "doc": format!("A decoded `{}` event log (selector keccak256(\"{signature}\")), as published by EthHook Ingestor. Key: <chain_id>:<transaction_hash>:<log_index>, as on the raw topic.", event.full_signature()),
        "fields": fields,
    });
    let selector = B256::new(event.selector().0);
    let mut spec = EventSpec {
        topic: default_topic(chain_id, &record),
        name: event.name.clone(),
        record,
        full: event.full_signature(),
        signature,
        selector,
        addresses: None,
        params,
        schema_json: schema.to_string(),
        source: source.to_owned(),
        one_word: false,
    };
    spec.one_word = super::words::applies(&spec);
    Ok(spec)
}

/// The Avro name of parameter `i`.
fn field_name(raw: &str, i: usize, taken: &mut Vec<String>) -> String {
    let want = if raw.is_empty() {
        format!("arg{i}")
    } else {
        shape::avro_name(raw)
    };
    shape::free_name(want, taken)
}

/// The shape of a parameter of ABI type `ty` (with its tuple `components`).
fn kind(
    ty: &str,
    components: &[AbiParam],
    internal: Option<&InternalType>,
    record: &str,
    field: &str,
    names: &mut RecordNames,
) -> Result<Kind, String> {
    if let Some(open) = ty.strip_suffix(']').and_then(|t| t.rfind('[')) {
        let inner = &ty[..open];
        let size = &ty[open + 1..ty.len() - 1];
        let item = kind(inner, components, internal, record, field, names)?;
        return match size {
            "" => Ok(Kind::Array(Box::new(item))),
            n => n
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(|n| Kind::FixedArray(Box::new(item), n))
                .ok_or_else(|| format!("unknown type `{ty}`")),
        };
    }
    if ty == "tuple" {
        let mut taken = Vec::new();
        let mut fields = Vec::new();
        let want = internal
            .and_then(InternalType::as_struct)
            .map(|(_, s)| shape::avro_name(s.split('[').next().unwrap_or(s)))
            .unwrap_or_else(|| format!("{record}_{field}"));
        for (i, c) in components.iter().enumerate() {
            let name = field_name(&c.name, i, &mut taken);
            let k = kind(
                &c.ty,
                &c.components,
                c.internal_type.as_ref(),
                &want,
                &name,
                names,
            )?;
            fields.push(Param {
                name,
                abi_name: c.name.clone(),
                solidity: c.ty.clone(),
                indexed: false,
                kind: k,
            });
        }
        let name = names.name(want, &fields);
        return Ok(Kind::Record { name, fields });
    }
    use alloy_dyn_abi::DynSolType as T;
    let parsed = T::parse(ty).map_err(|_| format!("unknown type `{ty}`"))?;
    Ok(match parsed {
        T::Address => Kind::Address,
        T::Bool => Kind::Bool,
        T::Int(bits) if bits <= 64 => Kind::Long { signed: true, bits },
        T::Int(bits) => Kind::Decimal { signed: true, bits },
        T::Uint(bits) if bits <= 56 => Kind::Long {
            signed: false,
            bits,
        },
        T::Uint(bits) => Kind::Decimal {
            signed: false,
            bits,
        },
        T::FixedBytes(n) => Kind::FixedBytes(n),
        T::Function => Kind::Function,
        T::Bytes => Kind::Bytes,
        T::String => Kind::String,
        _ => return Err(format!("unknown type `{ty}`")),
    })
}
