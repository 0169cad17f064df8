//! What `apply_async` hands back: a slot the collector thread fills once (through a
//! [`ResultSetter`]) and the caller reads, waiting on its condition variable.
//!
//! The slot counts the threads waiting on it, and the collector wakes them only when there are
//! some: std's condition variable makes a `futex` system call on every notification, waiter or
//! not, and a caller that submits many tasks and then reads results that are already there
//! would pay one per task on the collector's thread (~6 % of all samples of a trivial
//! `apply_async` under threads, issue #17).

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
        let slot = Arc::new((
            Mutex::new(State {
                result: None,
                waiters: 0,
            }),
            Condvar::new(),
        ));
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
        lock(&self.slot.0).result.is_some()
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
        match &lock(&self.slot.0).result {
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
        while g.result.is_none() {
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return false,
                },
            };
            g.waiters += 1;
            g = match left {
                None => self.slot.1.wait(g).unwrap_or_else(|e| e.into_inner()),
                Some(left) => {
                    self.slot
                        .1
                        .wait_timeout(g, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            g.waiters -= 1;
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
        lock(&self.slot.0).result.take().expect("ready")
    }
}

/// Where a result lands, and how its waiters are woken.
type Slot<R> = Arc<(Mutex<State<R>>, Condvar)>;

struct State<R> {
    result: Option<Result<R, PoolError>>,
    /// Threads in `wait` on the condition variable.
    waiters: u32,
}

pub(crate) struct ResultSetter<R> {
    slot: Slot<R>,
}

impl<R> ResultSetter<R> {
    pub(crate) fn set(self, r: Result<R, PoolError>) {
        let mut g = lock(&self.slot.0);
        g.result = Some(r);
        let waiting = g.waiters > 0;
        drop(g);
        if waiting {
            self.slot.1.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiters<R>(r: &AsyncResult<R>) -> u32 {
        lock(&r.slot.0).waiters
    }

    #[test]
    fn a_waiting_thread_is_counted_and_woken() {
        let (r, setter) = AsyncResult::<u32>::new();
        let r = Arc::new(r);
        let reader = {
            let r = r.clone();
            std::thread::spawn(move || r.wait(None))
        };
        let until = Instant::now() + Duration::from_secs(10);
        while waiters(&r) == 0 {
            assert!(Instant::now() < until, "the reader never waited");
            std::thread::sleep(Duration::from_millis(1));
        }
        setter.set(Ok(7));
        assert!(reader.join().unwrap());
        assert_eq!(waiters(&r), 0);
    }

    #[test]
    fn a_wait_that_times_out_is_no_longer_counted() {
        let (r, setter) = AsyncResult::<u32>::new();
        assert!(!r.wait(Some(Duration::from_millis(5))));
        assert!(!r.wait(Some(Duration::ZERO)));
        assert_eq!(waiters(&r), 0);
        setter.set(Ok(7));
        assert_eq!(r.get(Some(Duration::ZERO)).unwrap(), 7);
    }
}
