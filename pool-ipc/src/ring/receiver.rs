//! The consuming end of a ring: reassembles frames, waits for data (see the protocol in
//! [`crate::ring`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pool_core::patience::Patience;

use super::{
    CHUNK_HDR, HEAD, MORE, RX_SLEEP, RecvError, Ring, RingCloser, TAIL, TX_SLEEP, WaitPolicy, pad8,
};
use crate::shm::SharedRegion;

/// The consuming end. Closes the ring on drop.
#[derive(Debug)]
pub struct RingReceiver {
    ring: Ring,
    head: u64,
    tail_cache: u64,
    /// The `head` value the producer can see; consumed space is handed back in batches of
    /// `cap / 8` (and always before waiting), so a stream costs one fence per batch.
    published: u64,
    policy: WaitPolicy,
    /// How long it spins, within `policy`, before it yields and sleeps.
    patience: Patience,
}

impl RingReceiver {
    /// Attaches the consumer to the ring initialized at `base`. Only one consumer may exist.
    pub fn attach(region: Arc<SharedRegion>, base: usize, policy: WaitPolicy) -> Self {
        let ring = Ring::attach(region, base);
        let head = ring.u64(HEAD).load(Ordering::Acquire);
        Self {
            ring,
            head,
            tail_cache: head,
            published: head,
            policy,
            patience: Patience::new(policy.spins),
        }
    }

    /// A handle that can close this ring from another thread.
    pub fn closer(&self) -> RingCloser {
        RingCloser(self.ring.clone())
    }

    /// Receives one frame into `out` (cleared first) and returns its `kind`. Blocks until a frame
    /// arrives or the ring is closed and drained.
    pub fn recv(&mut self, out: &mut Vec<u8>) -> Result<u8, RecvError> {
        self.recv_deadline(out, None, &|| false)
    }

    /// Like [`RingReceiver::recv`], giving up if no frame started before `timeout`.
    pub fn recv_timeout(&mut self, out: &mut Vec<u8>, timeout: Duration) -> Result<u8, RecvError> {
        self.recv_deadline(out, Some(Instant::now() + timeout), &|| false)
    }

    /// Receives a frame only if one has started arriving (then it waits for the rest of it).
    /// Finding the ring empty neither spins nor touches the sleep word, so a consumer may poll
    /// this way while another thread that takes turns with it (under a lock) sleeps on the
    /// ring between turns.
    pub fn try_recv(&mut self, out: &mut Vec<u8>) -> Result<Option<u8>, RecvError> {
        if self.tail_cache == self.head {
            self.tail_cache = self.ring.u64(TAIL).load(Ordering::Acquire);
        }
        if self.tail_cache == self.head {
            // Nothing: hand back the space consumed so far, as before any wait.
            self.publish();
            return if self.ring.closed() && self.ring.u64(TAIL).load(Ordering::Acquire) == self.head
            {
                Err(RecvError::Disconnected)
            } else {
                Ok(None)
            };
        }
        self.recv_deadline(out, None, &|| false).map(Some)
    }

    /// Like [`RingReceiver::recv`], but gives up with [`RecvError::Timeout`] when `stop()`
    /// holds before a frame started (checked whenever the wait looks, and after a
    /// [`RingCloser::nudge_receiver`]).
    pub fn recv_unless(
        &mut self,
        out: &mut Vec<u8>,
        stop: &dyn Fn() -> bool,
    ) -> Result<u8, RecvError> {
        self.recv_deadline(out, None, stop)
    }

    fn wait_data(
        &mut self,
        deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
    ) -> Result<(), RecvError> {
        if self.tail_cache != self.head {
            return Ok(());
        }
        // About to wait for the producer: hand back all consumed space first.
        self.publish();
        let ring = &self.ring;
        let head = self.head;
        let mut tail = head;
        let mut spun = false;
        let policy = WaitPolicy {
            spins: self.patience.spins(),
            ..self.policy
        };
        let r = ring.wait(RX_SLEEP, policy, deadline, &mut spun, || {
            tail = ring.u64(TAIL).load(Ordering::Acquire);
            tail != head || stop()
        });
        self.patience.record(spun);
        self.tail_cache = tail;
        match r {
            Ok(true) if tail == head => Err(RecvError::Timeout),
            Ok(true) => Ok(()),
            Ok(false) => Err(RecvError::Disconnected),
            Err(()) => Err(RecvError::Timeout),
        }
    }

    fn recv_deadline(
        &mut self,
        out: &mut Vec<u8>,
        mut deadline: Option<Instant>,
        stop: &dyn Fn() -> bool,
    ) -> Result<u8, RecvError> {
        out.clear();
        let mut stop = stop;
        loop {
            self.wait_data(deadline, stop)?;
            deadline = None;
            stop = &|| false;
            let (len, flags) = self.ring.load_header(self.head);
            let len = len as usize;
            if len > self.ring.cap - CHUNK_HDR {
                // Only a peer scribbling over shared memory gets here; stop using the ring.
                self.ring.close();
                return Err(RecvError::Corrupt { len });
            }
            let start = out.len();
            out.reserve(len);
            // SAFETY: `reserve` made room for `len` more bytes; `copy_out_raw` writes exactly
            // `len` bytes into that spare capacity before `set_len` exposes them.
            unsafe {
                self.ring.copy_out_raw(
                    self.head + CHUNK_HDR as u64,
                    out.as_mut_ptr().add(start),
                    len,
                );
                out.set_len(start + len);
            }
            self.head += (CHUNK_HDR + pad8(len)) as u64;
            // A streamed frame needs its space back at once for the next chunk.
            if flags & MORE != 0 || self.head - self.published >= (self.ring.cap / 8) as u64 {
                self.publish();
            }
            if flags & MORE == 0 {
                return Ok((flags >> 8) as u8);
            }
        }
    }

    /// Makes consumed space visible to the producer (protocol step 2) and wakes it if it waits.
    fn publish(&mut self) {
        if self.published != self.head {
            self.published = self.head;
            self.ring.u64(HEAD).store(self.head, Ordering::Release);
            self.ring.notify(TX_SLEEP);
        }
    }

    /// Whether the ring was closed (frames sent before may still be waiting).
    pub fn is_closed(&self) -> bool {
        self.ring.closed()
    }

    /// Closes the ring: the sender's next send fails with `Disconnected`.
    pub fn close(&self) {
        self.ring.close();
    }
}

impl Drop for RingReceiver {
    fn drop(&mut self) {
        self.ring.close();
    }
}
