//! Anonymous shared memory: `memfd_create` + `ftruncate` + `mmap(MAP_SHARED)`.
//!
//! Why memfd and not `shm_open`: a memfd has no name in `/dev/shm`, so a crashed pool can never
//! leave a segment behind; the memory lives exactly as long as some process holds the fd or a
//! mapping. The region reaches a worker in one of two ways:
//! - **fork**: the mapping is inherited as is (same address, same pages);
//! - **spawn** (re-exec): the fd is created close-on-exec (so unrelated children started by other
//!   threads never inherit it), and [`SharedRegion::inheritable_fd`] hands the spawner a raw fd
//!   number that the child re-maps with [`SharedRegion::from_fd`].
//!
//! The mapping is unmapped and the fd closed on `Drop`.
//!
//! The bytes may be written by another process at any time, so this type never hands out `&[u8]`
//! or `&mut [u8]`: it offers bounds-checked copies ([`SharedRegion::read_at`],
//! [`SharedRegion::write_at`]) and atomics ([`SharedRegion::atomic_u32`],
//! [`SharedRegion::atomic_u64`]). Protocols built on top (the ring) use the atomics to make sure a
//! copy never overlaps a concurrent write.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// A shared, anonymous, fixed-size memory region backed by a memfd.
pub struct SharedRegion {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain shared memory; every accessor either copies through raw pointers
// with bounds checks or hands out atomics, which are `Sync`. The pointer is valid for the life of
// the value and not tied to a thread.
unsafe impl Send for SharedRegion {}
// SAFETY: see `Send`; no accessor hands out non-atomic references into the mapping.
unsafe impl Sync for SharedRegion {}

impl std::fmt::Debug for SharedRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedRegion")
            .field("fd", &self.fd.as_raw_fd())
            .field("len", &self.len)
            .finish()
    }
}

