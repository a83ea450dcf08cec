//! The `sfu` binary. See `sfu --help` and docs/operations.md.

use anyhow::Context as _;
use sfu::cli::{Action, Command};
use sfu::config::{Config, ConfigError};
use std::process::ExitCode;

fn main() -> ExitCode {
    let (config, action) = match sfu::cli::load() {
        Ok(loaded) => loaded,
        // --help, --version and usage errors print themselves and exit.
        Err(ConfigError::Cli(e)) => e.exit(),
        Err(e) => return fail(&e.into()),
    };
    let result = match action {
        Action::Serve => serve(config),
        Action::CheckConfig => check_config(&config),
        Action::Run(Command::Token(args)) => {
            sfu::token_cmd::mint(&config, &args).map(|token| println!("{token}"))
        }
        Action::Run(Command::Cert(args)) => sfu::cert_cmd::write(&args).map(|(cert, key)| {
            print!(
                "{}",
                sfu::cert_cmd::instructions(&cert, &key, &args.self_signed)
            )
        }),
        Action::Run(other) => Err(anyhow::anyhow!("unsupported command {other:?}")),
        other => Err(anyhow::anyhow!("unsupported action {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Prints the error with its causes on one line, without a backtrace.
fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::FAILURE
}

fn check_config(config: &Config) -> anyhow::Result<()> {
    config.validate()?;
    // The certificate and key are read, and checked to be a pair, too.
    if let Some((cert, key)) = config.tls.files()? {
        sfu::tls::Tls::load(cert, key)?;
    }
    print!("{}", config.to_toml());
    Ok(())
}

fn serve(config: Config) -> anyhow::Result<()> {
    sfu::logging::init(config.logging.log_format, &config.logging.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sfu-http")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(sfu::run(config));
    if let Err(e) = &result {
        tracing::error!(error = format!("{e:#}"), "sfu failed");
    }
    result
}
