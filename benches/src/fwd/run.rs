//! The controller: runs each scenario against the SFU and the baseline
//! and assembles its [`ScenarioReport`].

use crate::fwd::baseline::{Baseline, BaselineSocket, Route};
use crate::fwd::cli::Options;
use crate::fwd::cpu::{self, CpuReading, Pinning};
use crate::fwd::dtls_sniff;
use crate::fwd::endpoint::Endpoint;
use crate::fwd::generator::{GenConfig, Generator, Shared};
use crate::fwd::latency::Percentiles;
use crate::fwd::ramp::{self, Limit, RampConfig, RampOutcome, Window};
use crate::fwd::report::ScenarioReport;
use crate::fwd::scenario::{self, Member, Scenario};
use crate::fwd::sfu_proc::{ChildConfig, SfuProcess};
use crate::fwd::signal::{self, JoinOptions, Participant};
use anyhow::Context as _;
use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::procfs;

/// Input packets/s per publisher while peers connect and warm up.
const SETUP_PPS_PER_PUBLISHER: f64 = 30.0;
/// Wait after a rate change before a window starts.
const SETTLE: Duration = Duration::from_millis(300);
/// Most packets a publisher sends per generator visit.
const MAX_BURST: u64 = 64;
/// The member whose subscriber transport is the probe (every scenario has
/// at least two members, and the second always subscribes).
const PROBE_MEMBER: usize = 1;
/// The SFU names its media threads so.
const SHARD_THREAD_PREFIX: &str = "sfu-shard";

