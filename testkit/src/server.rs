//! The real SFU (signaling and media) for tests: in this process through
//! the `sfu` library, or as its own process through the binary.
//!
//! Every setting a test changes on the server's configuration is changed
//! here or in the caller's `configure`, so a change to the configuration's
//! shape has one place to follow it in the test kit.

use crate::http::{free_port, healthy};
use crate::wait::LIMIT;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The real server in this process, on ephemeral loopback ports, with one
/// media shard and a 5 s ICE timeout (a vanished peer is noticed within a
/// test's patience).
pub async fn sfu() -> sfu::RunningServer {
    sfu_with(|_| {}).await
}

/// [`sfu`], with `configure` applied to the configuration last.
pub async fn sfu_with(configure: impl FnOnce(&mut sfu::config::Config)) -> sfu::RunningServer {
    crate::logs::init();
    let mut cfg = sfu::config::Config::loopback_ephemeral();
    cfg.limits.ice_timeout = std::time::Duration::from_secs(5);
    configure(&mut cfg);
    sfu::start(cfg).await.expect("server starts")
}

/// The signaling WebSocket URL of a server listening at `http`.
pub fn rtc_url(http: SocketAddr) -> String {
    format!("ws://{http}/rtc")
}

/// The signaling WebSocket URL of an in-process server.
pub fn url(s: &sfu::RunningServer) -> String {
    rtc_url(s.http_addr())
}

/// The `sfu` binary as its own process, killed on drop.
#[derive(Debug)]
pub struct SfuProcess {
    /// The process.
    pub child: Child,
    /// Where it serves HTTP (signaling, `/healthz`, `/metrics`).
    pub http: SocketAddr,
    /// Where its media socket is bound.
    pub media: SocketAddr,
    bin: std::path::PathBuf,
    public_ip: String,
}

impl Drop for SfuProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SfuProcess {
    /// Starts the binary at `bin` (a test of the `sfu` crate passes
    /// `env!("CARGO_BIN_EXE_sfu")`); media binds `127.0.0.1:<port>` and is
    /// advertised at `public_ip` (a relay can stand there). Ports are only
    /// known free when picked, so a start that fails (another process took
    /// one in between) is retried on fresh ports.
    pub async fn start(bin: &Path, public_ip: &str) -> Self {
        crate::logs::init();
        for _ in 0..3 {
            if let Some(sfu) = Self::try_start(bin, public_ip).await {
                return sfu;
            }
        }
        panic!("sfu did not start in 3 attempts");
    }

    async fn try_start(bin: &Path, public_ip: &str) -> Option<Self> {
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let media = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut sfu = Self {
            child: spawn(bin, http, media, public_ip),
            http,
            media,
            bin: bin.to_owned(),
            public_ip: public_ip.to_owned(),
        };
        sfu.wait_healthy().await.then_some(sfu)
    }

    /// Kills the process at once (SIGKILL: no goodbye to anyone) and starts
    /// the binary again on the same ports, as a crashed server restarted by
    /// its supervisor. Returns when the new process serves.
    pub async fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + LIMIT;
        loop {
            self.child = spawn(&self.bin, self.http, self.media, &self.public_ip);
            if self.wait_healthy().await {
                return;
            }
            // A port may linger for a moment after the kill.
            assert!(Instant::now() < deadline, "sfu did not restart");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the process at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits until `/healthz` answers; `false` if the process exited first.
    async fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + LIMIT;
        // The server answers HTTP only once media is up too (it binds the
        // listener first but serves after the media shards started), so a
        // 200 from /healthz means started; an accepted connection does not.
        while !healthy(self.http).await {
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            assert!(Instant::now() < deadline, "sfu did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        true
    }

    /// Its signaling WebSocket URL.
    pub fn url(&self) -> String {
        rtc_url(self.http)
    }
}

fn spawn(bin: &Path, http: SocketAddr, media: SocketAddr, public_ip: &str) -> Child {
    Command::new(bin)
        .args([
            "--http-bind",
            &http.to_string(),
            "--media-bind",
            &media.to_string(),
            "--media-public-ip",
            public_ip,
            // One media port: only `media` was checked to be free.
            "--shards",
            "1",
            "--log",
            "warn",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sfu")
}
