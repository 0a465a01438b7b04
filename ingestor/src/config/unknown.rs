//! Unknown keys, named with their section and the closest key that section accepts:
//! `urlz` in a chain gives "did you mean `urls`?".
//!
//! The file's table is checked before the environment is applied (so the error names the
//! file), and each `INGESTOR_*` override's path before it is applied (so the error names
//! the variable). The accepted keys come from the serde derives ([`super::keys`]).

use std::fmt;

use super::keys::Keys;

/// A key that its section does not accept. Its `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UnknownKey {
    /// The key as written.
    pub(crate) key: String,
    /// Where: `in [kafka]`, `in chains[0] (ethereum)`, `at the top level`.
    pub(crate) place: String,
    /// What to do instead: `; did you mean `urls`?`, or the keys accepted there.
    pub(crate) hint: String,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown field `{}` {}{}",
            self.key, self.place, self.hint
        )
    }
}

/// The first key of `table` (a whole configuration file) that is not accepted where it is.
pub(crate) fn check_table(table: &toml::Table) -> Result<(), UnknownKey> {
    match Keys::get() {
        Some(keys) => walk(keys, "", "at the top level", table),
        None => Ok(()),
    }
}

fn walk(keys: &Keys, section: &str, place: &str, table: &toml::Table) -> Result<(), UnknownKey> {
    let accepted = keys.section(section).unwrap_or(&[]);
    for (key, value) in table {
        if !accepted.contains(&key.as_str()) {
            return Err(unknown(keys, section, place, key));
        }
        match (keys.child(section, key), value) {
            (Some((child, false)), toml::Value::Table(inner)) => {
                walk(keys, &child, &format!("in {}", describe(&child)), inner)?;
            }
            (Some((child, true)), toml::Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let toml::Value::Table(inner) = item else {
                        continue;
                    };
                    let place = match inner.get("name").and_then(toml::Value::as_str) {
                        Some(name) => format!("in {key}[{i}] ({name})"),
                        None => format!("in {key}[{i}]"),
                    };
                    walk(keys, &child, &place, inner)?;
                }
            }
            // A value, or a value of the wrong type, which the typed parse reports.
            _ => {}
        }
    }
    Ok(())
}

/// Checks the key path of an environment override (`["kafka", "brokers"]`,
/// `["chains", "<name>", "urls"]`), lowercased, as far as it names fixed keys.
pub(crate) fn check_path(path: &[String]) -> Result<(), UnknownKey> {
    let Some(keys) = Keys::get() else {
        return Ok(());
    };
    let mut section = String::new();
    let mut place = "at the top level".to_owned();
    let mut rest = path;
    while let Some((key, tail)) = rest.split_first() {
        let accepted = keys.section(&section).unwrap_or(&[]);
        if !accepted.contains(&key.as_str()) {
            return Err(unknown(keys, &section, &place, key));
        }
        match keys.child(&section, key) {
            Some((child, false)) => {
                place = format!("in {}", describe(&child));
                section = child;
                rest = tail;
            }
            // The next segment names the element: a chain's name.
            Some((child, true)) => {
                let Some((name, tail)) = tail.split_first() else {
                    return Ok(());
                };
                place = format!("in the chain named `{name}`");
                section = child;
                rest = tail;
            }
            // A value (or a free-form map such as `librdkafka_options`).
            None => return Ok(()),
        }
    }
    Ok(())
}

fn unknown(keys: &Keys, section: &str, place: &str, key: &str) -> UnknownKey {
    let accepted = keys.section(section).unwrap_or(&[]);
    let elsewhere = || {
        keys.sections()
            .find(|s| *s != section && keys.section(s).is_some_and(|k| k.contains(&key)))
    };
    let hint = if let Some(close) = closest(key, accepted) {
        format!("; did you mean `{close}`?")
    } else if let Some(home) = elsewhere() {
        format!("; `{key}` belongs {}", placed(home))
    } else {
        let list: Vec<String> = accepted.iter().map(|k| format!("`{k}`")).collect();
        format!("; expected one of {}", list.join(", "))
    };
    UnknownKey {
        key: key.to_owned(),
        place: place.to_owned(),
        hint,
    }
}

/// `[kafka]`, `[[chains]]`.
fn describe(section: &str) -> String {
    match section.strip_suffix("[]") {
        Some(array) => format!("[[{array}]]"),
        None => format!("[{section}]"),
    }
}

