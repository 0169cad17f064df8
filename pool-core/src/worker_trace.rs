//! Backtraces of worker panics: recorded cheaply where the panic happens, symbolized only
//! where and when they are shown.
//!
//! Why: symbolizing a backtrace reads the binary's debug information, 70-160 ms in a fresh
//! process; every worker process paid it on its first panic, before the error could leave,
//! although most errors are never shown with their backtrace. So a worker records only the
//! return addresses of its frames (microseconds), and `Display` symbolizes them, once, in the
//! process that shows them.
//!
//! An address means nothing in another process if its module (the executable or a shared
//! library) is loaded elsewhere there, as in a re-executed (`Spawn`) worker and its parent.
//! So each frame travels as its module's name and the offset from that module's load address;
//! the process that shows the backtrace adds its own load address of the same module.

use std::ffi::{CStr, c_void};
use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

/// Frames recorded at most (the deepest are the worker's own loop).
const MAX_FRAMES: usize = 128;

/// Where a worker's task panicked: its frames, symbolized when first shown.
///
/// `Display` writes one line per function, innermost first, from the panicking code down to
/// the pool's task loop, each with its source location when debug information has it.
#[derive(Clone, Serialize, Deserialize)]
pub struct WorkerBacktrace {
    /// Names of the modules the frames are in, as the dynamic loader lists them ("" for the
    /// executable).
    modules: Vec<String>,
    /// Each frame's module (an index into `modules`) and its return address's offset from
    /// that module's load address.
    frames: Vec<(u32, u64)>,
    /// The symbolized text, made on first display and shared by clones.
    #[serde(skip)]
    text: Arc<OnceLock<String>>,
}

impl WorkerBacktrace {
    /// Records the frames of the calling thread.
    pub(crate) fn capture() -> Self {
        let mut ips = Vec::with_capacity(MAX_FRAMES);
        // SAFETY: the unsynchronized walk is safe on Unix, whose unwinder is thread-safe; the
        // crate's own lock is left alone because a forked worker may have inherited it taken
        // by another thread of its parent (see `crate::panic::fork_between_panics`).
        unsafe {
            backtrace::trace_unsynchronized(|frame| {
                ips.push(frame.ip() as usize);
                ips.len() < MAX_FRAMES
            })
        };
        let loaded = Module::loaded();
        let mut modules: Vec<String> = Vec::new();
        let mut frames = Vec::with_capacity(ips.len());
        for ip in ips {
            let Some(m) = loaded.iter().find(|m| m.holds(ip)) else {
                continue;
            };
            let index = match modules.iter().position(|n| *n == m.name) {
                Some(i) => i,
                None => {
                    modules.push(m.name.clone());
                    modules.len() - 1
                }
            };
            frames.push((index as u32, (ip - m.base) as u64));
        }
        WorkerBacktrace {
            modules,
            frames,
            text: Arc::default(),
        }
    }

    /// How many frames were recorded.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// The symbolized text (made once).
    fn text(&self) -> &str {
        self.text
            .get_or_init(|| crate::panic::while_reporting(|| self.symbolize()))
    }

    fn symbolize(&self) -> String {
        let loaded = Module::loaded();
        let mut lines: Vec<(String, String)> = Vec::new();
        for &(module, offset) in &self.frames {
            let name = &self.modules[module as usize];
            let Some(m) = loaded.iter().find(|m| m.name == *name) else {
                lines.push((format!("<{name}+{offset:#x}>"), String::new()));
                continue;
            };
            let ip = m.base + offset as usize;
            let before = lines.len();
            backtrace::resolve(ip as *mut c_void, |symbol| {
                let function = symbol
                    .name()
                    .map_or_else(|| format!("{ip:#x}"), |n| format!("{n:#}"));
                let place = match (symbol.filename(), symbol.lineno()) {
                    (Some(file), Some(line)) => format!("{}:{line}", file.display()),
                    _ => String::new(),
                };
                lines.push((function, place));
            });
            if lines.len() == before {
                lines.push((format!("{ip:#x}"), String::new()));
            }
        }
        let mut out = String::new();
        for (i, (function, place)) in relevant(&lines).iter().enumerate() {
            out.push_str(&format!("{i:>4}: {function}\n"));
            if !place.is_empty() {
                out.push_str(&format!("             at {place}\n"));
            }
        }
        out
    }
}

