//! Prometheus text exposition (format 0.0.4) for `GET /metrics`: the media
//! plane's [`Stats`] summed over the media shards, sources registered by
//! other components (signaling), and process metrics from `/proc/self`.
//!
//! Names are stable: media gauges and counters start with `sfu_media_`,
//! drops are `sfu_packets_dropped_total{reason="…"}` with one series per
//! [`DropReason`] (zeros included), process metrics use the standard
//! `process_*` names.
//!
//! ```
//! use sfu::metrics::{Metrics, shared_stats};
//! let stats = shared_stats();
//! stats.lock().unwrap().rtp_in = 7;
//! let text = Metrics::new(stats).render();
//! assert!(text.contains("\nsfu_media_rtp_packets_received_total 7\n"));
//! assert!(text.contains("\nsfu_media_shards 1\n"));
//! assert!(text.contains("sfu_packets_dropped_total{reason=\"unknown_source\"} 0"));
//! assert!(text.contains("sfu_media_rtp_packets_forwarded_by_layer_total{layer=\"2\"} 0"));
//! assert!(text.contains("sfu_media_subscriber_estimate_bps{le=\"+Inf\"} 0"));
//! ```

use sfu_core::{DropReason, ESTIMATE_BUCKETS_BPS, Stats};
use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

/// One media shard's latest counters. The shard writes a fresh snapshot a
/// few times a second; `/metrics` copies it out under the lock.
pub type SharedStats = Arc<Mutex<Stats>>;

/// A new, zeroed [`SharedStats`].
pub fn shared_stats() -> SharedStats {
    Arc::new(Mutex::new(Stats::default()))
}

/// Name of the per-reason drop counter.
pub const DROPPED: &str = "sfu_packets_dropped_total";
/// Name of the per-layer forwarding counter.
pub const BY_LAYER: &str = "sfu_media_rtp_packets_forwarded_by_layer_total";
/// Name of the subscriber estimate distribution.
pub const ESTIMATES: &str = "sfu_media_subscriber_estimate_bps";

/// A Prometheus metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        })
    }
}

/// One media metric (drops aside): its name, type, help and value.
struct MediaMetric {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: fn(&Stats) -> u64,
}

const fn metric(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    value: fn(&Stats) -> u64,
) -> MediaMetric {
    MediaMetric {
        name,
        kind,
        help,
        value,
    }
}

