//! How far the index has got (the high-water mark stored with each commit), and the stale
//! mark a prune or vacuum leaves until the index matches the segments again.

use std::path::PathBuf;

use serde_json::Value;
use tantivy::Index;

use super::epoch;
use crate::store::{ScanItem, Store, StoreError};

/// How far an index commit has indexed: the last event id, and where its line is (segment
/// first id, byte offset), so the next catch-up reads only what was appended after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Mark {
    /// The last indexed event id (0: nothing).
    pub hwm: u64,
    /// Where that event's line starts, if known.
    pub at: Option<(u64, u64)>,
    /// `ts` (epoch seconds) of the last indexed event.
    pub last_ts: i64,
    /// Every event indexed so far came at or after the one before it (by `ts`), so document
    /// order is time order and "newest first" can read from the end (live capture always is;
    /// importing older history after newer events is not).
    pub time_ordered: bool,
}

impl Mark {
    pub(super) fn payload(&self) -> String {
        let (seg, off) = self.at.unwrap_or((0, 0));
        format!(
            "{{\"hwm\":{},\"seg\":{seg},\"off\":{off},\"last_ts\":{},\"time_ordered\":{}}}",
            self.hwm, self.last_ts, self.time_ordered
        )
    }
}

/// The mark of the last commit.
pub fn high_water_mark(index: &Index) -> Mark {
    let v = index
        .load_metas()
        .ok()
        .and_then(|m| m.payload)
        .and_then(|p| serde_json::from_str::<Value>(&p).ok());
    let get = |k: &str| v.as_ref().and_then(|v| v.get(k)).and_then(Value::as_u64);
    let hwm = get("hwm").unwrap_or(0);
    Mark {
        hwm,
        at: get("seg").zip(get("off")).filter(|(seg, _)| *seg > 0),
        last_ts: v
            .as_ref()
            .and_then(|v| v.get("last_ts"))
            .and_then(Value::as_i64)
            .unwrap_or(i64::MIN),
        time_ordered: hwm == 0
            || v.as_ref()
                .and_then(|v| v.get("time_ordered"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
    }
}

/// Whether the store holds the event the index was last caught up to: the event with id
/// `mark.hwm` has the `ts` the mark recorded. Found cheaply: from the recorded line position
/// when its segment is plain (one line read), else from the segment that can hold the id.
/// `true` when that event is gone (pruned), so only positive evidence of other data — the same
/// id with another time — rejects an index. Found by tests/corruption.rs: an index copied from
/// a smaller store was kept and queries answered from its documents.
pub(super) fn store_holds_mark(store: &Store, mark: &Mark) -> Result<bool, StoreError> {
    if mark.hwm == 0 || mark.last_ts == i64::MIN {
        return Ok(true);
    }
    let look = |found: &mut Option<bool>, item: ScanItem<'_>| {
        if let ScanItem::Line { line, .. } = item {
            match line.id() {
                Some(id) if id == mark.hwm => {
                    *found = Some(line.ts().map(epoch) == Some(mark.last_ts));
                    return std::ops::ControlFlow::Break(());
                }
                Some(id) if id > mark.hwm => return std::ops::ControlFlow::Break(()),
                _ => {}
            }
        }
        std::ops::ControlFlow::Continue(())
    };
    let mut found: Option<bool> = None;
    // Falls back to the segment that can hold `hwm` when the position is not a plain segment.
    store.scan_after(mark.at, mark.hwm, &mut |item| look(&mut found, item))?;
    if found.is_none() && mark.at.is_some() {
        // The recorded position held other lines (data rewritten by vacuum, or other data).
        store.scan_from(mark.hwm, &mut |item| look(&mut found, item))?;
    }
    Ok(found.unwrap_or(true))
}

/// Prefix of the files that say an index update is pending (see [`super::EventIndex::mark_stale`]).
pub const STALE_PREFIX: &str = crate::layout::INDEX_STALE_PREFIX;

/// A pending index update; [`StaleMark::clear`] once the index matches the segments again.
#[derive(Debug)]
pub struct StaleMark {
    pub(super) path: PathBuf,
}

impl StaleMark {
    /// The index is consistent again.
    pub fn clear(self) {
        let _ = crate::safefs::remove_file(&self.path);
    }
}
