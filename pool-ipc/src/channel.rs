//! A duplex parent⇄worker link: two rings in one shared region, typed messages and raw bytes.
//!
//! Why: one region per worker, created before the fork (or passed by fd to a spawned child),
//! carries both directions with no syscall per message (see [`crate::ring`]). Typed values go
//! through `serde` + `postcard` (compact, not self-describing: avoid `#[serde(flatten)]`,
//! untagged and internally tagged enums). Bulk bytes take [`Channel::send_bytes`] /
//! [`Channel::recv_bytes`], one `memcpy` in and one out, never serde's element-by-element path.
//!
//! Region layout: a 64-byte header (`magic`, per-direction ring capacity, per-direction arena
//! capacity), then the parent→worker ring, then the worker→parent ring, then one bulk arena per
//! direction (see [`crate::bulk`]: sparse, so they cost memory only once used). Each frame carries
//! a kind (message, bytes, or a bulk descriptor), so reading a message where bytes were sent is a
//! clear [`ChannelError::UnexpectedKind`], not garbage. Bytes of at least [`BULK_MIN`] go through
//! the arena when it has room (one copy in, one out, the ring carries 24 bytes; none out with
//! [`MsgReceiver::recv_data`], which lends them in place); otherwise, and always when smaller,
//! through the ring.
//!
//! Endpoints close their rings on drop; create them *after* forking (each process makes its own
//! end from the shared [`Link`]), so that the parent's copy of an end is never dropped in the child.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use pool_core::Data;

use crate::bulk::{self, ArenaError, ArenaReader, ArenaWriter, Descriptor, Lease};
use crate::ring::{self, RecvError, RingCloser, RingReceiver, RingSender, SendError, WaitPolicy};
use crate::shm::SharedRegion;

const MAGIC: u64 = 0x706f_6f6c_6970_6331; // "poolipc1"
const RING_A: usize = 64;
/// Frame kind of a postcard-encoded value.
pub const KIND_MSG: u8 = 1;
/// Frame kind of raw bytes.
pub const KIND_BYTES: u8 = 2;
/// Frame kind of raw bytes placed in the bulk arena: the frame is their [`Descriptor`].
pub const KIND_BULK: u8 = 3;
/// Bytes from which a payload goes through the bulk arena rather than the ring.
pub const BULK_MIN: usize = 256 << 10;
/// Bulk arena bytes per direction of a link made by [`Link::new`]: payloads up to this size
/// move in one copy each way; larger ones stream through the ring. Virtual until used.
pub const DEFAULT_ARENA: usize = 256 << 20;

/// A failed channel operation.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The peer hung up or died (and someone closed the link on its behalf).
    #[error("the peer is gone")]
    Disconnected,
    /// Nothing arrived (or no space freed) in time.
    #[error("timed out")]
    Timeout,
    /// The peer corrupted the shared memory; the link is closed.
    #[error("corrupt link: a frame announced {len} bytes")]
    Corrupt {
        /// The announced length.
        len: usize,
    },
    /// The peer sent a bulk descriptor that is malformed or points outside the arena.
    #[error("corrupt link: {0}")]
    Bulk(#[from] ArenaError),
    /// The value could not be encoded.
    #[error("cannot encode message: {0}")]
    Encode(#[source] postcard::Error),
    /// The received bytes are not a valid encoding of the expected type.
    #[error("cannot decode message: {0}")]
    Decode(#[source] postcard::Error),
    /// A frame of another kind arrived (e.g. bytes while a message was expected).
    #[error("expected a frame of kind {expected}, got kind {got}")]
    UnexpectedKind {
        /// The kind the call expected.
        expected: u8,
        /// The kind that arrived.
        got: u8,
    },
}

impl From<SendError> for ChannelError {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Disconnected => Self::Disconnected,
            SendError::Timeout => Self::Timeout,
        }
    }
}

impl From<RecvError> for ChannelError {
    fn from(e: RecvError) -> Self {
        match e {
            RecvError::Disconnected => Self::Disconnected,
            RecvError::Timeout => Self::Timeout,
            RecvError::Corrupt { len } => Self::Corrupt { len },
        }
    }
}

/// The shared region of one parent⇄worker link. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Link {
    region: Arc<SharedRegion>,
    cap: usize,
    arena: usize,
}

impl Link {
    /// Creates a link whose rings hold `cap` bytes each (a power of two, at least 64), with
    /// bulk arenas of [`DEFAULT_ARENA`] bytes.
    pub fn new(cap: usize) -> io::Result<Self> {
        Self::with_arena(cap, DEFAULT_ARENA)
    }

