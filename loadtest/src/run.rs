//! The orchestrator: ramps joins up, samples every second, churns,
//! watches for a dead SFU, and ends the run with a report. Every wait is
//! bounded; a run that goes wrong still ends and still reports.

use crate::assemble::{self, Counts, EXIT_RUN_FAILED};
use crate::churn::{ChurnSchedule, pick_victim};
use crate::cli::Listeners;
use crate::clock;
use crate::figures;
use crate::listener;
use crate::participant;
use crate::progress::{Progress, Status};
use crate::report::{DecryptFailureReasons, Report};
use crate::settings::{Settings, identity};
use crate::sfu_usage::{UsageTracker, scrape};
use crate::state::{Phase, Shared, Slot, add_failures, lock};
use crate::stats::{Collector, DurationHistogram, StreamKey};
use crate::tester_usage::{self, CpuSample, lag_probe};
use crate::tokens::TokenSource;
use crate::watchdog::{Observation, Watchdog};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::info;

/// Time the run may take beyond ramp and duration before it is cut short
/// (the wind-down after it has its own bounds, within
/// [`HARD_MARGIN`] - this).
pub const DRIVE_MARGIN: Duration = Duration::from_secs(18);
/// Time the whole run may take beyond ramp and duration.
pub const HARD_MARGIN: Duration = Duration::from_secs(30);
/// After the publishers stop, how long frames in flight may still arrive.
pub const DRAIN: Duration = Duration::from_millis(1500);
/// No churn this close to the end, so replacements can join in time.
pub const CHURN_QUIET: Duration = Duration::from_secs(5);
/// A churn victim keeps receiving this long after its expected frames are
/// fixed, so frames in flight are not counted lost.
pub const CHURN_LINGER: Duration = Duration::from_millis(500);
/// How long participants get to leave at the end.
pub const LEAVE_WAIT: Duration = Duration::from_secs(5);
/// Between `/metrics` scrapes.
pub const SCRAPE_EVERY: Duration = Duration::from_secs(2);
/// Limit on one scrape.
pub const SCRAPE_LIMIT: Duration = Duration::from_secs(2);

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// What it measured.
    pub report: Report,
    /// Whether it went to its planned end.
    pub completed: bool,
    /// 0 pass, 1 threshold failed, 2 run failed.
    pub exit_code: u8,
}

/// Carries out the run `settings` describe and reports on it. Bounded:
/// it returns within ramp-up + duration + [`HARD_MARGIN`] whatever the SFU
/// does.
///
/// ```no_run
/// use clap::Parser;
/// # async fn go() -> anyhow::Result<()> {
/// let args = loadtest::cli::Args::parse_from(["loadtest", "--url", "ws://127.0.0.1:7880"]);
/// let settings = loadtest::settings::Settings::resolve(&args)?;
/// let outcome = loadtest::run::run(settings).await;
/// print!("{}", loadtest::summary::render(&outcome.report));
/// std::process::exit(i32::from(outcome.exit_code));
/// # }
/// ```
pub async fn run(settings: Settings) -> Outcome {
    let _ = clock::epoch();
    let started_at = assemble::unix_ms_now();
    let t0 = Instant::now();
    let planned = settings.ramp_time() + settings.duration;
    let tokens = match TokenSource::new(&settings.credentials, planned + Duration::from_secs(600)) {
        Ok(t) => t,
        Err(e) => {
            let report =
                assemble::not_started(&settings.target.url, &settings.scenario, e.to_string());
            return Outcome {
                report,
                completed: false,
                exit_code: EXIT_RUN_FAILED,
            };
        }
    };
    let shared = Arc::new(Shared::new(settings, tokens));
    let mut runner = Runner::new(shared, t0);
    let limit = planned + DRIVE_MARGIN;
    if tokio::time::timeout(limit, runner.drive()).await.is_err() {
        runner.abort(format!(
            "the run passed its deadline ({} s) and was cut short",
            limit.as_secs()
        ));
    }
    runner.finish(started_at).await
}

