//! `loadtest`: see `loadtest --help`.

use clap::Parser;
use loadtest::assemble::{self, EXIT_RUN_FAILED};
use loadtest::cli::Args;
use loadtest::report::{Report, html};
use loadtest::settings::Settings;
use loadtest::{run, summary};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

fn init_tracing() {
    // Quiet by default: the progress line and the summary are the output.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn write_file(path: &Path, what: &str, text: &str) -> bool {
    match std::fs::write(path, text) {
        Ok(()) => {
            eprintln!("loadtest: wrote the {what} report to {}", path.display());
            true
        }
        Err(e) => {
            eprintln!(
                "loadtest: cannot write the {what} report to {}: {e}",
                path.display()
            );
            false
        }
    }
}

/// Writes the reports asked for; false if one could not be written.
fn write_reports(json: Option<&Path>, html_path: Option<&Path>, report: &Report) -> bool {
    let mut ok = true;
    if let Some(path) = json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => ok &= write_file(path, "JSON", &(text + "\n")),
            Err(e) => {
                eprintln!("loadtest: cannot encode the JSON report: {e}");
                ok = false;
            }
        }
    }
    if let Some(path) = html_path {
        ok &= write_file(path, "HTML", &html::render(report));
    }
    ok
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    let settings = match Settings::resolve(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("loadtest: {e}");
            let scenario = args.scenario.map_or("custom", |s| s.name());
            let report = assemble::not_started(&args.url, scenario, e.to_string());
            write_reports(
                args.report_json.as_deref(),
                args.report_html.as_deref(),
                &report,
            );
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    for note in &settings.notes {
        eprintln!("loadtest: note: {note}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the async runtime: {e}");
            let report =
                assemble::not_started(&settings.target.url, &settings.scenario, e.to_string());
            write_reports(
                settings.report_json.as_deref(),
                settings.report_html.as_deref(),
                &report,
            );
            return ExitCode::from(EXIT_RUN_FAILED);
        }
    };
    let outcome = runtime.block_on(run::run(settings.clone()));
    print!("{}", summary::render(&outcome.report));
    let mut code = outcome.exit_code;
    if !write_reports(
        settings.report_json.as_deref(),
        settings.report_html.as_deref(),
        &outcome.report,
    ) {
        code = EXIT_RUN_FAILED;
    }
    // WebRTC tasks of closed sessions may linger; do not wait on them.
    runtime.shutdown_timeout(Duration::from_secs(2));
    ExitCode::from(code)
}