    /// Creates a link whose rings hold `cap` bytes each (a power of two, at least 64) and whose
    /// bulk arenas hold `arena` bytes each (a multiple of 64; 0 for none).
    pub fn with_arena(cap: usize, arena: usize) -> io::Result<Self> {
        if !cap.is_power_of_two() || cap < 64 || !arena.is_multiple_of(64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "capacity must be a power of two >= 64, arena a multiple of 64",
            ));
        }
        let region = SharedRegion::create("pool-ipc-link", region_len(cap, arena))?;
        ring::init(&region, RING_A, cap);
        ring::init(&region, RING_A + ring::ring_len(cap), cap);
        if arena > 0 {
            bulk::init(&region, arena_a(cap), arena);
            bulk::init(&region, arena_a(cap) + bulk::arena_len(arena), arena);
        }
        region.atomic_u64(8).store(cap as u64, Ordering::Relaxed);
        region.atomic_u64(16).store(arena as u64, Ordering::Relaxed);
        region.atomic_u64(0).store(MAGIC, Ordering::Release);
        Ok(Self {
            region: Arc::new(region),
            cap,
            arena,
        })
    }

    /// Maps a link from an fd received by a spawned worker (see [`Link::region`] for the fd).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let region = SharedRegion::from_fd(fd)?;
        if region.len() < RING_A || region.atomic_u64(0).load(Ordering::Acquire) != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "fd is not a pool-ipc link",
            ));
        }
        let cap = region.atomic_u64(8).load(Ordering::Relaxed) as usize;
        let arena = region.atomic_u64(16).load(Ordering::Relaxed) as usize;
        // Sizes far beyond any region first, so `region_len` cannot overflow.
        let fits = cap.is_power_of_two()
            && cap <= region.len()
            && arena <= region.len()
            && arena.is_multiple_of(64)
            && region.len() >= region_len(cap, arena);
        if !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "corrupt pool-ipc link header",
            ));
        }
        Ok(Self {
            region: Arc::new(region),
            cap,
            arena,
        })
    }

    /// Bytes each direction's ring holds.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The shared region (for its fd, to hand to a spawned worker).
    pub fn region(&self) -> &SharedRegion {
        &self.region
    }

    fn ring_b(&self) -> usize {
        RING_A + ring::ring_len(self.cap)
    }

    fn arena_b(&self) -> usize {
        arena_a(self.cap) + bulk::arena_len(self.arena)
    }

    fn writer(&self, base: usize) -> Option<ArenaWriter> {
        (self.arena > 0).then(|| ArenaWriter::attach(Arc::clone(&self.region), base, self.arena))
    }

    fn reader(&self, base: usize) -> Option<ArenaReader> {
        (self.arena > 0).then(|| ArenaReader::attach(Arc::clone(&self.region), base, self.arena))
    }

    /// The parent's end: sends on parent→worker, receives on worker→parent.
    pub fn parent_end(&self, policy: WaitPolicy) -> Channel {
        Channel::new(
            RingSender::attach(Arc::clone(&self.region), RING_A, policy),
            RingReceiver::attach(Arc::clone(&self.region), self.ring_b(), policy),
            self.writer(arena_a(self.cap)),
            self.reader(self.arena_b()),
        )
    }

    /// The worker's end: sends on worker→parent, receives on parent→worker.
    pub fn worker_end(&self, policy: WaitPolicy) -> Channel {
        Channel::new(
            RingSender::attach(Arc::clone(&self.region), self.ring_b(), policy),
            RingReceiver::attach(Arc::clone(&self.region), RING_A, policy),
            self.writer(self.arena_b()),
            self.reader(arena_a(self.cap)),
        )
    }

    /// Closes both directions, waking anyone blocked on them. Call it when the worker died.
    pub fn close(&self) {
        RingCloser::attach(Arc::clone(&self.region), RING_A).close();
        RingCloser::attach(Arc::clone(&self.region), self.ring_b()).close();
    }
}

/// Where the parent→worker arena starts in a link of ring capacity `cap`.
fn arena_a(cap: usize) -> usize {
    RING_A + 2 * ring::ring_len(cap)
}

/// Bytes of a link's region.
fn region_len(cap: usize, arena: usize) -> usize {
    let arenas = if arena > 0 {
        2 * bulk::arena_len(arena)
    } else {
        0
    };
    arena_a(cap) + arenas
}

/// One end of a [`Link`].
#[derive(Debug)]
pub struct Channel {
    tx: MsgSender,
    rx: MsgReceiver,
}

impl Channel {
    fn new(
        tx: RingSender,
        rx: RingReceiver,
        arena_tx: Option<ArenaWriter>,
        arena_rx: Option<ArenaReader>,
    ) -> Self {
        Self {
            tx: MsgSender {
                ring: tx,
                buf: Vec::new(),
                arena: arena_tx,
            },
            rx: MsgReceiver {
                ring: rx,
                buf: Vec::new(),
                arena: arena_rx,
            },
        }
    }