/// Every media metric but the drops.
#[rustfmt::skip]
const MEDIA: &[MediaMetric] = &[
    metric("sfu_media_rooms", Kind::Gauge, "Rooms with at least one participant.", |s| s.rooms),
    metric("sfu_media_participants", Kind::Gauge, "Participants in the media plane.", |s| s.participants),
    metric("sfu_media_tracks", Kind::Gauge, "Published tracks.", |s| s.tracks),
    metric("sfu_media_subscriptions", Kind::Gauge, "Track subscriptions.", |s| s.subscriptions),
    metric("sfu_media_datagrams_received_total", Kind::Counter, "UDP datagrams received on the media port.", |s| s.datagrams_in),
    metric("sfu_media_received_bytes_total", Kind::Counter, "UDP payload bytes received on the media port.", |s| s.bytes_in),
    metric("sfu_media_datagrams_sent_total", Kind::Counter, "UDP datagrams sent from the media port.", |s| s.datagrams_out),
    metric("sfu_media_sent_bytes_total", Kind::Counter, "UDP payload bytes sent from the media port.", |s| s.bytes_out),
    metric("sfu_media_rtp_packets_received_total", Kind::Counter, "RTP packets received from publishers.", |s| s.rtp_in),
    metric("sfu_media_rtp_packets_forwarded_total", Kind::Counter, "RTP packets forwarded to subscribers.", |s| s.rtp_forwarded),
    metric("sfu_media_rtcp_packets_received_total", Kind::Counter, "SRTCP packets authenticated and read.", |s| s.rtcp_in),
    metric("sfu_media_dtls_datagrams_received_total", Kind::Counter, "DTLS datagrams handed to a transport (str0m discards unusable records without an error).", |s| s.dtls_in),
    metric("sfu_media_stun_datagrams_received_total", Kind::Counter, "STUN datagrams handed to a transport's ICE agent (which discards one whose integrity fails without an error).", |s| s.stun_in),
    metric("sfu_media_keyframe_requests_received_total", Kind::Counter, "Keyframe requests (PLI/FIR) received from subscribers.", |s| s.keyframe_requests_in),
    metric("sfu_media_keyframe_requests_sent_total", Kind::Counter, "Keyframe requests sent to publishers after aggregation and throttling.", |s| s.keyframe_requests_out),
    metric("sfu_media_keyframe_requests_throttled_total", Kind::Counter, "Keyframe requests from subscribers refused: the subscriber asked again within its backoff interval for the track.", |s| s.keyframe_requests_throttled),
    metric("sfu_media_sdp_refused_total", Kind::Counter, "Client SDP offers and answers refused: over a size limit, unparsable, or not applicable.", |s| s.sdp_refused),
    metric("sfu_media_subscriptions_refused_total", Kind::Counter, "Subscriptions refused: the subscriber's SDP would pass its m-line limit.", |s| s.subscriptions_refused),
    metric("sfu_media_candidates_refused_total", Kind::Counter, "Remote ICE candidates refused: unparsable, or past a transport's limit of 50.", |s| s.candidates_refused),
    metric("sfu_media_layer_retargets_total", Kind::Counter, "Times the layer allocator changed a subscription's target layer.", |s| s.layer_retargets),
    metric("sfu_media_paused_for_bandwidth", Kind::Gauge, "Subscriptions paused at the last allocation because even their lowest layer did not fit the subscriber's estimate.", |s| s.paused_for_bandwidth),
    metric("sfu_media_resends_requested_total", Kind::Counter, "Packets subscribers asked to be sent again (NACK).", |s| s.resends_requested),
    metric("sfu_media_resends_sent_total", Kind::Counter, "Packets resent to subscribers from their track's shared store.", |s| s.resends_sent),
    metric("sfu_media_resend_store_packets", Kind::Gauge, "Packets kept for resends, over all published tracks.", |s| s.resend_store_packets),
    metric("sfu_media_dynacast_updates_total", Kind::Counter, "Times a publisher was told which encodings of a simulcast track some subscriber wants (dynacast).", |s| s.dynacast_updates),
];

type Source = Arc<dyn Fn(&mut String) + Send + Sync>;

/// Everything `/metrics` renders. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    /// One per media shard.
    shards: Vec<SharedStats>,
    sources: Vec<Source>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("shards", &self.shards.len())
            .field("sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics over one media shard's stats.
    pub fn new(stats: SharedStats) -> Self {
        Self::new_sharded(vec![stats])
    }

    /// Metrics over several media shards' stats, one slot per shard:
    /// `/metrics` shows their sum and `sfu_media_shards`.
    ///
    /// ```
    /// use sfu::metrics::{Metrics, shared_stats};
    /// let (a, b) = (shared_stats(), shared_stats());
    /// a.lock().unwrap().participants = 2;
    /// b.lock().unwrap().participants = 3;
    /// let text = Metrics::new_sharded(vec![a, b]).render();
    /// assert!(text.contains("\nsfu_media_participants 5\n"));
    /// assert!(text.contains("\nsfu_media_shards 2\n"));
    /// ```
    pub fn new_sharded(shards: Vec<SharedStats>) -> Self {
        Self {
            shards,
            sources: Vec::new(),
        }
    }

    /// Adds a source that appends complete exposition lines (`# HELP`,
    /// `# TYPE` and samples) to the output, such as signaling's
    /// `render_metrics`.
    pub fn add_source(&mut self, render: impl Fn(&mut String) + Send + Sync + 'static) {
        self.sources.push(Arc::new(render));
    }

    /// The full exposition text.
    pub fn render(&self) -> String {
        // Copy the snapshots out so no shard ever waits on rendering.
        let snapshots: Vec<Stats> = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect();
        let mut out = String::with_capacity(4096);
        render_shards(&snapshots, &mut out);
        for source in &self.sources {
            source(&mut out);
        }
        render_process(&mut out);
        out
    }
}

