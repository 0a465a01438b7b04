//! The Avro specification's schema fingerprint: the CRC-64-AVRO of the schema's Parsing
//! Canonical Form, as single-object encoding puts it in every header (little-endian).
//!
//! Computed here because apache-avro 0.21 keeps a stripped logical type as
//! `{"type":"long"}` where the specification's [PRIMITIVES] rule, applied after [STRIP],
//! makes it `"long"`; its fingerprint therefore differs from every other implementation's
//! (fastavro's and Java's agree with this module; the unit tests keep fastavro's results).
//!
//! Rules (Avro specification, "Parsing Canonical Form for Schemas"): [PRIMITIVES] primitive
//! schemas in simple form; [FULLNAMES] names made full with the applicable namespace;
//! [STRIP] only `type`, `name`, `fields`, `symbols`, `items`, `values`, `size` kept;
//! [ORDER] in that order; [STRINGS] no escapes but those JSON requires; [INTEGERS] sizes as
//! plain integers; [WHITESPACE] none outside strings.

use std::fmt::Write as _;

use serde_json::Value;

const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// A schema that cannot be put in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("schema is not canonicalisable: {0}")]
pub struct CanonicalError(String);

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// The full name of a named type, and the namespace its own children inherit.
fn full_name(
    obj: &serde_json::Map<String, Value>,
    ns: &str,
) -> Result<(String, String), CanonicalError> {
    let name = obj
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| CanonicalError("a named type without a name".into()))?;
    if let Some((space, _)) = name.rsplit_once('.') {
        return Ok((name.to_owned(), space.to_owned()));
    }
    let space = match obj.get("namespace").and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => ns.to_owned(),
    };
    let full = if space.is_empty() {
        name.to_owned()
    } else {
        format!("{space}.{name}")
    };
    Ok((full, space))
}

fn write(v: &Value, ns: &str, out: &mut String) -> Result<(), CanonicalError> {
    match v {
        Value::String(s)
            if PRIMITIVES.contains(&s.as_str()) || s.contains('.') || ns.is_empty() =>
        {
            out.push_str(&json_string(s));
        }
        // A reference to a named type by its short name.
        Value::String(s) => out.push_str(&json_string(&format!("{ns}.{s}"))),
        Value::Array(branches) => {
            out.push('[');
            for (i, b) in branches.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(b, ns, out)?;
            }
            out.push(']');
        }
        Value::Object(obj) => {
            let ty = obj
                .get("type")
                .ok_or_else(|| CanonicalError("an object schema without `type`".into()))?;
            let Some(ty) = ty.as_str() else {
                // `{"type": <schema>}`: the inner schema itself.
                return write(ty, ns, out);
            };
            match ty {
                "record" | "error" => {
                    let (full, inner) = full_name(obj, ns)?;
                    let fields = obj
                        .get("fields")
                        .and_then(Value::as_array)
                        .ok_or_else(|| CanonicalError(format!("record {full} without fields")))?;
                    let _ = write!(
                        out,
                        "{{\"name\":{},\"type\":\"record\",\"fields\":[",
                        json_string(&full)
                    );
                    for (i, f) in fields.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                            CanonicalError(format!("a field of {full} without a name"))
                        })?;
                        let fty = f.get("type").ok_or_else(|| {
                            CanonicalError(format!("field {name} without a type"))
                        })?;
                        let _ = write!(out, "{{\"name\":{},\"type\":", json_string(name));
                        write(fty, &inner, out)?;
                        out.push('}');
                    }
                    out.push_str("]}");
                }
                "enum" => {
                    let (full, _) = full_name(obj, ns)?;
                    let symbols = obj
                        .get("symbols")
                        .and_then(Value::as_array)
                        .ok_or_else(|| CanonicalError(format!("enum {full} without symbols")))?;
                    let symbols: Vec<String> = symbols
                        .iter()
                        .map(|s| json_string(s.as_str().unwrap_or_default()))
                        .collect();
                    let _ = write!(
                        out,
                        "{{\"name\":{},\"type\":\"enum\",\"symbols\":[{}]}}",
                        json_string(&full),
                        symbols.join(",")
                    );
                }
                "fixed" => {
                    let (full, _) = full_name(obj, ns)?;
                    let size = obj
                        .get("size")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| CanonicalError(format!("fixed {full} without a size")))?;
                    let _ = write!(
                        out,
                        "{{\"name\":{},\"type\":\"fixed\",\"size\":{size}}}",
                        json_string(&full)
                    );
                }
                "array" => {
                    out.push_str("{\"type\":\"array\",\"items\":");
                    write(obj.get("items").unwrap_or(&Value::Null), ns, out)?;
                    out.push('}');
                }
                "map" => {
                    out.push_str("{\"type\":\"map\",\"values\":");
                    write(obj.get("values").unwrap_or(&Value::Null), ns, out)?;
                    out.push('}');
                }
                // A primitive with attributes (e.g. a logical type): [STRIP], then
                // [PRIMITIVES] leaves the bare name.
                other => write(&Value::String(other.to_owned()), ns, out)?,
            }
        }
        other => {
            return Err(CanonicalError(format!(
                "unexpected JSON in a schema: {other}"
            )));
        }
    }
    Ok(())
}

