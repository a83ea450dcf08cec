//! The summary tables: one per aspect of the run, every cell escaped.

use super::super::{Percentiles, Report};
use super::format::*;
use super::verdict;

/// An HTML table. Every cell is plain text and is escaped here. The first
/// cell of each row is its header. An empty `header` leaves out `<thead>`.
fn table(caption: &str, header: &[&str], rows: &[Vec<String>], class: &str) -> String {
    let mut out = format!(
        "<table class=\"{}\">\n<caption>{}</caption>\n",
        escape(class),
        escape(caption)
    );
    if !header.is_empty() {
        out.push_str("<thead><tr>");
        for cell in header {
            out.push_str(&format!("<th scope=\"col\">{}</th>", escape(cell)));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for row in rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("<th scope=\"row\">{}</th>", escape(cell)));
            } else {
                out.push_str(&format!("<td>{}</td>", escape(cell)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// A two-column name/value table.
fn kv_table(caption: &str, rows: &[(&str, String)]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(name, value)| vec![(*name).to_owned(), value.clone()])
        .collect();
    table(caption, &[], &rows, "kv")
}

pub(super) fn participants_table(r: &Report) -> String {
    let share = if r.participants_target == 0 {
        "n/a".to_owned()
    } else {
        fmt_percent(r.participants_connected as f64 / r.participants_target as f64)
    };
    kv_table(
        "Participants",
        &[
            ("Target", fmt_int(r.participants_target)),
            ("Connected", fmt_int(r.participants_connected)),
            ("Failed", fmt_int(r.participants_failed)),
            ("Lost during the run", fmt_int(r.participants_lost)),
            ("Connected / target", share),
        ],
    )
}

pub(super) fn percentiles_table(r: &Report) -> String {
    let rows = [
        percentiles_row("Join time (token to first decrypted frame)", &r.join_ms),
        percentiles_row("End-to-end frame latency", &r.latency_ms),
    ];
    table(
        "Timing, ms",
        &["", "Samples", "p50", "p95", "p99", "max"],
        &rows,
        "wide",
    )
}

/// One row of a percentile table; the values read "n/a" without samples
/// because a zero there would look like a measurement.
fn percentiles_row(name: &str, p: &Percentiles) -> Vec<String> {
    let value = |v: f64| {
        if p.count == 0 {
            "n/a".to_owned()
        } else {
            fmt_f(v, 1)
        }
    };
    vec![
        name.to_owned(),
        fmt_int(p.count),
        value(p.p50),
        value(p.p95),
        value(p.p99),
        value(p.max),
    ]
}

pub(super) fn media_table(r: &Report) -> String {
    kv_table(
        "Media quality",
        &[
            ("Loss", fmt_percent(r.loss_ratio)),
            ("Jitter", format!("{} ms", fmt_f(r.jitter_ms, 2))),
            (
                "Bitrate per subscriber, mean",
                fmt_kbps(r.bitrate_kbps.mean),
            ),
            ("Bitrate per subscriber, min", fmt_kbps(r.bitrate_kbps.min)),
            ("Bitrate per subscriber, max", fmt_kbps(r.bitrate_kbps.max)),
        ],
    )
}

pub(super) fn frames_table(r: &Report) -> String {
    kv_table(
        "Frames",
        &[
            ("Sent", fmt_int(r.frames_sent)),
            ("Expected", fmt_int(r.frames_expected)),
            ("Received", fmt_int(r.frames_received)),
            ("Duplicates", fmt_int(r.duplicates)),
            ("Reordered", fmt_int(r.reordered)),
            (
                "Malformed (no load-test header)",
                fmt_int(r.malformed_frames),
            ),
            ("Send errors", fmt_int(r.send_errors)),
        ],
    )
}

pub(super) fn e2ee_table(r: &Report) -> String {
    let why = &r.decrypt_failure_reasons;
    // The em space indents the reasons under their total.
    kv_table(
        "End-to-end encryption",
        &[
            (
                "Decrypt failures after joining",
                fmt_int(r.decrypt_failures_after_join),
            ),
            ("Decrypt failures in all", fmt_int(r.decrypt_failures)),
            ("\u{2003}while joining", fmt_int(why.while_joining)),
            ("\u{2003}malformed SFrame header", fmt_int(why.malformed)),
            ("\u{2003}authentication failed", fmt_int(why.auth_failed)),
            ("\u{2003}replayed", fmt_int(why.replay)),
            ("\u{2003}unknown key id", fmt_int(why.unknown_kid)),
            ("\u{2003}epoch keys gone", fmt_int(why.wrong_epoch)),
            ("\u{2003}wrong sender", fmt_int(why.wrong_sender)),
            (
                "\u{2003}sender not known in time",
                fmt_int(why.unknown_sender),
            ),
            ("\u{2003}incomplete frame", fmt_int(why.incomplete)),
            ("Epoch switches", fmt_int(r.epoch_switches)),
        ],
    )
}

pub(super) fn epoch_loss_table(r: &Report) -> String {
    let Some(e) = &r.epoch_change_loss else {
        return kv_table(
            "Frames lost around epoch changes",
            &[("Epoch changes settled", "none".to_owned())],
        );
    };
    let d = &e.lost_per_change;
    let f = &e.failures;
    kv_table(
        "Frames lost around epoch changes",
        &[
            (
                "Epoch changes settled (member × change)",
                fmt_int(e.changes),
            ),
            (
                "Frames sent in the second after them",
                fmt_int(e.frames_expected),
            ),
            ("Frames lost", fmt_int(e.frames_lost)),
            (
                "Lost per change p50 / p95 / max",
                format!(
                    "{} / {} / {}",
                    fmt_int(d.p50),
                    fmt_int(d.p95),
                    fmt_int(d.max)
                ),
            ),
            ("\u{2003}epoch keys gone", fmt_int(f.wrong_epoch)),
            ("\u{2003}unknown key id", fmt_int(f.unknown_kid)),
            ("\u{2003}wrong sender", fmt_int(f.wrong_sender)),
            (
                "\u{2003}sender not known in time",
                fmt_int(f.unknown_sender),
            ),
            ("\u{2003}incomplete frame", fmt_int(f.incomplete)),
            (
                "\u{2003}other decrypt failures",
                fmt_int(f.malformed + f.auth_failed + f.replay),
            ),
            (
                "\u{2003}never handed to the decryptor",
                fmt_int(e.undelivered),
            ),
        ],
    )
}

pub(super) fn members_table(r: &Report) -> String {
    let mut rows = vec![("Listeners", r.config.listeners.name().to_owned())];
    if let Some(c) = &r.roster_check {
        rows.push(("Members checked at the end", fmt_int(c.members)));
        rows.push(("Missing from a member's MLS group", fmt_int(c.missing)));
        rows.push(("Roster mismatches reported", fmt_int(c.mismatches)));
    }
    if let Some(l) = &r.light_listeners {
        rows.push((
            "Light listeners connected",
            format!("{} / {}", fmt_int(l.connected), fmt_int(l.participants)),
        ));
        rows.push(("Light listeners' frames", fmt_int(l.frames_received)));
        rows.push((
            "Light listeners' decrypt failures after joining",
            fmt_int(l.decrypt_failures_after_join),
        ));
        rows.push((
            "Fewest tracks a light listener decrypted",
            format!(
                "{} of {}",
                fmt_int(l.tracks_received_min),
                fmt_int(l.publisher_tracks)
            ),
        ));
    }
    kv_table("Members", &rows)
}

/// Simulcast layers as received: one column per receiver group.
pub(super) fn layers_table(r: &Report) -> String {
    let Some(l) = &r.layers else {
        return kv_table("Video layers", &[("Video received", "none".to_owned())]);
    };
    let groups = [
        ("Full downlink", &l.unlimited),
        (
            if r.config.limit_share > 0.0 {
                "Limited downlink"
            } else {
                "Limited (none)"
            },
            &l.limited,
        ),
    ];
    let row = |name: &str, cell: &dyn Fn(&super::super::LayerGroup) -> String| {
        let mut v = vec![name.to_owned()];
        v.extend(groups.iter().map(|(_, g)| cell(g)));
        v
    };
    let mut rows = vec![row("Receivers", &|g| fmt_int(g.receivers))];
    for (i, name) in [
        "Time on layer 0 (lowest)",
        "Time on layer 1",
        "Time on layer 2",
        "Time on layer 3",
    ]
    .into_iter()
    .enumerate()
    {
        rows.push(row(name, &|g| fmt_percent(g.time_share[i])));
    }
    rows.push(row("Layer switches", &|g| fmt_int(g.switches)));
    rows.push(row("Switches per stream-minute", &|g| {
        fmt_f(g.switches_per_minute, 2)
    }));
    rows.push(row("Freezes (> 500 ms)", &|g| fmt_int(g.freezes)));
    rows.push(row("Time frozen", &|g| fmt_percent(g.freeze_share)));
    rows.push(row("Longest freeze", &|g| {
        format!("{} ms", fmt_f(g.longest_freeze_ms, 0))
    }));
    let header = ["", groups[0].0, groups[1].0];
    table("Video layers", &header, &rows, "layers")
}

pub(super) fn sfu_table(r: &Report) -> String {
    let Some(sfu) = r.sfu else {
        return kv_table("SFU resources", &[("Metrics", "not reachable".to_owned())]);
    };
    let na = || "n/a".to_owned();
    kv_table(
        "SFU resources",
        &[
            (
                "CPU time",
                sfu.cpu_seconds
                    .map_or_else(na, |s| format!("{} s", fmt_f(s, 1))),
            ),
            (
                "CPU cores used",
                sfu.cpu_cores.map_or_else(na, |c| fmt_f(c, 2)),
            ),
            (
                "Peak RSS",
                sfu.peak_rss_bytes
                    .map_or_else(na, |b| format!("{} MiB", fmt_f(b as f64 / 1_048_576.0, 1))),
            ),
        ],
    )
}

pub(super) fn tester_table(r: &Report) -> String {
    let Some(t) = &r.tester else {
        return kv_table("Load tester", &[("CPU", "not measured".to_owned())]);
    };
    let na = || "n/a".to_owned();
    kv_table(
        "Load tester",
        &[
            (
                "CPU time",
                t.cpu_seconds
                    .map_or_else(na, |s| format!("{} s", fmt_f(s, 1))),
            ),
            (
                "CPU cores used",
                t.cpu_cores.map_or_else(na, |c| fmt_f(c, 2)),
            ),
            (
                "Host cores busy",
                t.host_busy_cores
                    .map_or_else(na, |c| format!("{} of {}", fmt_f(c, 2), t.host_cores)),
            ),
            (
                "Timer lag p50 / p99",
                if t.runtime_lag_ms.count == 0 {
                    na()
                } else {
                    format!(
                        "{} / {} ms",
                        fmt_f(t.runtime_lag_ms.p50, 1),
                        fmt_f(t.runtime_lag_ms.p99, 1)
                    )
                },
            ),
            (
                "Kept up",
                if t.overloaded { "no" } else { "yes" }.to_owned(),
            ),
        ],
    )
}

pub(super) fn thresholds_table(r: &Report) -> String {
    let unset = || "not set".to_owned();
    let t = &r.thresholds;
    kv_table(
        "Gates",
        &[
            (
                "Max p99 latency",
                t.max_p99_ms
                    .map_or_else(unset, |v| format!("{} ms", fmt_f(v, 1))),
            ),
            ("Max loss", t.max_loss.map_or_else(unset, fmt_percent)),
            (
                "Min connected",
                t.min_connected.map_or_else(unset, fmt_percent),
            ),
            (
                "Max decrypt failures after joining",
                t.max_decrypt_failures.map_or_else(unset, fmt_int),
            ),
            ("Verdict", verdict(r).to_owned()),
        ],
    )
}

pub(super) fn config_table(r: &Report) -> String {
    let c = &r.config;
    kv_table(
        "Run configuration",
        &[
            ("Rooms", c.rooms.to_string()),
            ("Participants per room", c.participants_per_room.to_string()),
            ("Video publishers per room", c.video_publishers.to_string()),
            ("Audio publishers per room", c.audio_publishers.to_string()),
            (
                "Video bitrate per publisher",
                format!("{} kbit/s", c.video_kbps),
            ),
            ("Video frame rate", format!("{} fps", c.video_fps)),
            (
                "Keyframe interval",
                format!("{} s", fmt_f(c.keyframe_interval_s, 1)),
            ),
            ("Audio packet rate", format!("{} /s", c.audio_pps)),
            ("Planned duration", fmt_duration(c.duration_s)),
            ("Ramp-up", format!("{} joins/s", fmt_f(c.ramp_per_s, 1))),
            ("Churn", format!("{} /min", fmt_f(c.churn_per_min, 1))),
            ("Seed", c.seed.to_string()),
        ],
    )
}
