//! Redaction of node URLs for logs: providers put API keys in the path or query.

use url::Url;

/// Returns `scheme://host:port` plus `/…` when the URL had a path, query or credentials,
/// so that no key ever reaches a log line. An unparsable URL is fully hidden.
pub fn redact_url(raw: &str) -> String {
    let Ok(url) = Url::parse(raw) else {
        return "<unparsable url>".to_owned();
    };
    let host = url.host_str().unwrap_or("?");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let hidden = url.path() != "/" && !url.path().is_empty()
        || url.query().is_some()
        || !url.username().is_empty()
        || url.password().is_some();
    let tail = if hidden { "/<redacted>" } else { "" };
    format!("{}://{host}{port}{tail}", url.scheme())
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn keys_never_survive() {
        assert_eq!(redact_url("ws://127.0.0.1:8545"), "ws://127.0.0.1:8545");
        assert_eq!(
            redact_url("wss://eth.example/v2/SECRETKEY"),
            "wss://eth.example/<redacted>"
        );
        assert_eq!(
            redact_url("wss://eth.example/?apikey=SECRET"),
            "wss://eth.example/<redacted>"
        );
        assert_eq!(
            redact_url("wss://user:SECRET@eth.example"),
            "wss://eth.example/<redacted>"
        );
        assert_eq!(redact_url("not a url SECRET"), "<unparsable url>");
    }
}
