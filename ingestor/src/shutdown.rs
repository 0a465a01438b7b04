//! Waiting for SIGINT or SIGTERM.

use tokio::signal::unix::{SignalKind, signal};

/// Resolves with the signal's name when SIGINT or SIGTERM arrives. If the handlers cannot
/// be installed it never resolves, and the error is returned to the caller up front.
pub fn on_signal() -> std::io::Result<impl Future<Output = &'static str>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        }
    })
}
