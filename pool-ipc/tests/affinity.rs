//! CPU pinning in a real forked worker, and clear errors for bad ids.

mod common;

use pool_ipc::affinity::{AffinityError, current_affinity, online_cpus, pin, pin_current_thread};

#[test]
fn a_worker_pins_itself_to_one_cpu() {
    let _g = common::serial();
    let cpus = online_cpus().unwrap();
    let last = *cpus.last().unwrap();
    let mut w = common::fork(move || {
        if pin_current_thread(&[last]).is_err() {
            return 2;
        }
        i32::from(current_affinity().unwrap() != vec![last])
    });
    assert!(w.wait().unwrap().success());
}

#[test]
fn the_parent_pins_a_worker_process() {
    let _g = common::serial();
    let cpus = online_cpus().unwrap();
    let mut w = common::fork(|| {
        std::thread::sleep(std::time::Duration::from_secs(30));
        0
    });
    pin(w.pid(), &cpus[..1]).unwrap();
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(w.pid())).unwrap();
    assert!(set.is_set(cpus[0]).unwrap());
    w.kill(libc::SIGKILL).unwrap();
    w.wait().unwrap();
}

#[test]
fn invalid_cpu_ids_are_named_in_the_error() {
    let e = pin_current_thread(&[0, 4000]).unwrap_err();
    match &e {
        AffinityError::InvalidCpu { cpu, available } => {
            assert_eq!(*cpu, 4000);
            assert!(available.contains(&0));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("invalid CPU id 4000"), "{e}");
    assert!(matches!(pin_current_thread(&[]), Err(AffinityError::Empty)));
}
