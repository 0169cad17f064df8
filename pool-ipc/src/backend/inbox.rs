//! One worker's receiving end: its messages turned into `pool_core` events, in order, by
//! whichever thread holds it (its reader, or the caller's thread polling; see `duty.rs`).
//!
//! Nothing the worker says about who it is counts: the inbox stamps its slot and generation on
//! every event (`pool_wire::msg::FromWorker::into_event_with`), and accepts a chunk's result
//! only for a chunk that worker owes. Anything else (garbage, a result it was never asked for)
//! ends the inbox with a protocol violation, and closes the ring so that its reader (which
//! reports it and ends the worker) notices.

use crossbeam_channel::Sender;
use pool_core::Event;

use pool_wire::msg::FromWorker;
use pool_wire::parent::Outstanding;

use crate::channel::{ChannelError, MsgReceiver};

/// How long [`Inbox::take`] waits for a message.
#[derive(Clone, Copy)]
pub(crate) enum Wait<'a> {
    /// Not at all: only a message already there.
    No,
    /// Until one comes, the ring closes, or `stop()` holds.
    Unless(&'a dyn Fn() -> bool),
}

/// What [`Inbox::take`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Took {
    /// Forwarded one event.
    One,
    /// Nothing to take (or the wait was stopped).
    Nothing,
    /// The link is over: closed and drained, broken, or nobody takes events any more.
    Ended,
}

pub(crate) struct Inbox {
    rx: MsgReceiver,
    events: Sender<Event>,
    worker: usize,
    generation: u64,
    outstanding: Outstanding,
    /// The worker's ledger of shared-heap references, when it has one: a result's references
    /// leave it as the result is taken here.
    ledger: Option<u32>,
    /// The worker said goodbye (`Exited`).
    clean: bool,
    ended: bool,
    /// How the worker broke the protocol, if it did.
    violation: Option<String>,
}

impl Inbox {
    pub(crate) fn new(
        rx: MsgReceiver,
        events: Sender<Event>,
        worker: usize,
        generation: u64,
        outstanding: Outstanding,
        ledger: Option<u32>,
    ) -> Self {
        Self {
            rx,
            events,
            worker,
            generation,
            outstanding,
            ledger,
            clean: false,
            ended: false,
            violation: None,
        }
    }

    /// Takes the worker's next message and forwards it as an event.
    pub(crate) fn take(&mut self, wait: Wait<'_>) -> Took {
        if self.ended {
            return Took::Ended;
        }
        let got = match wait {
            Wait::No => self.rx.try_recv::<FromWorker>(),
            Wait::Unless(stop) => self.rx.recv_unless::<FromWorker>(stop).map(Some),
        };
        let msg = match got {
            Ok(Some(msg)) => msg,
            Ok(None) | Err(ChannelError::Timeout) => return Took::Nothing,
            Err(ChannelError::Disconnected) => return self.end(None),
            Err(e) => return self.end(Some(format!("sent bytes that are not a message ({e})"))),
        };
        let mut bulk = pool_core::Data::Bytes(Vec::new());
        if let FromWorker::ChunkDone { call, first } = msg {
            // Read in place when it came through the bulk arena (issue #17), else a buffer
            // the decoder hands back for reuse. It follows its header at once.
            match self.rx.recv_data() {
                Ok(data) => bulk = data,
                Err(_) => return self.end(None),
            }
            if !self.outstanding.returned(call, first) {
                return self.end(Some(format!(
                    "sent a result for a chunk it was not given (call {call}, first task {first})"
                )));
            }
            // Its handles' references are the parent's from here on (a result refused above
            // leaves them in the worker's ledger, given back once it is reaped).
            if let Some(l) = self.ledger {
                pool_core::shared_bytes::received(&bulk, l);
            }
        }
        self.clean |= matches!(msg, FromWorker::Exited { .. });
        let event = msg.into_event_with(self.worker, self.generation, bulk);
        if self.events.send(event).is_err() {
            return self.end(None);
        }
        Took::One
    }

    fn end(&mut self, violation: Option<String>) -> Took {
        self.ended = true;
        if violation.is_some() {
            self.violation = violation;
            // Its word cannot be trusted any more; its reader sees the ring closed.
            self.rx.closer().close();
        }
        Took::Ended
    }

    /// Whether the worker said goodbye before its link ended.
    pub(crate) fn clean(&self) -> bool {
        self.clean && self.violation.is_none()
    }

    /// How the worker broke the protocol, if it did.
    pub(crate) fn violation(&mut self) -> Option<String> {
        self.violation.take()
    }
}
