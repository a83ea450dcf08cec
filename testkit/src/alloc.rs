//! A counting global allocator for tests that assert on heap use: live
//! bytes of the whole process, and allocations made by one thread while a
//! measured section runs (with a histogram by size, and an optional
//! backtrace of allocations of one size to find where they come from).
//!
//! A test binary installs it itself (only a binary may choose the global
//! allocator):
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: testkit::alloc::CountingAlloc = testkit::alloc::CountingAlloc::new();
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;
use std::sync::atomic::{AtomicIsize, AtomicU64, Ordering};

/// Sizes at or above this share the last histogram slot.
pub const SIZE_SLOTS: usize = 4096;

/// Serialises [`CountingAlloc::measure`] across threads.
static MEASURING: Mutex<()> = Mutex::new(());

thread_local! {
    /// Whether this thread's allocations are being counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

/// Forwards to the system allocator and counts.
#[derive(Debug)]
pub struct CountingAlloc {
    live: AtomicIsize,
    allocs: AtomicU64,
    bytes: AtomicU64,
    by_size: [AtomicU64; SIZE_SLOTS],
    trace_size: AtomicU64,
    traced: AtomicU64,
}

/// Allocations counted in a measured section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Allocations (a reallocation is one too).
    pub allocs: u64,
    /// Bytes asked for.
    pub bytes: u64,
    /// `(size, allocations)` for every size seen, most frequent first.
    pub by_size: Vec<(usize, u64)>,
}

impl CountingAlloc {
    /// An allocator with every count at zero.
    #[allow(clippy::new_without_default)] // used in a `static`
    pub const fn new() -> Self {
        Self {
            live: AtomicIsize::new(0),
            allocs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            by_size: [const { AtomicU64::new(0) }; SIZE_SLOTS],
            trace_size: AtomicU64::new(u64::MAX),
            traced: AtomicU64::new(0),
        }
    }

    /// Heap bytes allocated and not yet freed, by every thread.
    pub fn live_bytes(&self) -> isize {
        self.live.load(Ordering::Relaxed)
    }

    /// Prints a backtrace of the first few counted allocations of exactly
    /// `size` bytes.
    pub fn trace_size(&self, size: usize) {
        self.trace_size.store(size as u64, Ordering::Relaxed);
    }

    /// Runs `f` with counting on for this thread; returns its result and
    /// what it allocated (other threads are not counted).
    pub fn measure<R>(&self, f: impl FnOnce() -> R) -> (R, Counts) {
        // The counters are shared by all threads, so two sections measured
        // at once (tests run in parallel) would count each other's
        // allocations: one section at a time. A std mutex does not allocate.
        let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
        let before = self.snapshot();
        COUNTING.with(|c| c.set(true));
        let r = f();
        COUNTING.with(|c| c.set(false));
        let after = self.snapshot();
        let mut by_size: Vec<(usize, u64)> = (after.2.iter().zip(&before.2))
            .enumerate()
            .filter(|(_, (a, b))| a > b)
            .map(|(size, (a, b))| (size, a - b))
            .collect();
        by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let counts = Counts {
            allocs: after.0 - before.0,
            bytes: after.1 - before.1,
            by_size,
        };
        (r, counts)
    }

    fn snapshot(&self) -> (u64, u64, Vec<u64>) {
        (
            self.allocs.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.by_size
                .iter()
                .map(|n| n.load(Ordering::Relaxed))
                .collect(),
        )
    }

    fn note(&self, size: usize) {
        if !COUNTING.try_with(Cell::get).unwrap_or(false) {
            return;
        }
        self.allocs.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(size as u64, Ordering::Relaxed);
        self.by_size[size.min(SIZE_SLOTS - 1)].fetch_add(1, Ordering::Relaxed);
        if size as u64 == self.trace_size.load(Ordering::Relaxed)
            && self.traced.fetch_add(1, Ordering::Relaxed) < 4
        {
            // Off while tracing: the backtrace and the print allocate.
            COUNTING.with(|c| c.set(false));
            let bt = std::backtrace::Backtrace::force_capture();
            eprintln!("allocation of {size} B:\n{bt}");
            COUNTING.with(|c| c.set(true));
        }
    }
}

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to the system allocator; the
// counting only touches atomics and a thread-local flag.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        self.note(l.size());
        self.live.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        self.note(l.size());
        self.live.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        self.live.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        self.note(new);
        self.live
            .fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}
