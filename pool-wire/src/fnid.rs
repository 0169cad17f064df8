//! Naming a `fn` across a re-exec of the same binary, and proving it *is* the same binary.
//!
//! Why: a spawned worker is a fresh process; a closure cannot travel, but a plain `fn` pointer
//! can, as its offset from a known function ([`anchor`]) in this crate. With ASLR the binary
//! loads at another address in the child, but the layout inside it is the same, so
//! `anchor_in_child + offset` is the same function. This only holds for the *same* binary file:
//! a spawned child gets an [`ExeId`] (device, inode, size, mtime of `/proc/self/exe`) and refuses
//! to resolve anything when its own differs (e.g. `cargo build` replaced the file while the pool
//! ran). On other hosts (MPI ranks) inodes mean nothing: there every rank compares an
//! [`ExeDigest`] of the file's bytes with rank 0's.
//!
//! Every id is turned back into the exact `fn` type it was made from: the messages that carry
//! one say which type it is ([`crate::boot::BootRecord`], [`crate::msg::JobRef`]).

use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

/// The reference point for offsets. Never inlined, so it has an address of its own.
#[inline(never)]
pub fn anchor() -> u32 {
    std::hint::black_box(0x504f_4f4c)
}

fn anchor_addr() -> isize {
    anchor as fn() -> u32 as usize as isize
}

/// A function's position in this binary, relative to [`anchor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FnId(i64);

impl FnId {
    /// The id of the function at `ptr` (any code address in this binary).
    pub fn from_ptr(ptr: *const ()) -> Self {
        Self((ptr as isize).wrapping_sub(anchor_addr()) as i64)
    }

    /// The address this id stands for in the current process.
    ///
    /// Calling it is only sound if the id was made by the same binary (check [`ExeId`]) and the
    /// pointer is cast back to the exact type it was made from.
    pub fn to_ptr(self) -> *const () {
        anchor_addr().wrapping_add(self.0 as isize) as *const ()
    }

    /// The raw offset.
    pub fn offset(self) -> i64 {
        self.0
    }
}

/// Identity of an executable file: equal ids mean the same file, unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExeId {
    /// Device of the file.
    pub dev: u64,
    /// Inode of the file.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: i64,
}

impl ExeId {
    /// The identity of the running executable (`/proc/self/exe`).
    pub fn current() -> io::Result<Self> {
        Self::of_path("/proc/self/exe")
    }

    /// The identity of the file at `path` (symlinks followed).
    pub fn of_path(path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }

    /// Ok if this process runs the executable `self` describes.
    pub fn check_current(&self) -> Result<(), DifferentBinary> {
        let found = Self::current().map_err(|e| DifferentBinary {
            expected: *self,
            found: None,
            io: Some(e.to_string()),
        })?;
        if found == *self {
            Ok(())
        } else {
            Err(DifferentBinary {
                expected: *self,
                found: Some(found),
                io: None,
            })
        }
    }
}

impl fmt::Display for ExeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dev {} inode {} size {} mtime {}.{:09}",
            self.dev, self.ino, self.size, self.mtime, self.mtime_nsec
        )
    }
}

/// A digest of the running executable's bytes: equal on every host that runs the same build
/// (unlike [`ExeId`], whose inode is per file system). Not cryptographic: it catches a stale
/// or different binary, not an attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExeDigest {
    /// File size in bytes.
    pub len: u64,
    /// A 64-bit hash of the bytes.
    pub hash: u64,
}

impl ExeDigest {
    /// The digest of `/proc/self/exe`, computed once per process.
    pub fn current() -> io::Result<Self> {
        static DIGEST: std::sync::OnceLock<Result<ExeDigest, String>> = std::sync::OnceLock::new();
        DIGEST
            .get_or_init(|| Self::of_path("/proc/self/exe").map_err(|e| e.to_string()))
            .clone()
            .map_err(io::Error::other)
    }

    /// The digest of the file at `path`.
    pub fn of_path(path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        let bytes = std::fs::read(path)?;
        Ok(Self::of_bytes(&bytes))
    }

    /// The digest of `bytes` (word-wise multiply-rotate mixing, then a final avalanche).
    pub fn of_bytes(bytes: &[u8]) -> Self {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut h = bytes.len() as u64 ^ K;
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
            h = (h ^ v).wrapping_mul(K).rotate_left(29);
        }
        for &b in words.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        Self {
            len: bytes.len() as u64,
            hash: h,
        }
    }
}

impl fmt::Display for ExeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} bytes, digest {:016x}", self.len, self.hash)
    }
}

/// The worker runs another executable than the parent, so function ids cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "worker runs a different executable than its parent (parent's: {expected}; worker's: {}); \
     was the binary rebuilt or replaced while the pool ran? Function ids only work across the same binary",
    found.map_or_else(|| format!("unreadable: {}", io.as_deref().unwrap_or("?")), |f| f.to_string())
)]
pub struct DifferentBinary {
    /// What the parent runs.
    pub expected: ExeId,
    /// What this process runs, if readable.
    pub found: Option<ExeId>,
    /// Why it was unreadable.
    pub io: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> u32 {
        std::hint::black_box(77)
    }

    #[test]
    fn fn_pointer_round_trips() {
        let f: fn() -> u32 = target;
        let id = FnId::from_ptr(f as *const ());
        // SAFETY: same binary, same type as the pointer was made from.
        let g: fn() -> u32 = unsafe { std::mem::transmute::<*const (), fn() -> u32>(id.to_ptr()) };
        assert_eq!(g(), 77);
        assert_eq!(
            FnId::from_ptr(anchor as fn() -> u32 as *const ()).offset(),
            0
        );
    }

    #[test]
    fn digests_tell_contents_apart() {
        let a = ExeDigest::of_bytes(b"the same build, byte for byte");
        assert_eq!(a, ExeDigest::of_bytes(b"the same build, byte for byte"));
        assert_ne!(a, ExeDigest::of_bytes(b"the same build, byte for bytE"));
        assert_ne!(a, ExeDigest::of_bytes(b"the same build, byte for byte "));
        let me = ExeDigest::current().unwrap();
        assert_eq!(me, ExeDigest::current().unwrap());
        assert_eq!(me.len, std::fs::metadata("/proc/self/exe").unwrap().len());
    }

    #[test]
    fn exe_identity_is_checked() {
        let me = ExeId::current().unwrap();
        assert!(me.check_current().is_ok());
        let other = ExeId {
            ino: me.ino + 1,
            ..me
        };
        let e = other.check_current().unwrap_err();
        assert_eq!(e.found, Some(me));
        assert!(e.to_string().contains("different executable"), "{e}");
    }
}
