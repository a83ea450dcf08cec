//! The load generator: one thread that drives every [`Endpoint`] (all
//! publishers and sinks of a scenario), and the counters it shares with the
//! controller.

use crate::fwd::batch::{RecvBatch, SendBatch};
use crate::fwd::cpu;
use crate::fwd::endpoint::{Endpoint, PumpCtx};
use crate::fwd::latency::LatencyHist;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the generator hands its latency samples and CPU time over.
const PUBLISH_EVERY: Duration = Duration::from_millis(5);
/// Sleep when a visit of every endpoint found nothing to do.
const IDLE_SLEEP: Duration = Duration::from_micros(50);

/// Counters and controls shared by the generator thread and the controller.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set to stop the generator thread.
    pub stop: AtomicBool,
    rate_milli: AtomicU64,
    epoch: AtomicU64,
    /// RTP packets publishers sent.
    pub sent: AtomicU64,
    /// Copies the forwarder should deliver for them (sent × fanout).
    pub expected: AtomicU64,
    /// RTP packets the sinks received.
    pub received: AtomicU64,
    /// Packets publishers could not send on time (the generator was behind).
    pub behind: AtomicU64,
    /// Datagrams the generator's sockets refused.
    pub send_dropped: AtomicU64,
    /// Socket errors.
    pub io_errors: AtomicU64,
    /// str0m errors.
    pub rtc_errors: AtomicU64,
    /// str0m peers that completed ICE and DTLS.
    pub connected: AtomicU64,
    /// Sinks that have received every stream they expect.
    pub sinks_ready: AtomicU64,
    /// RTP packets the probe sink decrypted.
    pub probe_packets: AtomicU64,
    /// Of those, packets whose RTP timestamp was not the payload's send
    /// stamp (the SFU rewrote it, so header latency would be wrong).
    pub probe_ts_mismatch: AtomicU64,
    /// Bytes after the payload of a decrypted packet (the SRTP tag).
    pub srtp_overhead: AtomicU64,
    /// The SRTP profile id sniffed from the DTLS handshake, 0 if unknown,
    /// [`Shared::PROFILE_DTLS13`] if DTLS 1.3 hid it.
    pub srtp_profile: AtomicU32,
    /// The generator thread's CPU time, ns.
    pub gen_cpu_ns: AtomicU64,
    latency: Mutex<LatencyHist>,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// See [`Shared::sent`].
    pub sent: u64,
    /// See [`Shared::expected`].
    pub expected: u64,
    /// See [`Shared::received`].
    pub received: u64,
    /// See [`Shared::behind`].
    pub behind: u64,
    /// See [`Shared::send_dropped`].
    pub send_dropped: u64,
    /// See [`Shared::gen_cpu_ns`].
    pub gen_cpu_ns: u64,
}

impl Counters {
    /// `self - earlier`, field by field.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            sent: self.sent.saturating_sub(earlier.sent),
            expected: self.expected.saturating_sub(earlier.expected),
            received: self.received.saturating_sub(earlier.received),
            behind: self.behind.saturating_sub(earlier.behind),
            send_dropped: self.send_dropped.saturating_sub(earlier.send_dropped),
            gen_cpu_ns: self.gen_cpu_ns.saturating_sub(earlier.gen_cpu_ns),
        }
    }
}

impl Shared {
    /// [`Shared::srtp_profile`] when the handshake was DTLS 1.3.
    pub const PROFILE_DTLS13: u32 = u32::MAX;

    /// Sets the offered input rate, packets per second over all publishers.
    pub fn set_rate(&self, pps: f64) {
        self.rate_milli
            .store((pps.max(0.0) * 1000.0) as u64, Relaxed);
        self.epoch.fetch_add(1, Relaxed);
    }

    /// The offered input rate and its epoch.
    pub fn rate(&self) -> (f64, u64) {
        (
            self.rate_milli.load(Relaxed) as f64 / 1000.0,
            self.epoch.load(Relaxed),
        )
    }

