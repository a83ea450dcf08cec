//! The `sfu` binary with the flags, environment and file-descriptor limit a
//! test chooses, on ephemeral loopback ports, its JSON log collected line
//! by line. For behaviour that belongs to the binary (its limits, its
//! logs) rather than to the library.

use crate::wait::LIMIT;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How to start the binary.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Flags after the ones [`SfuBin::start`] gives (addresses, one shard,
    /// JSON logs).
    pub args: Vec<String>,
    /// `SFU_*` variables; no other is inherited.
    pub env: Vec<(String, String)>,
    /// The soft and hard file-descriptor limits to start it with, set by
    /// the shell that execs it (`None`: inherited).
    pub nofile: Option<(u64, Option<u64>)>,
}

/// A running `sfu` binary, killed on drop.
#[derive(Debug)]
pub struct SfuBin {
    child: Child,
    /// Where it serves HTTP, as its "sfu listening" log line says.
    pub http: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SfuBin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SfuBin {
    /// Starts `bin` (a test of the `sfu` crate passes
    /// `env!("CARGO_BIN_EXE_sfu")`) and waits until it listens. Panics if
    /// it exits first or does not listen within [`LIMIT`].
    pub fn start(bin: &Path, options: &Options) -> Self {
        let mut cmd = Command::new("sh");
        let limits = match options.nofile {
            None => String::new(),
            Some((soft, None)) => format!("ulimit -S -n {soft} && "),
            // Soft first: a hard limit below the current soft one is refused.
            Some((soft, Some(hard))) => format!("ulimit -S -n {soft} && ulimit -H -n {hard} && "),
        };
        cmd.arg("-c")
            .arg(format!("{limits}exec \"$0\" \"$@\""))
            .arg(bin)
            .args([
                "--http-bind",
                "127.0.0.1:0",
                "--media-bind",
                "127.0.0.1:0",
                "--shards",
                "1",
                "--log-format",
                "json",
            ])
            .args(&options.args);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SFU_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(options.env.iter().map(|(k, v)| (k, v)));
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sfu");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn({
            let log = log.clone();
            move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if let Some(http) = listening_on(&line) {
                        let _ = tx.send(http);
                    }
                    log.lock().expect("log").push(line);
                }
            }
        });
        match rx.recv_timeout(LIMIT) {
            Ok(http) => Self {
                child,
                http,
                log,
                reader: Some(reader),
            },
            Err(_) => {
                let _ = child.kill();
                let lines = log.lock().expect("log").join("\n");
                panic!("sfu did not start listening:\n{lines}");
            }
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends it the signal `name` (`"HUP"`, `"TERM"`, …); panics if
    /// `kill` fails.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    /// Stops it with SIGTERM and returns its whole log once it has exited.
    /// Panics if it does not exit within [`LIMIT`].
    pub fn stop(mut self) -> Vec<String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + LIMIT;
        while self.child.try_wait().ok().flatten().is_none() {
            assert!(Instant::now() < deadline, "sfu did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.log()
    }

    /// Waits until a log line contains `needle` and returns it; panics
    /// after [`LIMIT`].
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(Instant::now() < deadline, "no log line with {needle:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The HTTP address in an "sfu listening" JSON log line.
fn listening_on(line: &str) -> Option<SocketAddr> {
    if !line.contains("\"sfu listening\"") {
        return None;
    }
    let rest = &line[line.find("\"http\":\"")? + 8..];
    rest[..rest.find('"')?].parse().ok()
}
