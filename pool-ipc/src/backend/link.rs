//! A worker process's carrier of protocol frames (`pool_wire`): its ends of the shared-memory
//! channel. A header and its bulk frame go with one wake-up.

use pool_core::Data;
use pool_wire::msg::{FromWorker, ToWorker};
use pool_wire::worker::Carrier;

use crate::channel::{MsgReceiver, MsgSender};

#[derive(Debug)]
pub(crate) struct RingCarrier {
    pub(crate) tx: MsgSender,
    pub(crate) rx: MsgReceiver,
}

impl Carrier for RingCarrier {
    fn recv(&mut self) -> Option<(ToWorker, Vec<u8>)> {
        let msg = self.rx.recv::<ToWorker>().ok()?;
        let mut bulk = Vec::new();
        if msg.has_bulk() {
            bulk = pool_core::take_buffer();
            self.rx.recv_bytes(&mut bulk).ok()?;
        }
        Some((msg, bulk))
    }

    /// A chunk's inputs that came through the bulk arena are decoded where they lie.
    fn recv_data(&mut self) -> Option<(ToWorker, Data)> {
        let msg = self.rx.recv::<ToWorker>().ok()?;
        let bulk = if msg.has_bulk() {
            self.rx.recv_data().ok()?
        } else {
            Data::Bytes(Vec::new())
        };
        Some((msg, bulk))
    }

    fn send(&mut self, msg: &FromWorker, bulk: Option<&[u8]>) {
        let _ = match bulk {
            Some(bytes) => self
                .tx
                .send_deferred(msg)
                .and_then(|()| self.tx.send_bytes(bytes)),
            None => self.tx.send(msg),
        };
    }
}
