//! Secrets anyone could guess: the public development secret, the examples
//! printed in this project's documentation, blank ones and ones with too
//! little variety to be random. Such a secret signs tokens on loopback only
//! (with a warning); off loopback the server refuses to start.

use signaling::token::DEV_API_SECRET;
use std::fmt;

/// Every API secret this project publishes: the development secret and
/// each example secret in its README, docs and rustdoc. A test checks that
/// every secret-looking example in the Markdown docs is listed here.
pub const EXAMPLE_SECRETS: &[&str] = &[
    DEV_API_SECRET,
    // docs/operations.md, the example config file.
    "at-least-32-bytes-of-random-secret-data",
    // Rustdoc examples of signaling's token and config types.
    "a-secret-of-at-least-32-bytes-long!!",
];

/// Least number of different bytes a secret must hold.
const MIN_DISTINCT_BYTES: usize = 8;

/// Least estimated entropy of a secret, in bits: its length times the
/// Shannon entropy of its byte frequencies. 32 random hex digits score
/// about 115, 32 random base64 characters about 150.
const MIN_ENTROPY_BITS: f64 = 100.0;

/// Most of a secret's byte-to-byte steps that may be the same step (as in
/// "abcdef…" or "aaaa…"): a counting or repeating run is no secret.
const MAX_SAME_STEP_SHARE: f64 = 0.5;

/// Why a configured API secret is no secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WeakSecret {
    /// It is the public development secret.
    Development,
    /// It is an example secret from this project's documentation.
    DocumentedExample,
    /// It is empty or whitespace only.
    Blank,
    /// It has too few different bytes, too little entropy, or is a
    /// counting or repeating run.
    LowEntropy,
}

impl fmt::Display for WeakSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Development => "the public development secret",
            Self::DocumentedExample => "an example secret from the documentation",
            Self::Blank => "blank (empty or whitespace only)",
            Self::LowEntropy => "of low entropy (too few different characters, or a run)",
        })
    }
}

impl WeakSecret {
    /// Why `secret` is weak, or `None` if it looks random enough.
    ///
    /// ```
    /// use sfu::config::WeakSecret;
    /// assert_eq!(WeakSecret::check(&" ".repeat(32)), Some(WeakSecret::Blank));
    /// assert_eq!(WeakSecret::check(&"ab".repeat(20)), Some(WeakSecret::LowEntropy));
    /// assert_eq!(WeakSecret::check("Hq3v9XkP0aZ7mW2rT5yL8cN1bF4gJ6sD"), None);
    /// ```
    pub fn check(secret: &str) -> Option<Self> {
        if secret == DEV_API_SECRET {
            return Some(Self::Development);
        }
        if EXAMPLE_SECRETS.contains(&secret) {
            return Some(Self::DocumentedExample);
        }
        if secret.trim().is_empty() {
            return Some(Self::Blank);
        }
        low_entropy(secret.as_bytes()).then_some(Self::LowEntropy)
    }
}

fn low_entropy(bytes: &[u8]) -> bool {
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let distinct = counts.iter().filter(|&&n| n > 0).count();
    let len = bytes.len() as f64;
    let bits_per_byte: f64 = counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / len;
            -p * p.log2()
        })
        .sum();
    let mut steps = [0usize; 256];
    for pair in bytes.windows(2) {
        steps[usize::from(pair[1].wrapping_sub(pair[0]))] += 1;
    }
    let most_common_step = steps.iter().copied().max().unwrap_or(0);
    let step_share = most_common_step as f64 / (len - 1.0).max(1.0);
    distinct < MIN_DISTINCT_BYTES
        || bits_per_byte * len < MIN_ENTROPY_BITS
        || step_share > MAX_SAME_STEP_SHARE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guessable_secrets_are_named() {
        assert_eq!(
            WeakSecret::check(DEV_API_SECRET),
            Some(WeakSecret::Development)
        );
        for example in &EXAMPLE_SECRETS[1..] {
            assert_eq!(
                WeakSecret::check(example),
                Some(WeakSecret::DocumentedExample)
            );
        }
        for blank in ["", " ", &" ".repeat(32), &"\t\n ".repeat(12)] {
            assert_eq!(
                WeakSecret::check(blank),
                Some(WeakSecret::Blank),
                "{blank:?}"
            );
        }
        for weak in [
            "a".repeat(40),
            "ab".repeat(20),
            "abcdefgh".repeat(4),
            "0123456789abcdef0123456789abcdef".to_string(),
            "abcdefghijklmnopqrstuvwxyz012345".to_string(),
            "passwordpasswordpasswordpassword".to_string(),
        ] {
            assert_eq!(
                WeakSecret::check(&weak),
                Some(WeakSecret::LowEntropy),
                "{weak}"
            );
        }
    }

    /// Secret-looking values in the Markdown docs: on a line that mentions
    /// a secret, a quoted or backticked value of 32 bytes or more with no
    /// space, or what follows `SFU_API_SECRET=`.
    fn documented_secrets(text: &str) -> Vec<String> {
        let mut found = Vec::new();
        for line in text.lines() {
            if !line.to_lowercase().contains("secret") {
                continue;
            }
            for quote in ['"', '`'] {
                found.extend(line.split(quote).skip(1).step_by(2).map(str::to_string));
            }
            if let Some((_, rest)) = line.split_once("SFU_API_SECRET=") {
                found.extend(rest.split_whitespace().next().map(str::to_string));
            }
        }
        found.retain(|s| s.len() >= 32 && !s.contains(char::is_whitespace));
        found
    }

    #[test]
    fn every_documented_example_secret_is_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = vec![root.join("README.md"), root.join("SECURITY.md")];
        for entry in std::fs::read_dir(root.join("docs")).expect("docs/") {
            files.push(entry.expect("entry").path());
        }
        let mut seen = 0;
        for file in files
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "md"))
        {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            for secret in documented_secrets(&text) {
                seen += 1;
                assert!(
                    EXAMPLE_SECRETS.contains(&secret.as_str()),
                    "{} shows the example secret {secret:?}: add it to EXAMPLE_SECRETS",
                    file.display()
                );
            }
        }
        assert!(seen > 0, "the docs' example config shows a secret");
        assert_eq!(
            documented_secrets("SFU_API_SECRET=abcdefghijklmnopqrstuvwxyz0123456789 sfu"),
            ["abcdefghijklmnopqrstuvwxyz0123456789"]
        );
    }

    #[test]
    fn random_looking_secrets_pass() {
        for good in [
            "Hq3v9XkP0aZ7mW2rT5yL8cN1bF4gJ6sD",
            "integration-test-secret-0123456789abcdef",
            // 32 hex digits, as `openssl rand -hex 16` prints.
            "9f86d081884c7d659a2feaa0c55ad015",
            "3q2+7wAAAAB8Yh1mZ0x9cG9zdGdyZXM0NTY3ODkwYWJjZGVm",
        ] {
            assert_eq!(WeakSecret::check(good), None, "{good}");
        }
    }
}
