//! `sfu token`: mint an access token from the command line.
//!
//! ```
//! use sfu::config::Config;
//! use sfu::token_cmd::{TokenArgs, mint};
//! use clap::Parser;
//! #[derive(Parser)]
//! struct T { #[command(flatten)] args: TokenArgs }
//! let args = T::parse_from(["t", "--room", "r1", "--identity", "alice", "--ttl", "10m"]).args;
//! let token = mint(&Config::default(), &args).unwrap();
//! let claims = signaling::token::TokenKeys::development().verify(&token).unwrap();
//! assert_eq!((claims.room.as_str(), claims.sub.as_str()), ("r1", "alice"));
//! ```

use crate::config::{Config, KeySource};
use anyhow::Context as _;
use clap::Args;
use signaling::token::Grants;
use std::time::Duration;

/// Arguments of `sfu token`.
#[derive(Debug, Clone, Args)]
#[non_exhaustive]
pub struct TokenArgs {
    /// Room the token admits to. May be omitted only with --admin.
    #[arg(long, required_unless_present = "admin")]
    pub room: Option<String>,

    /// Participant identity (the `sub` claim).
    #[arg(long)]
    pub identity: String,

    /// Display name. [default: the identity]
    #[arg(long)]
    pub name: Option<String>,

    /// Lifetime, e.g. 30s, 10m, 1h, 2d; at most --token-max-lifetime.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,

    /// Grant use of the admin API.
    #[arg(long)]
    pub admin: bool,

    /// Withhold the publish grant.
    #[arg(long)]
    pub no_publish: bool,

    /// Withhold the subscribe grant.
    #[arg(long)]
    pub no_subscribe: bool,
}

impl TokenArgs {
    /// The grants these arguments ask for.
    pub fn grants(&self) -> Grants {
        Grants {
            publish: !self.no_publish,
            subscribe: !self.no_subscribe,
            admin: self.admin,
        }
    }
}

/// Parses a lifetime like `30s`, `10m`, `1h` or `2d` (whole seconds, at
/// least one).
pub fn parse_ttl(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (try 30s, 10m, 1h or 2d)"))?;
    if d.as_secs() == 0 {
        return Err("must be at least 1s".into());
    }
    Ok(d)
}

/// Mints the token `args` describe with the keys `config` names (or the
/// development pair). Warns on stderr when the development pair or a weak
/// secret is used; refuses a lifetime the server would refuse.
pub fn mint(config: &Config, args: &TokenArgs) -> anyhow::Result<String> {
    let (keys, source) = config.auth.token_keys()?;
    match source {
        KeySource::Development => eprintln!(
            "warning: no api_key/api_secret configured; signing with the public development key \
             (valid only for a server on loopback)"
        ),
        KeySource::Weak(why) => {
            eprintln!("warning: api_secret is {why}; a server accepts it on loopback only")
        }
        KeySource::Configured => {}
    }
    let max = keys.max_lifetime();
    if args.ttl > max {
        anyhow::bail!(
            "--ttl {} is longer than token_max_lifetime ({}), so the server would refuse the \
             token; raise --token-max-lifetime (on the server too) or shorten --ttl",
            humantime::format_duration(args.ttl),
            humantime::format_duration(max)
        );
    }
    let room = args.room.as_deref().unwrap_or("");
    let name = args.name.as_deref().unwrap_or(&args.identity);
    keys.mint(room, &args.identity, name, args.grants(), args.ttl)
        .context("cannot mint token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Action, Command, load_from};
    use signaling::token::TokenKeys;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn token(args: &[&str]) -> anyhow::Result<String> {
        let mut argv = vec!["sfu", "token"];
        argv.extend_from_slice(args);
        let (config, cmd) = load_from(argv)?;
        match cmd {
            Action::Run(Command::Token(t)) => mint(&config, &t),
            other => anyhow::bail!("not a token command: {other:?}"),
        }
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    #[test]
    fn ttl_forms() {
        assert_eq!(parse_ttl("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_ttl("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("2d"), Ok(Duration::from_secs(2 * 86400)));
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("soon").is_err());
    }

    #[test]
    fn token_carries_room_identity_grants_and_ttl() {
        let before = now();
        let t = token(&[
            "--room",
            "r1",
            "--identity",
            "alice",
            "--name",
            "Alice",
            "--ttl",
            "10m",
        ])
        .expect("mints");
        let c = TokenKeys::development()
            .verify_for_room(&t, "r1")
            .expect("verifies");
        assert_eq!(c.identity(), "alice");
        assert_eq!(c.name, "Alice");
        assert_eq!(c.grants, Grants::default());
        assert!(
            (before + 600..=now() + 600).contains(&c.exp),
            "exp {}",
            c.exp
        );
    }

    #[test]
    fn admin_token_may_omit_room_and_uses_configured_keys() {
        let secret = "Hq3v9XkP0aZ7mW2rT5yL8cN1bF4gJ6sD";
        let t = token(&[
            "--identity",
            "ops",
            "--admin",
            "--no-publish",
            "--api-key",
            "prod",
            "--api-secret",
            secret,
        ])
        .expect("mints");
        assert!(TokenKeys::development().verify(&t).is_err());
        let c = TokenKeys::new("prod", secret).verify(&t).expect("verifies");
        assert_eq!(c.room, "");
        assert_eq!(c.name, "ops");
        assert!(c.grants.admin && !c.grants.publish && c.grants.subscribe);
    }

    #[test]
    fn ttl_past_the_maximum_lifetime_is_refused() {
        let err = token(&["--room", "r", "--identity", "x", "--ttl", "2d"]).expect_err("too long");
        assert!(err.to_string().contains("token_max_lifetime"), "{err}");
        let t = token(&[
            "--room",
            "r",
            "--identity",
            "x",
            "--ttl",
            "2d",
            "--token-max-lifetime",
            "3d",
        ])
        .expect("mints");
        let keys = TokenKeys::development().with_max_lifetime(Duration::from_secs(3 * 86400));
        assert!(keys.verify(&t).is_ok());
        assert!(
            TokenKeys::development().verify(&t).is_err(),
            "default maximum"
        );
    }

    #[test]
    fn room_is_required_without_admin() {
        let err = token(&["--identity", "x"]).expect_err("no room");
        assert!(err.to_string().contains("--room"), "{err}");
    }
}
