//! Graceful shutdown. One [`CancellationToken`] is cancelled on SIGINT or
//! SIGTERM (or by [`crate::RunningServer::shutdown`]); the HTTP server, the
//! media shell and anything else long-lived await or poll it.
//!
//! Async code awaits `token.cancelled()`; a blocking thread (a media shard)
//! checks `token.is_cancelled()` once per loop.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use sfu::shutdown::CancellationToken;
//! let token = CancellationToken::new();
//! let worker = tokio::spawn({
//!     let token = token.clone();
//!     async move { token.cancelled().await; "stopped" }
//! });
//! token.cancel();
//! assert_eq!(worker.await.unwrap(), "stopped");
//! # }
//! ```

pub use tokio_util::sync::CancellationToken;

/// Spawns a task that cancels `token` on the first SIGINT or SIGTERM. The
/// handlers are installed before this returns, so a signal that arrives
/// right after is not missed.
pub fn cancel_on_signal(token: CancellationToken) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = token.cancelled() => return,
            };
            tracing::info!(signal = name, "shutting down");
            token.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_ok() {
                tracing::info!(signal = "ctrl-c", "shutting down");
                token.cancel();
            },
            _ = token.cancelled() => {}
        }
    });
    Ok(())
}
