//! The configuration contract: a TOML file, overridden by environment variables, validated
//! before anything starts. Every field's doc comment is the user documentation.

mod env;
mod keys;
mod model;
mod unknown;
mod validate;

use std::path::Path;

pub use model::{
    ChainConfig, Config, Dataset, EventsConfig, Finality, GroupConfig, HealthConfig, KafkaConfig,
    RegistryConfig, SaslMechanism, Secret, SecurityProtocol, StartBlock,
};

/// A configuration that cannot be used. Its `Display` is one line saying what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config {path}: cannot read: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The OS reason.
        reason: String,
    },
    /// The file is not valid TOML.
    #[error("config {path}: line {line}: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line of the error.
        line: usize,
        /// The parser's message, on one line.
        message: String,
    },
    /// A key is unknown, missing or has the wrong type.
    #[error("config {path}: `{key}`: {message}")]
    Field {
        /// The file.
        path: String,
        /// Dotted path of the key, e.g. `chains[0].chain_id`.
        key: String,
        /// What is wrong, on one line.
        message: String,
    },
    /// A key that its section does not accept, with the closest one it does.
    #[error("config {path}: {unknown}")]
    UnknownKey {
        /// The file.
        path: String,
        /// The key, where it is, and the hint, on one line.
        unknown: String,
    },
    /// An environment override cannot be applied.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable's name.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A `[[chains.events]]` entry's ABI cannot be used.
    #[error("config {path}: {source}")]
    Abi {
        /// The file.
        path: String,
        /// What is wrong with the ABI.
        #[source]
        source: Box<crate::decode::AbiError>,
    },
    /// The values parse but do not make sense together.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What to fix.
        message: String,
    },
}

/// Reads `path`, applies `INGESTOR_*` overrides from the process environment, and validates.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_with_env(path, std::env::vars())
}

/// As [`load`], with the environment given explicitly (for tests).
pub fn load_with_env(
    path: &Path,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: shown.clone(),
        reason: e.to_string(),
    })?;
    parse(&shown, &text, vars)
}

/// Parses configuration text (what [`load_with_env`] does after reading the file).
pub fn parse(
    shown: &str,
    text: &str,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let vars: Vec<(String, String)> = vars.into_iter().collect();
    let mut table: toml::Table =
        text.parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                path: shown.to_owned(),
                line: e
                    .span()
                    .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                    .unwrap_or(1),
                message: one_line(e.message()),
            })?;
    unknown::check_table(&table).map_err(|u| ConfigError::UnknownKey {
        path: shown.to_owned(),
        unknown: u.to_string(),
    })?;
    env::apply(&mut table, vars.iter().cloned())?;
    let mut config: Config =
        serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            ConfigError::Field {
                path: shown.to_owned(),
                key: e.path().to_string(),
                message: one_line(&e.inner().to_string()),
            }
        })?;
    validate::check(&config).map_err(|message| ConfigError::Invalid {
        path: shown.to_owned(),
        message,
    })?;
    load_events(shown, &mut config)?;
    // TLS trusts SSL_CERT_FILE as well: a bundle that cannot be used fails here, not at
    // the first `wss://` connection.
    if let Some((_, file)) = vars
        .iter()
        .find(|(k, v)| k == crate::rpc::tls::SSL_CERT_FILE && !v.is_empty())
    {
        let trust = crate::rpc::tls::Trust {
            ssl_cert_file: Some(file.into()),
            ca_file: None,
        };
        trust.roots().map_err(|e| ConfigError::Env {
            var: crate::rpc::tls::SSL_CERT_FILE.into(),
            message: e.to_string(),
        })?;
    }
    Ok(config)
}

/// Loads every chain's `[[chains.events]]` ABIs (relative to the file's folder).
fn load_events(shown: &str, config: &mut Config) -> Result<(), ConfigError> {
    let base = Path::new(shown)
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .to_path_buf();
    let mut taken: Vec<String> = config
        .chains
        .iter()
        .filter_map(ChainConfig::raw_topic)
        .collect();
    taken.push(config.kafka.checkpoint_topic.clone());
    for (i, chain) in config.chains.iter_mut().enumerate() {
        let catalog = crate::decode::Catalog::load(i, chain, &base, &taken).map_err(|source| {
            ConfigError::Abi {
                path: shown.to_owned(),
                source: Box::new(source),
            }
        })?;
        chain.catalog = std::sync::Arc::new(catalog);
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod tests;