/// The Parsing Canonical Form of a schema given as JSON text.
pub fn canonical_form(schema_json: &str) -> Result<String, CanonicalError> {
    let v: Value = serde_json::from_str(schema_json).map_err(|e| CanonicalError(e.to_string()))?;
    let mut out = String::new();
    write(&v, "", &mut out)?;
    Ok(out)
}

/// CRC-64-AVRO, as the specification defines it (the "Rabin" fingerprint), in the byte
/// order single-object encoding writes it (little-endian).
pub fn crc64_avro(data: &[u8]) -> [u8; 8] {
    const EMPTY: u64 = 0xc15d_213a_a4d7_a795;
    let table: [u64; 256] = std::array::from_fn(|i| {
        let mut fp = i as u64;
        for _ in 0..8 {
            fp = (fp >> 1) ^ (EMPTY & 0u64.wrapping_sub(fp & 1));
        }
        fp
    });
    let mut fp = EMPTY;
    for b in data {
        fp = (fp >> 8) ^ table[((fp ^ u64::from(*b)) & 0xff) as usize];
    }
    fp.to_le_bytes()
}

/// The schema's fingerprint: CRC-64-AVRO of its Parsing Canonical Form.
pub fn fingerprint(schema_json: &str) -> Result<[u8; 8], CanonicalError> {
    Ok(crc64_avro(canonical_form(schema_json)?.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Computed by fastavro 1.10.0 (`to_parsing_canonical_form`, `fingerprint(..,
    /// "CRC-64-AVRO")`), an independent implementation; hex in header byte order.
    #[test]
    fn matches_fastavro() {
        for (schema, canonical, fp) in [
            (r#""int""#, r#""int""#, "8f5c393f1ad57572"),
            (r#""null""#, r#""null""#, "8a8f25cce724dd63"),
            (
                r#"{"type":"long","logicalType":"timestamp-millis"}"#,
                r#""long""#,
                "b71df49344e154d0",
            ),
        ] {
            assert_eq!(canonical_form(schema).expect("canonical"), canonical);
            assert_eq!(
                hex::encode(fingerprint(schema).expect("fp")),
                fp,
                "{schema}"
            );
        }
    }

    #[test]
    fn the_evm_log_schema_matches_fastavro() {
        let want = r#"{"name":"io.ethhook.EvmLog","type":"record","fields":[{"name":"chain_id","type":"long"},{"name":"block_number","type":"long"},{"name":"block_hash","type":"string"},{"name":"block_timestamp","type":"long"},{"name":"transaction_hash","type":"string"},{"name":"transaction_index","type":"long"},{"name":"log_index","type":"long"},{"name":"address","type":"string"},{"name":"topics","type":{"type":"array","items":"string"}},{"name":"data","type":"bytes"}]}"#;
        assert_eq!(
            canonical_form(super::super::SCHEMA_JSON).expect("canonical"),
            want
        );
        assert_eq!(
            hex::encode(fingerprint(super::super::SCHEMA_JSON).expect("fp")),
            "d3c398dc20ff3cf9"
        );
    }

    #[test]
    fn names_enums_fixed_and_maps() {
        let schema = r#"{"type":"record","name":"R","namespace":"a.b","doc":"x","fields":[
            {"name":"e","type":{"type":"enum","name":"E","symbols":["X","Y"]},"default":"X"},
            {"name":"f","type":{"type":"fixed","name":"c.F","size":16}},
            {"name":"m","type":{"type":"map","values":["null","E"]}}]}"#;
        assert_eq!(
            canonical_form(schema).expect("canonical"),
            r#"{"name":"a.b.R","type":"record","fields":[{"name":"e","type":{"name":"a.b.E","type":"enum","symbols":["X","Y"]}},{"name":"f","type":{"name":"c.F","type":"fixed","size":16}},{"name":"m","type":{"type":"map","values":["null","a.b.E"]}}]}"#
        );
        // fastavro 1.10.0 agrees, canonical form and fingerprint.
        assert_eq!(
            hex::encode(fingerprint(schema).expect("fp")),
            "688a264c01dd2e22"
        );
    }
}
