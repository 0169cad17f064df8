//! Counts heap allocations per task of one-task chunks: a steady pool of one worker maps
//! `x*x` over `0..N` with `chunk_size(1)`, and a counting global allocator tallies the
//! allocations this process makes during the call (the caller and, under `threading`, the
//! worker thread; a process worker's own are in its process and not counted). Unlike a
//! time, the count does not depend on how busy the machine is.
//!
//! `cargo run --release --example allocs_per_task -- [N] [METHODS]`
//! (defaults: N = 100000, methods `threading,fork`).
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use pool::{MapOptions, StartMethod, WorkerPool};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new_size` is the caller's, unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn square(x: u64) -> u64 {
    x * x
}

fn main() {
    pool::entry();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: u64 = args.first().map_or(100_000, |s| s.parse().expect("N"));
    let methods = args.get(1).map_or("threading,fork", String::as_str);
    for m in methods.split(',') {
        let method = StartMethod::from_name(m).unwrap_or_else(|| panic!("unknown method {m}"));
        let mut p = WorkerPool::builder()
            .n_jobs(1)
            .start_method(method)
            .keep_alive(true)
            .build()
            .unwrap();
        // A first call warms the pool up (workers started, buffers grown).
        let opts = || MapOptions::default().chunk_size(1);
        p.map_with(square, 0..1000u64, opts()).unwrap();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let out = p.map_with(square, 0..n, opts()).unwrap();
        let per = (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / n as f64;
        assert_eq!(out.len() as u64, n);
        println!("{m:11} {per:6.2} allocations per task");
    }
}
