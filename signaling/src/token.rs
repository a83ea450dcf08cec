//! Access tokens: HS256 JWTs signed with an API secret.
//!
//! ```
//! use signaling::token::{Grants, TokenKeys};
//! use std::time::Duration;
//! let keys = TokenKeys::new("devkey", "a-secret-of-at-least-32-bytes-long!!");
//! let t = keys.mint("room-1", "alice", "Alice", Grants::default(), Duration::from_secs(60)).unwrap();
//! let claims = keys.verify(&t).unwrap();
//! assert_eq!(claims.room, "room-1");
//! assert!(claims.grants.publish);
//! ```

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The development API key used when none is configured.
pub const DEV_API_KEY: &str = "devkey";
/// The development API secret used when none is configured. It is public:
/// the server refuses to use it on anything but a loopback address.
pub const DEV_API_SECRET: &str = "secret-for-local-development-only-0000";

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// May publish tracks.
    pub publish: bool,
    /// May subscribe to tracks.
    pub subscribe: bool,
    /// May use the admin API.
    pub admin: bool,
}

impl Default for Grants {
    /// Publish and subscribe, no admin.
    fn default() -> Self {
        Self {
            publish: true,
            subscribe: true,
            admin: false,
        }
    }
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer: the API key.
    pub iss: String,
    /// Subject: the participant identity.
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Room name. Empty for admin-only tokens that name no room.
    pub room: String,
    /// Display name.
    pub name: String,
    /// Grants.
    pub grants: Grants,
}

impl Claims {
    /// The participant identity.
    pub fn identity(&self) -> &str {
        &self.sub
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The token has expired.
    #[error("token expired")]
    Expired,
    /// The signature does not verify, or the token was issued by another key.
    #[error("token signature invalid")]
    BadSignature,
    /// The token is not a well-formed JWT with our claims.
    #[error("token malformed")]
    Malformed,
    /// The token was minted for another room.
    #[error("token is for another room")]
    WrongRoom,
    /// The clock or ttl made a token impossible to mint.
    #[error("cannot mint token: {0}")]
    Mint(String),
}

/// An API key and secret pair, ready to mint and verify tokens.
#[derive(Clone)]
pub struct TokenKeys {
    api_key: String,
    enc: EncodingKey,
    dec: DecodingKey,
}

impl std::fmt::Debug for TokenKeys {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("api_key", &self.api_key)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenKeys {
    /// Keys from an API key and secret.
    pub fn new(api_key: &str, api_secret: &str) -> Self {
        Self {
            api_key: api_key.to_string(),
            enc: EncodingKey::from_secret(api_secret.as_bytes()),
            dec: DecodingKey::from_secret(api_secret.as_bytes()),
        }
    }

    /// The well-known development pair.
    pub fn development() -> Self {
        Self::new(DEV_API_KEY, DEV_API_SECRET)
    }

    /// The API key (the `iss` claim).
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Mints a token valid for `ttl` from now.
    pub fn mint(
        &self,
        room: &str,
        identity: &str,
        name: &str,
        grants: Grants,
        ttl: Duration,
    ) -> Result<String, TokenError> {
        let now = unix_now();
        let claims = Claims {
            iss: self.api_key.clone(),
            sub: identity.to_string(),
            exp: now.saturating_add(ttl.as_secs()),
            nbf: now.saturating_sub(5),
            room: room.to_string(),
            name: name.to_string(),
            grants,
        };
        self.sign(&claims)
    }

    /// Signs arbitrary claims (tests use this for expired tokens).
    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.enc)
            .map_err(|e| TokenError::Mint(e.to_string()))
    }

    /// Verifies signature, issuer, expiry and not-before.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[self.api_key.as_str()]);
        v.leeway = 0;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "sub", "nbf"]);
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature | K::ImmatureSignature => TokenError::Expired,
                    K::InvalidSignature | K::InvalidIssuer | K::InvalidAlgorithm => {
                        TokenError::BadSignature
                    }
                    _ => TokenError::Malformed,
                }
            })
    }

    /// Verifies a token and that it names `room`.
    pub fn verify_for_room(&self, token: &str, room: &str) -> Result<Claims, TokenError> {
        let c = self.verify(token)?;
        if c.room != room {
            return Err(TokenError::WrongRoom);
        }
        Ok(c)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn forged_and_expired_tokens_are_refused() {
        let keys = TokenKeys::development();
        let other = TokenKeys::new(DEV_API_KEY, "another-secret-another-secret-0000");
        let t = other
            .mint("r", "a", "A", Grants::default(), Duration::from_secs(60))
            .unwrap();
        assert_eq!(keys.verify(&t), Err(TokenError::BadSignature));

        let now = unix_now();
        let expired = Claims {
            iss: DEV_API_KEY.into(),
            sub: "a".into(),
            exp: now - 10,
            nbf: now - 100,
            room: "r".into(),
            name: "A".into(),
            grants: Grants::default(),
        };
        let t = keys.sign(&expired).unwrap();
        assert_eq!(keys.verify(&t), Err(TokenError::Expired));
        assert_eq!(keys.verify("not.a.jwt"), Err(TokenError::Malformed));
    }

    #[test]
    fn wrong_room_is_refused() {
        let keys = TokenKeys::development();
        let t = keys
            .mint("r1", "a", "A", Grants::default(), Duration::from_secs(60))
            .unwrap();
        assert_eq!(keys.verify_for_room(&t, "r2"), Err(TokenError::WrongRoom));
        assert!(keys.verify_for_room(&t, "r1").is_ok());
    }
}
