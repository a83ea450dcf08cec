//! The command line: `sfu` serves, `sfu --check-config` prints the
//! effective configuration, `sfu token` mints an access token, `sfu cert`
//! makes a self-signed TLS certificate.
//!
//! ```
//! use sfu::cli::{Action, load_from};
//! let (config, action) = load_from(["sfu", "--shards", "2"]).unwrap();
//! assert_eq!(config.media.shards, 2);
//! assert!(matches!(action, Action::Serve));
//! ```

use crate::cert_cmd::CertArgs;
use crate::config::{Config, ConfigError};
use crate::token_cmd::TokenArgs;
use clap::{Arg, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

const PRECEDENCE: &str = "\
Configuration:
  Every setting above can be given as a flag, as the SFU_* environment variable
  shown with it, or in a TOML file named by --config, whose keys are the flag
  names with '_' for '-' (e.g. http_bind = \"0.0.0.0:7880\").
  Precedence, highest first: flag, environment variable, config file, default.

  Durations take a unit: 500ms, 5s, 2m. Settings once counted in seconds or
  milliseconds keep their older names (--ping-interval-secs, SFU_RTX_CACHE_MS,
  rtx_cache_ms = 3000), and a bare number is read in that unit.

  With no api_key/api_secret the public development key signs tokens: the server
  logs a warning and refuses to start unless every address is loopback. So does
  a guessable api_secret: the development one, a blank or low-entropy one, or an
  example from the docs.

  Media shard i listens on the media_bind port + i: with shards = N, open UDP
  ports media_port .. media_port + N - 1 (shards = 0 is one per CPU core).

  With tls_cert and tls_key, the HTTP port serves HTTPS and WSS only; SIGHUP
  or a change to either file reloads them without closing connections.

  SIGINT or SIGTERM shuts down gracefully. See docs/operations.md.";

/// End-to-end encrypted conferencing SFU: signaling on HTTP/WebSocket, media
/// on UDP with one port per media shard.
///
/// With no subcommand, serves.
#[derive(Debug, Parser)]
#[command(name = "sfu", version, after_help = PRECEDENCE)]
pub struct Cli {
    /// TOML file with settings (keys as in `sfu --check-config` output).
    #[arg(long, env = "SFU_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Validate the configuration, print it as TOML (secret redacted) and
    /// exit without serving.
    #[arg(long)]
    pub check_config: bool,

    /// Server settings.
    #[command(flatten)]
    pub settings: Config,

    /// What to do; nothing means serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Print an access token (HS256 JWT) signed with the configured API key
    /// and secret, or with the development pair when none is configured.
    Token(TokenArgs),
    /// Write a self-signed TLS certificate and key (cert.pem, key.pem) for
    /// the given host names and IP addresses, for a quick HTTPS test.
    Cert(CertArgs),
}

/// What the command line asks for.
#[derive(Debug)]
#[non_exhaustive]
pub enum Action {
    /// Serve (no subcommand).
    Serve,
    /// `--check-config`.
    CheckConfig,
    /// A subcommand.
    Run(Command),
}

/// Parses `args` (the first is the program name) and the environment, reads
/// the config file if one is named, and returns the one merged [`Config`]
/// with the subcommand. Does not validate: see [`Config::validate`].
///
/// The layers: the built-in defaults, the file over them (a key it does not
/// hold keeps its default), then every setting given by flag or environment
/// variable over both. Clap already ranks a flag over its variable; what it
/// set, rather than defaulted, comes from a second parse without defaults.
///
/// `--help`, `--version` and usage errors come back as
/// [`ConfigError::Cli`]; call [`clap::Error::exit`] on them.
pub fn load_from<I, T>(args: I) -> Result<(Config, Action), ConfigError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let Cli {
        config: path,
        check_config,
        settings: _,
        command,
    } = Cli::try_parse_from(&args)?;
    let mut settings = match path {
        Some(path) => Config::from_file(&path)?,
        None => Config::default(),
    };
    let explicit = Cli::command()
        .mut_args(explicit_only)
        .try_get_matches_from(&args)?;
    settings.update_from_arg_matches(&explicit)?;
    let action = match (command, check_config) {
        (Some(command), _) => Action::Run(command),
        (None, true) => Action::CheckConfig,
        (None, false) => Action::Serve,
    };
    Ok((settings, action))
}

/// `arg` without its default, so that the matches hold only what a flag or
/// the environment gave. A setting renamed when it became a duration reads
/// the variable of its older name too (`SFU_RTX_CACHE_MS` for
/// `--rtx-cache-age`, whose alias is `--rtx-cache-ms`) when its own is not
/// set.
fn explicit_only(arg: Arg) -> Arg {
    let arg = arg.default_value(None);
    let is_set = |name: &OsStr| std::env::var_os(name).is_some();
    if arg.get_env().is_none_or(is_set) {
        return arg;
    }
    let old_env = arg
        .get_all_aliases()
        .unwrap_or_default()
        .into_iter()
        .map(|alias| format!("SFU_{}", alias.replace('-', "_").to_uppercase()))
        .find(|name| is_set(name.as_ref()));
    match old_env {
        Some(name) => arg.env(name),
        None => arg,
    }
}

/// [`load_from`] with the process's own arguments.
pub fn load() -> Result<(Config, Action), ConfigError> {
    load_from(std::env::args_os())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_key_flags_work_after_the_subcommand() {
        let secret = "Hq3v9XkP0aZ7mW2rT5yL8cN1bF4gJ6sD";
        let (c, cmd) = load_from([
            "sfu",
            "token",
            "--room",
            "r",
            "--identity",
            "i",
            "--api-key",
            "k",
            "--api-secret",
            secret,
        ])
        .expect("parses");
        assert!(matches!(cmd, Action::Run(Command::Token(_))));
        assert_eq!(c.auth.api_key.as_deref(), Some("k"));
        assert_eq!(c.auth.api_secret.as_ref().map(|s| s.expose()), Some(secret));
    }

    #[test]
    fn flag_after_subcommand_beats_the_file() {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().expect("temp");
        f.write_all(b"api_key = \"from-file\"\n").expect("write");
        let path = f.path().to_str().expect("utf-8");
        let (c, _) = load_from([
            "sfu",
            "token",
            "--identity",
            "i",
            "--admin",
            "--config",
            path,
            "--api-key",
            "flag",
        ])
        .expect("parses");
        assert_eq!(c.auth.api_key.as_deref(), Some("flag"));
        let (c, _) = load_from([
            "sfu",
            "token",
            "--identity",
            "i",
            "--admin",
            "--config",
            path,
        ])
        .expect("parses");
        assert_eq!(c.auth.api_key.as_deref(), Some("from-file"));
    }
}
