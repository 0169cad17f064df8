use std::time::Duration;

use pool_core::{MapOptions, ThreadPool};

#[test]
fn smoke() {
    let mut pool = ThreadPool::new(2).unwrap();
    let out = pool.map(|x: u64| x * x, 0..1000u64).unwrap();
    assert_eq!(out, (0..1000u64).map(|x| x * x).collect::<Vec<_>>());
    let mut un = pool.map_unordered(|x: u64| x * 2, 0..1000u64).unwrap();
    un.sort();
    assert_eq!(un, (0..1000u64).map(|x| x * 2).collect::<Vec<_>>());
    let r = pool.map_with(
        |x: u64| if x == 7 { panic!("seven") } else { x },
        0..100u64,
        MapOptions::default(),
    );
    let e = r.unwrap_err().to_string();
    assert!(e.contains("task #7") && e.contains("seven"), "{e}");
    let again = pool.map(|x: u8| x, 0..3u8).unwrap();
    assert_eq!(again, vec![0, 1, 2]);
    let t = pool.map_with(
        |x: u64| {
            if x == 3 {
                std::thread::sleep(Duration::from_secs(2));
            }
            x
        },
        0..10u64,
        MapOptions::default()
            .chunk_size(1)
            .task_timeout(Duration::from_millis(200)),
    );
    let e = t.unwrap_err().to_string();
    assert!(e.contains("timed out") && e.contains("task #3"), "{e}");
}
