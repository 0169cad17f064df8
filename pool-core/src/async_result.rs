//! What `apply_async` hands back: a slot the collector thread fills once (through a
//! [`ResultSetter`]) and the caller reads, waiting on its condition variable.

use std::fmt;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::apply::lock;
use crate::error::PoolError;

/// The result of an `apply_async` task.
///
/// ```
/// use std::time::Duration;
/// use pool_core::ThreadPool;
///
/// let mut pool = ThreadPool::new(2).unwrap();
/// let r = pool.apply_async(|x: u32| x * 2, 21).unwrap();
/// assert!(r.wait(Some(Duration::from_secs(5))));
/// assert!(r.ready());
/// assert_eq!(r.successful().unwrap(), true);
/// assert_eq!(r.get(None).unwrap(), 42);
/// ```
#[must_use = "an AsyncResult is how the task's result is read"]
pub struct AsyncResult<R> {
    slot: Slot<R>,
}

impl<R> fmt::Debug for AsyncResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncResult")
            .field("ready", &self.ready())
            .finish()
    }
}

impl<R> AsyncResult<R> {
    pub(crate) fn new() -> (Self, ResultSetter<R>) {
        let slot = Arc::new((Mutex::new(None), Condvar::new()));
        (AsyncResult { slot: slot.clone() }, ResultSetter { slot })
    }

    /// Whether the task finished.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let r = pool.apply_async(|x: u32| x + 1, 1)?;
    /// r.wait(Some(Duration::from_secs(10)));
    /// assert!(r.ready());
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn ready(&self) -> bool {
        lock(&self.slot.0).is_some()
    }

    /// Whether it finished without error; `Err(NotReady)` while it runs.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let r = pool.apply_async(|x: u32| if x == 0 { panic!("zero") } else { x }, 0)?;
    /// r.wait(None);
    /// assert!(!r.successful()?);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn successful(&self) -> Result<bool, PoolError> {
        match &*lock(&self.slot.0) {
            None => Err(PoolError::NotReady),
            Some(r) => Ok(r.is_ok()),
        }
    }

    /// Waits until the task finished or `timeout` passed; returns whether it finished.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let r = pool.apply_async(|ms: u64| std::thread::sleep(Duration::from_millis(ms)), 300)?;
    /// assert!(!r.wait(Some(Duration::from_millis(1)))); // not yet
    /// assert!(r.wait(None)); // done
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut g = lock(&self.slot.0);
        while g.is_none() {
            match deadline {
                None => g = self.slot.1.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return false;
                    }
                    g = self
                        .slot
                        .1
                        .wait_timeout(g, d - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        true
    }

    /// The result, waiting at most `timeout` (`Err(WaitTimeout)` then).
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut pool = pool_core::ThreadPool::new(2)?;
    /// let r = pool.apply_async(|x: u32| x * 2, 21)?;
    /// assert_eq!(r.get(Some(Duration::from_secs(10)))?, 42);
    /// # Ok::<(), pool_core::PoolError>(())
    /// ```
    pub fn get(self, timeout: Option<Duration>) -> Result<R, PoolError> {
        if !self.wait(timeout) {
            return Err(PoolError::WaitTimeout(timeout.unwrap_or_default()));
        }
        lock(&self.slot.0).take().expect("ready")
    }
}

/// Where a result lands, and how its waiters are woken.
type Slot<R> = Arc<(Mutex<Option<Result<R, PoolError>>>, Condvar)>;

pub(crate) struct ResultSetter<R> {
    slot: Slot<R>,
}

impl<R> ResultSetter<R> {
    pub(crate) fn set(self, r: Result<R, PoolError>) {
        *lock(&self.slot.0) = Some(r);
        self.slot.1.notify_all();
    }
}