fn header(out: &mut String, name: &str, kind: Kind, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Name of the gauge counting media shards.
pub const SHARDS: &str = "sfu_media_shards";

/// Appends the media plane's metrics for `stats`.
pub fn render_stats(stats: &Stats, out: &mut String) {
    render_sum(std::slice::from_ref(stats), out);
}

/// Appends `sfu_media_shards` and the media metrics summed over `shards`,
/// one [`Stats`] per shard. A room lives on one shard, so even the gauges
/// (rooms, participants, …) add up.
pub fn render_shards(shards: &[Stats], out: &mut String) {
    header(out, SHARDS, Kind::Gauge, "Media shards (worker threads).");
    let _ = writeln!(out, "{SHARDS} {}", shards.len());
    render_sum(shards, out);
}

fn render_sum(shards: &[Stats], out: &mut String) {
    for m in MEDIA {
        header(out, m.name, m.kind, m.help);
        let sum: u64 = shards.iter().map(m.value).sum();
        let _ = writeln!(out, "{} {sum}", m.name);
    }
    header(
        out,
        DROPPED,
        Kind::Counter,
        "Datagrams and packets the media plane dropped, by reason.",
    );
    for reason in DropReason::ALL {
        let n: u64 = shards.iter().map(|s| s.dropped(reason)).sum();
        let _ = writeln!(out, "{DROPPED}{{reason=\"{}\"}} {n}", reason.label());
    }
    header(
        out,
        BY_LAYER,
        Kind::Counter,
        "RTP packets of simulcast and SVC tracks forwarded, by spatial layer (0 the lowest; 3 counts every higher one too).",
    );
    for layer in 0..4 {
        let n: u64 = shards.iter().map(|s| s.rtp_forwarded_by_layer[layer]).sum();
        let _ = writeln!(out, "{BY_LAYER}{{layer=\"{layer}\"}} {n}");
    }
    header(
        out,
        ESTIMATES,
        Kind::Gauge,
        "Subscribers by downlink estimate at the last layer allocation, cumulative buckets (bits per second).",
    );
    for (i, bound) in ESTIMATE_BUCKETS_BPS.into_iter().enumerate() {
        let n: u64 = shards.iter().map(|s| s.subscriber_estimates[i]).sum();
        let le = if bound == u64::MAX {
            "+Inf".to_owned()
        } else {
            bound.to_string()
        };
        let _ = writeln!(out, "{ESTIMATES}{{le=\"{le}\"}} {n}");
    }
}

/// What `/proc/self/stat` tells about the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ProcStat {
    /// User plus system CPU time, in clock ticks.
    cpu_ticks: u64,
    /// Threads.
    threads: u64,
    /// Start time after boot, in clock ticks.
    start_ticks: u64,
}

/// Clock ticks per second in `/proc` (`USER_HZ`). It is 100 on every Linux
/// architecture's user ABI; reading `sysconf` would need `unsafe`.
const TICKS_PER_SECOND: f64 = 100.0;

fn parse_stat(text: &str) -> Option<ProcStat> {
    // The command name (field 2) is in parentheses and may hold spaces;
    // fields are counted from after its closing parenthesis (field 3).
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(ProcStat {
        cpu_ticks: field(14)? + field(15)?,
        threads: field(20)?,
        start_ticks: field(22)?,
    })
}

