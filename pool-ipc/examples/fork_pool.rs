//! How the pieces fit: a tiny pool of forked workers, each with its own link, one death watcher
//! closing the link of whoever dies, and a crash reported with its reason.
//! Run: `cargo run -p pool-ipc --example fork_pool`.

use std::collections::HashMap;
use std::time::Duration;

use pool_ipc::channel::{ChannelError, Link};
use pool_ipc::child::ChildOptions;
use pool_ipc::oom::{self, OomProbe};
use pool_ipc::process::WorkerProcess;
use pool_ipc::ring::WaitPolicy;
use pool_ipc::watcher::DeathWatcher;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n_workers = 3;
    // 1. Fork first, while the process is single-threaded (fork safety).
    let mut links = Vec::new();
    let mut workers: Vec<WorkerProcess> = Vec::new();
    for id in 0..n_workers {
        let link = Link::new(1 << 16)?;
        let child_link = link.clone();
        // SAFETY: no other thread exists yet.
        let w = unsafe {
            pool_ipc::fork::fork_worker(ChildOptions::default(), move || {
                let mut ch = child_link.worker_end(WaitPolicy::default());
                while let Ok(x) = ch.recv::<u64>() {
                    if x == 13 {
                        std::process::abort(); // a task that crashes its worker
                    }
                    ch.send(&(id, x * x)).unwrap();
                }
                0
            })
        }?;
        links.push(link);
        workers.push(w);
    }
    // 2. Then start helper threads: the watcher closes the link of a dead worker, so whoever
    //    waits on it wakes up with `Disconnected` instead of hanging.
    let closers: HashMap<u64, Link> = links
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, l)| (i as u64, l))
        .collect();
    let watcher = DeathWatcher::with_callback(move |d| closers[&d.token].close())?;
    let probe = OomProbe::for_self();
    let before = probe.read();
    for (i, w) in workers.iter().enumerate() {
        watcher.watch(w, i as u64)?;
    }
    // 3. Round-robin tasks; one of them kills its worker.
    let mut ends: Vec<_> = links
        .iter()
        .map(|l| l.parent_end(WaitPolicy::default()))
        .collect();
    for x in 10..16u64 {
        let i = (x as usize) % n_workers;
        ends[i].send(&x)?;
        match ends[i].recv_timeout::<(usize, u64)>(Duration::from_secs(5)) {
            Ok((id, sq)) => println!("task {x}: worker {id} says {sq}"),
            Err(ChannelError::Disconnected) => {
                let reason = workers[i].wait()?;
                let verdict = oom::judge(reason, false, before, probe.read());
                println!(
                    "task {x}: worker {i} died: {reason} (OOM: {:?})",
                    verdict.likelihood
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    // 4. Shut down: dropping the parent ends closes the links; workers exit 0; reap them all.
    drop(ends);
    for w in &mut workers {
        println!("worker {}: {}", w.pid(), w.wait()?);
    }
    Ok(())
}
