//! Readable function names for the page.

/// The user's function inside the pool's wrapper closures: `pool_core::pool::WorkerPool<..>::
/// map_with<u64, u64, my::task, Range<u64>>::{{closure}}` becomes `my::task` (the third generic
/// argument of the map method); any other name is returned as it is.
pub(crate) fn short_function(name: &str) -> String {
    let mut n = name;
    while let Some(rest) = n.strip_suffix("::{{closure}}") {
        n = rest;
    }
    if !n.contains("WorkerPool<") || !n.ends_with('>') {
        return name.to_string();
    }
    // The generic arguments of the last path segment, split at top-level commas.
    let bytes = n.as_bytes();
    let mut depth = 0usize;
    let mut open = None;
    for i in (0..bytes.len()).rev() {
        match bytes[i] {
            b'>' => depth += 1,
            b'<' => {
                depth -= 1;
                if depth == 0 {
                    open = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let Some(open) = open else {
        return name.to_string();
    };
    let inner = &n[open + 1..n.len() - 1];
    let mut args = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '<' | '(' | '[' => depth += 1,
            '>' | ')' | ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    args.push(inner[start..].trim());
    // Lifetimes (`'_`) are not type arguments.
    args.retain(|a| !a.starts_with('\''));
    match args.get(2) {
        Some(f) if !f.is_empty() => f.to_string(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::short_function;

    #[test]
    fn unwraps_the_pool_wrapper() {
        let full = "pool_core::pool::WorkerPool<(), (), x::Ext>::map_with<u64, u64, \
                    my::task, core::ops::range::Range<u64>>::{{closure}}";
        assert_eq!(short_function(full), "my::task");
        let closure = "pool_core::pool::WorkerPool<(), ()>::imap<(u8, Vec<u8>), u8, \
                       my::main::{{closure}}, alloc::vec::IntoIter<(u8, Vec<u8>)>>::{{closure}}";
        assert_eq!(short_function(closure), "my::main::{{closure}}");
        let lazy = "pool_core::pool::WorkerPool<(), (), x::Ext>::imap_with<'_, u64, u64, \
                    my::task, alloc::vec::Vec<u64>>::{{closure}}";
        assert_eq!(short_function(lazy), "my::task");
        assert_eq!(short_function("my::task"), "my::task");
        assert_eq!(short_function("a::b::{{closure}}"), "a::b::{{closure}}");
    }
}
