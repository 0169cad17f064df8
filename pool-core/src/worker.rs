//! The worker loop, the same for every back end: start, init, run chunks, exit.
//!
//! 1. Pin to CPUs if asked, build the state, run `worker_init` (a panic ends the worker with
//!    `Failed` + `Exited(InitFailed)`), say `Ready`.
//! 2. Run chunks as they come; after each, stop if the lifespan is reached.
//! 3. On `Exit` (or lifespan), run `worker_exit`, report timings and `Exited` with the exit
//!    result. If the parent disappears, stop at once.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::backend::{Command, Event, ExitReason, WorkerLink, WorkerSetup};
use crate::context::WorkerContext;
use crate::counters::monotonic_ns;
use crate::error::{Cause, Failure, Phase};
use crate::job::TaskEnv;
use crate::panic;
use crate::timing::Recorder;

/// Marks init or exit in `WorkerCounters::current_task`.
pub const IN_HOOK: u64 = u64::MAX;

/// Runs one worker until it is told to stop, reaches its lifespan, or loses its parent.
pub fn run_worker<Sh, St>(setup: WorkerSetup<Sh, St>, link: &mut dyn WorkerLink<Sh, St>) {
    let (id, generation) = (setup.id, setup.generation);
    let counters = setup.counters.get();
    let mut recorder = setup.insights.then(|| Recorder::new(id));
    if let Some(cpus) = &setup.cpus {
        // An invalid CPU set was rejected by the builder; a failure here leaves the worker
        // unpinned rather than lost.
        let _ = pin_current_thread(cpus);
    }
    if let Some(r) = recorder.as_mut() {
        r.timings.start_up =
            Duration::from_nanos(monotonic_ns().saturating_sub(setup.requested_ns));
    }
    let mut state = (setup.make_state.get())();
    let mut ctx = WorkerContext::new(id, &*setup.shared, &mut state);

    if let Some(init) = &setup.init {
        let t0 = Instant::now();
        counters.started_ns.store(monotonic_ns(), Ordering::Relaxed);
        counters.current_task.store(IN_HOOK, Ordering::Relaxed);
        let result = panic::catch(|| (init.get())(&mut ctx));
        counters.current_task.store(0, Ordering::Relaxed);
        counters.started_ns.store(0, Ordering::Relaxed);
        if let Some(r) = recorder.as_mut() {
            r.timings.init += t0.elapsed();
        }
        if let Err(caught) = result {
            link.send(Event::Failed {
                generation,
                failure: Box::new(hook_failure(Phase::Init, id, caught)),
            });
            link.send(Event::Exited {
                worker: id,
                generation,
                reason: ExitReason::InitFailed,
                exit_result: None,
            });
            return;
        }
    }
    link.send(Event::Ready {
        worker: id,
        generation,
    });

    let mut done_in_life = 0u64;
    let reason = loop {
        // Waiting time is recorded only with insights on (a clock read per chunk otherwise).
        let wait = recorder.is_some().then(Instant::now);
        let Some(cmd) = link.recv() else { return };
        match cmd {
            Command::Chunk {
                job,
                call,
                first,
                len,
                input,
                // Empty here: a back end credits them to the worker as it sends the command.
                refs: _,
                settings,
            } => {
                if let (Some(r), Some(wait)) = (recorder.as_mut(), wait) {
                    r.timings.waiting += wait.elapsed();
                }
                let mut env = TaskEnv {
                    counters,
                    recorder: recorder.as_mut(),
                    settings,
                };
                let mut output = job.run_chunk(&mut ctx, first, input, &mut env);
                crate::shared_bytes::seal(&mut output);
                done_in_life += u64::from(len);
                link.send(Event::ChunkDone {
                    worker: id,
                    generation,
                    call,
                    first,
                    output,
                });
                if setup.lifespan.is_some_and(|l| done_in_life >= l) {
                    break ExitReason::Lifespan;
                }
            }
            Command::Flush => {
                if let Some(r) = recorder.as_mut() {
                    link.send(Event::Timings {
                        generation,
                        timings: Box::new(r.take()),
                    });
                }
            }
            Command::Exit => break ExitReason::Asked,
        }
    };

    let mut exit_result = None;
    if let Some(exit) = &setup.exit {
        let t0 = Instant::now();
        counters.started_ns.store(monotonic_ns(), Ordering::Relaxed);
        counters.current_task.store(IN_HOOK, Ordering::Relaxed);
        let result = panic::catch(|| (exit.get())(&mut ctx));
        counters.current_task.store(0, Ordering::Relaxed);
        counters.started_ns.store(0, Ordering::Relaxed);
        if let Some(r) = recorder.as_mut() {
            r.timings.exit += t0.elapsed();
        }
        match result {
            Ok(Ok(bytes)) => exit_result = Some(bytes),
            Ok(Err(e)) => link.send(Event::Failed {
                generation,
                failure: Box::new(Failure {
                    phase: Phase::Exit,
                    cause: Cause::Serialization,
                    worker: id,
                    task: None,
                    args: None,
                    message: format!("cannot serialize the exit result: {e}"),
                    backtrace: None,
                    attempts: 1,
                    earlier: Vec::new(),
                }),
            }),
            Err(caught) => link.send(Event::Failed {
                generation,
                failure: Box::new(hook_failure(Phase::Exit, id, caught)),
            }),
        }
    }
    if let Some(r) = recorder.as_mut() {
        link.send(Event::Timings {
            generation,
            timings: Box::new(r.take()),
        });
    }
    link.send(Event::Exited {
        worker: id,
        generation,
        reason,
        exit_result,
    });
}

fn hook_failure(phase: Phase, worker: usize, caught: panic::Caught) -> Failure {
    Failure {
        phase,
        cause: Cause::Panic,
        worker,
        task: None,
        args: None,
        message: caught.message,
        backtrace: caught.backtrace,
        attempts: 1,
        earlier: Vec::new(),
    }
}

/// Pins the calling thread (in a single-threaded worker process: the process) to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        if c >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("CPU id {c} too large"),
            ));
        }
        // SAFETY: `c` is below CPU_SETSIZE, checked above.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// CPUs the calling thread may run on.
pub fn current_affinity() -> Vec<usize> {
    // SAFETY: as above; sched_getaffinity writes at most size_of::<cpu_set_t>() bytes.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable cpu_set_t of the size passed.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: `set` was filled by the kernel; CPU_ISSET only reads it.
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}
