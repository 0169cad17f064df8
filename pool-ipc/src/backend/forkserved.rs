//! Forkserver workers: booted as spawned workers are (`spawned::boot`, the shared objects as
//! the first frame), but forked by the forkserver instead of executed (`crate::forkserver`).

use std::os::fd::AsFd;
use std::sync::Arc;

use pool_core::{ErasedJob, PoolError, SharedObjects};
use pool_wire::boot::Remote;
use pool_wire::parent::Dispatch;

use super::strategy::{Launch, Start};
use super::{io_err, spawned};
use crate::channel::{ChannelError, MsgSender};
use crate::process::WorkerProcess;

/// The shared objects, encoded at the first start.
#[derive(Debug, Default)]
pub(crate) struct ForkserverLaunch {
    shared: Option<Arc<Vec<u8>>>,
}

impl<Sh: SharedObjects, St: 'static> Launch<Sh, St> for ForkserverLaunch {
    fn check_job(&self, job: &Arc<dyn ErasedJob<Sh, St>>) -> Result<(), PoolError> {
        Remote::Forkserver.job(job).map(|_| ())
    }

    fn start(&mut self, s: Start<'_, Sh, St>) -> Result<(WorkerProcess, Dispatch), PoolError> {
        let id = s.setup.id;
        if self.shared.is_none() {
            let bytes =
                postcard::to_stdvec(&*s.setup.shared).map_err(|e| PoolError::Serialization {
                    context: "the shared objects, for forkserver workers".into(),
                    message: pool_core::refusal::message(&*s.setup.shared, e),
                })?;
            self.shared = Some(Arc::new(bytes));
        }
        let (main, payload) =
            spawned::boot(s.setup, s.n_slots, s.daemon, Remote::Forkserver, None)?;
        // The third becomes the worker's stderr (see `spawned::spawn_main`).
        let fds = [
            s.link.region().fd(),
            s.counters.region().fd(),
            s.stderr.as_fd(),
        ];
        // No fork in this process: any thread may ask.
        let p = crate::forkserver::launch(main, id as u64, payload, &fds).map_err(io_err(
            format!("cannot start worker {id} from the forkserver"),
        ))?;
        Ok((p, Dispatch::default()))
    }

    fn greet(&self, tx: &mut MsgSender) -> Result<(), ChannelError> {
        tx.send_bytes(self.shared.as_deref().map_or(&[][..], |v| v.as_slice()))
    }
}
