//! The process's file-descriptor limit. Every HTTP or WebSocket connection
//! holds one descriptor; the soft limit many systems start processes with
//! (1024) is used up by a few hundred slow clients, so the server raises it
//! to the hard limit at start.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// The limit before and after [`raise`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    /// The soft limit found at start.
    pub soft_before: u64,
    /// The soft limit in force now.
    pub soft: u64,
    /// The hard limit (the most the soft one may be raised to).
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns what it found
/// and what is in force, or the error when the limit cannot even be read.
/// A failure to raise is not an error: the limit then stays as it was.
pub fn raise() -> nix::Result<FdLimit> {
    let (soft_before, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let soft = if soft_before < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => getrlimit(Resource::RLIMIT_NOFILE)?.0,
            Err(_) => soft_before,
        }
    } else {
        soft_before
    };
    Ok(FdLimit {
        soft_before,
        soft,
        hard,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn soft_limit_ends_at_the_hard_limit() {
        let limit = super::raise().expect("readable");
        assert!(limit.soft >= limit.soft_before);
        assert!(limit.soft <= limit.hard);
        assert_eq!(super::raise().expect("again").soft_before, limit.soft);
    }
}