/// A `Key:   1234 kB` line of `/proc/self/status`, in bytes.
fn parse_status_kb(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    let kb = line[key.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()?
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

fn parse_btime(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// Appends `process_*` metrics read from `/proc/self`. Writes nothing for
/// what it cannot read (on non-Linux systems, nothing at all).
pub fn render_process(out: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| parse_stat(&t));
    if let Some(stat) = stat {
        header(
            out,
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
        );
        let _ = writeln!(
            out,
            "process_cpu_seconds_total {}",
            stat.cpu_ticks as f64 / TICKS_PER_SECOND
        );
        header(
            out,
            "process_threads",
            Kind::Gauge,
            "Number of OS threads in the process.",
        );
        let _ = writeln!(out, "process_threads {}", stat.threads);
        let btime = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|t| parse_btime(&t));
        if let Some(btime) = btime {
            header(
                out,
                "process_start_time_seconds",
                Kind::Gauge,
                "Start time of the process since unix epoch in seconds.",
            );
            let start = btime as f64 + stat.start_ticks as f64 / TICKS_PER_SECOND;
            let _ = writeln!(out, "process_start_time_seconds {start}");
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for (key, name, help) in [
            (
                "VmRSS",
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            (
                "VmSize",
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
            ),
        ] {
            if let Some(bytes) = parse_status_kb(&status, key) {
                header(out, name, Kind::Gauge, help);
                let _ = writeln!(out, "{name} {bytes}");
            }
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        header(
            out,
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
        );
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn sample_stats() -> Stats {
        let mut s = Stats::default();
        s.rooms = 2;
        s.participants = 5;
        s.tracks = 10;
        s.subscriptions = 40;
        s.datagrams_in = 1000;
        s.bytes_in = 1_200_000;
        s.datagrams_out = 4000;
        s.bytes_out = 4_800_000;
        s.rtp_in = 900;
        s.rtp_forwarded = 3600;
        s.rtcp_in = 300;
        s.keyframe_requests_in = 6;
        s.keyframe_requests_out = 2;
        s.keyframe_requests_throttled = 3;
        s.rtp_forwarded_by_layer = [700, 500, 300, 0];
        s.subscriber_estimates = [1, 2, 4, 5, 5];
        for (i, r) in DropReason::ALL.iter().enumerate() {
            for _ in 0..=i {
                s.drop(*r);
            }
        }
        s
    }

    /// Checks the exposition format strictly enough to catch what
    /// Prometheus rejects: every sample's family has one HELP and one TYPE
    /// before its first sample, names and labels are well formed, values
    /// parse, counters end in `_total`, and no series repeats. Returns the
    /// samples.
    fn parse_exposition(text: &str) -> HashMap<String, f64> {
        fn valid_name(n: &str) -> bool {
            let mut chars = n.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }
        assert!(text.ends_with('\n'), "exposition ends with a newline");
        let mut help = HashSet::new();
        let mut types: HashMap<String, String> = HashMap::new();
        let mut samples = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, doc) = rest.split_once(' ').expect("HELP has text");
                assert!(valid_name(name) && !doc.is_empty(), "{line}");
                assert!(help.insert(name.to_string()), "HELP twice: {line}");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE has kind");
                assert!(matches!(kind, "counter" | "gauge"), "{line}");
                assert!(help.contains(name), "TYPE before HELP: {line}");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "counter without _total: {line}");
                }
                assert!(types.insert(name.into(), kind.into()).is_none(), "{line}");
            } else {
                assert!(
                    !line.starts_with('#') && !line.is_empty(),
                    "stray line {line:?}"
                );
                let (series, value) = line.rsplit_once(' ').expect("sample has value");
                let name = series.split('{').next().expect("name");
                assert!(valid_name(name), "{line}");
                assert!(types.contains_key(name), "sample before TYPE: {line}");
                if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                    let inner = labels
                        .strip_prefix('{')
                        .and_then(|l| l.strip_suffix('}'))
                        .expect("braced labels");
                    for pair in inner.split(',') {
                        let (k, v) = pair.split_once('=').expect("label=value");
                        assert!(valid_name(k), "{line}");
                        assert!(
                            v.len() >= 2 && v.starts_with('"') && v.ends_with('"'),
                            "{line}"
                        );
                    }
                }
                let v: f64 = value.parse().expect("numeric value");
                assert!(
                    samples.insert(series.to_string(), v).is_none(),
                    "dup {line}"
                );
            }
        }
        samples
    }

    #[test]
    fn media_stats_render_as_valid_exposition() {
        let stats = sample_stats();
        let mut out = String::new();
        render_stats(&stats, &mut out);
        let samples = parse_exposition(&out);
        for m in MEDIA {
            assert!(m.name.starts_with("sfu_media_"), "{}", m.name);
            assert_eq!(samples[m.name], (m.value)(&stats) as f64, "{}", m.name);
        }
        assert_eq!(samples["sfu_media_rtp_packets_forwarded_total"], 3600.0);
        assert_eq!(samples["sfu_media_received_bytes_total"], 1_200_000.0);
        for (i, r) in DropReason::ALL.iter().enumerate() {
            let series = format!("{DROPPED}{{reason=\"{}\"}}", r.label());
            assert_eq!(samples.get(&series), Some(&((i + 1) as f64)), "{series}");
        }
        for (layer, n) in [700.0, 500.0, 300.0, 0.0].into_iter().enumerate() {
            let series = format!("{BY_LAYER}{{layer=\"{layer}\"}}");
            assert_eq!(samples.get(&series), Some(&n), "{series}");
        }
        let le = ["300000", "600000", "1200000", "2500000", "+Inf"];
        for (le, n) in le.into_iter().zip([1.0, 2.0, 4.0, 5.0, 5.0]) {
            let series = format!("{ESTIMATES}{{le=\"{le}\"}}");
            assert_eq!(samples.get(&series), Some(&n), "{series}");
        }
        let labelled = DropReason::ALL.len() + 4 + ESTIMATE_BUCKETS_BPS.len();
        assert_eq!(samples.len(), MEDIA.len() + labelled);
    }

    #[test]
    fn shards_render_as_their_sum() {
        let one = sample_stats();
        let mut two = sample_stats();
        two.participants = 1;
        two.drop(DropReason::ALL[0]);
        let slots: Vec<SharedStats> = [one.clone(), two.clone(), Stats::default()]
            .into_iter()
            .map(|s| Arc::new(Mutex::new(s)))
            .collect();
        let samples = parse_exposition(&Metrics::new_sharded(slots).render());
        assert_eq!(samples[SHARDS], 3.0);
        for m in MEDIA {
            let want = (m.value)(&one) + (m.value)(&two);
            assert_eq!(samples[m.name], want as f64, "{}", m.name);
        }
        assert_eq!(samples["sfu_media_participants"], 6.0);
        for r in DropReason::ALL {
            let series = format!("{DROPPED}{{reason=\"{}\"}}", r.label());
            let want = one.dropped(r) + two.dropped(r);
            assert_eq!(samples[&series], want as f64, "{series}");
        }
        assert_eq!(
            samples[&format!("{DROPPED}{{reason=\"{}\"}}", DropReason::ALL[0].label())],
            3.0
        );

        let samples = parse_exposition(&Metrics::new(shared_stats()).render());
        assert_eq!(samples[SHARDS], 1.0);
    }

    #[test]
    fn drops_inside_transports_render_under_stable_labels() {
        // Dashboards and alerts name these; renaming one breaks them.
        let mut stats = Stats::default();
        stats.drop(DropReason::SrtpUnauthenticated);
        let text = Metrics::new(Arc::new(Mutex::new(stats))).render();
        assert!(text.contains("sfu_packets_dropped_total{reason=\"srtp_unauthenticated\"} 1\n"));
        for label in [
            "srtp_no_keys",
            "rtp_malformed",
            "rtp_unknown_stream",
            "rtp_duplicate",
            "rtx_redundant",
        ] {
            let series = format!("{DROPPED}{{reason=\"{label}\"}} 0\n");
            assert!(text.contains(&series), "{series}");
        }
        assert!(text.contains("\nsfu_media_rtcp_packets_received_total 0\n"));
    }

    #[test]
    fn zero_stats_still_list_every_drop_reason() {
        let text = Metrics::new(shared_stats()).render();
        let samples = parse_exposition(&text);
        for r in DropReason::ALL {
            let series = format!("{DROPPED}{{reason=\"{}\"}}", r.label());
            assert_eq!(samples.get(&series), Some(&0.0), "{series}");
        }
    }

    #[test]
    fn sources_and_process_metrics_are_included() {
        let mut m = Metrics::new(shared_stats());
        m.add_source(|out| {
            out.push_str("# HELP sfu_signaling_joins_total Joins.\n");
            out.push_str("# TYPE sfu_signaling_joins_total counter\n");
            out.push_str("sfu_signaling_joins_total 3\n");
        });
        let samples = parse_exposition(&m.render());
        assert_eq!(samples["sfu_signaling_joins_total"], 3.0);
        if cfg!(target_os = "linux") {
            assert!(samples["process_resident_memory_bytes"] > 0.0);
            assert!(samples["process_cpu_seconds_total"] >= 0.0);
            assert!(samples["process_open_fds"] > 0.0);
            assert!(samples["process_threads"] >= 1.0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            let start = samples["process_start_time_seconds"];
            assert!(
                start > now - 86400.0 * 365.0 && start <= now + 5.0,
                "{start}"
            );
        }
    }

    #[test]
    fn proc_parsers() {
        let stat = "4242 (my (weird) sfu) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 50 0 0 20 0 7 0 123456 100000 2000 18446744073709551615";
        assert_eq!(
            parse_stat(stat),
            Some(ProcStat {
                cpu_ticks: 300,
                threads: 7,
                start_ticks: 123456
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        let status = "Name:\tsfu\nVmSize:\t  2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(parse_status_kb(status, "VmRSS"), Some(1024 * 1024));
        assert_eq!(parse_status_kb(status, "VmSwap"), None);
        assert_eq!(
            parse_btime("cpu 1 2 3\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }
}