    /// Splits into independently usable halves (e.g. for a sender thread and a receiver thread).
    pub fn split(self) -> (MsgSender, MsgReceiver) {
        (self.tx, self.rx)
    }

    /// Sends a value; blocks while the ring is full.
    pub fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.tx.send(value)
    }

    /// Sends raw bytes (one copy, no serde).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.tx.send_bytes(bytes)
    }

    /// Sends a value without waking a sleeping peer; call [`Channel::flush`] after the batch.
    pub fn send_deferred<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.tx.send_deferred(value)
    }

    /// Wakes the peer for everything sent with `send_deferred`.
    pub fn flush(&mut self) {
        self.tx.flush();
    }

    /// Receives a value; blocks until one arrives or the peer is gone.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, ChannelError> {
        self.rx.recv()
    }

    /// Receives a value only if one is already there.
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ChannelError> {
        self.rx.try_recv()
    }

    /// Receives a value, waiting at most `timeout`.
    pub fn recv_timeout<T: DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<T, ChannelError> {
        self.rx.recv_timeout(timeout)
    }

    /// Receives raw bytes into `out` (cleared first; its allocation is reused).
    pub fn recv_bytes(&mut self, out: &mut Vec<u8>) -> Result<(), ChannelError> {
        self.rx.recv_bytes(out)
    }

    /// Receives raw bytes, lent in place when they came through the bulk arena (see
    /// [`MsgReceiver::recv_data`]).
    pub fn recv_data(&mut self) -> Result<Data, ChannelError> {
        self.rx.recv_data()
    }

    /// Receives the next frame whatever its kind (see [`MsgReceiver::recv_frame`]).
    pub fn recv_frame(&mut self, timeout: Option<Duration>) -> Result<(u8, &[u8]), ChannelError> {
        self.rx.recv_frame(timeout)
    }

    /// Receives raw bytes, waiting at most `timeout` for them to start.
    pub fn recv_bytes_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        self.rx.recv_bytes_timeout(out, timeout)
    }
}

/// The sending half of a [`Channel`].
#[derive(Debug)]
pub struct MsgSender {
    ring: RingSender,
    buf: Vec<u8>,
    arena: Option<ArenaWriter>,
}

impl MsgSender {
    /// Sends a value; blocks while the ring is full.
    pub fn send<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ChannelError> {
        self.send_deferred(value)?;
        self.ring.flush();
        Ok(())
    }

    /// Sends a value without waking a sleeping peer; call [`MsgSender::flush`] after the batch.
    pub fn send_deferred<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ChannelError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let buf = postcard::to_extend(value, buf).map_err(ChannelError::Encode)?;
        let r = self.ring.send_deferred(&buf, KIND_MSG);
        self.buf = buf;
        Ok(r?)
    }

    /// Sends raw bytes without waking a sleeping peer; call [`MsgSender::flush`] after the batch.
    pub fn send_bytes_deferred(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        match self.place(bytes) {
            Some(d) => Ok(self.ring.send_deferred(&d.encode(), KIND_BULK)?),
            None => Ok(self.ring.send_deferred(bytes, KIND_BYTES)?),
        }
    }

    /// Puts big bytes in the bulk arena, if there is one with room.
    fn place(&mut self, bytes: &[u8]) -> Option<Descriptor> {
        if bytes.len() < BULK_MIN {
            return None;
        }
        self.arena.as_mut()?.place(bytes)
    }

    /// Wakes the peer for everything sent with `send_deferred`.
    pub fn flush(&mut self) {
        self.ring.flush();
    }

    /// Runs `hook` before each wait for space (see [`RingSender::before_waiting`]).
    pub fn before_waiting(&mut self, hook: ring::BeforeWait) {
        self.ring.before_waiting(hook);
    }

    /// Sends raw bytes (one copy, no serde).
    pub fn send_bytes(&mut self, bytes: &[u8]) -> Result<(), ChannelError> {
        self.send_bytes_deferred(bytes)?;
        self.ring.flush();
        Ok(())
    }

    /// A handle to close this direction from another thread.
    pub fn closer(&self) -> RingCloser {
        self.ring.closer()
    }
}

/// The receiving half of a [`Channel`].
#[derive(Debug)]
pub struct MsgReceiver {
    ring: RingReceiver,
    buf: Vec<u8>,
    arena: Option<ArenaReader>,
}

/// Decodes a message frame received with [`MsgReceiver::recv_frame`].
pub fn decode<T: DeserializeOwned>(frame: &[u8]) -> Result<T, ChannelError> {
    postcard::from_bytes(frame).map_err(ChannelError::Decode)
}

fn expect_kind(expected: u8, got: u8) -> Result<(), ChannelError> {
    if expected == got {
        Ok(())
    } else {
        Err(ChannelError::UnexpectedKind { expected, got })
    }
}

