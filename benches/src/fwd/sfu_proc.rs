//! The real SFU in its own process: `fwdbench` re-executes itself with the
//! hidden subcommand [`SERVE_SFU`], which starts the `sfu` library the way
//! its binary does, prints the bound addresses and serves until its stdin
//! closes (the parent ended) or it gets SIGINT/SIGTERM.

use crate::fwd::cpu;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// The hidden subcommand.
pub const SERVE_SFU: &str = "__serve-sfu";
/// What the child prints once it listens: `READY <http> <media>`.
const READY: &str = "READY";
/// How long the child may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to stop before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Settings handed to the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildConfig {
    /// Core to pin the whole SFU process to.
    pub pin: Option<usize>,
    /// `rtx_cache_packets` of the SFU; `None` keeps its default.
    pub rtx_cache_packets: Option<usize>,
    /// Media shards; `None` runs one (the SFU is pinned to one core).
    pub shards: Option<usize>,
    /// The SFU's log filter.
    pub log: String,
}

impl ChildConfig {
    fn to_args(&self) -> Vec<String> {
        let mut a = vec![SERVE_SFU.to_string(), "--log".into(), self.log.clone()];
        if let Some(p) = self.pin {
            a.extend(["--pin".into(), p.to_string()]);
        }
        if let Some(n) = self.rtx_cache_packets {
            a.extend(["--rtx-cache-packets".into(), n.to_string()]);
        }
        if let Some(n) = self.shards {
            a.extend(["--shards".into(), n.to_string()]);
        }
        a
    }

    /// Parses what [`Self::to_args`] wrote (after the subcommand).
    fn from_args(args: &[String]) -> Result<Self, String> {
        let mut c = Self {
            pin: None,
            rtx_cache_packets: None,
            shards: None,
            log: "warn".into(),
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let num = || {
                value
                    .parse::<usize>()
                    .map_err(|e| format!("{flag} {value}: {e}"))
            };
            match flag.as_str() {
                "--log" => c.log = value.clone(),
                "--pin" => c.pin = Some(num()?),
                "--rtx-cache-packets" => c.rtx_cache_packets = Some(num()?),
                "--shards" => c.shards = Some(num()?),
                other => return Err(format!("unknown flag {other}")),
            }
        }
        Ok(c)
    }
}

/// Why the SFU process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SfuProcError {
    /// It could not be spawned.
    #[error("cannot start the SFU process {0}: {1}")]
    Spawn(String, #[source] std::io::Error),
    /// It exited or did not report its addresses in time.
    #[error("the SFU process did not start: {0}")]
    NotReady(String),
}

/// A running SFU process; stopped on drop.
#[derive(Debug)]
pub struct SfuProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    http: SocketAddr,
    media: SocketAddr,
}

impl SfuProcess {
    /// Starts `exe __serve-sfu …` and waits until it listens.
    pub fn spawn(exe: &Path, cfg: &ChildConfig) -> Result<Self, SfuProcError> {
        let mut child = Command::new(exe)
            .args(cfg.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| SfuProcError::Spawn(exe.display().to_string(), e))?;
        let stdin = child.stdin.take();
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(SfuProcError::NotReady("no stdout".into()));
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Keep draining so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(Some(Ok(l))) => l,
            Ok(other) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SfuProcError::NotReady(format!("no ready line ({other:?})")));
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SfuProcError::NotReady("timed out".into()));
            }
        };
        let parsed = parse_ready(&line);
        let Some((http, media)) = parsed else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SfuProcError::NotReady(format!("unexpected line {line:?}")));
        };
        Ok(Self {
            child,
            stdin,
            http,
            media,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The signaling address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The media address.
    pub fn media_addr(&self) -> SocketAddr {
        self.media
    }

    /// Asks it to stop (closes its stdin) and waits, killing it after a
    /// timeout.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        drop(self.stdin.take());
        let end = Instant::now() + STOP_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                _ => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SfuProcess {
    fn drop(&mut self) {
        self.halt();
    }
}

fn parse_ready(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut it = line.split_whitespace();
    if it.next()? != READY {
        return None;
    }
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// The child's `main`: serves the SFU on loopback ephemeral ports.
pub fn serve_main(args: &[String]) -> ExitCode {
    let cfg = match ChildConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {SERVE_SFU}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match serve(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {SERVE_SFU}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(cfg: &ChildConfig) -> anyhow::Result<()> {
    // Before any thread starts, so every SFU thread inherits the core.
    if let Some(p) = cfg.pin {
        cpu::pin_current_thread(p)?;
    }
    let mut config = sfu::config::Config::loopback_ephemeral();
    config.logging.log = cfg.log.clone();
    config.limits.shutdown_timeout = Duration::from_secs(2);
    // Every peer of the benchmark connects from 127.0.0.1: the abuse
    // limits per address (250 rooms opened, 1,000 connections by default)
    // would refuse `rooms-500x2` and larger.
    config.limits.max_rooms_per_address = config.limits.max_rooms;
    config.limits.max_participants_per_address = config.limits.max_participants;
    config.limits.max_connections_per_address = config.limits.max_connections;
    config.http.http_max_connections_per_address = config.http.http_max_connections;
    if let Some(n) = cfg.rtx_cache_packets {
        config.media.rtx_cache_packets = n;
    }
    // One shard unless asked: the whole process is pinned to one core, and
    // the SFU's own default (one per core) would depend on the machine.
    config.media.shards = cfg.shards.unwrap_or(1);
    sfu::logging::init(config.logging.log_format, &config.logging.log)?;
    // The same runtime as the sfu binary's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("sfu-http")
        .build()?;
    runtime.block_on(async move {
        let server = sfu::start(config).await?;
        println!("{READY} {} {}", server.http_addr(), server.media_addr());
        let token = server.shutdown_token();
        sfu::shutdown::cancel_on_signal(token.clone())?;
        // The parent holds our stdin; EOF means it is done (or gone).
        std::thread::spawn(move || {
            let mut sink = [0u8; 64];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            token.cancel();
        });
        server.join().await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_args_round_trip() {
        let c = ChildConfig {
            pin: Some(0),
            rtx_cache_packets: Some(256),
            shards: None,
            log: "warn,sfu=info".into(),
        };
        let args = c.to_args();
        assert_eq!(args[0], SERVE_SFU);
        assert_eq!(ChildConfig::from_args(&args[1..]), Ok(c));
        assert!(ChildConfig::from_args(&["--pin".into()]).is_err());
        assert!(ChildConfig::from_args(&["--what".into(), "1".into()]).is_err());
    }

    #[test]
    fn ready_line() {
        assert_eq!(
            parse_ready("READY 127.0.0.1:1 127.0.0.1:2"),
            Some((
                "127.0.0.1:1".parse().expect("a"),
                "127.0.0.1:2".parse().expect("b")
            ))
        );
        assert_eq!(parse_ready("hello"), None);
        assert_eq!(parse_ready("READY x y"), None);
    }
}
