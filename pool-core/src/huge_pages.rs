//! Transparent huge pages for big fresh buffers: a map's output, decoded results, the bulk
//! arena's reads (pool-ipc).
//!
//! Why: the first write to fresh memory faults every 4 KiB page in; for 10M `u64` results that
//! is 20,000 faults (each a kernel entry, a page cleared, a cgroup charge), often taken by one
//! thread (a process pool's parent decodes every result into place). With huge pages it is 40.

/// Asks for transparent huge pages over the 2 MiB pages that `len` bytes from `ptr` cover
/// whole, when they are many (at least 4 MiB). Only advice: where the kernel has no huge page
/// at hand, or transparent huge pages are off, nothing changes. `POOL_NO_THP=1` turns it off.
pub fn advise(ptr: *mut u8, len: usize) {
    const HUGE: usize = 2 << 20;
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if len < 2 * HUGE || *OFF.get_or_init(|| std::env::var_os("POOL_NO_THP").is_some()) {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + len) / HUGE * HUGE;
    if end > start {
        // SAFETY: `start..end` lies inside an allocation of ours; advice changes neither the
        // mapping nor its contents, and a failure (say, no THP support) is harmless.
        unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
    }
}
