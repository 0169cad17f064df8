//! Process-wide settings: the default style, style names, the hook. One test, because these
//! settings are global to the test binary.

mod common;

use std::sync::{Arc, Mutex};

use common::{info, pool, status};
use pool_core::{CallInfo, MapOptions, Outcome, ProgressSink, ProgressSpec, ProgressStyle, Status};
use pool_progress::{
    DrawTarget, MemoryTerm, Resolved, default_style, parse_style, resolve, set_default_style,
    set_hook, sink_for, with_draw_target,
};

#[derive(Default, Clone)]
struct Events(Arc<Mutex<Vec<String>>>);

struct HookSink(Events);

impl ProgressSink for HookSink {
    fn start(&mut self, info: &CallInfo) {
        self.0
            .0
            .lock()
            .unwrap()
            .push(format!("start {}", info.method));
    }
    fn update(&mut self, _: &Status) {}
    fn finish(&mut self, s: &Status, o: &Outcome) {
        self.0
            .0
            .lock()
            .unwrap()
            .push(format!("finish {} {o:?}", s.done));
    }
}

#[test]
fn default_style_names_and_hook() {
    for (name, style) in [
        ("std", ProgressStyle::Std),
        ("Plain", ProgressStyle::Plain),
        ("none", ProgressStyle::Hidden),
        ("dashboard", ProgressStyle::Dashboard),
        ("auto", ProgressStyle::Auto),
    ] {
        assert_eq!(parse_style(name), Some(style));
    }
    assert_eq!(parse_style("fancy"), None);

    let term = MemoryTerm::new(100, 20);
    let target = DrawTarget::term(term.clone());
    assert_eq!(resolve(ProgressStyle::Auto, &target), Resolved::Bar);

    // A global default turns `Auto` calls into plain lines, even on a terminal...
    set_default_style(ProgressStyle::Plain);
    assert_eq!(default_style(), ProgressStyle::Plain);
    let mut p = pool(2);
    with_draw_target(target.clone(), || {
        p.map_with(
            |x: u32| x,
            0..10u32,
            MapOptions::default().progress_bar(true),
        )
    })
    .unwrap();
    let lines = term.lines();
    assert_eq!(
        lines.first().unwrap(),
        "[map] 0/10 tasks (0%) started: map on 2 workers"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .starts_with("[map] done 10/10 tasks (100%) [")
    );
    // ...but a call's own style wins.
    assert_eq!(resolve(ProgressStyle::Std, &target), Resolved::Bar);

    // Hidden: nothing at all; Dashboard without a hook: nothing either.
    set_default_style(ProgressStyle::Hidden);
    assert!(sink_for(&info(ProgressSpec::default())).is_none());
    let dash = info(ProgressSpec::default().style(ProgressStyle::Dashboard));
    assert!(sink_for(&dash).is_none());

    // The hook sees every call: alone under Dashboard, beside the bar otherwise.
    let events = Events::default();
    let e = events.clone();
    set_hook(Some(Arc::new(move |_: &CallInfo| {
        Some(Box::new(HookSink(e.clone())) as Box<dyn ProgressSink>)
    })));
    let term2 = MemoryTerm::new(100, 20);
    with_draw_target(DrawTarget::term(term2.clone()), || {
        let mut s = sink_for(&dash).expect("the hook");
        s.start(&dash);
        s.finish(&status(Some(3), 3, 0, 1, None), &Outcome::Done);
        let bar = info(ProgressSpec::default().style(ProgressStyle::Std).total(3));
        let mut s = sink_for(&bar).expect("bar and hook");
        s.start(&bar);
        s.finish(&status(Some(3), 3, 0, 1, None), &Outcome::Done);
    });
    assert_eq!(
        *events.0.lock().unwrap(),
        ["start map", "finish 3 Done", "start map", "finish 3 Done"]
    );
    assert_eq!(
        term2.lines().len(),
        1,
        "only the Std call drew:\n{}",
        term2.contents()
    );
    set_hook(None);
    set_default_style(ProgressStyle::Auto);
}
