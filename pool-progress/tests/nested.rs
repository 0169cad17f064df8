//! Nested pools: the outer bar at position 0, one inner bar per outer worker below it, drawn
//! from many threads into one in-memory terminal (set for the whole process, since inner
//! calls start on worker threads).

mod common;

use std::thread::sleep;
use std::time::Duration;

use common::Pool;
use pool_core::{MapOptions, ProgressSpec, StartMethod};
use pool_progress::{DrawTarget, MemoryTerm, set_draw_target};

#[test]
fn inner_bars_stack_below_the_outer_bar_by_position() {
    let term = MemoryTerm::new(90, 20);
    set_draw_target(DrawTarget::term(term.clone()));
    let mut outer = Pool::builder()
        .n_jobs(2)
        .start_method(StartMethod::Threading)
        .build()
        .unwrap();
    let sums = outer
        .map_ctx_with(
            |ctx, job: u64| {
                let id = ctx.worker_id();
                let mut inner = common::pool(2);
                let spec = ProgressSpec::default()
                    .desc(format!("w{id} job {job}"))
                    .position(id + 1);
                inner
                    .map_with(
                        |x: u64| {
                            sleep(Duration::from_millis(1));
                            x
                        },
                        0..30u64,
                        MapOptions::default().progress(spec),
                    )
                    .unwrap()
                    .iter()
                    .sum::<u64>()
            },
            0..6u64,
            MapOptions::default()
                .chunk_size(1)
                .progress(ProgressSpec::default().desc("jobs")),
        )
        .unwrap();
    assert_eq!(sums, vec![435; 6]);
    let lines = term.lines();
    assert_eq!(
        lines.len(),
        3,
        "outer + one line per worker:\n{}",
        term.contents()
    );
    assert!(
        lines[0].starts_with("jobs: 100%|") && lines[0].contains("| 6/6 ["),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("w0 job ") && lines[1].contains("100%|"),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("w1 job ") && lines[2].contains("100%|"),
        "{lines:?}"
    );
    assert!(
        lines[1..].iter().all(|l| l.contains("| 30/30 [")),
        "{lines:?}"
    );
    // A later call draws below, on a fresh line.
    common::pool(1)
        .map_with(
            |x: u8| x,
            0..3u8,
            MapOptions::default().progress(ProgressSpec::default().desc("after")),
        )
        .unwrap();
    let lines = term.lines();
    assert!(lines[3].starts_with("after: 100%|"), "{lines:?}");
}
