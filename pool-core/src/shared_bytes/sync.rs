//! The atomics and fences of the shared heap's lock-free parts (block table, free lists,
//! reference counts, ledgers), in one place, so that `--cfg loom` swaps them for loom's
//! model-checked ones, as `pool-ipc`'s ring does.
//!
//! Under loom only the models run (`loom_models.rs`, over memory of their own): a heap mapped
//! from a memfd is never made in that build. Run them with `scripts/verify.sh loom`.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
