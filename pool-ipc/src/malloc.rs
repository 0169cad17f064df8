//! How a worker process asks the allocator to keep memory it frees.
//!
//! Why: a worker allocates and frees a few buffers of a chunk's size per chunk (the frame, the
//! decoded inputs, the results, their encoding). With glibc's defaults, buffers of a few
//! hundred KiB are freed at the top of the heap and handed back to the kernel at once (trim
//! threshold 128 KiB, raised at most to twice the mmap threshold), so the next chunk faults
//! every page in again: on 10M trivial tasks under Fork that was ~90k page faults per map and
//! the largest cost of the workers (`perf stat -e page-faults`). A worker process belongs to
//! the pool, so it keeps up to 256 MiB of freed memory for reuse; the user's own process is
//! left alone.
//!
//! Big buffers too: glibc serves an allocation above its mmap threshold (at most 32 MiB) with a
//! fresh `mmap` and unmaps it on free, so a task returning 64 MiB faulted 16k fresh pages in for
//! its result and as many again for the result's encoding, on every call (issue #17). A worker
//! takes every allocation from its heap instead (`M_MMAP_MAX = 0`), where the trim threshold
//! keeps freed memory, so the pages of one big result are reused by the next; and the pool's
//! own spare encode buffers may be as big (`pool_core::keep_big_buffers`).
//!
//! glibc honours `M_MMAP_MAX = 0` only in its main arena: a thread arena's heaps hold at most
//! 64 MiB, and a bigger allocation there is always a fresh `mmap`. A forked child keeps the
//! arena of the thread that forked it, so Fork workers are forked from the main thread when the
//! pool asks there (see `backend::launcher`); Spawn and Forkserver workers start fresh, on
//! their main arena.

/// Applies the pool's allocator settings in a worker process (glibc only; elsewhere nothing).
pub(crate) fn tune_worker() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called in the worker process
    // before its work starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
    }
    // The encoding of a big result goes into the warm buffer of the last one.
    pool_core::keep_big_buffers(256 << 20);
}