/// Starts participant `k` of `room`.
fn spawn_participant(
    shared: &Arc<Shared>,
    room: u32,
    k: u32,
    video: bool,
    audio: bool,
    expects_media: bool,
) {
    let mut slots = lock(&shared.slots);
    let index = u32::try_from(slots.len()).unwrap_or(u32::MAX);
    let mut slot = Slot::new(
        index,
        room,
        identity(room, k),
        video,
        audio,
        expects_media,
        clock::now_us(),
    );
    let light = !slot.publishes() && shared.settings.listeners == Listeners::Light;
    if light {
        slot.downlink_bps = shared.settings.downlink_limit.limit_for(index);
    }
    let slot = Arc::new(slot);
    slots.push(Arc::clone(&slot));
    drop(slots);
    let task = if light {
        tokio::spawn(listener::run(Arc::clone(shared), slot))
    } else {
        tokio::spawn(participant::run(Arc::clone(shared), slot))
    };
    lock(&shared.tasks).push(task);
}

/// Starts the initial participants at the ramp rate, rooms round-robin.
async fn ramp(shared: Arc<Shared>, t0: Instant, done: Arc<AtomicBool>) {
    let s = &shared.settings;
    let publishers = s.video_publishers.max(s.audio_publishers);
    let total = s.initial_participants();
    for i in 0..total {
        let at = t0 + Duration::from_secs_f64(i as f64 / s.ramp_per_sec);
        tokio::select! {
            () = tokio::time::sleep_until(at.into()) => {}
            () = shared.shutdown.cancelled() => return,
        }
        let room = (i % u64::from(s.rooms)) as u32;
        let k = (i / u64::from(s.rooms)) as u32;
        let others_publish = publishers - u32::from(k < publishers) > 0;
        spawn_participant(
            &shared,
            room,
            k,
            k < s.video_publishers,
            k < s.audio_publishers,
            others_publish,
        );
    }
    done.store(true, Ordering::Release);
}

/// A churn victim that stops being counted at `at`.
struct Leaving {
    at: Instant,
    /// When its expected frames were fixed, µs.
    cut_us: u64,
    slot: Arc<Slot>,
    last_sent: HashMap<StreamKey, u64>,
}

struct Runner {
    shared: Arc<Shared>,
    t0: Instant,
    collector: Collector,
    usage: Arc<Mutex<UsageTracker>>,
    watchdog: Watchdog,
    progress: Progress,
    rng: StdRng,
    next_k: Vec<u32>,
    replacements: u64,
    ramp_done: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    leaving: Vec<Leaving>,
    last_sample: Instant,
    abort: Option<String>,
    cpu_start: CpuSample,
    runtime_lag: Arc<Mutex<DurationHistogram>>,
}

impl Runner {
    fn new(shared: Arc<Shared>, t0: Instant) -> Self {
        let s = &shared.settings;
        Self {
            collector: Collector::new(),
            usage: Arc::new(Mutex::new(UsageTracker::new())),
            watchdog: Watchdog::new(t0),
            progress: Progress::new(s.progress),
            rng: StdRng::seed_from_u64(s.seed),
            next_k: vec![s.participants_per_room; s.rooms as usize],
            replacements: 0,
            ramp_done: Arc::new(AtomicBool::new(false)),
            tasks: Vec::new(),
            leaving: Vec::new(),
            last_sample: t0,
            abort: None,
            cpu_start: CpuSample::read(),
            runtime_lag: Arc::new(Mutex::new(DurationHistogram::new())),
            t0,
            shared,
        }
    }

    fn abort(&mut self, why: String) {
        if self.abort.is_none() {
            self.progress.note(&format!("stopping early: {why}"));
            self.abort = Some(why);
        }
    }

    async fn scrape_once(&self) {
        if let Some(ep) = &self.shared.settings.metrics {
            let r = scrape(ep, SCRAPE_LIMIT).await;
            lock(&self.usage).record(Instant::now(), r.as_ref().map(|s| *s));
        }
    }

