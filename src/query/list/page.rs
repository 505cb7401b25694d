//! A page and its total from a searcher someone else keeps open (`serve`'s long-lived reader),
//! instead of opening and catching up the index per call as [`super::run_page`] does.
//!
//! The caller vouches that the searcher holds exactly the documents up to `mark` (no commit
//! newer than the mark): then the rows and the count come from that one searcher, and the
//! events after the mark are the tail, read from the segments — so both add up to the same
//! events, whatever commits land meanwhile.

use tantivy::collector::{Count, TopDocs};
use tantivy::{DocAddress, Order, Searcher};

use super::search::{locations_of, newest_and_count, settle_ties};
use super::tail::{events_after, search_events, RamIndex};
use super::{build_query, check_query, merge_tail, ListQuery, Page, Row};
use crate::index::{EventIndex, IndexError, Mark};
use crate::record::Event;
use crate::store::Store;

/// An open searcher of an index and the mark it is exactly at.
pub struct View<'a> {
    /// The index (its schema, its directory for errors).
    pub index: &'a EventIndex,
    /// The searcher, at `mark`.
    pub searcher: &'a Searcher,
    /// What the searcher holds: every event up to this one.
    pub mark: Mark,
}

/// What the index answers to a page: its newest `limit` matches (id, time and location only)
/// and how many match in all.
#[derive(Debug, Clone, Default)]
pub struct Indexed {
    /// Newest first, at most the limit asked.
    pub rows: Vec<Row>,
    /// Every indexed match.
    pub total: u64,
}

/// The index's part of a page: the newest `limit` matches of `q` and their count, from one
/// weight on the view's searcher. Depends only on the searcher and the query, so a caller
/// holding the searcher may keep it as long as it keeps the searcher.
pub fn indexed_page(v: &View<'_>, q: &ListQuery, limit: usize) -> Result<Indexed, IndexError> {
    check_query(q)?;
    let limit = limit.max(1);
    let query = build_query(&v.index.index, &v.index.fields, q)?;
    let fault = v.index.fault();
    // Newest-first from the ends of the segments when document order is time order, else the
    // top by `ts` and the count as one collector.
    let (hits, total): (Vec<DocAddress>, u64) = if v.mark.time_ordered {
        newest_and_count(v.searcher, query.as_ref(), limit, true).map_err(&fault)?
    } else {
        let by_ts = TopDocs::with_limit(limit).order_by_fast_field::<i64>("ts", Order::Desc);
        let (top, n) = v.searcher.search(&query, &(by_ts, Count)).map_err(&fault)?;
        let hits = settle_ties(v.searcher, query.as_ref(), limit, top).map_err(&fault)?;
        (hits, n as u64)
    };
    let mut rows = locations_of(v.searcher, &hits, &fault)?;
    rows.sort_by_key(|r| std::cmp::Reverse((r.ts, r.id)));
    rows.truncate(limit);
    Ok(Indexed { rows, total })
}

/// The events after a mark, for every query that needs them until the store moves on again (a
/// server shares one among its requests). When the store moves on, [`Tail::extend`] reads only
/// the new events. Filters are matched on the events directly; a full-text query indexes them in
/// memory, once per tail (the first such query builds it).
pub struct Tail {
    events: Vec<Event>,
    /// The events indexed in memory, built by the first full-text query.
    ram: std::sync::Mutex<Option<std::sync::Arc<RamIndex>>>,
    /// The last event read (id) and its line (segment first id, offset).
    last: u64,
    at: Option<(u64, u64)>,
}

impl Tail {
    /// Reads the events after `mark` from the segments.
    pub fn read(store: &Store, mark: Mark) -> Result<Tail, IndexError> {
        let (events, at) = events_after(store, mark.at, mark.hwm)?;
        let last = events.last().map_or(mark.hwm, |e| e.id);
        Ok(Tail {
            events,
            ram: Default::default(),
            last,
            at,
        })
    }

