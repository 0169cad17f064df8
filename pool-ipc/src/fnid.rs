//! Naming a `fn` across a re-exec of the same binary, and proving it *is* the same binary.
//!
//! Why: a spawned worker is a fresh process; a closure cannot travel, but a plain `fn` pointer
//! can, as its offset from a known function ([`anchor`]) in this crate. With ASLR the binary
//! loads at another address in the child, but the layout inside it is the same, so
//! `anchor_in_child + offset` is the same function. This only holds for the *same* binary file:
//! the parent sends an [`ExeId`] (device, inode, size, mtime of `/proc/self/exe`) and the child
//! refuses to resolve anything when its own differs (e.g. `cargo build` replaced the file while
//! the pool ran).
//!
//! Only one signature is ever resolved this way ([`crate::entry::WorkerMain`]), so the pointer is
//! always turned back into the type it was made from.

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