    /// The counters now.
    pub fn counters(&self) -> Counters {
        Counters {
            sent: self.sent.load(Relaxed),
            expected: self.expected.load(Relaxed),
            received: self.received.load(Relaxed),
            behind: self.behind.load(Relaxed),
            send_dropped: self.send_dropped.load(Relaxed),
            gen_cpu_ns: self.gen_cpu_ns.load(Relaxed),
        }
    }

    /// Forgets the latency samples so far.
    pub fn reset_latency(&self) {
        if let Ok(mut h) = self.latency.lock() {
            h.clear();
        }
    }

    /// The latency samples since the last reset.
    pub fn latency(&self) -> LatencyHist {
        self.latency.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn add_latency(&self, h: &LatencyHist) {
        if let Ok(mut l) = self.latency.lock() {
            l.merge(h);
        }
    }
}

/// How the generator sends.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Publishers in the scenario; the offered rate is split evenly.
    pub publishers: usize,
    /// Most packets a publisher sends per visit.
    pub max_burst: u64,
    /// Time between keyframes.
    pub keyframe_interval: Duration,
    /// Write the dependency descriptor.
    pub dd: bool,
    /// Core to pin the generator thread to.
    pub pin: Option<usize>,
}

/// Hands endpoints to a running generator; cheap to clone.
#[derive(Debug, Clone)]
pub struct Adder(mpsc::Sender<Arc<Mutex<Endpoint>>>);

impl Adder {
    /// Starts driving `ep`. False if the generator has stopped.
    pub fn add(&self, ep: Arc<Mutex<Endpoint>>) -> bool {
        self.0.send(ep).is_ok()
    }
}

/// A running generator thread.
#[derive(Debug)]
pub struct Generator {
    shared: Arc<Shared>,
    adder: Adder,
    thread: Option<JoinHandle<()>>,
}

impl Generator {
    /// Starts the thread.
    pub fn start(cfg: GenConfig) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fwd-generator".into())
            .spawn(move || run(&s, &rx, &cfg))?;
        Ok(Self {
            shared,
            adder: Adder(tx),
            thread: Some(thread),
        })
    }

    /// The shared counters.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A handle that adds endpoints.
    pub fn adder(&self) -> Adder {
        self.adder.clone()
    }

    /// Stops the thread and waits for it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Generator {
    fn drop(&mut self) {
        self.halt();
    }
}

fn run(shared: &Shared, rx: &mpsc::Receiver<Arc<Mutex<Endpoint>>>, cfg: &GenConfig) {
    if let Some(cpu) = cfg.pin
        && let Err(e) = cpu::pin_current_thread(cpu)
    {
        tracing::warn!(cpu, error = %e, "cannot pin the generator");
    }
    let mut eps: Vec<Arc<Mutex<Endpoint>>> = Vec::new();
    let (mut recv, mut send) = (RecvBatch::new(), SendBatch::new());
    let mut hist = LatencyHist::new();
    let mut last_publish = Instant::now();
    let publishers = cfg.publishers.max(1) as f64;
    while !shared.stop.load(Relaxed) {
        while let Ok(ep) = rx.try_recv() {
            eps.push(ep);
        }
        let now = Instant::now();
        let (rate, epoch) = shared.rate();
        let mut ctx = PumpCtx {
            shared,
            recv: &mut recv,
            send: &mut send,
            hist: &mut hist,
            rate_per_publisher: rate / publishers,
            publishers: cfg.publishers,
            epoch,
            max_burst: cfg.max_burst,
            keyframe_interval: cfg.keyframe_interval,
            dd: cfg.dd,
        };
        let mut active = false;
        for ep in &eps {
            if let Ok(mut ep) = ep.lock() {
                active |= ep.pump(now, &mut ctx);
            }
        }
        if now.saturating_duration_since(last_publish) >= PUBLISH_EVERY {
            shared.add_latency(&hist);
            hist.clear();
            shared.gen_cpu_ns.store(cpu::thread_cpu_ns(), Relaxed);
            last_publish = now;
        }
        if !active {
            std::thread::sleep(IDLE_SLEEP);
        }
    }
}