    fn start_scraper(&mut self) {
        let Some(ep) = self.shared.settings.metrics.clone() else {
            return;
        };
        let usage = Arc::clone(&self.usage);
        let stop = self.shared.shutdown.clone();
        self.tasks.push(tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at((Instant::now() + SCRAPE_EVERY).into(), SCRAPE_EVERY);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => break,
                }
                let r = scrape(&ep, SCRAPE_LIMIT).await;
                lock(&usage).record(Instant::now(), r.as_ref().map(|s| *s));
            }
        }));
    }

    async fn drive(&mut self) {
        self.scrape_once().await;
        self.start_scraper();
        self.tasks.push(tokio::spawn(lag_probe(
            Arc::clone(&self.runtime_lag),
            self.shared.shutdown.clone(),
        )));
        let shared = Arc::clone(&self.shared);
        let s = &shared.settings;
        info!(url = %s.target.url, participants = s.initial_participants(), "starting");
        self.tasks.push(tokio::spawn(ramp(
            Arc::clone(&shared),
            self.t0,
            Arc::clone(&self.ramp_done),
        )));
        let ramp_end = self.t0 + s.ramp_time();
        let end_at = ramp_end + s.duration;
        let mut churn = ChurnSchedule::new(
            s.churn_per_min,
            ramp_end,
            end_at.checked_sub(CHURN_QUIET).unwrap_or(ramp_end),
        );
        let every = |period: Duration| {
            let mut i = tokio::time::interval_at((Instant::now() + period).into(), period);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        };
        let mut sample = every(Duration::from_secs(1));
        let mut show = every(Duration::from_millis(500));
        let mut housekeeping = every(Duration::from_millis(100));
        let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
        let mut ctrl_c_armed = true;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(end_at.into()) => break,
                _ = sample.tick() => {
                    let now = Instant::now();
                    self.sample(now);
                    if let Some(why) = self.check(now) {
                        self.abort(why);
                        break;
                    }
                }
                _ = show.tick() => self.show(),
                _ = housekeeping.tick() => {
                    let now = Instant::now();
                    if churn.poll(now) {
                        self.churn(now);
                    }
                    self.settle_leaving(now, false);
                }
                r = &mut ctrl_c, if ctrl_c_armed => match r {
                    Ok(()) => {
                        self.abort("interrupted".to_owned());
                        break;
                    }
                    // No signal handling here; run on without it.
                    Err(_) => ctrl_c_armed = false,
                },
            }
        }
    }

    /// Takes every receiver's window into the collector.
    fn sample(&mut self, now: Instant) {
        let slots = self.shared.slots();
        let samples: Vec<_> = slots.iter().map(|s| lock(&s.stats).take_window()).collect();
        let live = slots.iter().filter(|s| s.phase() == Phase::Live).count() as u64;
        let joins = slots.iter().filter(|s| s.connected()).count() as u64;
        let span = now
            .saturating_duration_since(self.last_sample)
            .as_secs_f64();
        self.last_sample = now;
        let t_s = now.saturating_duration_since(self.t0).as_secs_f64();
        self.collector
            .record_window(t_s, span, live, joins, samples);
    }

    fn check(&mut self, now: Instant) -> Option<String> {
        let slots = self.shared.slots();
        let count = |p: Phase| slots.iter().filter(|s| s.phase() == p).count() as u64;
        let obs = Observation {
            attempted: slots.len() as u64,
            joins_settled: self.ramp_done.load(Ordering::Acquire) && count(Phase::Joining) == 0,
            sessions: slots.iter().filter(|s| s.had_session()).count() as u64,
            failed: count(Phase::Failed),
            lost: count(Phase::Lost),
            frames_received: self.shared.frames_received.load(Ordering::Relaxed),
            metrics: lock(&self.usage).health(),
        };
        self.watchdog.check(now, &obs)
    }

    fn show(&mut self) {
        let slots = self.shared.slots();
        let s = &self.shared.settings;
        let status = Status {
            elapsed_s: self.t0.elapsed().as_secs_f64(),
            total_s: (s.ramp_time() + s.duration).as_secs_f64(),
            live: slots.iter().filter(|s| s.phase() == Phase::Live).count() as u64,
            target: s.initial_participants() + self.replacements,
            rolling: self.collector.rolling(),
            decrypt_failures: slots.iter().map(|s| s.failures().total()).sum(),
        };
        self.progress.update(Instant::now(), &status);
    }

    /// Picks a non-publisher to leave; its replacement joins once it goes.
    fn churn(&mut self, now: Instant) {
        let slots = self.shared.slots();
        let leaving: Vec<u32> = self.leaving.iter().map(|l| l.slot.index).collect();
        let candidates: Vec<usize> = slots
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.phase() == Phase::Live && !s.publishes() && !leaving.contains(&s.index)
            })
            .map(|(i, _)| i)
            .collect();
        let Some(victim) = pick_victim(&mut self.rng, &candidates) else {
            return;
        };
        // Its expected frames end here; what is in flight may still come.
        self.leaving.push(Leaving {
            at: now + CHURN_LINGER,
            cut_us: clock::micros_at(now),
            slot: Arc::clone(&slots[victim]),
            last_sent: self.shared.senders.snapshot(),
        });
    }

    /// Stops counting churn victims whose time is up (all if `all`), tells
    /// them to leave, and starts their replacements (unless the run ends).
    fn settle_leaving(&mut self, now: Instant, all: bool) {
        let (due, rest): (Vec<Leaving>, Vec<Leaving>) = std::mem::take(&mut self.leaving)
            .into_iter()
            .partition(|l| all || l.at <= now);
        self.leaving = rest;
        for l in due {
            let summary = lock(&l.slot.stats).finish(l.cut_us, |k| l.last_sent.get(&k).copied());
            self.collector
                .add_receiver(&summary, l.slot.downlink_bps.is_some());
            l.slot.leave.cancel();
            if all {
                continue;
            }
            let room = l.slot.room;
            let Some(k) = self.next_k.get_mut(room as usize) else {
                continue;
            };
            let id = *k;
            *k += 1;
            self.replacements += 1;
            let s = &self.shared.settings;
            let expects = s.video_publishers.max(s.audio_publishers) > 0;
            spawn_participant(&self.shared, room, id, false, false, expects);
        }
    }

    async fn finish(mut self, started_at: u64) -> Outcome {
        let shared = Arc::clone(&self.shared);
        self.settle_leaving(Instant::now(), true);
        shared.stop_media.cancel();
        // Bitrates are over the time media was sent, not the drain.
        let media_end_us = clock::now_us();
        if self.abort.is_none() {
            tokio::time::sleep(DRAIN).await;
        }
        let end = Instant::now();
        let last_sent = shared.senders.snapshot();
        let slots = shared.slots();
        for slot in &slots {
            let mut stats = lock(&slot.stats);
            if !stats.is_finished() {
                let summary = stats.finish(media_end_us, |k| last_sent.get(&k).copied());
                drop(stats);
                self.collector
                    .add_receiver(&summary, slot.downlink_bps.is_some());
            }
        }
        self.sample(end);
        // Who is in session as the media stops, and whose group they see,
        // before everyone leaves.
        let roster_check = figures::roster_check(&slots);
        let in_session: HashSet<u32> = slots
            .iter()
            .filter(|s| s.phase() == Phase::Live)
            .map(|s| s.index)
            .collect();
        let duration_s = end.saturating_duration_since(self.t0).as_secs_f64();
        let tester = tester_usage::judge(
            &self.cpu_start,
            &CpuSample::read(),
            tester_usage::host_cores(),
            &lock(&self.runtime_lag),
        );

        // Everyone leaves, within bounds.
        shared.shutdown.cancel();
        let mut tasks = std::mem::take(&mut *lock(&shared.tasks));
        tasks.append(&mut self.tasks);
        let deadline = Instant::now() + LEAVE_WAIT;
        for t in &mut tasks {
            let left = deadline.saturating_duration_since(Instant::now());
            let _ = tokio::time::timeout(left, t).await;
        }
        for t in &tasks {
            t.abort();
        }
        self.scrape_once().await;
        self.progress.finish();

        let slots = shared.slots();
        let mut failure_reasons = DecryptFailureReasons::default();
        for s in &slots {
            add_failures(&mut failure_reasons, s);
        }
        let counts = Counts {
            target: shared.settings.initial_participants() + self.replacements,
            connected: slots.iter().filter(|s| s.connected()).count() as u64,
            lost: slots.iter().filter(|s| s.phase() == Phase::Lost).count() as u64,
            failure_reasons,
            epoch_switches: slots
                .iter()
                .map(|s| s.epoch_switches.load(Ordering::Relaxed))
                .sum(),
            frames_sent: shared.senders.total(),
            send_errors: shared.send_errors.load(Ordering::Relaxed),
        };
        let mut errors: Vec<String> = self.abort.iter().cloned().collect();
        if counts.target > 0 && counts.connected == 0 && self.abort.is_none() {
            errors.push("no participant connected".to_owned());
        }
        errors.extend(grouped_errors(&slots));
        let usage = lock(&self.usage).clone();
        if let (Some(ep), false) = (&shared.settings.metrics, usage.ever_up()) {
            errors.push(format!(
                "the SFU's metrics at http://{}{} never answered: no CPU or memory figures",
                ep.authority(),
                ep.path
            ));
        }
        let completed = self.abort.is_none() && (counts.target == 0 || counts.connected > 0);
        let mut report = assemble::assemble(
            &shared.settings,
            started_at,
            duration_s,
            self.collector.measured(),
            self.collector.timeline().to_vec(),
            counts,
            usage.usage(),
            Some(tester),
            errors,
            completed,
        );
        report.epoch_change_loss = Some(figures::epoch_change_loss(
            slots.iter().flat_map(|s| s.epoch_changes()),
        ));
        report.roster_check = Some(roster_check);
        let s = &shared.settings;
        if s.listeners == Listeners::Light {
            let tracks = u64::from(s.video_publishers) + u64::from(s.audio_publishers);
            report.light_listeners = figures::light_listeners(&slots, tracks, &in_session);
        }
        Outcome {
            exit_code: assemble::exit_code(&report, completed),
            report,
            completed,
        }
    }
}

