//! Access tokens for tests: minted with signaling's own keys and code, the
//! identity doubling as the display name, valid for ten minutes.

use signaling::token::{Grants, TokenKeys};
use std::time::Duration;

/// How long a test token is valid: longer than any test runs.
pub const TTL: Duration = Duration::from_secs(600);

/// A token for `identity` in `room` with the default grants (publish and
/// subscribe), signed with the development keys a loopback SFU accepts.
pub fn dev_token(room: &str, identity: &str) -> String {
    mint(&TokenKeys::development(), room, identity, Grants::default())
}

/// A token for `identity` in `room` with `grants`, signed with `keys`.
pub fn mint(keys: &TokenKeys, room: &str, identity: &str, grants: Grants) -> String {
    keys.mint(room, identity, identity, grants, TTL)
        .expect("a test token mints")
}

/// Grants for an administrator only (no media).
pub fn admin_grants() -> Grants {
    Grants {
        publish: false,
        subscribe: false,
        admin: true,
    }
}
