//! Handles a forked worker returns: whose references they are until the parent has them, and
//! how a result the parent never decodes still gives its blocks back.
//!
//! Why: a result's handles carry references the parent adopts as it decodes them. But a parent
//! does not decode every result: a late result of a call that failed, of an `imap` dropped
//! early, of a worker killed since. And a worker can die with results in its ring that the
//! parent never reads. Either way those references would stay up until the family exits.
//!
//! # Protocol (a worker whose parent shares its heap)
//! 1. **Seal** (worker): encoding its results (`encoding`) added a reference per handle; each is
//!    credited to the worker's own ledger, and the blocks are listed in a trailer after the
//!    result's bytes: their indices (`u32` each), their count (`u32`), [`MAGIC`]. Every result
//!    of such a worker has one, empty or not, so the parent never guesses.
//! 2. **Receive** (parent, as the result leaves the worker's ring, before it becomes an event):
//!    debit each listed block from the worker's ledger: the references are the parent's now.
//!    A worker that dies first has them in its ledger, given back once it is reaped.
//! 3. **Decode** (parent): the decoder reads the result from the front and ignores the trailer;
//!    each handle adopts its reference.
//! 4. **Discard** (parent, a result it will not decode): give back each listed block.

use crate::job::Data;

use super::{credit_mine, existing_heap, parent_shares_heap};

/// Ends every sealed result: "SBhr".
const MAGIC: u32 = u32::from_le_bytes(*b"SBhr");

thread_local! {
    /// Blocks this worker handed over in the result being made (step 1).
    static HANDED: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Notes references a worker's result carries to its parent, credited to the worker's own
/// ledger until the parent receives them (step 1).
pub(crate) fn hand_to_parent(blocks: impl Iterator<Item = super::heap::Block>) {
    let Some(h) = existing_heap() else { return };
    HANDED.with(|handed| {
        let mut handed = handed.borrow_mut();
        for b in blocks {
            credit_mine(h, b);
            handed.push(b.index);
        }
    });
}

/// Appends the trailer to a worker's result, when its parent shares the heap (step 1).
pub fn seal(output: &mut Data) {
    if !parent_shares_heap() {
        return;
    }
    let handed = HANDED.with(|h| std::mem::take(&mut *h.borrow_mut()));
    if let Data::Bytes(bytes) = output {
        bytes.reserve(4 * handed.len() + 8);
        for index in &handed {
            bytes.extend_from_slice(&index.to_le_bytes());
        }
        bytes.extend_from_slice(&(handed.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&MAGIC.to_le_bytes());
    }
}

/// The blocks a sealed result lists; `None` for bytes without a trailer.
fn listed(bytes: &[u8]) -> Option<impl Iterator<Item = u32> + '_> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
    };
    let end = bytes.len().checked_sub(8)?;
    if word(end + 4)? != MAGIC {
        return None;
    }
    let count = word(end)? as usize;
    let start = end.checked_sub(count.checked_mul(4)?)?;
    Some((0..count).filter_map(move |i| word(start + 4 * i)))
}

/// Takes the references of a sealed result off the ledger of the worker that sent it (step 2).
pub fn received(output: &Data, ledger: u32) {
    let (Some(h), Some(bytes)) = (existing_heap(), output.encoded()) else {
        return;
    };
    if let Some(blocks) = listed(bytes) {
        let words = h.ledger(ledger);
        for index in blocks {
            super::ledger::debit(words, index);
        }
    }
}

/// Gives back the references of a result that will not be decoded (step 4); `sealed` says
/// whether it came from a worker that shares the heap (and so has a trailer).
pub(crate) fn discard(output: Data, sealed: bool) {
    let (true, Some(h), Some(bytes)) = (sealed, existing_heap(), output.encoded()) else {
        return;
    };
    if let Some(blocks) = listed(bytes) {
        for index in blocks {
            if let Ok(block) = h.adopt(u64::from(index), 0) {
                h.release(block);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailer_lists_its_blocks_and_plain_bytes_have_none() {
        let mut bytes = b"postcard".to_vec();
        for index in [3u32, 70_000] {
            bytes.extend_from_slice(&index.to_le_bytes());
        }
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend_from_slice(&MAGIC.to_le_bytes());
        assert_eq!(listed(&bytes).unwrap().collect::<Vec<_>>(), [3, 70_000]);
        assert!(listed(b"postcard").is_none());
        assert!(listed(b"").is_none());
        let mut lying = 1000u32.to_le_bytes().to_vec();
        lying.extend_from_slice(&MAGIC.to_le_bytes());
        assert!(listed(&lying).is_none(), "a count longer than the bytes");
    }

    /// A process without a heap (a thread pool's, say) that discards or receives a result
    /// makes none: the heap is 32 GiB of address space over a memfd, and Valgrind's leak
    /// check read all of it (24 GB of shared memory, killed by the OOM killer) after a thread
    /// pool discarded an abandoned thread's late result. Run in a child process of its own,
    /// where no other test made a heap first.
    #[test]
    fn results_handled_without_a_heap_make_none() {
        if std::env::var_os(CHILD).is_some() {
            let result = || Data::Bytes(b"a result".to_vec());
            discard(result(), false);
            discard(result(), true);
            received(&result(), 0);
            assert!(super::super::existing_heap().is_none(), "a heap was made");
            return;
        }
        let me = std::env::current_exe().unwrap();
        let name = "shared_bytes::handover::tests::results_handled_without_a_heap_make_none";
        let out = std::process::Command::new(me)
            .args(["--exact", name, "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
    }

    const CHILD: &str = "POOL_HANDOVER_TEST_CHILD";
}
