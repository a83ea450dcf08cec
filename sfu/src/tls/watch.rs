//! Reloading the certificate on SIGHUP and when its files change
//! ([`watch`]), and SIGHUP without TLS ([`ignore_hangup`]).
//!
//! The files are polled (modification and change times, length, inode)
//! rather than watched with inotify: polling two files every few seconds
//! costs nothing, needs no dependency, and sees every way a certificate is
//! replaced, including a symlink swapped to another file (certbot's
//! `live/` directory, Kubernetes secret volumes), which inotify on the
//! path misses.
//!
//! A pair is read once it has stopped changing for one poll, so that a
//! renewal that writes the certificate and then the key is not read
//! half-done.

use super::Tls;
use crate::shutdown::CancellationToken;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How often the certificate and key files are checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// What identifies one version of a file; `None` while it cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified_ns: i128,
    changed_ns: i128,
    len: u64,
    inode: u64,
}

type Stamps = [Option<Stamp>; 2];

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    let ns = |secs: i64, nanos: i64| i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    Some(Stamp {
        modified_ns: ns(m.mtime(), m.mtime_nsec()),
        changed_ns: ns(m.ctime(), m.ctime_nsec()),
        len: m.len(),
        inode: m.ino(),
    })
}

fn stamps(tls: &Tls) -> Stamps {
    let (cert, key) = tls.files();
    [stamp(cert), stamp(key)]
}

/// When the files are due for a reload.
#[derive(Debug)]
struct Changes {
    /// The files as they were when last read.
    read: Stamps,
    /// The files at the previous poll.
    seen: Stamps,
}

impl Changes {
    fn new(now: Stamps) -> Self {
        Self {
            read: now,
            seen: now,
        }
    }

    /// Whether to read the files, given how they are now: they differ from
    /// what was last read and are the same as at the previous poll.
    fn due(&mut self, now: Stamps) -> bool {
        let settled = now == self.seen;
        self.seen = now;
        if settled && now != self.read {
            self.read = now;
            return true;
        }
        false
    }

    /// The files were read (on SIGHUP) as they are `now`.
    fn was_read(&mut self, now: Stamps) {
        self.read = now;
        self.seen = now;
    }
}

/// Spawns the task that reloads `tls` on SIGHUP and when its files change
/// (checked every `interval`), until `shutdown`. The SIGHUP handler is in
/// place when this returns; if it cannot be installed the error is
/// returned and nothing is spawned.
pub fn watch(
    tls: Arc<Tls>,
    interval: Duration,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    let mut changes = Changes::new(stamps(&tls));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = hangup.recv() => {
                    tracing::info!(signal = "SIGHUP", "reloading the TLS certificate");
                    // Stamped before reading: a change during the read is
                    // seen by the next poll and read again.
                    changes.was_read(stamps(&tls));
                }
                _ = ticks.tick() => {
                    if !changes.due(stamps(&tls)) {
                        continue;
                    }
                    tracing::info!("TLS certificate or key file changed; reloading");
                }
            }
            // The outcome is logged and counted by reload itself.
            let _ = tls.reload();
        }
    });
    Ok(())
}

/// Without TLS there is nothing to reload: spawns a task that logs each
/// SIGHUP until `shutdown`, so that `systemctl reload` or a stray HUP does
/// not end the process the way the signal's default action would.
pub fn ignore_hangup(shutdown: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = hangup.recv() => {
                    tracing::info!(signal = "SIGHUP", "no TLS certificate configured; nothing to reload");
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: u64) -> Option<Stamp> {
        Some(Stamp {
            modified_ns: 0,
            changed_ns: 0,
            len: n,
            inode: 1,
        })
    }

    #[test]
    fn a_change_is_read_once_it_has_settled_for_one_poll() {
        let mut c = Changes::new([s(1), s(1)]);
        assert!(!c.due([s(1), s(1)]), "nothing changed");
        assert!(!c.due([s(2), s(1)]), "the certificate changed: wait");
        assert!(!c.due([s(2), s(2)]), "then the key: wait again");
        assert!(c.due([s(2), s(2)]), "settled: read");
        assert!(!c.due([s(2), s(2)]), "read once");
        assert!(!c.due([None, s(2)]), "removed: wait");
        assert!(c.due([None, s(2)]), "still gone: read, and fail");
        assert!(!c.due([None, s(2)]), "a failure is not retried by polling");
        assert!(!c.due([s(3), s(2)]));
        assert!(c.due([s(3), s(2)]), "back: read");
    }

    #[test]
    fn a_sighup_read_is_not_read_again_by_polling() {
        let mut c = Changes::new([s(1), s(1)]);
        assert!(!c.due([s(2), s(2)]));
        c.was_read([s(2), s(2)]);
        assert!(!c.due([s(2), s(2)]));
    }

    #[test]
    fn stamps_tell_rewrites_and_replacements_apart() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f");
        assert_eq!(stamp(&path), None);
        std::fs::write(&path, "one").expect("write");
        let first = stamp(&path);
        assert!(first.is_some());
        std::fs::write(&path, "two!").expect("rewrite");
        assert_ne!(stamp(&path), first, "length changed");
        let before = stamp(&path);
        let other = dir.path().join("g");
        std::fs::write(&other, "two!").expect("write");
        std::fs::rename(&other, &path).expect("rename");
        assert_ne!(stamp(&path), before, "another file moved in");
    }
}