/// `in [kafka]`, `at the top level`.
fn placed(section: &str) -> String {
    match section {
        "" => "at the top level".to_owned(),
        _ => format!("in {}", describe(section)),
    }
}

/// The accepted key closest to `typed`: the same but for case or `-`, a few letters
/// away (a third of its length, at least one), or `typed` without its unit suffix.
pub(crate) fn closest<'k>(typed: &str, accepted: &[&'k str]) -> Option<&'k str> {
    let typed = typed.to_ascii_lowercase().replace('-', "_");
    let limit = (typed.chars().count() / 3).max(1);
    accepted
        .iter()
        .filter_map(|&k| {
            let d = distance(&typed, k);
            let prefix = k.starts_with(&format!("{typed}_"));
            (d <= limit || prefix).then_some((d, k))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance with adjacent transpositions (optimal string alignment).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().expect("toml")
    }

    fn first_unknown(text: &str) -> String {
        check_table(&table(text)).expect_err("unknown").to_string()
    }

    #[test]
    fn distances() {
        assert_eq!(distance("urlz", "urls"), 1);
        assert_eq!(distance("ulrs", "urls"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_closest_key_is_suggested() {
        let chain = ["urls", "ws_url", "name", "start_block"];
        assert_eq!(closest("urlz", &chain), Some("urls"));
        assert_eq!(closest("URLS", &chain), Some("urls"));
        assert_eq!(closest("ws-url", &chain), Some("ws_url"));
        assert_eq!(closest("start", &chain), Some("start_block"));
        assert_eq!(closest("shard", &chain), None);
        assert_eq!(closest("x", &chain), None);
    }

    #[test]
    fn unknown_keys_name_their_section_and_the_closest_key() {
        let chain = "[kafka]\nbrokers = \"b:1\"\n[[chains]]\nname = \"ethereum\"\nchain_id = 1\n";
        assert_eq!(
            first_unknown(&format!("{chain}urlz = [\"ws://n\"]\n")),
            "unknown field `urlz` in chains[0] (ethereum); did you mean `urls`?"
        );
        assert_eq!(
            first_unknown("[kafka]\nbrokerz = \"b:1\"\n"),
            "unknown field `brokerz` in [kafka]; did you mean `brokers`?"
        );
        assert_eq!(
            first_unknown("shutdown_timeout = 5\n"),
            "unknown field `shutdown_timeout` at the top level; did you mean `shutdown_timeout_ms`?"
        );
        assert_eq!(
            first_unknown("[kafak]\nbrokers = \"b:1\"\n"),
            "unknown field `kafak` at the top level; did you mean `kafka`?"
        );
        assert_eq!(
            first_unknown("[health]\nenabled = true\nlisten = \"127.0.0.1:1\"\n"),
            "unknown field `listen` in [health]; did you mean `listen_addr`?"
        );
        assert_eq!(
            first_unknown(&format!("{chain}brokers = \"b:1\"\n")),
            "unknown field `brokers` in chains[0] (ethereum); `brokers` belongs in [kafka]"
        );
        let far = first_unknown("[schema_registry]\nurl = \"http://r\"\nzzz = 1\n");
        assert!(
            far.starts_with("unknown field `zzz` in [schema_registry]; expected one of `url`,"),
            "{far}"
        );
    }

    #[test]
    fn free_form_maps_and_known_keys_pass() {
        let text = "[kafka]\nbrokers = \"b:1\"\n[kafka.librdkafka_options]\n\"linger.ms\" = 5\n\
                    [[chains]]\nname = \"a\"\nchain_id = 1\nurls = [\"ws://n\"]\n";
        assert_eq!(check_table(&table(text)), Ok(()));
    }

    #[test]
    fn environment_paths() {
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(check_path(&path(&["kafka", "brokers"])), Ok(()));
        assert_eq!(
            check_path(&path(&["kafka", "librdkafka_options", "linger.ms"])),
            Ok(())
        );
        assert_eq!(check_path(&path(&["chains", "ethereum", "urls"])), Ok(()));
        assert_eq!(
            check_path(&path(&["chains", "ethereum", "urlz"]))
                .expect_err("unknown")
                .to_string(),
            "unknown field `urlz` in the chain named `ethereum`; did you mean `urls`?"
        );
        assert_eq!(
            check_path(&path(&["kafka", "brokerz"]))
                .expect_err("unknown")
                .to_string(),
            "unknown field `brokerz` in [kafka]; did you mean `brokers`?"
        );
    }
}
