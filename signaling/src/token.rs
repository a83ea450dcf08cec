//! Access tokens: HS256 JWTs signed with an API secret.
//!
//! A token is refused before it is decoded if it is longer than
//! [`MAX_TOKEN_BYTES`], and after if its expiry is further away than the
//! keys' maximum lifetime ([`DEFAULT_MAX_LIFETIME`] unless set with
//! [`TokenKeys::with_max_lifetime`]) or a string claim is longer than
//! [`MAX_CLAIM_BYTES`] or holds a control character. Nothing the server
//! stores, logs or rebroadcasts from a token can be larger than that.
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

/// Longest token lifetime [`TokenKeys`] accept unless told otherwise: a day.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Largest token accepted, in bytes of its compact (`a.b.c`) form: four
/// claims at [`MAX_CLAIM_BYTES`] in base64, with header and signature.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Largest string claim (`iss`, `sub`, `room`, `name`) accepted, in bytes.
pub const MAX_CLAIM_BYTES: usize = 256;

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
    /// The token is longer than [`MAX_TOKEN_BYTES`].
    #[error("token too large (at most {MAX_TOKEN_BYTES} bytes)")]
    TooLarge,
    /// The token's expiry is further away than the server allows.
    #[error("token lifetime exceeds the server's maximum")]
    LifetimeTooLong,
    /// A string claim is too long or holds a control character.
    #[error("token claim `{0}` is too long or holds control characters")]
    BadClaim(&'static str),
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
    max_lifetime: Duration,
}

impl std::fmt::Debug for TokenKeys {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("api_key", &self.api_key)
            .field("max_lifetime", &self.max_lifetime)
            .finish_non_exhaustive()
    }
}

/// Whether a string claim is short enough and free of characters that
/// could break a log line or a display: controls, line and paragraph
/// separators, and bidirectional overrides. A token whose claims fail this
/// is refused, so a minter checks values it did not choose itself.
pub fn claim_ok(value: &str) -> bool {
    value.len() <= MAX_CLAIM_BYTES
        && !value.chars().any(|c| {
            c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TokenKeys {
    /// Keys from an API key and secret, accepting tokens that live up to
    /// [`DEFAULT_MAX_LIFETIME`].
    pub fn new(api_key: &str, api_secret: &str) -> Self {
        Self {
            api_key: api_key.to_string(),
            enc: EncodingKey::from_secret(api_secret.as_bytes()),
            dec: DecodingKey::from_secret(api_secret.as_bytes()),
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }

    /// These keys, refusing tokens whose expiry is more than `max` from
    /// the time they are verified.
    pub fn with_max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max;
        self
    }

    /// The longest lifetime a token may have.
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
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

    /// Verifies size, signature, issuer, expiry and not-before, then the
    /// lifetime and the claims' sizes and characters.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        let claims = self.decode(token)?;
        if claims.exp > unix_now().saturating_add(self.max_lifetime.as_secs()) {
            return Err(TokenError::LifetimeTooLong);
        }
        let strings = [
            ("iss", &claims.iss),
            ("sub", &claims.sub),
            ("room", &claims.room),
            ("name", &claims.name),
        ];
        if let Some((claim, _)) = strings.into_iter().find(|(_, v)| !claim_ok(v)) {
            return Err(TokenError::BadClaim(claim));
        }
        Ok(claims)
    }

    fn decode(&self, token: &str) -> Result<Claims, TokenError> {
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

    fn claims(exp: u64, room: &str, name: &str) -> Claims {
        Claims {
            iss: DEV_API_KEY.into(),
            sub: "a".into(),
            exp,
            nbf: unix_now() - 5,
            room: room.into(),
            name: name.into(),
            grants: Grants::default(),
        }
    }

    #[test]
    fn lifetimes_past_the_maximum_are_refused() {
        let keys = TokenKeys::development();
        let now = unix_now();
        for exp in [u64::MAX, now + DEFAULT_MAX_LIFETIME.as_secs() + 60] {
            let t = keys.sign(&claims(exp, "r", "A")).unwrap();
            assert_eq!(keys.verify(&t), Err(TokenError::LifetimeTooLong), "{exp}");
        }
        let t = keys.sign(&claims(now + 3600, "r", "A")).unwrap();
        assert!(keys.verify(&t).is_ok());
        let short = keys.clone().with_max_lifetime(Duration::from_secs(60));
        assert_eq!(short.verify(&t), Err(TokenError::LifetimeTooLong));
    }

    #[test]
    fn oversized_tokens_and_claims_are_refused() {
        let keys = TokenKeys::development();
        let exp = unix_now() + 60;
        for kb in [100, 400] {
            let t = keys
                .sign(&claims(exp, "r", &"n".repeat(kb * 1024)))
                .unwrap();
            assert_eq!(keys.verify(&t), Err(TokenError::TooLarge), "{kb} KB");
        }
        let long = "x".repeat(MAX_CLAIM_BYTES + 1);
        let t = keys.sign(&claims(exp, &long, "A")).unwrap();
        assert_eq!(keys.verify(&t), Err(TokenError::BadClaim("room")));
        let t = keys.sign(&claims(exp, "r", &long)).unwrap();
        assert_eq!(keys.verify(&t), Err(TokenError::BadClaim("name")));
        let fits = "x".repeat(MAX_CLAIM_BYTES);
        let t = keys.sign(&claims(exp, &fits, &fits)).unwrap();
        assert!(t.len() <= MAX_TOKEN_BYTES && keys.verify(&t).is_ok());
    }

    #[test]
    fn control_characters_in_claims_are_refused() {
        let keys = TokenKeys::development();
        let exp = unix_now() + 60;
        for bad in [
            "a\nb",
            "a\rb",
            "\u{1b}[31m",
            "a\u{0}",
            "a\u{2028}b",
            "\u{202e}moc",
        ] {
            let t = keys.sign(&claims(exp, bad, "A")).unwrap();
            assert_eq!(
                keys.verify(&t),
                Err(TokenError::BadClaim("room")),
                "{bad:?}"
            );
            let t = keys.sign(&claims(exp, "r", bad)).unwrap();
            assert_eq!(
                keys.verify(&t),
                Err(TokenError::BadClaim("name")),
                "{bad:?}"
            );
        }
        let t = keys
            .sign(&claims(exp, "Salle de réunion 3", "Zoë 🎉"))
            .unwrap();
        assert!(keys.verify(&t).is_ok(), "non-ASCII text is fine");
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
