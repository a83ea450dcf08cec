//! `fwdbench`: the SFU's forwarded packets/s per core and added latency,
//! against a minimal batched forwarder measured in the same run.
//!
//! ```text
//! cargo run --release -p benches --bin fwdbench -- --out results.json
//! ```
//! See `fwdbench --help` and [`benches::fwd`].

use benches::fwd::{cli::Options, report, run, sfu_proc};
use clap::Parser as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(sfu_proc::SERVE_SFU) {
        return sfu_proc::serve_main(&args[2..]);
    }
    let opts = Options::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    match main_inner(&opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main_inner(opts: &Options) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let reports = run::run(opts, &exe)?;
    let json = serde_json::to_string_pretty(&reports)?;
    if let Some(path) = &opts.out {
        std::fs::write(path, format!("{json}\n"))?;
        eprintln!("wrote {}", path.display());
    }
    print!("{}", report::table(&reports));
    Ok(())
}