/// Distinct per-participant problems, most frequent first.
fn grouped_errors(slots: &[Arc<Slot>]) -> Vec<String> {
    const SHOWN: usize = 8;
    let mut by_message: BTreeMap<String, u64> = BTreeMap::new();
    for s in slots {
        if let Some(e) = s.error() {
            *by_message.entry(e).or_default() += 1;
        }
    }
    let mut v: Vec<(String, u64)> = by_message.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let hidden = v.len().saturating_sub(SHOWN);
    let mut out: Vec<String> = v
        .into_iter()
        .take(SHOWN)
        .map(|(msg, n)| format!("{n} participant(s): {msg}"))
        .collect();
    if hidden > 0 {
        out.push(format!("… and {hidden} other kinds of participant error"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_grouped_by_message() {
        let slot = |i: u32, e: Option<&str>| {
            let s = Arc::new(Slot::new(i, 0, format!("p0-{i}"), false, false, true, 0));
            if let Some(e) = e {
                s.note_error(e);
            }
            s
        };
        let slots = vec![
            slot(0, Some("join failed: refused")),
            slot(1, Some("session closed: ConnectionLost")),
            slot(2, Some("join failed: refused")),
            slot(3, None),
        ];
        assert_eq!(
            grouped_errors(&slots),
            vec![
                "2 participant(s): join failed: refused".to_owned(),
                "1 participant(s): session closed: ConnectionLost".to_owned(),
            ]
        );
    }
}
