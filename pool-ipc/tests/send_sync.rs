//! Compile-time checks: which public types may cross threads.

use pool_ipc::channel::{Channel, ChannelError, Link, MsgReceiver, MsgSender};
use pool_ipc::process::{ExitReason, WorkerProcess};
use pool_ipc::ring::{RingCloser, RingReceiver, RingSender};
use pool_ipc::shm::SharedRegion;
use pool_ipc::watcher::DeathWatcher;

fn send<T: Send>() {}
fn sync<T: Sync>() {}

#[test]
fn public_types_are_send_and_where_sensible_sync() {
    send::<SharedRegion>();
    sync::<SharedRegion>();
    send::<Link>();
    sync::<Link>();
    send::<RingSender>();
    send::<RingReceiver>();
    send::<RingCloser>();
    sync::<RingCloser>();
    send::<Channel>();
    send::<MsgSender>();
    send::<MsgReceiver>();
    send::<ChannelError>();
    sync::<ChannelError>();
    send::<WorkerProcess>();
    sync::<WorkerProcess>();
    send::<ExitReason>();
    send::<DeathWatcher>();
    sync::<DeathWatcher>();
}
