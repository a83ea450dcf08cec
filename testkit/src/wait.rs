//! Bounded waits for tests on a tokio runtime: nothing waits forever, and
//! a wait that runs out says what it was waiting for.

use std::future::Future;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// Upper bound on anything a test waits for. Generous: tests must not
/// depend on machine speed, and a passing test never waits this long.
pub const LIMIT: Duration = Duration::from_secs(30);

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(10);

/// Waits until `check` holds, checking every few milliseconds; panics
/// naming `what` after [`LIMIT`].
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until the asynchronous `check` holds; panics naming `what` after
/// [`LIMIT`].
pub async fn until_async<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + LIMIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// `future`'s output, or a panic naming `what` after [`LIMIT`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Waits for `child` to exit without blocking the runtime (which may be
/// serving the server the child talks to). Kills it and panics, showing
/// its output, after `limit`. Returns its output and how long it ran.
pub async fn child(mut child: Child, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    loop {
        let exited = child.try_wait().expect("poll child").is_some();
        if exited || started.elapsed() > limit {
            if !exited {
                let _ = child.kill();
            }
            let out = child.wait_with_output().expect("child output");
            assert!(
                exited,
                "child did not exit within {limit:?}\n{}",
                output_text(&out)
            );
            return (out, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Exit status, stdout and stderr of a finished process, for assertion
/// messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
