//! A pool of threads for the light listeners' MLS work.
//!
//! Every commit of a big room reaches all its members at the same moment,
//! and each of them spends about a millisecond processing it (a Welcome,
//! tens of milliseconds). Done on the tokio runtime's worker threads,
//! those bursts hold the runtime itself: frames are read late and the
//! tester's own timer-lag probe flags it as overloaded. A real client keeps
//! its MLS work off its media path; the tester does the same by handing it
//! to these threads.
//!
//! How many, and at what priority, is a trade-off measured on a 2-core
//! machine with a 300-member room (`docs/loadtest.md`): at saturation the
//! OS shares the CPU between threads, so two threads at a lower priority
//! (nice +10) left MLS so far behind that listeners got frames of epochs
//! they had not reached for longer than a receiver holds such frames (1.2
//! million `unknown_kid` failures in one run; 240,000 to 400,000 with two
//! threads at normal priority); eight threads at normal priority mostly
//! keep up (18 and 1,406 in two runs). The defaults are those eight, at normal priority
//! (`--mls-threads`, `--mls-nice`).
//!
//! Jobs start in the order they were handed over (one FIFO channel). A job
//! whose result nobody awaits any more is skipped.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;
use tracing::{debug, warn};

/// Threads by default (see the module documentation).
pub const DEFAULT_THREADS: usize = 8;

/// One unit of work.
type Job = Box<dyn FnOnce() + Send>;

/// The pool. Dropping it closes its queue; its threads finish the job at
/// hand and the jobs still queued, then exit, and the drop waits for them.
#[derive(Debug)]
pub struct MlsPool {
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl MlsPool {
    /// A pool of `threads` threads (at least one), each at OS priority
    /// `nice` (Linux nice value, 0 is normal; elsewhere ignored).
    pub fn new(threads: usize, nice: i32) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..threads.max(1))
            .filter_map(|i| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("mls-{i}"))
                    .spawn(move || work(&rx, nice))
                    .inspect_err(|e| warn!(error = %e, "could not start an MLS thread"))
                    .ok()
            })
            .collect();
        Self {
            jobs: Some(tx),
            threads,
        }
    }

    /// How many threads it runs.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Queues `job`; its result comes back on the receiver. The receiver
    /// fails if the job panicked or the pool could not run it; dropping
    /// the receiver before the job starts skips the job.
    pub fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(job());
        });
        // A refused job is dropped with its sender, which fails the
        // receiver: the caller learns of it there.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
        rx
    }
}

impl Default for MlsPool {
    fn default() -> Self {
        Self::new(DEFAULT_THREADS, 0)
    }
}

impl Drop for MlsPool {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One thread's life: jobs until the queue closes.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>, nice: i32) {
    if nice != 0 {
        set_priority(nice);
    }
    loop {
        // The lock is held only while waiting for the next job, so jobs
        // start in queue order and run in parallel.
        let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else {
            return;
        };
        // A panicking job fails its own receiver (its sender is dropped
        // while unwinding) and must not take the thread with it.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            warn!("an MLS job panicked");
        }
    }
}

/// Sets the calling thread's nice value. Best effort: the run goes on at
/// normal priority if refused.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn set_priority(nice: i32) {
    // SAFETY: both calls take and return plain integers and touch no
    // memory; `gettid` cannot fail.
    let tid = unsafe { libc::gettid() };
    let Ok(who) = libc::id_t::try_from(tid) else {
        return;
    };
    // On Linux the nice value is per thread: this lowers only this one.
    // SAFETY: as above.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, nice) };
    if result != 0 {
        debug!(
            error = %std::io::Error::last_os_error(),
            "could not set an MLS thread's priority"
        );
    }
}

/// Sets the calling thread's CPU priority where supported (not here).
#[cfg(not(target_os = "linux"))]
fn set_priority(nice: i32) {
    debug!(nice, "thread priority left as is on this platform");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::channel;

    #[test]
    fn jobs_run_in_order_and_return_their_results() {
        let pool = MlsPool::new(1, 0);
        assert_eq!(pool.threads(), 1);
        let (order_tx, order) = channel();
        let results: Vec<_> = (0..20)
            .map(|i| {
                let order_tx = order_tx.clone();
                pool.run(move || {
                    order_tx.send(i).expect("test alive");
                    i * 2
                })
            })
            .collect();
        for (i, rx) in results.into_iter().enumerate() {
            assert_eq!(rx.blocking_recv().expect("job ran"), i * 2);
        }
        drop(order_tx);
        assert_eq!(
            order.iter().collect::<Vec<_>>(),
            (0..20).collect::<Vec<_>>()
        );
    }

    #[test]
    fn many_threads_run_every_job() {
        let pool = MlsPool::new(3, 0);
        assert_eq!(pool.threads(), 3);
        let results: Vec<_> = (0..50u32).map(|i| pool.run(move || i + 1)).collect();
        let sum: u32 = results
            .into_iter()
            .map(|rx| rx.blocking_recv().expect("job ran"))
            .sum();
        assert_eq!(sum, (1..=50).sum::<u32>());
    }

    #[test]
    fn a_panicking_job_fails_its_receiver_and_spares_the_thread() {
        let pool = MlsPool::new(1, 0);
        let failed = pool.run(|| -> u8 { panic!("test panic") });
        let next = pool.run(|| 7u8);
        assert!(failed.blocking_recv().is_err());
        assert_eq!(next.blocking_recv().expect("thread survived"), 7);
    }

    #[test]
    fn a_job_nobody_awaits_is_skipped() {
        let pool = MlsPool::new(1, 0);
        // Holds the only thread until released, so the next job is still
        // queued when its receiver is dropped.
        let (release_tx, release) = channel::<()>();
        let (started_tx, started) = channel::<()>();
        let blocker = pool.run(move || {
            started_tx.send(()).expect("test alive");
            release.recv().expect("test alive");
        });
        started.recv().expect("blocker started");
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        drop(pool.run(move || flag.store(true, Ordering::SeqCst)));
        release_tx.send(()).expect("blocker waiting");
        blocker.blocking_recv().expect("blocker ran");
        // Queue order: the skipped job was taken before this one.
        pool.run(|| ()).blocking_recv().expect("job ran");
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn its_threads_run_niced() {
        /// The calling thread's nice value (field 19 of its `stat`).
        fn nice() -> i32 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("procfs");
            let after_name = &stat[stat.rfind(')').expect("stat format") + 1..];
            let field = after_name.split_whitespace().nth(16).expect("stat format");
            field.parse().expect("a number")
        }
        let before = nice();
        let pool = MlsPool::new(1, 10);
        let on_pool = pool.run(nice).blocking_recv().expect("job ran");
        // At least 10: a process already niced further stays so.
        assert!(on_pool >= 10, "pool thread nice {on_pool}");
        // Only the pool's own threads.
        assert_eq!(nice(), before);
    }

    #[test]
    fn dropping_the_pool_finishes_queued_jobs_and_stops_its_threads() {
        let pool = MlsPool::new(2, 0);
        let results: Vec<_> = (0..10u32).map(|i| pool.run(move || i)).collect();
        drop(pool);
        // Every queued job ran before the threads exited (the drop joined
        // them, so nothing is left running).
        let got: Vec<u32> = results
            .into_iter()
            .map(|mut rx| rx.try_recv().expect("finished before the drop returned"))
            .collect();
        assert_eq!(got, (0..10).collect::<Vec<_>>());
    }
}