impl SharedRegion {
    /// Creates a zero-filled region of `len` bytes (rounded up to whole pages by the kernel).
    /// `name` only shows up in `/proc/<pid>/fd` and `/proc/<pid>/maps`, for debugging.
    pub fn create(name: &str, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "shared region of 0 bytes",
            ));
        }
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name contains NUL"))?;
        // SAFETY: `cname` is a valid NUL-terminated string; flags are valid memfd flags.
        let raw = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh fd that we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let off = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "region too large"))?;
        // SAFETY: `fd` is a valid memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), off) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Self::map(fd, len)
    }

    /// Maps a region from an fd received from the parent (spawn start method). The length is the
    /// file's size. The fd is set close-on-exec again so it does not travel further.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        // SAFETY: `stat` is plain data; all-zero is a valid value to be overwritten by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is valid and `st` is a valid out pointer.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let len = usize::try_from(st.st_size)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative size"))?;
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "empty shared region",
            ));
        }
        set_cloexec(fd.as_raw_fd(), true)?;
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Self> {
        // SAFETY: we ask for a fresh shared mapping of a file we own; no existing memory is
        // affected (addr is null).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(io::Error::last_os_error)?;
        Ok(Self { fd, ptr, len })
    }

    /// Size of the region in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a region has at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The backing memfd.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Duplicates the memfd *without* close-on-exec, for handing to a re-executed child.
    /// The returned fd stays open in this process until dropped; drop it after the child started.
    pub fn inheritable_fd(&self) -> io::Result<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd we own.
        let raw = unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fresh fd we own.
        let dup = unsafe { OwnedFd::from_raw_fd(raw) };
        // Keep CLOEXEC on the duplicate too: the spawner clears it only in the child (between
        // fork and exec), so children started concurrently by other threads never see it.
        Ok(dup)
    }

    /// Base address of the mapping (differs between processes under spawn, equal under fork).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn check(&self, offset: usize, n: usize) {
        let end = offset.checked_add(n).expect("offset overflow");
        assert!(
            end <= self.len,
            "range {offset}..{end} outside region of {} bytes",
            self.len
        );
    }

    /// Copies `buf.len()` bytes out of the region at `offset`. Panics when out of bounds.
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) {
        self.check(offset, buf.len());
        // SAFETY: the range is inside the mapping (checked); `buf` is a distinct local buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len())
        }
    }

    /// Copies `n` bytes out of the region at `offset` into raw memory. Panics when out of bounds.
    ///
    /// # Safety
    /// `dst` must be valid for `n` bytes of writes and must not point into this region.
    pub unsafe fn read_raw(&self, offset: usize, dst: *mut u8, n: usize) {
        self.check(offset, n);
        // SAFETY: the source range is inside the mapping (checked); the caller vouches for `dst`.
        unsafe { std::ptr::copy_nonoverlapping(self.as_ptr().add(offset), dst, n) }
    }

    /// The `n` bytes at `offset`, read in place. Panics when out of bounds.
    ///
    /// # Safety
    /// While the slice lives, nothing in this process writes the range (no [`Self::write_at`],
    /// no atomic in it), and the protocol of the region forbids the peer process to write it
    /// (a peer that breaks it garbles the bytes read, which their decoder must tolerate).
    pub unsafe fn bytes(&self, offset: usize, n: usize) -> &[u8] {
        self.check(offset, n);
        // SAFETY: the range is inside the mapping (checked), which lives as long as `&self`;
        // the caller vouches that no one writes it meanwhile; every byte is a valid `u8`.
        unsafe { std::slice::from_raw_parts(self.as_ptr().add(offset), n) }
    }

    /// Copies `data` into the region at `offset`. Panics when out of bounds.
    pub fn write_at(&self, offset: usize, data: &[u8]) {
        self.check(offset, data.len());
        // SAFETY: the range is inside the mapping (checked); `data` cannot alias the range:
        // only [`Self::bytes`] hands out references into the mapping, and its caller promises
        // that nothing writes their range while they live.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.as_ptr().add(offset), data.len())
        }
    }

    /// An atomic `u32` at `offset` (must be 4-byte aligned and in bounds, else panics).
    pub fn atomic_u32(&self, offset: usize) -> &AtomicU32 {
        self.check(offset, 4);
        assert_eq!(offset % 4, 0, "unaligned atomic_u32 at {offset}");
        // SAFETY: in bounds and aligned (mmap returns page-aligned memory); AtomicU32 has the
        // same layout as u32 and every bit pattern is valid; the mapping outlives `&self`.
        unsafe { AtomicU32::from_ptr(self.as_ptr().add(offset).cast()) }
    }

    /// An atomic `u64` at `offset` (must be 8-byte aligned and in bounds, else panics).
    pub fn atomic_u64(&self, offset: usize) -> &AtomicU64 {
        self.check(offset, 8);
        assert_eq!(offset % 8, 0, "unaligned atomic_u64 at {offset}");
        // SAFETY: as in `atomic_u32`.
        unsafe { AtomicU64::from_ptr(self.as_ptr().add(offset).cast()) }
    }
}

impl Drop for SharedRegion {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` describe the mapping created in `map`, unmapped only here.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        // `fd` closes itself.
    }
}

/// Sets or clears `FD_CLOEXEC` on `fd`. Async-signal-safe (usable between fork and exec).
pub fn set_cloexec(fd: RawFd, on: bool) -> io::Result<()> {
    // SAFETY: fcntl F_GETFD/F_SETFD on an integer fd has no memory effects; errors are reported.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let new = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        if libc::fcntl(fd, libc::F_SETFD, new) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_atomics() {
        let r = SharedRegion::create("t", 4096).unwrap();
        r.write_at(100, b"hello");
        let mut b = [0u8; 5];
        r.read_at(100, &mut b);
        assert_eq!(&b, b"hello");
        r.atomic_u64(8)
            .store(7, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(r.atomic_u64(8).load(std::sync::atomic::Ordering::SeqCst), 7);
    }

    #[test]
    #[should_panic(expected = "outside region")]
    fn out_of_bounds_panics() {
        let r = SharedRegion::create("t", 16).unwrap();
        r.write_at(10, &[0; 7]);
    }

    #[test]
    fn remap_from_fd_sees_same_bytes() {
        let r = SharedRegion::create("t", 8192).unwrap();
        r.write_at(5000, b"xyz");
        let r2 = SharedRegion::from_fd(r.inheritable_fd().unwrap()).unwrap();
        assert_eq!(r2.len(), 8192);
        let mut b = [0u8; 3];
        r2.read_at(5000, &mut b);
        assert_eq!(&b, b"xyz");
        r2.write_at(0, b"Q");
        r.read_at(0, &mut b[..1]);
        assert_eq!(b[0], b'Q');
    }
}
