//! `participant`: one end-to-end encrypted room member that sends real VP8
//! and Opus, for tests that put native and browser clients in one room.
//! See `participant --help` and `docs/loadtest.md`.

use clap::Parser;
use loadtest::cli::{Secret, parse_duration};
use loadtest::media::{AudioClip, VideoClip};
use loadtest::member::{self, Options};
use loadtest::target::Target;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Joins an end-to-end encrypted room, publishes a VP8 camera and an Opus
/// microphone replaying real encoded clips in a loop, decrypts everyone
/// else's media, sends and records chat, then leaves and prints one JSON
/// summary on stdout. Progress goes to stderr (RUST_LOG to change).
///
/// The run lasts --duration from the moment the group has --expect-members
/// members. "leave" on stdin, SIGTERM or SIGINT end it early; the summary is
/// printed in every case once joined. It keeps running if the caller stops reading stderr.
#[derive(Debug, Parser)]
#[command(name = "participant", version)]
struct Args {
    /// The SFU's signaling URL, e.g. ws://127.0.0.1:7880 (the /rtc path is
    /// added when none is given). On a loopback address, ICE gathers
    /// loopback candidates only.
    #[arg(long)]
    url: String,
    /// The access token (it names the room and identity). Never printed.
    #[arg(long, env = "PARTICIPANT_TOKEN", hide_env_values = true)]
    token: Secret,
    /// The room the token is for, copied into the summary (the token itself
    /// names the room the server admits this member to).
    #[arg(long)]
    room: Option<String>,
    /// How long to stay once the group is complete.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// The group size (this member included) that starts the run.
    #[arg(long, default_value_t = 1)]
    expect_members: usize,
    /// The longest wait for that group size; the run starts anyway.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    join_timeout: Duration,
    /// Chat messages to send, each "IDENTITY#N" with N from 0.
    #[arg(long, default_value_t = 0)]
    chat: u32,
    /// Time between two chat messages.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    chat_interval: Duration,
    /// Chat messages from everyone to wait for before leaving (default:
    /// the ones this member sends).
    #[arg(long)]
    expect_chat: Option<usize>,
    /// The longest wait for them once the duration is over.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    linger: Duration,
    /// A VP8 IVF file to send instead of the built-in clip.
    #[arg(long, conflicts_with = "no_video")]
    video: Option<PathBuf>,
    /// An Ogg Opus file to send instead of the built-in clip.
    #[arg(long, conflicts_with = "no_audio")]
    audio: Option<PathBuf>,
    /// Publish no camera.
    #[arg(long)]
    no_video: bool,
    /// Publish no microphone.
    #[arg(long)]
    no_audio: bool,
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,loadtest::member=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A caller that stops reading stderr must not end the run: by
        // default a failed write is reported with eprintln!, which panics
        // on the broken pipe.
        .log_internal_errors(false)
        .try_init();
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))
}

fn options(args: Args) -> anyhow::Result<Options> {
    let video = match (&args.video, args.no_video) {
        (_, true) => None,
        (Some(path), false) => Some(
            VideoClip::from_ivf(&read(path)?)
                .map_err(|e| anyhow::anyhow!("{} is no usable VP8 IVF: {e}", path.display()))?,
        ),
        (None, false) => Some(VideoClip::builtin()),
    };
    let audio = match (&args.audio, args.no_audio) {
        (_, true) => None,
        (Some(path), false) => Some(
            AudioClip::from_ogg_opus(&read(path)?)
                .map_err(|e| anyhow::anyhow!("{} is no usable Ogg Opus: {e}", path.display()))?,
        ),
        (None, false) => Some(AudioClip::builtin()),
    };
    let target = Target::parse(&args.url)?;
    let room = if target.endpoint.is_loopback() {
        client_sdk::RoomOptions::loopback()
    } else {
        client_sdk::RoomOptions::default()
    };
    Ok(Options {
        url: target.url,
        token: args.token,
        room,
        video,
        audio,
        duration: args.duration,
        expect_members: args.expect_members,
        join_timeout: args.join_timeout,
        chat: args.chat,
        chat_interval: args.chat_interval,
        expect_chat: args.expect_chat.unwrap_or(args.chat as usize),
        linger: args.linger,
    })
}

/// Cancels `stop` on "leave" from stdin. A plain thread: a blocking read
/// cannot be cancelled, and a runtime's blocking task would hold up exit.
fn watch_stdin(stop: CancellationToken) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) if line.trim() == "leave" => {
                    stop.cancel();
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
}

/// Cancels `stop` on SIGTERM or SIGINT.
fn watch_signals(stop: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        stop.cancel();
    });
    Ok(())
}

async fn main_async(args: Args) -> anyhow::Result<()> {
    let room = args.room.clone();
    let options = options(args)?;
    let stop = CancellationToken::new();
    watch_stdin(stop.clone());
    watch_signals(stop.clone())?;
    let mut summary = member::run(options, stop).await?;
    summary.room = room;
    // An error, not a panic, if nobody reads stdout any more.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string(&summary)?)?;
    stdout.flush()?;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("participant: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("participant: {e}");
            ExitCode::FAILURE
        }
    }
}
