//! Logs in tests.

/// Sends logs to the test output, filtered by `RUST_LOG` (nothing when it
/// is unset). Safe to call from every test.
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
