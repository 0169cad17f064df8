//! User functions the pool stores type-erased (state factory, `worker_init`, `worker_exit`),
//! together with a way to rebuild them in a fresh process when they capture nothing.
//!
//! A freshly executed copy of the same binary (start method Spawn, MPI ranks) cannot receive a
//! closure, but it has the same code: a function with no captured data is a zero-sized type,
//! so a monomorphized "rebuild" function for it can be identified by address and called there.

use std::fmt;
use std::sync::Arc;

use crate::context::WorkerContext;

/// A shared user function plus, when it captures nothing, how to rebuild it elsewhere.
pub struct Hook<F: ?Sized> {
    f: Arc<F>,
    rebuild: Option<fn() -> Arc<F>>,
}

impl<F: ?Sized> Clone for Hook<F> {
    fn clone(&self) -> Self {
        Hook {
            f: self.f.clone(),
            rebuild: self.rebuild,
        }
    }
}

impl<F: ?Sized> fmt::Debug for Hook<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hook")
            .field("rebuildable", &self.rebuild.is_some())
            .finish()
    }
}

impl<F: ?Sized> Hook<F> {
    /// The function.
    pub fn get(&self) -> &F {
        &self.f
    }

    /// How to rebuild it in a fresh process of the same binary, if it captures nothing.
    pub fn rebuilder(&self) -> Option<fn() -> Arc<F>> {
        self.rebuild
    }

    /// Rebuilds a hook from its rebuilder (in the fresh process).
    pub fn from_rebuilder(rebuild: fn() -> Arc<F>) -> Self {
        Hook {
            f: rebuild(),
            rebuild: Some(rebuild),
        }
    }
}

/// The one value of a zero-sized function type.
///
/// # Panics
/// If `F` is not zero-sized (callers check first).
pub(crate) fn conjure<F>() -> F {
    assert_eq!(
        std::mem::size_of::<F>(),
        0,
        "only zero-sized functions can be rebuilt"
    );
    // SAFETY: `F` is zero-sized (checked above) and a function type (closure or fn item), so it
    // has no bytes and no invariants: reading it from an aligned dangling pointer reads nothing
    // and yields its only value.
    unsafe { std::ptr::NonNull::<F>::dangling().as_ptr().read() }
}

pub(crate) fn is_zero_sized<F>() -> bool {
    std::mem::size_of::<F>() == 0
}

/// Builds the state of a worker.
pub type StateFn<St> = Hook<dyn Fn() -> St + Send + Sync>;
/// `worker_init`.
pub type InitFn<Sh, St> = Hook<dyn Fn(&mut WorkerContext<'_, Sh, St>) + Send + Sync>;
/// `worker_exit`, its result postcard-encoded.
pub type ExitFn<Sh, St> =
    Hook<dyn Fn(&mut WorkerContext<'_, Sh, St>) -> Result<Vec<u8>, String> + Send + Sync>;

fn rebuild_state<St, F: Fn() -> St + Send + Sync + 'static>() -> Arc<dyn Fn() -> St + Send + Sync> {
    Arc::new(conjure::<F>())
}

pub(crate) fn state_hook<St, F: Fn() -> St + Send + Sync + 'static>(f: F) -> StateFn<St> {
    Hook {
        f: Arc::new(f),
        rebuild: is_zero_sized::<F>().then_some(rebuild_state::<St, F> as _),
    }
}

type InitDyn<Sh, St> = dyn Fn(&mut WorkerContext<'_, Sh, St>) + Send + Sync;

fn rebuild_init<Sh, St, F>() -> Arc<InitDyn<Sh, St>>
where
    F: Fn(&mut WorkerContext<'_, Sh, St>) + Send + Sync + 'static,
{
    Arc::new(conjure::<F>())
}

pub(crate) fn init_hook<Sh, St, F>(f: F) -> InitFn<Sh, St>
where
    F: Fn(&mut WorkerContext<'_, Sh, St>) + Send + Sync + 'static,
{
    Hook {
        f: Arc::new(f),
        rebuild: is_zero_sized::<F>().then_some(rebuild_init::<Sh, St, F> as _),
    }
}

type ExitDyn<Sh, St> =
    dyn Fn(&mut WorkerContext<'_, Sh, St>) -> Result<Vec<u8>, String> + Send + Sync;

fn encode_exit<Sh, St, F, E>(
    f: F,
) -> impl Fn(&mut WorkerContext<'_, Sh, St>) -> Result<Vec<u8>, String>
where
    F: Fn(&mut WorkerContext<'_, Sh, St>) -> E,
    E: serde::Serialize,
{
    move |ctx| {
        let result = f(ctx);
        postcard::to_stdvec(&result).map_err(|e| crate::refusal::message(&result, e))
    }
}

fn rebuild_exit<Sh: 'static, St: 'static, F, E>() -> Arc<ExitDyn<Sh, St>>
where
    F: Fn(&mut WorkerContext<'_, Sh, St>) -> E + Send + Sync + 'static,
    E: serde::Serialize + 'static,
{
    Arc::new(encode_exit(conjure::<F>()))
}

pub(crate) fn exit_hook<Sh: 'static, St: 'static, F, E>(f: F) -> ExitFn<Sh, St>
where
    F: Fn(&mut WorkerContext<'_, Sh, St>) -> E + Send + Sync + 'static,
    E: serde::Serialize + 'static,
{
    Hook {
        f: Arc::new(encode_exit(f)),
        rebuild: is_zero_sized::<F>().then_some(rebuild_exit::<Sh, St, F, E> as _),
    }
}