    /// This tail and the events appended after it (read from its last line on).
    pub fn extend(&self, store: &Store) -> Result<Tail, IndexError> {
        let (new, at) = events_after(store, self.at, self.last)?;
        let mut events = self.events.clone();
        let last = new.last().map_or(self.last, |e| e.id);
        let grew = !new.is_empty();
        events.extend(new);
        let ram = if grew {
            None
        } else {
            self.ram.lock().ok().and_then(|r| r.clone())
        };
        Ok(Tail {
            events,
            ram: std::sync::Mutex::new(ram),
            last,
            at: at.or(self.at),
        })
    }

    /// Every event of the tail matching `q` (its limit ignored), newest first.
    pub fn matching(&self, q: &ListQuery) -> Result<Vec<Row>, IndexError> {
        let mut all = q.clone();
        all.limit = usize::MAX;
        let hits = if super::direct::can_match(&all) || self.events.is_empty() {
            super::direct::search(&self.events, &all)
        } else {
            self.ram_index()?.search(&all, self.events.len())?
        };
        let mut rows: Vec<Row> = hits
            .into_iter()
            .filter_map(|i| self.events.get(i).map(Row::from_event))
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.ts, r.id)));
        Ok(rows)
    }

    fn ram_index(&self) -> Result<std::sync::Arc<RamIndex>, IndexError> {
        // A poisoned lock only means another query panicked while building: build again.
        let mut slot = self.ram.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = slot.as_ref() {
            return Ok(r.clone());
        }
        let built = std::sync::Arc::new(RamIndex::build(&self.events)?);
        *slot = Some(built.clone());
        Ok(built)
    }
}

/// Rows `offset..offset + count` of the newest-first answer to `q` (its limit ignored), and
/// how many events match in all: the index's part (see [`indexed_page`], asked with
/// `limit = offset + count`) and the tail's matches (`None`: the caller knows the store holds
/// nothing after the index's mark, its head did not move since the index was caught up).
/// Rows from the index carry only id, time and location, rows of the tail their whole event.
pub fn finish_page(
    indexed: Indexed,
    tail: Option<&Tail>,
    q: &ListQuery,
    offset: usize,
    count: usize,
) -> Result<Page, IndexError> {
    let limit = offset.saturating_add(count).max(1);
    let Indexed {
        mut rows,
        mut total,
    } = indexed;
    if let Some(tail) = tail {
        let tail = tail.matching(q)?;
        total += tail.len() as u64;
        merge_tail(&mut rows, tail);
    }
    rows.truncate(limit);
    Ok(Page {
        rows: rows.into_iter().skip(offset).collect(),
        total,
    })
}

/// [`finish_page`] of [`indexed_page`] and the tail after the view's mark (read now unless
/// `scan_tail` is false); without a view (no usable index) the whole store is the tail.
pub fn page_of(
    store: &Store,
    view: Option<&View<'_>>,
    q: &ListQuery,
    offset: usize,
    count: usize,
    scan_tail: bool,
) -> Result<Page, IndexError> {
    check_query(q)?;
    let limit = offset.saturating_add(count).max(1);
    match view {
        Some(v) => {
            let indexed = indexed_page(v, q, limit)?;
            let tail = scan_tail.then(|| Tail::read(store, v.mark)).transpose()?;
            finish_page(indexed, tail.as_ref(), q, offset, count)
        }
        None => {
            let tail = Tail::read(store, Mark::default())?;
            finish_page(Indexed::default(), Some(&tail), q, offset, count)
        }
    }
}

/// Which of `events` match `q` (its limit ignored), as positions in ascending order: the same
/// tantivy query over an in-memory index of them, so a filter means what it means in a list.
pub fn matching_events(events: &[Event], q: &ListQuery) -> Result<Vec<usize>, IndexError> {
    check_query(q)?;
    let mut all = q.clone();
    all.limit = usize::MAX;
    let mut found = search_events(events, &all)?;
    found.sort_unstable();
    Ok(found)
}
