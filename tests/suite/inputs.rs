//! Every kind of input gives the same results: ranges and vectors (which workers read
//! themselves on threads), any other iterator (which the caller chunks), with chunk sizes that
//! do not divide them and lengths cut by `iterable_len`.

use pool::{MapOptions, StartMethod};

use super::pool;

fn ranges_of_every_integer_type(m: StartMethod) {
    let mut p = pool(m, 2);
    assert_eq!(
        p.map(|x: i8| x, -5..5i8).unwrap(),
        (-5..5).collect::<Vec<_>>()
    );
    assert_eq!(
        p.map(|x: u8| x, 250..=255u8).unwrap(),
        vec![250, 251, 252, 253, 254, 255],
        "an inclusive range up to the type's maximum"
    );
    assert_eq!(
        p.map(|x: i64| x * 2, -1000..=1000i64).unwrap(),
        (-1000..=1000).map(|x| x * 2).collect::<Vec<_>>()
    );
    #[allow(clippy::reversed_empty_ranges)]
    let empty = 10..3usize;
    assert_eq!(p.map(|x: usize| x, empty).unwrap(), Vec::<usize>::new());
    let odd = MapOptions::default().chunk_size(7);
    assert_eq!(
        p.map_with(|x: u32| x + 1, 0..1001u32, odd).unwrap(),
        (1..1002).collect::<Vec<_>>()
    );
    let cut = MapOptions::default().iterable_len(10);
    assert_eq!(
        p.map_with(|x: u64| x, 0..100u64, cut).unwrap(),
        (0..10).collect::<Vec<_>>(),
        "iterable_len takes at most that many"
    );
    let mut unordered = p.map_unordered(|x: i32| x, -300..300i32).unwrap();
    unordered.sort_unstable();
    assert_eq!(unordered, (-300..300).collect::<Vec<_>>());
}

fn vectors_of_owned_values(m: StartMethod) {
    let mut p = pool(m, 2);
    let words: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
    let lens = p
        .map_with(
            |w: String| w.len(),
            words.clone(),
            MapOptions::default().chunk_size(33),
        )
        .unwrap();
    assert_eq!(lens, words.iter().map(String::len).collect::<Vec<_>>());
    // Lazily, abandoned halfway: the inputs not run are dropped with the call.
    let firsts: Vec<String> = p
        .imap_with(
            |w: String| w,
            words.clone(),
            MapOptions::default().chunk_size(10),
        )
        .unwrap()
        .take(25)
        .map(Result::unwrap)
        .collect();
    assert_eq!(firsts, words[..25]);
    // A vector already partly consumed: its rest.
    let mut rest = words.clone().into_iter();
    rest.nth(4999 - 10);
    assert_eq!(p.map(|w: String| w, rest).unwrap(), words[4990..]);
    // The same inputs through an iterator the caller chunks.
    let upper = p
        .map(|w: String| w.to_uppercase(), words.iter().cloned())
        .unwrap();
    assert_eq!(upper[4999], "W4999");
}

/// `map(f, vec)` with `f: T -> T` over plain values (no drop glue) writes the results over
/// the inputs, in the vector's own memory, whatever the start method (the output's fresh
/// pages cost the caller more than the tasks: issue #17); a task that fails among them is still
/// named with its argument.
fn vectors_of_plain_values_map_in_place(m: StartMethod) {
    let mut p = pool(m, 2);
    for n in [1usize, 20_001, 200_003] {
        let v: Vec<u64> = (0..n as u64).collect();
        let at = v.as_ptr();
        let out = p.map(|x: u64| x * 3, v).unwrap();
        assert_eq!(out.as_ptr(), at, "{n} inputs: the input's memory");
        assert!(
            out.iter().enumerate().all(|(i, &x)| x == 3 * i as u64),
            "{n}"
        );
    }
    let f: Vec<f64> = (0..50_000).map(f64::from).collect();
    let at = f.as_ptr();
    let halves = p.map(|x: f64| x / 2.0, f).unwrap();
    assert_eq!((halves.as_ptr(), halves[3]), (at, 1.5));
    let v: Vec<i64> = (0..200_000).collect();
    let e = p
        .map(|x: i64| if x == 150_001 { panic!("no") } else { -x }, v)
        .unwrap_err();
    assert!(e.to_string().contains("150001"), "{e}");
    assert_eq!(p.map(|x: u8| x + 1, vec![1u8, 2]).unwrap(), vec![2, 3]);
}

fn vectors_of_zero_sized_values(m: StartMethod) {
    let mut p = pool(m, 2);
    let out = p
        .map_with(
            |(): ()| 7u8,
            vec![(); 10_000],
            MapOptions::default().chunk_size(999),
        )
        .unwrap();
    assert_eq!(out, vec![7u8; 10_000]);
}

/// `v.iter().copied()`: read in place by threads in eager maps, chunked by the caller for
/// processes and lazy maps; the same results everywhere, down to empty and one-element slices.
fn borrowed_slices_of_numbers(m: StartMethod) {
    let mut p = pool(m, 2);
    for n in [0usize, 1, 7, 20_001] {
        let v: Vec<u32> = (0..n as u32).map(|x| x * 3).collect();
        let want: Vec<u32> = v.iter().map(|x| x + 1).collect();
        assert_eq!(
            p.map(|x: u32| x + 1, v.iter().copied()).unwrap(),
            want,
            "{n}"
        );
        let odd = MapOptions::default().chunk_size(333);
        assert_eq!(
            p.map_with(|x: u32| x + 1, v.iter().cloned(), odd).unwrap(),
            want
        );
        let lazy: Vec<u32> = p
            .imap(|x: u32| x + 1, v.iter().copied())
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(lazy, want);
    }
    let f: Vec<f64> = vec![0.5, -1.5];
    assert_eq!(
        p.map(|x: f64| x * 2.0, f.iter().copied()).unwrap(),
        vec![1.0, -3.0]
    );
}

/// A failed task of a range chunk (made by the worker, not sent) is named with its argument.
fn a_failed_task_of_a_range_is_named_with_its_argument(m: StartMethod) {
    let mut p = pool(m, 2);
    let e = p
        .map(
            |x: i64| if x == -77_777 { panic!("no") } else { x },
            -100_000..100_000i64,
        )
        .unwrap_err();
    let text = e.to_string();
    assert!(text.contains("-77777"), "{text}");
    assert_eq!(e.failure().and_then(|f| f.task), Some(100_000 - 77_777));
}

for_each_start_method!(
    borrowed_slices_of_numbers,
    a_failed_task_of_a_range_is_named_with_its_argument,
    ranges_of_every_integer_type,
    vectors_of_owned_values,
    vectors_of_plain_values_map_in_place,
    vectors_of_zero_sized_values,
);
