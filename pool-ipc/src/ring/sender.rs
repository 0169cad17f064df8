//! The producing end of a ring: publishes chunks, waits for space (see the protocol in
//! [`crate::ring`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{
    CHUNK_HDR, HEAD, MORE, RX_SLEEP, Ring, RingCloser, SendError, TAIL, TX_SLEEP, WaitPolicy, pad8,
};
use crate::shm::SharedRegion;

/// What a sender does before it waits for space (see [`RingSender::before_waiting`]).
pub type BeforeWait = Arc<dyn Fn() + Send + Sync>;

/// A [`BeforeWait`] hook, which prints as one.
struct Hook(BeforeWait);

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeforeWait")
    }
}

/// The producing end. Closes the ring on drop.
#[derive(Debug)]
pub struct RingSender {
    ring: Ring,
    tail: u64,
    head_cache: u64,
    policy: WaitPolicy,
    /// Frames were published without the wake-up check (see [`RingSender::send_deferred`]).
    unflushed: bool,
    before_wait: Option<Hook>,
}

impl RingSender {
    /// Attaches the producer to the ring initialized at `base`. Only one producer may exist.
    pub fn attach(region: Arc<SharedRegion>, base: usize, policy: WaitPolicy) -> Self {
        let ring = Ring::attach(region, base);
        let tail = ring.u64(TAIL).load(Ordering::Acquire);
        let head_cache = ring.u64(HEAD).load(Ordering::Acquire);
        Self {
            ring,
            tail,
            head_cache,
            policy,
            unflushed: false,
            before_wait: None,
        }
    }

    /// Runs `hook` each time a send must wait for space, before it waits. The parent's thread
    /// hands its listening duty back there (`backend/duty.rs`): the worker may be waiting for
    /// its own results to be read before it reads what this sends.
    pub fn before_waiting(&mut self, hook: BeforeWait) {
        self.before_wait = Some(Hook(hook));
    }

    /// Data capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.ring.cap
    }

    /// A handle that can close this ring from another thread.
    pub fn closer(&self) -> RingCloser {
        RingCloser(self.ring.clone())
    }

    /// Free bytes given the consumer's `head`. `head` comes from another process: a value that
    /// makes no sense (ahead of `tail`, or more than `cap` behind) reads as "no space".
    fn free_for(&self, head: u64) -> usize {
        let used = self.tail.wrapping_sub(head);
        if used > self.ring.cap as u64 {
            0
        } else {
            self.ring.cap - used as usize
        }
    }

    fn wait_free(&mut self, need: usize, deadline: Option<Instant>) -> Result<usize, SendError> {
        if self.ring.closed() {
            return Err(SendError::Disconnected);
        }
        let cached = self.free_for(self.head_cache);
        if cached >= need {
            return Ok(cached);
        }
        if let Some(Hook(hook)) = &self.before_wait {
            hook();
        }
        // About to wait for the consumer: it must know about everything published so far.
        self.flush();
        let mut head = self.head_cache;
        let r = self
            .ring
            .wait(TX_SLEEP, self.policy, deadline, &mut false, || {
                head = self.ring.u64(HEAD).load(Ordering::Acquire);
                self.free_for(head) >= need
            });
        self.head_cache = head;
        match r {
            Ok(true) if !self.ring.closed() => Ok(self.free_for(head)),
            Ok(_) => Err(SendError::Disconnected),
            Err(()) => Err(SendError::Timeout),
        }
    }

    /// Sends one frame, blocking while the ring is full.
    pub fn send(&mut self, data: &[u8], kind: u8) -> Result<(), SendError> {
        self.send_deadline(data, kind, None)?;
        self.flush();
        Ok(())
    }

    /// Publishes one frame but skips the wake-up check (a fence and a load): a sleeping
    /// receiver is not woken until [`RingSender::flush`], a later [`RingSender::send`], or this
    /// sender blocking for space. Use it for a batch of small frames, then `flush` once.
    pub fn send_deferred(&mut self, data: &[u8], kind: u8) -> Result<(), SendError> {
        self.send_deadline(data, kind, None)
    }

    /// Wakes the receiver if it sleeps and frames were published with `send_deferred`.
    pub fn flush(&mut self) {
        if self.unflushed {
            self.unflushed = false;
            self.ring.notify(RX_SLEEP);
        }
    }

    /// Sends one frame, giving up with [`SendError::Timeout`] if its first chunk found no room
    /// before `timeout` (then nothing was sent).
    pub fn send_timeout(
        &mut self,
        data: &[u8],
        kind: u8,
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_deadline(data, kind, Some(Instant::now() + timeout))?;
        self.flush();
        Ok(())
    }

    fn send_deadline(
        &mut self,
        data: &[u8],
        kind: u8,
        mut deadline: Option<Instant>,
    ) -> Result<(), SendError> {
        let cap = self.ring.cap;
        let mut off = 0;
        loop {
            let rest = data.len() - off;
            let whole = CHUNK_HDR + pad8(rest);
            // Small frames go in one piece; big ones stream in chunks of whatever is free (but
            // at least a quarter ring, so chunks stay large).
            let need = if whole <= cap / 2 {
                whole
            } else {
                whole.min(cap / 4)
            };
            let free = self.wait_free(need, deadline)?;
            deadline = None;
            let n = rest.min((free - CHUNK_HDR) & !7);
            let more = n < rest;
            let flags = (u32::from(kind) << 8) | if more { MORE } else { 0 };
            self.ring.store_header(self.tail, n as u32, flags);
            self.ring
                .copy_in(self.tail + CHUNK_HDR as u64, &data[off..off + n]);
            self.tail += (CHUNK_HDR + pad8(n)) as u64;
            self.ring.u64(TAIL).store(self.tail, Ordering::Release);
            self.unflushed = true;
            off += n;
            if more {
                // The receiver must drain the first chunks for the rest to fit.
                self.flush();
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Closes the ring: the receiver drains what was sent, then sees `Disconnected`.
    pub fn close(&self) {
        self.ring.close();
    }
}

impl Drop for RingSender {
    fn drop(&mut self) {
        self.ring.close();
    }
}
