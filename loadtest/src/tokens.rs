//! Access tokens for the simulated participants: minted per participant,
//! or read from a file in order. Tokens are never logged.

use crate::settings::Credentials;
use signaling::token::{Grants, TokenKeys};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Why a participant has no token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read.
    #[error("cannot read token file {0}: {1}")]
    Read(PathBuf, #[source] std::io::Error),
    /// The token file has no tokens.
    #[error("token file {0} holds no tokens")]
    Empty(PathBuf),
    /// More participants than tokens in the file.
    #[error("the token file's {0} tokens are used up")]
    Exhausted(usize),
    /// Minting failed.
    #[error("cannot mint a token: {0}")]
    Mint(#[from] signaling::token::TokenError),
}

/// Where each participant's token comes from.
pub enum TokenSource {
    /// Minted with these keys, valid this long.
    Mint {
        /// The key pair.
        keys: TokenKeys,
        /// Token lifetime.
        ttl: Duration,
    },
    /// Read from a file, handed out in order.
    File {
        /// The tokens, one per non-empty line.
        tokens: Vec<String>,
        /// The next one to hand out.
        next: AtomicUsize,
    },
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Mint { keys, ttl } => f
                .debug_struct("Mint")
                .field("keys", keys)
                .field("ttl", ttl)
                .finish(),
            Self::File { tokens, .. } => f
                .debug_struct("File")
                .field("tokens", &tokens.len())
                .finish_non_exhaustive(),
        }
    }
}

impl TokenSource {
    /// The source `credentials` describe; minted tokens live for `ttl`.
    pub fn new(credentials: &Credentials, ttl: Duration) -> Result<Self, TokenError> {
        match credentials {
            Credentials::Keys {
                api_key,
                api_secret,
                ..
            } => Ok(Self::Mint {
                keys: TokenKeys::new(api_key, api_secret),
                ttl,
            }),
            Credentials::TokenFile(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| TokenError::Read(path.clone(), e))?;
                Self::from_lines(&text).ok_or_else(|| TokenError::Empty(path.clone()))
            }
        }
    }

    /// Tokens from `text`, one per non-empty line; `None` if there are none.
    pub fn from_lines(text: &str) -> Option<Self> {
        let tokens: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        (!tokens.is_empty()).then(|| Self::File {
            tokens,
            next: AtomicUsize::new(0),
        })
    }

    /// A token for `identity` in `room` (the next line, for a file).
    pub fn token(&self, room: &str, identity: &str) -> Result<String, TokenError> {
        match self {
            Self::Mint { keys, ttl } => {
                Ok(keys.mint(room, identity, identity, Grants::default(), *ttl)?)
            }
            Self::File { tokens, next } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                tokens
                    .get(i)
                    .cloned()
                    .ok_or(TokenError::Exhausted(tokens.len()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_name_room_and_identity() {
        let dev = Credentials::Keys {
            api_key: signaling::token::DEV_API_KEY.into(),
            api_secret: signaling::token::DEV_API_SECRET.into(),
            development: true,
        };
        let src = TokenSource::new(&dev, Duration::from_secs(60)).expect("source");
        let t = src.token("lt-1-0", "p0-3").expect("minted");
        let claims = TokenKeys::development()
            .verify_for_room(&t, "lt-1-0")
            .expect("valid");
        assert_eq!(claims.identity(), "p0-3");
        assert!(claims.grants.publish && claims.grants.subscribe);
    }

    #[test]
    fn file_tokens_are_used_in_order_until_exhausted() {
        let src = TokenSource::from_lines("a\n\n# comment\n b \n").expect("two");
        assert_eq!(src.token("r", "x").expect("first"), "a");
        assert_eq!(src.token("r", "y").expect("second"), "b");
        assert!(matches!(src.token("r", "z"), Err(TokenError::Exhausted(2))));
        assert!(TokenSource::from_lines("\n\n").is_none());
        let missing = Credentials::TokenFile("/nonexistent/tokens.txt".into());
        assert!(matches!(
            TokenSource::new(&missing, Duration::from_secs(1)),
            Err(TokenError::Read(..))
        ));
    }
}
