//! Worker state, shared objects, init/exit, exit results, keep-alive and lifespan restarts.

use pool::StartMethod;

use super::builder;

#[derive(Default)]
struct Counter {
    tasks: u64,
    inits: u64,
}

fn state_init_exit_and_exit_results(m: StartMethod) {
    let mut p = builder(m, 2)
        .worker_state(Counter::default)
        .build()
        .unwrap();
    let opts = p
        .options()
        .chunk_size(1)
        .worker_init(|ctx| ctx.state_mut().inits += 1)
        .worker_exit(|ctx| (ctx.worker_id(), ctx.state().tasks, ctx.state().inits));
    let out = p
        .map_ctx_with(
            |ctx, x: u64| {
                ctx.state_mut().tasks += 1;
                x * 2
            },
            0..60u64,
            opts,
        )
        .unwrap();
    assert_eq!(out, (0..60u64).map(|x| x * 2).collect::<Vec<_>>());
    let exits: Vec<(usize, u64, u64)> = p.get_exit_results().unwrap();
    assert_eq!(exits.len(), 2, "one exit per worker: {exits:?}");
    assert_eq!(exits.iter().map(|e| e.1).sum::<u64>(), 60);
    assert!(
        exits.iter().all(|e| e.2 == 1),
        "init ran once per worker: {exits:?}"
    );
    let mut ids: Vec<usize> = exits.iter().map(|e| e.0).collect();
    ids.sort();
    assert_eq!(ids, vec![0, 1]);
}

fn shared_objects_are_visible_to_every_task(m: StartMethod) {
    let table: Vec<u64> = (0..1000).map(|i| i * 3).collect();
    let mut p = builder(m, 2).shared_objects(table).build().unwrap();
    let out = p
        .map_ctx(|ctx, i: usize| ctx.shared()[i], [0usize, 10, 999])
        .unwrap();
    assert_eq!(out, vec![0, 30, 2997]);
}

fn keep_alive_reuses_workers_and_state(m: StartMethod) {
    let mut p = builder(m, 2)
        .keep_alive(true)
        .worker_state(Counter::default)
        .build()
        .unwrap();
    let opts = p
        .options()
        .worker_init(|ctx| ctx.state_mut().inits += 1)
        .worker_exit(|ctx| (ctx.state().tasks, ctx.state().inits));
    let task = |ctx: &mut pool::WorkerContext<'_, (), Counter>, x: u32| {
        ctx.state_mut().tasks += 1;
        x
    };
    p.map_ctx_with(task, 0..50u32, opts.clone()).unwrap();
    assert!(
        p.get_exit_results::<(u64, u64)>().unwrap().is_empty(),
        "workers are still alive"
    );
    // A different function on the same kept-alive workers.
    let out = p
        .map_ctx_with(
            |ctx, x: u32| {
                ctx.state_mut().tasks += 1;
                x + 1
            },
            0..30u32,
            opts,
        )
        .unwrap();
    assert_eq!(out[29], 30);
    p.join().unwrap();
    let exits: Vec<(u64, u64)> = p.get_exit_results().unwrap();
    assert_eq!(exits.len(), 2);
    assert_eq!(
        exits.iter().map(|e| e.0).sum::<u64>(),
        80,
        "state kept across calls: {exits:?}"
    );
    assert!(
        exits.iter().all(|e| e.1 == 1),
        "no re-init between calls: {exits:?}"
    );
}

fn without_keep_alive_workers_restart_each_call(m: StartMethod) {
    let mut p = builder(m, 2)
        .worker_state(Counter::default)
        .build()
        .unwrap();
    let opts = p.options().worker_exit(|ctx| ctx.state().tasks);
    p.map_ctx_with(
        |ctx, x: u32| {
            ctx.state_mut().tasks += 1;
            x
        },
        0..10u32,
        opts.clone(),
    )
    .unwrap();
    p.map_ctx_with(
        |ctx, x: u32| {
            ctx.state_mut().tasks += 1;
            x
        },
        0..6u32,
        opts,
    )
    .unwrap();
    let exits: Vec<u64> = p.get_exit_results().unwrap();
    assert_eq!(
        exits.iter().sum::<u64>(),
        6,
        "fresh state in the second call: {exits:?}"
    );
}

fn worker_lifespan_restarts_workers(m: StartMethod) {
    let mut p = builder(m, 2)
        .worker_state(Counter::default)
        .build()
        .unwrap();
    let opts = p
        .options()
        .chunk_size(1)
        .worker_lifespan(5)
        .worker_exit(|ctx| ctx.state().tasks);
    p.map_ctx_with(
        |ctx, x: u32| {
            ctx.state_mut().tasks += 1;
            x
        },
        0..20u32,
        opts,
    )
    .unwrap();
    let exits: Vec<u64> = p.get_exit_results().unwrap();
    assert_eq!(exits.iter().sum::<u64>(), 20, "{exits:?}");
    assert!(
        exits.iter().all(|&n| n <= 5),
        "no life runs past its lifespan: {exits:?}"
    );
    assert!(
        exits.len() >= 4,
        "at least four lives for 20 tasks: {exits:?}"
    );
}

for_each_start_method!(
    state_init_exit_and_exit_results,
    shared_objects_are_visible_to_every_task,
    keep_alive_reuses_workers_and_state,
    without_keep_alive_workers_restart_each_call,
    worker_lifespan_restarts_workers,
);

/// Process start methods really run tasks in other processes, one per worker.
fn workers_run_in_the_right_place(m: StartMethod) {
    let mut p = builder(m, 2).build().unwrap();
    let pids = p
        .map_with(
            |_: u8| std::process::id(),
            0..20u8,
            pool::MapOptions::default().chunk_size(1),
        )
        .unwrap();
    let me = std::process::id();
    if m == StartMethod::Threading {
        assert!(pids.iter().all(|&p| p == me));
    } else {
        assert!(pids.iter().all(|&p| p != me), "{pids:?}");
        let mut distinct = pids.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() <= 2, "{distinct:?}");
    }
}

for_each_start_method!(workers_run_in_the_right_place);

fn inner_sum(n: u64) -> Result<u64, String> {
    let mut inner = pool::WorkerPool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Fork)
        .build()
        .map_err(|e| e.to_string())?;
    let out = inner.map(|x: u64| x * 2, 0..n).map_err(|e| e.to_string())?;
    Ok(out.iter().sum())
}

/// A daemon worker (the default) may not start process pools; `daemon(false)` allows nesting.
fn nested_pools_and_daemon(m: StartMethod) {
    let mut outer = builder(m, 2).build().unwrap();
    let r = outer.map(inner_sum, [10u64, 20]).unwrap();
    // Threads are no processes, and an MPI worker rank is a process of its own (not a daemon
    // child): both may start process pools.
    if matches!(m, StartMethod::Threading | StartMethod::Mpi) {
        assert_eq!(r, vec![Ok(90), Ok(380)]);
        return;
    }
    let e = r[0].as_ref().unwrap_err();
    assert!(e.contains("daemon worker"), "{e}");
    let mut outer = builder(m, 2).daemon(false).build().unwrap();
    assert_eq!(
        outer.map(inner_sum, [10u64, 20]).unwrap(),
        vec![Ok(90), Ok(380)]
    );
}

for_each_start_method!(nested_pools_and_daemon);
