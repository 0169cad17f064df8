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

/// Applies the pool's allocator settings in a worker process (glibc only; elsewhere nothing).
pub(crate) fn tune_worker() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called in the worker process
    // before its work starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
