//! Environment overrides.
//!
//! Scheme: `INGESTOR_` then the key path, sections separated by `__`, case-insensitive.
//! - `INGESTOR_KAFKA__BROKERS=host:9092` sets `kafka.brokers`;
//! - `INGESTOR_SHUTDOWN_TIMEOUT_MS=5000` sets `shutdown_timeout_ms`;
//! - `INGESTOR_CHAINS__<NAME>__WS_URL=...` sets `ws_url` of the chain whose `name` is
//!   `<NAME>` (compared case-insensitively, `-` in the name written as `_`).
//!
//! Values are read as TOML scalars or arrays when they parse as one (`5000`, `true`,
//! `["wss://a", "https://b"]`), otherwise as strings. A chain name that is not in the file
//! is an error, as is an unknown key (named with the closest known one).

use super::ConfigError;

const PREFIX: &str = "INGESTOR_";

/// Applies every `INGESTOR_*` variable in `vars` to `table`.
pub(super) fn apply(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX))
        .collect();
    vars.sort();
    for (var, raw) in vars {
        let path: Vec<String> = var[PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        let err = |message: String| ConfigError::Env {
            var: var.clone(),
            message,
        };
        if path.iter().any(String::is_empty) {
            return Err(err("empty key segment; use `__` only between keys".into()));
        }
        super::unknown::check_path(&path).map_err(|u| err(u.to_string()))?;
        let value = scalar(&raw);
        match path.as_slice() {
            [chains, name, key] if chains == "chains" => {
                let chain = find_chain(table, name).map_err(err)?;
                chain.insert(key.clone(), value);
            }
            [chains, ..] if chains == "chains" => {
                return Err(err(
                    "chain overrides are INGESTOR_CHAINS__<NAME>__<KEY>".into()
                ));
            }
            [key] => {
                table.insert(key.clone(), value);
            }
            [section, rest @ ..] => {
                let mut node = table
                    .entry(section.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                for key in &rest[..rest.len() - 1] {
                    node = node
                        .as_table_mut()
                        .ok_or_else(|| err(format!("`{section}` is not a table")))?
                        .entry(key.clone())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                }
                let last = rest.last().cloned().unwrap_or_default();
                node.as_table_mut()
                    .ok_or_else(|| err(format!("`{section}` is not a table")))?
                    .insert(last, value);
            }
            [] => return Err(err("no key after the prefix".into())),
        }
    }
    Ok(())
}

fn find_chain<'a>(table: &'a mut toml::Table, name: &str) -> Result<&'a mut toml::Table, String> {
    let chains = table
        .get_mut("chains")
        .and_then(toml::Value::as_array_mut)
        .ok_or_else(|| "the config file has no [[chains]] to override".to_owned())?;
    chains
        .iter_mut()
        .filter_map(toml::Value::as_table_mut)
        .find(|c| {
            c.get("name")
                .and_then(toml::Value::as_str)
                .is_some_and(|n| n.to_ascii_lowercase().replace('-', "_") == name)
        })
        .ok_or_else(|| format!("no chain named `{name}` in the config file"))
}

fn scalar(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_)
                | toml::Value::Boolean(_)
                | toml::Value::Float(_)
                | toml::Value::Array(_)),
            ) => v,
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}