impl MsgReceiver {
    /// Receives a value; blocks until one arrives or the peer is gone.
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, ChannelError> {
        let kind = self.ring.recv(&mut self.buf)?;
        self.decode(kind)
    }

    /// Receives a value, waiting at most `timeout`.
    pub fn recv_timeout<T: DeserializeOwned>(
        &mut self,
        timeout: Duration,
    ) -> Result<T, ChannelError> {
        let kind = self.ring.recv_timeout(&mut self.buf, timeout)?;
        self.decode(kind)
    }

    /// Receives a value; blocks until one arrives, the peer is gone, or `stop()` holds before a
    /// value started arriving ([`ChannelError::Timeout`]; see [`RingReceiver::recv_unless`]).
    pub fn recv_unless<T: DeserializeOwned>(
        &mut self,
        stop: &dyn Fn() -> bool,
    ) -> Result<T, ChannelError> {
        let kind = self.ring.recv_unless(&mut self.buf, stop)?;
        self.decode(kind)
    }

    /// Whether the ring was closed (what was sent before may still be waiting).
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }

    /// Receives a value only if one is already there.
    pub fn try_recv<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ChannelError> {
        match self.ring.try_recv(&mut self.buf)? {
            Some(kind) => self.decode(kind).map(Some),
            None => Ok(None),
        }
    }

    fn decode<T: DeserializeOwned>(&self, kind: u8) -> Result<T, ChannelError> {
        expect_kind(KIND_MSG, kind)?;
        decode(&self.buf)
    }

    /// Receives the next frame whatever its kind, for protocols that mix messages and bytes:
    /// returns the kind ([`KIND_MSG`] or [`KIND_BYTES`]) and the frame, valid until the next
    /// call; decode a message with [`decode`]. `timeout: None` waits forever.
    pub fn recv_frame(&mut self, timeout: Option<Duration>) -> Result<(u8, &[u8]), ChannelError> {
        let kind = match timeout {
            None => self.ring.recv(&mut self.buf)?,
            Some(t) => self.ring.recv_timeout(&mut self.buf, t)?,
        };
        let mut buf = std::mem::take(&mut self.buf);
        let kind = self.resolve(kind, &mut buf);
        self.buf = buf;
        Ok((kind?, &self.buf))
    }

    /// Receives raw bytes into `out` (cleared first; its allocation is reused).
    pub fn recv_bytes(&mut self, out: &mut Vec<u8>) -> Result<(), ChannelError> {
        let kind = self.ring.recv(out)?;
        expect_kind(KIND_BYTES, self.resolve(kind, out)?)
    }

    /// Receives raw bytes, waiting at most `timeout` for them to start.
    pub fn recv_bytes_timeout(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        let kind = self.ring.recv_timeout(out, timeout)?;
        expect_kind(KIND_BYTES, self.resolve(kind, out)?)
    }

    /// Receives raw bytes as [`Data`]: lent in place when they came through the bulk arena
    /// (the decoder reads them where they lie; dropping them releases their space), else
    /// owned, in a buffer from [`pool_core::take_buffer`].
    pub fn recv_data(&mut self) -> Result<Data, ChannelError> {
        let mut frame = pool_core::take_buffer();
        let kind = self.ring.recv(&mut frame)?;
        if kind != KIND_BULK {
            expect_kind(KIND_BYTES, kind)?;
            return Ok(Data::Bytes(frame));
        }
        let lease = self.lend(&frame);
        pool_core::recycle_buffer(frame);
        Ok(Data::Lent(Box::new(lease?)))
    }

    /// Turns a bulk descriptor in `frame` into the bytes it names (then the kind is
    /// [`KIND_BYTES`]); other frames pass unchanged.
    fn resolve(&mut self, kind: u8, frame: &mut Vec<u8>) -> Result<u8, ChannelError> {
        if kind != KIND_BULK {
            return Ok(kind);
        }
        let lease = self.lend(frame)?;
        bulk::copy_advised(lease.bytes(), frame);
        Ok(KIND_BYTES)
    }

    /// The payload the bulk descriptor in `frame` names. A descriptor that cannot be honoured
    /// closes the ring: the peer corrupted the link.
    fn lend(&mut self, frame: &[u8]) -> Result<Lease, ChannelError> {
        let lent = match (&self.arena, Descriptor::decode(frame)) {
            (Some(arena), Some(d)) => arena.lend(d),
            (None, _) => Err(ArenaError::NoArena),
            (_, None) => Err(ArenaError::Malformed(frame.len())),
        };
        lent.map_err(|e| {
            self.ring.close();
            e.into()
        })
    }

    /// A handle to close this direction from another thread.
    pub fn closer(&self) -> RingCloser {
        self.ring.closer()
    }
}
