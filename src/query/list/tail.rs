//! The events the on-disk index has not caught up with yet (the *tail*): read from the
//! segments after the index's mark, and searched in a small in-memory index with the on-disk
//! schema, so the semantics are exactly the index's.

use tantivy::Index;

use crate::index::{self, Fields, IndexError};
use crate::record::Event;
use crate::store::{ScanItem, Store};

use super::search::search;
use super::*;

/// Events with id > `after`, put in an in-memory index and queried the same way.
pub(super) fn search_tail(
    store: &Store,
    mark: index::Mark,
    q: &ListQuery,
) -> Result<(Vec<Row>, u64), IndexError> {
    let events = tail_events(store, mark)?;
    let scanned = events.len() as u64;
    let rows = search_events(&events, q)?
        .into_iter()
        .filter_map(|i| events.get(i).map(Row::from_event))
        .collect();
    Ok((rows, scanned))
}

/// The events after `mark`, read from the segments (from the mark's line when it is known).
pub(super) fn tail_events(store: &Store, mark: index::Mark) -> Result<Vec<Event>, IndexError> {
    Ok(events_after(store, mark.at, mark.hwm)?.0)
}

/// The events with an id above `after`, read from `at` (the line of event `after`, when known)
/// on, and where the last line read is (segment first id, offset), to read on from there.
pub(super) type Read = (Vec<Event>, Option<(u64, u64)>);

pub(super) fn events_after(
    store: &Store,
    at: Option<(u64, u64)>,
    after: u64,
) -> Result<Read, IndexError> {
    let mut events: Vec<Event> = Vec::new();
    let mut end = at;
    store.scan_after(at, after + 1, &mut |item| {
        if let ScanItem::Line { pos, line } = item {
            if line.id().is_some_and(|id| id > after) {
                let json = line.event_json();
                if let Ok(ev) = Event::from_json_text(&String::from_utf8_lossy(&json)) {
                    events.push(ev);
                }
                end = Some((index::segment_id(&pos.segment), pos.offset));
            }
        }
        std::ops::ControlFlow::Continue(())
    })?;
    Ok((events, end))
}

/// An in-memory index of `events` (with the on-disk schema), the offset field carrying each
/// event's position in `events`.
pub(super) struct RamIndex {
    index: Index,
    fields: Fields,
    reader: tantivy::IndexReader,
}

impl RamIndex {
    pub(super) fn build(events: &[Event]) -> Result<RamIndex, IndexError> {
        let (schema, fields) = index::schema();
        // tantivy sizes (and zeroes, and walks when finishing) its term hash table from the
        // memory budget: a budget for a few events, not the 15 MB of a bulk writer, or a tail
        // of one event costs milliseconds (the table grows if needed).
        let budget = events
            .len()
            .saturating_mul(20_000)
            .clamp(500_000, 15_000_000);
        // One segment written in this thread: an `IndexWriter` starts an indexing thread and
        // a segment updater for each build, which cost more than indexing a tail of a few
        // events (built once per append in `serve`). Its caveats (an empty directory, no
        // garbage collection) are those of a fresh in-memory directory used once.
        let mut writer: tantivy::SingleSegmentIndexWriter<tantivy::TantivyDocument> =
            Index::builder()
                .schema(schema)
                .single_segment_index_writer(tantivy::directory::RamDirectory::create(), budget)
                .map_err(IndexError::InMemory)?;
        for (i, ev) in events.iter().enumerate() {
            let d = index::document(&fields, ev, 0, i as u64);
            writer.add_document(d).map_err(IndexError::InMemory)?;
        }
        let ram = writer.finalize().map_err(IndexError::InMemory)?;
        let reader = ram
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .try_into()
            .map_err(IndexError::InMemory)?;
        Ok(RamIndex {
            index: ram,
            fields,
            reader,
        })
    }

    /// The positions of the events matching `q` (up to its limit, at most `len`), newest first.
    pub(super) fn search(&self, q: &ListQuery, len: usize) -> Result<Vec<usize>, IndexError> {
        // Never ask for more than there is (a count asks for everything).
        let mut q = q.clone();
        q.limit = q.limit.min(len);
        let rows = search(
            &self.reader.searcher(),
            &self.index,
            &self.fields,
            &q,
            false,
            &IndexError::InMemory,
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.location.map(|(_, i)| i as usize))
            .collect())
    }
}

/// The positions in `events` of those matching `q` (up to its limit), newest first: the events
/// are put in an in-memory index with the on-disk schema and asked the same tantivy query, so
/// the semantics are exactly the index's.
pub(super) fn search_events(events: &[Event], q: &ListQuery) -> Result<Vec<usize>, IndexError> {
    // Filters alone need no index (the same semantics, checked by `direct`'s property test).
    if super::direct::can_match(q) {
        return Ok(super::direct::search(events, q));
    }
    if events.is_empty() {
        // The in-memory index (and its 15 MB arena) only when there is a tail to search.
        return Ok(Vec::new());
    }
    RamIndex::build(events)?.search(q, events.len())
}