/// Runs every scenario `opts` names; `exe` is this binary (re-executed as
/// the SFU process).
pub fn run(opts: &Options, exe: &Path) -> anyhow::Result<Vec<ScenarioReport>> {
    let names: Vec<String> = if opts.scenarios.is_empty() {
        scenario::DEFAULT.iter().map(|s| s.to_string()).collect()
    } else {
        opts.scenarios.clone()
    };
    let scenarios = names
        .iter()
        .map(|n| Scenario::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let pinning = if opts.no_pin {
        None
    } else {
        cpu::choose_pinning(&cpu::allowed_cpus())
    };
    match pinning {
        Some(p) => {
            // Before the runtime starts, so its threads inherit the core.
            cpu::pin_current_thread(p.generator_cpu).context("cannot pin the generator")?;
            tracing::info!(
                forwarder_cpu = p.forwarder_cpu,
                generator_cpu = p.generator_cpu,
                "pinned: SFU process and baseline thread on one core, generator and signaling on the other"
            );
        }
        None => tracing::warn!("not pinned: fewer than two cores allowed, or --no-pin"),
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("fwd-signaling")
        .enable_all()
        .build()?;
    let mut reports = Vec::new();
    for s in &scenarios {
        tracing::info!(scenario = %s.name, "running");
        let r = run_scenario(s, opts, exe, pinning, &rt)
            .with_context(|| format!("scenario {}", s.name))?;
        reports.push(r);
    }
    Ok(reports)
}

fn ramp_config(opts: &Options, pinning: Option<Pinning>) -> RampConfig {
    RampConfig {
        start_out_pps: opts.start_rate,
        step: opts.step(),
        settle: SETTLE,
        max_loss: opts.max_loss,
        max_cpu: opts.max_cpu,
        max_steps: opts.max_steps,
        growth: 1.15,
        pinning,
    }
}

fn gen_config(s: &Scenario, opts: &Options, pinning: Option<Pinning>) -> GenConfig {
    GenConfig {
        publishers: s.publishers(),
        max_burst: MAX_BURST,
        keyframe_interval: Duration::from_millis(opts.keyframe_ms.max(1)),
        dd: !opts.no_dd,
        pin: pinning.map(|p| p.generator_cpu),
    }
}

/// Ramps (or takes the fixed rate), returning the sustainable input rate.
fn find_rate(
    shared: &Shared,
    cpu: &dyn Fn() -> Option<CpuReading>,
    s: &Scenario,
    opts: &Options,
    pinning: Option<Pinning>,
) -> RampOutcome {
    match opts.rate {
        Some(out) => RampOutcome {
            in_pps: out / s.mean_fanout(),
            limited_by: Limit::Fixed,
            steps: Vec::new(),
        },
        None => ramp::ramp(shared, cpu, s.mean_fanout(), &ramp_config(opts, pinning)),
    }
}

fn window_at(
    shared: &Shared,
    cpu: &dyn Fn() -> Option<CpuReading>,
    pinning: Option<Pinning>,
    in_pps: f64,
    dur: Duration,
) -> Window {
    set_rate_and_settle(shared, in_pps);
    ramp::measure(shared, cpu, pinning, in_pps, dur)
}

fn set_rate_and_settle(shared: &Shared, in_pps: f64) {
    shared.set_rate(in_pps);
    std::thread::sleep(SETTLE);
}

fn latency_at(
    shared: &Shared,
    cpu: &dyn Fn() -> Option<CpuReading>,
    pinning: Option<Pinning>,
    in_pps: f64,
    dur: Duration,
) -> (Window, Percentiles) {
    set_rate_and_settle(shared, in_pps);
    shared.reset_latency();
    let w = ramp::measure(shared, cpu, pinning, in_pps, dur);
    (w, shared.latency().percentiles())
}

/// Waits until every sink has received every stream it expects.
fn wait_ready(shared: &Shared, sinks: u64, timeout: Duration, what: &str) -> anyhow::Result<()> {
    let end = Instant::now() + timeout;
    while shared.sinks_ready.load(Relaxed) < sinks {
        if Instant::now() >= end {
            anyhow::bail!(
                "{what}: only {}/{sinks} sinks received all their streams within {timeout:?} \
                 ({} peers connected, {} sent, {} received, {} rtc errors)",
                shared.sinks_ready.load(Relaxed),
                shared.connected.load(Relaxed),
                shared.sent.load(Relaxed),
                shared.received.load(Relaxed),
                shared.rtc_errors.load(Relaxed),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn sinks_of(members: &[Member]) -> u64 {
    members.iter().filter(|m| m.subscribes_to > 0).count() as u64
}

struct SfuRun {
    outcome: RampOutcome,
    w: Window,
    lat_w: Window,
    lat: Percentiles,
    metrics: Option<SfuCounters>,
    rss_idle: Option<u64>,
    rss: Option<u64>,
    anon_idle: Option<u64>,
    anon: Option<u64>,
    idle: Option<Idle>,
    probe_packets: u64,
    probe_mismatch: u64,
    srtp_profile: u32,
    srtp_overhead: u64,
}

fn run_sfu(
    s: &Scenario,
    opts: &Options,
    exe: &Path,
    pinning: Option<Pinning>,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<SfuRun> {
    let sfu = SfuProcess::spawn(
        exe,
        &ChildConfig {
            pin: pinning.map(|p| p.forwarder_cpu),
            rtx_cache_packets: opts.rtx_cache_packets,
            shards: opts.sfu_shards,
            log: opts.sfu_log.clone(),
        },
    )?;
    let pid = sfu.pid();
    std::thread::sleep(Duration::from_millis(200));
    let rss_idle = procfs::read_rss_bytes(pid);
    let anon_idle = procfs::read_anon_rss_bytes(pid);
    let generator = Generator::start(gen_config(s, opts, pinning))?;
    let shared = Arc::clone(generator.shared());
    shared.set_rate(SETUP_PPS_PER_PUBLISHER * s.publishers() as f64);

    let members = s.members();
    let sinks = sinks_of(&members);
    let setup_end = Instant::now() + opts.setup_timeout();
    let participants: Vec<Participant> = rt.block_on(async {
        let mut out = Vec::with_capacity(members.len());
        for (i, m) in members.iter().enumerate() {
            let o = JoinOptions {
                http: sfu.http_addr(),
                payload_bytes: opts.payload,
                probe: i == PROBE_MEMBER,
            };
            let p = signal::join(m.clone(), o, generator.adder())
                .await
                .with_context(|| format!("joining {}", m.identity))?;
            out.push(p);
        }
        anyhow::Ok(out)
    })?;
    tracing::info!(participants = participants.len(), "joined");
    wait_ready(
        &shared,
        sinks,
        setup_end.saturating_duration_since(Instant::now()),
        "SFU",
    )?;
    std::thread::sleep(opts.warmup());

    let shards = procfs::threads_named(pid, SHARD_THREAD_PREFIX);
    if shards.is_empty() {
        tracing::warn!("no {SHARD_THREAD_PREFIX}* thread found; hot CPU = whole process");
    }
    let sfu_cpu = move || {
        let total_s = procfs::read_process_cpu_s(pid)?;
        let hot_s = if shards.is_empty() {
            total_s
        } else {
            shards
                .iter()
                .filter_map(|t| procfs::read_thread_cpu_s(pid, *t))
                .sum()
        };
        Some(CpuReading { total_s, hot_s })
    };
    let idle = measure_idle(&shared, &sfu_cpu, pid, opts.idle_window());
    let outcome = find_rate(&shared, &sfu_cpu, s, opts, pinning);
    set_rate_and_settle(&shared, outcome.in_pps);
    let m0 = metrics(sfu.http_addr());
    let w = ramp::measure(&shared, &sfu_cpu, pinning, outcome.in_pps, opts.window());
    let m1 = metrics(sfu.http_addr());
    let rss = procfs::read_rss_bytes(pid);
    let anon = procfs::read_anon_rss_bytes(pid);
    let (lat_w, lat) = latency_at(
        &shared,
        &sfu_cpu,
        pinning,
        outcome.in_pps / 2.0,
        opts.window(),
    );
    let run = SfuRun {
        outcome,
        w,
        lat_w,
        lat,
        metrics: match (m0, m1) {
            (Some(a), Some(b)) => Some(SfuCounters {
                datagrams_out: b.datagrams_out - a.datagrams_out,
                rtp_forwarded: b.rtp_forwarded - a.rtp_forwarded,
                rtp_in: b.rtp_in - a.rtp_in,
            }),
            _ => None,
        },
        rss_idle,
        rss,
        anon_idle,
        anon,
        idle,
        probe_packets: shared.probe_packets.load(Relaxed),
        probe_mismatch: shared.probe_ts_mismatch.load(Relaxed),
        srtp_profile: shared.srtp_profile.load(Relaxed),
        srtp_overhead: shared.srtp_overhead.load(Relaxed),
    };
    generator.stop();
    drop(participants);
    sfu.stop();
    Ok(run)
}

/// The SFU with every peer connected and no media.
struct Idle {
    window_s: f64,
    cpu_s: f64,
    rss: Option<u64>,
    anon: Option<u64>,
}

/// Stops the publishers, lets queued media drain, and measures the SFU's
/// CPU over `window` and its RSS; the publishers resume at the setup rate.
fn measure_idle(
    shared: &Shared,
    sfu_cpu: &impl Fn() -> Option<CpuReading>,
    pid: u32,
    window: Duration,
) -> Option<Idle> {
    if window.is_zero() {
        return None;
    }
    let (rate, _) = shared.rate();
    shared.set_rate(0.0);
    std::thread::sleep(SETTLE);
    let (c0, t0) = (sfu_cpu()?, Instant::now());
    std::thread::sleep(window);
    let (c1, t1) = (sfu_cpu()?, Instant::now());
    let rss = procfs::read_rss_bytes(pid);
    let anon = procfs::read_anon_rss_bytes(pid);
    shared.set_rate(rate);
    std::thread::sleep(SETTLE);
    Some(Idle {
        window_s: (t1 - t0).as_secs_f64(),
        cpu_s: c1.total_s - c0.total_s,
        rss,
        anon,
    })
}

struct BaselineRun {
    outcome: RampOutcome,
    w: Window,
    lat: Option<Percentiles>,
}

/// The baseline with the scenario's topology: one plain publisher socket
/// per publisher, one sink socket per subscribing participant, each
/// publisher routed to every other member of its room.
fn run_baseline(
    s: &Scenario,
    opts: &Options,
    pinning: Option<Pinning>,
    fixed_in_pps: Option<f64>,
    with_latency: bool,
) -> anyhow::Result<BaselineRun> {
    let sock = BaselineSocket::bind()?;
    let fwd_addr = sock.local_addr()?;
    let members = s.members();
    let now = Instant::now();
    let mut sink_addr: Vec<Option<SocketAddr>> = Vec::with_capacity(members.len());
    let mut endpoints = Vec::new();
    for m in &members {
        if m.subscribes_to > 0 {
            let ep = Endpoint::plain_sink(m.subscribes_to, now)?;
            sink_addr.push(Some(ep.local_addr()));
            endpoints.push(ep);
        } else {
            sink_addr.push(None);
        }
    }
    let mut rooms: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        rooms.entry(m.room.as_str()).or_default().push(i);
    }
    let mut routes = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let Some(index) = m.publisher else { continue };
        let ep = Endpoint::plain_publisher(
            index,
            m.fanout,
            opts.payload,
            fwd_addr,
            0x1000 + index,
            now,
        )?;
        let others = rooms
            .get(m.room.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        routes.push(Route {
            source: ep.local_addr(),
            sinks: others
                .iter()
                .filter(|&&j| j != i)
                .filter_map(|&j| sink_addr.get(j).copied().flatten())
                .collect(),
        });
        endpoints.push(ep);
    }
    let baseline = Baseline::start(
        sock,
        &routes,
        opts.baseline_cipher,
        pinning.map(|p| p.forwarder_cpu),
    )?;
    let generator = Generator::start(gen_config(s, opts, pinning))?;
    let shared = Arc::clone(generator.shared());
    for ep in endpoints {
        if !generator.adder().add(Arc::new(Mutex::new(ep))) {
            anyhow::bail!("generator stopped");
        }
    }
    shared.set_rate(SETUP_PPS_PER_PUBLISHER * s.publishers() as f64);
    wait_ready(
        &shared,
        sinks_of(&members),
        opts.setup_timeout(),
        "baseline",
    )?;
    std::thread::sleep(opts.warmup().min(Duration::from_secs(1)));
    let stats = Arc::clone(baseline.stats());
    let base_cpu = move || {
        let s = stats.cpu_ns.load(Relaxed) as f64 / 1e9;
        Some(CpuReading {
            total_s: s,
            hot_s: s,
        })
    };
    let outcome = match fixed_in_pps {
        Some(in_pps) => RampOutcome {
            in_pps,
            limited_by: Limit::Fixed,
            steps: Vec::new(),
        },
        None => find_rate(&shared, &base_cpu, s, opts, pinning),
    };
    let w = window_at(&shared, &base_cpu, pinning, outcome.in_pps, opts.window());
    let lat = with_latency.then(|| {
        latency_at(
            &shared,
            &base_cpu,
            pinning,
            outcome.in_pps / 2.0,
            opts.window(),
        )
        .1
    });
    generator.stop();
    baseline.stop();
    Ok(BaselineRun { outcome, w, lat })
}

/// Counters from the SFU's `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SfuCounters {
    datagrams_out: f64,
    rtp_forwarded: f64,
    rtp_in: f64,
}

fn metrics(http: SocketAddr) -> Option<SfuCounters> {
    let mut s = TcpStream::connect_timeout(&http, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: sfu\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let value = |name: &str| {
        text.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix(' ')?
                .trim()
                .parse::<f64>()
                .ok()
        })
    };
    Some(SfuCounters {
        datagrams_out: value("sfu_media_datagrams_sent_total")?,
        rtp_forwarded: value("sfu_media_rtp_packets_forwarded_total")?,
        rtp_in: value("sfu_media_rtp_packets_received_total")?,
    })
}

fn profile_string(id: u32) -> String {
    match id {
        0 => "unknown".into(),
        Shared::PROFILE_DTLS13 => "unknown (DTLS 1.3 hides it)".into(),
        id => dtls_sniff::profile_name(u16::try_from(id).unwrap_or(0)).into(),
    }
}

/// Runs one scenario: baseline, SFU, baseline again (unless quick or
/// skipped), and assembles the report.
pub fn run_scenario(
    s: &Scenario,
    opts: &Options,
    exe: &Path,
    pinning: Option<Pinning>,
    rt: &tokio::runtime::Runtime,
) -> anyhow::Result<ScenarioReport> {
    let before = if opts.skip_baseline {
        None
    } else {
        tracing::info!("baseline forwarder");
        Some(run_baseline(s, opts, pinning, None, true)?)
    };
    tracing::info!("SFU");
    let sfu = run_sfu(s, opts, exe, pinning, rt)?;
    let after = match &before {
        Some(b) if !opts.quick => {
            tracing::info!("baseline forwarder again");
            Some(run_baseline(
                s,
                opts,
                pinning,
                Some(b.outcome.in_pps),
                false,
            )?)
        }
        _ => None,
    };

    let w = &sfu.w;
    let per_core = w.out_per_cpu_s();
    let base_windows: Vec<&Window> = before
        .iter()
        .map(|b| &b.w)
        .chain(after.iter().map(|b| &b.w))
        .collect();
    let base_per_core: Vec<f64> = base_windows.iter().map(|w| w.out_per_cpu_s()).collect();
    let mean = |v: &[f64]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let baseline_out_pps_per_core = mean(&base_per_core);
    let parts = s.participants();
    let per_part = |now: Option<u64>, empty: Option<u64>| match (now, empty) {
        (Some(r), Some(i)) => Some(r.saturating_sub(i) as f64 / parts as f64),
        _ => None,
    };
    let rss_per = per_part(sfu.rss, sfu.rss_idle);
    let window_s = w.wall_s;
    let idle = sfu.idle.as_ref();
    let idle_cpu_util = idle.map_or(0.0, |i| i.cpu_s / i.window_s);
    Ok(ScenarioReport {
        scenario: s.name.clone(),
        out_pps_per_core: per_core,
        baseline_out_pps_per_core,
        ratio: if baseline_out_pps_per_core > 0.0 {
            per_core / baseline_out_pps_per_core
        } else {
            0.0
        },
        latency_us_p50: sfu.lat.p50,
        latency_us_p99: sfu.lat.p99,
        latency_us_p90: sfu.lat.p90,
        latency_us_max: sfu.lat.max,
        latency_samples: sfu.lat.count,
        latency_out_pps: sfu.lat_w.out_pps,
        latency_source: "kernel_rx_timestamp".into(),
        participants: parts,
        rooms: s.rooms,
        publishers: s.publishers(),
        subscriptions: s.subscriptions(),
        payload_bytes: opts.payload,
        dependency_descriptor: !opts.no_dd,
        offered_in_pps: sfu.outcome.in_pps,
        in_pps: w.in_pps,
        out_pps: w.out_pps,
        loss: w.loss,
        window_s,
        sfu_cpu_s: w.cpu_s,
        sfu_cpu_util: w.cpu_s / window_s,
        shard_cpu_s: w.hot_cpu_s,
        shard_cpu_util: w.hot_util,
        out_pps_per_shard_core: if w.hot_cpu_s > 0.0 {
            w.counters.received as f64 / w.hot_cpu_s
        } else {
            0.0
        },
        limited_by: sfu.outcome.limited_by,
        ramp: sfu.outcome.steps.clone(),
        generator_cpu_util: w.gen_util,
        sfu_datagrams_out: sfu.metrics.map(|m| m.datagrams_out),
        sfu_rtp_forwarded: sfu.metrics.map(|m| m.rtp_forwarded),
        sfu_rtp_in: sfu.metrics.map(|m| m.rtp_in),
        rss_idle_bytes: sfu.rss_idle,
        rss_bytes: sfu.rss,
        rss_bytes_per_participant: rss_per,
        idle_window_s: idle.map_or(0.0, |i| i.window_s),
        idle_cpu_util,
        idle_cpu_us_per_participant_s: idle_cpu_util * 1e6 / parts as f64,
        idle_rss_bytes_per_participant: per_part(idle.and_then(|i| i.rss), sfu.rss_idle),
        anon_bytes_per_participant: per_part(sfu.anon, sfu.anon_idle),
        idle_anon_bytes_per_participant: per_part(idle.and_then(|i| i.anon), sfu.anon_idle),
        srtp_profile: profile_string(sfu.srtp_profile),
        srtp_overhead_bytes: sfu.srtp_overhead,
        probe_packets: sfu.probe_packets,
        ts_passthrough_verified: sfu.probe_packets > 0 && sfu.probe_mismatch == 0,
        rtx_cache_packets: opts.rtx_cache_packets,
        baseline_out_pps: mean(&base_windows.iter().map(|w| w.out_pps).collect::<Vec<_>>()),
        baseline_cpu_util: mean(&base_windows.iter().map(|w| w.hot_util).collect::<Vec<_>>()),
        baseline_loss: mean(&base_windows.iter().map(|w| w.loss).collect::<Vec<_>>()),
        baseline_limited_by: before
            .as_ref()
            .map_or(Limit::Fixed, |b| b.outcome.limited_by),
        baseline_windows_out_pps_per_core: base_per_core,
        baseline_latency_us_p50: before.as_ref().and_then(|b| b.lat).map_or(0.0, |l| l.p50),
        baseline_latency_us_p99: before.as_ref().and_then(|b| b.lat).map_or(0.0, |l| l.p99),
        baseline_cipher: (!opts.skip_baseline).then_some(opts.baseline_cipher),
        pinning,
        forwarder_core_busy: w.forwarder_core_busy,
        generator_core_busy: w.generator_core_busy,
        udp_rcvbuf_errors: w.udp_rcvbuf_errors,
        generator_behind: w.behind,
    })
}