/// The frames between the panic machinery (above) and the pool's catching of the panic
/// (below); all of them when those marks are not found (no symbols).
fn relevant(lines: &[(String, String)]) -> &[(String, String)] {
    let is = |prefixes: &[&str], f: &str| prefixes.iter().any(|p| f.starts_with(p));
    const PANIC: &[&str] = &[
        "core::panicking::",
        "std::panicking::begin_panic",
        "std::panic::panic_any",
        "__rustc::rust_begin_unwind",
        "rust_begin_unwind",
        "std::sys::backtrace::__rust_end_short_backtrace",
    ];
    const CATCH: &[&str] = &["std::panicking::catch_unwind", "std::panic::catch_unwind"];
    let start = lines
        .iter()
        .rposition(|(f, _)| is(PANIC, f))
        .map_or(0, |i| i + 1);
    let end = lines[start..]
        .iter()
        .position(|(f, _)| is(CATCH, f))
        .map_or(lines.len(), |i| start + i);
    &lines[start..end]
}

impl fmt::Display for WorkerBacktrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Debug for WorkerBacktrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerBacktrace")
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for WorkerBacktrace {
    fn eq(&self, other: &Self) -> bool {
        self.modules == other.modules && self.frames == other.frames
    }
}

impl Eq for WorkerBacktrace {}

/// A module loaded in this process: its name, load address and the address ranges it spans.
struct Module {
    name: String,
    base: usize,
    spans: Vec<(usize, usize)>,
}

impl Module {
    fn holds(&self, ip: usize) -> bool {
        self.spans.iter().any(|&(lo, hi)| lo <= ip && ip < hi)
    }

    /// The modules loaded now, as the dynamic loader lists them.
    fn loaded() -> Vec<Module> {
        unsafe extern "C" fn each(
            info: *mut libc::dl_phdr_info,
            _size: libc::size_t,
            data: *mut c_void,
        ) -> libc::c_int {
            // SAFETY: the loader passes a valid `dl_phdr_info` for the duration of the call,
            // and `data` is the `Vec<Module>` that `loaded` passed in.
            let (info, out) = unsafe { (&*info, &mut *data.cast::<Vec<Module>>()) };
            let name = if info.dlpi_name.is_null() {
                String::new()
            } else {
                // SAFETY: a non-null `dlpi_name` is a NUL-terminated string owned by the loader.
                unsafe { CStr::from_ptr(info.dlpi_name) }
                    .to_string_lossy()
                    .into_owned()
            };
            let base = info.dlpi_addr as usize;
            let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
                &[]
            } else {
                // SAFETY: `dlpi_phdr` points to `dlpi_phnum` program headers.
                unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
            };
            let spans = headers
                .iter()
                .filter(|h| h.p_type == libc::PT_LOAD)
                .map(|h| {
                    let lo = base + h.p_vaddr as usize;
                    (lo, lo + h.p_memsz as usize)
                })
                .collect();
            out.push(Module { name, base, spans });
            0
        }
        let mut out: Vec<Module> = Vec::new();
        // SAFETY: `each` matches the callback type and only touches `out` through `data`,
        // which outlives the call.
        unsafe { libc::dl_iterate_phdr(Some(each), (&mut out as *mut Vec<Module>).cast()) };
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_recognizable_function_name() -> WorkerBacktrace {
        let t = WorkerBacktrace::capture();
        std::hint::black_box(t)
    }

    #[test]
    fn frames_are_symbolized_when_shown_and_survive_serialization() {
        let t = a_recognizable_function_name();
        assert!(t.frames() > 3, "{t:?}");
        let sent: WorkerBacktrace =
            postcard::from_bytes(&postcard::to_stdvec(&t).unwrap()).unwrap();
        assert_eq!(sent, t);
        let text = sent.to_string();
        assert!(text.contains("a_recognizable_function_name"), "{text}");
        assert!(text.contains("worker_trace.rs"), "{text}");
    }
}
