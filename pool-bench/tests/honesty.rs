//! Every Rust contender returns the serial reference's answer on every workload, at tiny sizes.
//! This is the harness's honesty check, run as a test so a broken contender fails CI before it
//! ever produces a timing.

use pool_bench::contenders::Contender;
use pool_bench::contenders::process::ProcessPerTask;
use pool_bench::contenders::rayon::Rayon;
use pool_bench::contenders::serial::Serial;
use pool_bench::contenders::threads::Threads;
use pool_bench::report::decade_label;
use pool_bench::results::Status;
use pool_bench::runner::{Prepared, measure};
use pool_bench::workload::{Sizes, WorkloadKind, reference_checksum};

fn tiny() -> Sizes {
    Sizes {
        trivial_n: 1000,
        cpu_tasks: 12,
        cpu_task_us: 20,
        skewed_tasks: 20,
        skewed_min_us: 5,
        skewed_cap_us: 500,
        stateful_tasks: 50,
        stateful_task_us: 5,
        table_entries: 4096,
        table_tasks: 5,
        payload_tasks: 3,
        ..Sizes::quick()
    }
}

#[test]
fn every_contender_matches_the_reference() {
    let sizes = tiny();
    let k = 50; // iterations per ms: any value works, the reference uses the same one
    let contenders: Vec<Box<dyn Contender>> = vec![
        Box::new(Rayon::new(2)),
        Box::new(Threads::new(3)),
        Box::new(ProcessPerTask::with_exe(
            2,
            env!("CARGO_BIN_EXE_pool-bench"),
        )),
        Box::new(Serial),
    ];
    for kind in WorkloadKind::ALL {
        let prepared = Prepared::new(kind, &sizes, k);
        let expected = reference_checksum(kind, &sizes, k);
        for c in contenders.iter().filter(|c| c.supports(kind)) {
            let row = measure(c.as_ref(), &prepared, expected, 1);
            assert_eq!(
                row.status,
                Status::Ok,
                "{} on {}: {:?}",
                c.name(),
                kind.name(),
                row.error
            );
            assert_eq!(row.times_s.len(), 1);
        }
    }
}

#[test]
fn a_wrong_answer_marks_the_row_invalid() {
    let sizes = tiny();
    let prepared = Prepared::new(WorkloadKind::Trivial, &sizes, 50);
    let row = measure(&Serial, &prepared, 12345, 2);
    assert_eq!(row.status, Status::Invalid);
    assert!(
        row.times_s.is_empty(),
        "timings of a wrong answer must not count"
    );
}

#[test]
fn skewed_draw_is_fixed_and_heavy_tailed() {
    let a = Sizes::quick().skewed_micros();
    assert_eq!(a, Sizes::quick().skewed_micros());
    let min = *a.iter().min().unwrap();
    let max = *a.iter().max().unwrap();
    assert!(min >= 200 && max > 20 * min, "min {min} max {max}");
}

#[test]
fn decade_labels() {
    assert_eq!(decade_label(-9), "1 ns");
    assert_eq!(decade_label(-4), "100 µs");
    assert_eq!(decade_label(0), "1 s");
    assert_eq!(decade_label(2), "100 s");
}
