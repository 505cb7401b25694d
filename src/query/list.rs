//! The list commands' query: filters (and an optional full-text query) over the index, newest
//! first, plus the events not yet indexed — so a query sees an event appended a millisecond
//! earlier even while another process holds the index writer.
//!
//! The not-yet-indexed tail is put in a small in-memory index with the same schema and asked
//! the same tantivy query, so both halves have exactly the same semantics. Without any usable
//! index on disk (read-only data dir before the first index, or a broken one that cannot be
//! rebuilt), the whole store is the "tail": slower, never wrong.

use std::ops::Bound;

use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, Index, Order, Searcher, Term};

use crate::index::{self, EventIndex, Fields, IndexError};
use crate::record::Event;
use crate::store::{ScanItem, Store};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Exact app.
    pub app: Option<String>,
    /// Exact category.
    pub category: Option<String>,
    /// Exact classification.
    pub classification: Option<String>,
    /// Exact status.
    pub status: Option<String>,
    /// Actor label or name.
    pub actor: Option<String>,
    /// Action, exact or a glob (`*`, `?`).
    pub action: Option<String>,
    /// Epoch seconds, inclusive.
    pub since: Option<i64>,
    /// Epoch seconds, inclusive.
    pub until: Option<i64>,
    /// Full-text query (tantivy syntax) over message and meta.
    pub text: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// One listed event: what the tables show, and where the event lives.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Row {
    /// Id.
    pub id: u64,
    /// Epoch seconds.
    pub ts: i64,
    /// App.
    pub app: Option<String>,
    /// Category.
    pub category: String,
    /// Action.
    pub action: String,
    /// Status.
    pub status: String,
    /// Classification.
    pub classification: Option<String>,
    /// Source type.
    pub source_type: Option<String>,
    /// Revision.
    pub rev: Option<String>,
    /// Image tag.
    pub image_tag: Option<String>,
    /// Actor label.
    pub actor_label: String,
    /// Message.
    pub message: String,
    /// (segment first id, offset), when it came from the index.
    pub location: Option<(u64, u64)>,
    /// The whole event, when it came from the tail.
    pub event: Option<Box<Event>>,
}

impl Row {
    fn from_event(e: &Event) -> Row {
        Row {
            id: e.id,
            ts: index::epoch(&e.ts),
            app: e.app.clone(),
            category: e.category.clone(),
            action: e.action.clone(),
            status: e.status.clone(),
            classification: e.classification.clone(),
            source_type: e.source_type.clone(),
            rev: e.rev.clone(),
            image_tag: e.image_tag.clone(),
            actor_label: e.actor_label.clone(),
            message: e.message.clone(),
            location: None,
            event: Some(Box::new(e.clone())),
        }
    }
}

/// What answered a query.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// Events read from the index.
    pub from_index: usize,
    /// Events scanned past the index's high-water mark.
    pub tail_scanned: u64,
}

fn glob_to_regex(glob: &str) -> String {
    let mut re = String::new();
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            // Only the regex syntax's meta characters are escaped: escaping anything else (a
            // control character, `→`, U+FFFD) is itself a syntax error (found by the
            // `query_parse` fuzz target).
            c if "\\.+*?()|[]{}^$#&-~".contains(c) => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re
}

/// The tantivy query for a list query.
pub fn build_query(index: &Index, f: &Fields, q: &ListQuery) -> Result<Box<dyn Query>, IndexError> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let term = |field, v: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, v),
            IndexRecordOption::Basic,
        ))
    };
    for (field, v) in [
        (f.app, &q.app),
        (f.category, &q.category),
        (f.classification, &q.classification),
        (f.status, &q.status),
        (f.actor, &q.actor),
    ] {
        if let Some(v) = v {
            clauses.push((Occur::Must, term(field, v)));
        }
    }
    if let Some(a) = &q.action {
        if a.contains(['*', '?']) {
            let re = RegexQuery::from_pattern(&glob_to_regex(a), f.action)
                .map_err(|e| IndexError::Query(e.to_string()))?;
            clauses.push((Occur::Must, Box::new(re)));
        } else {
            clauses.push((Occur::Must, term(f.action, a)));
        }
    }
    if q.since.is_some() || q.until.is_some() {
        let lo = q.since.map_or(Bound::Unbounded, |s| {
            Bound::Included(Term::from_field_i64(f.ts, s))
        });
        let hi = q.until.map_or(Bound::Unbounded, |u| {
            Bound::Included(Term::from_field_i64(f.ts, u))
        });
        clauses.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
    }
    if let Some(text) = &q.text {
        let mut parser = QueryParser::for_index(index, vec![f.text]);
        parser.set_conjunction_by_default();
        let parsed = parser
            .parse_query(text)
            .map_err(|e| IndexError::Query(e.to_string()))?;
        // Some queries the parser accepts only fail when run (`<unknown field>:*` becomes an
        // exists query that looks its field up late): check them now, against the schema, so a
        // bad query is always a parse-time error. Found by the query_parse fuzz target.
        check_runnable(&*parsed, &index.schema())?;
        clauses.push((Occur::Must, parsed));
    }
    Ok(match clauses.len() {
        0 => Box::new(AllQuery),
        _ => Box::new(BooleanQuery::new(clauses)),
    })
}

fn read_str(
    col: &Option<tantivy::columnar::StrColumn>,
    doc: u32,
    buf: &mut String,
) -> Option<String> {
    let col = col.as_ref()?;
    let ord = col.ords().first(doc)?;
    buf.clear();
    col.ord_to_str(ord, buf).ok()?.then(|| buf.clone())
}

/// Runs the query on one searcher, newest first: by `ts`, and among events of the same second
/// by id.
///
/// When document order is time order (`time_ordered`: every event indexed came at or after the
/// previous one, as live capture always does), the newest matches are the last matching
/// documents of each index segment: they are read from the end in growing windows, so a list
/// query touches thousands of documents instead of all of them. Otherwise the top `limit` by
/// `ts` are collected, and when the last second is cut by the limit, a second pass takes that
/// second's events by id, so ties are decided exactly.
fn search(
    searcher: &Searcher,
    index: &Index,
    f: &Fields,
    q: &ListQuery,
    time_ordered: bool,
) -> Result<Vec<Row>, IndexError> {
    let query = build_query(index, f, q)?;
    let limit = q.limit.max(1);
    let err = |e: tantivy::TantivyError| IndexError::Query(e.to_string());
    let hits: Vec<DocAddress> = if time_ordered {
        newest_documents(searcher, query.as_ref(), limit).map_err(err)?
    } else {
        let by_ts = TopDocs::with_limit(limit).order_by_fast_field::<i64>("ts", Order::Desc);
        let mut hits: Vec<(Option<i64>, DocAddress)> =
            searcher.search(&query, &by_ts).map_err(err)?;
        if hits.len() == limit {
            if let Some(last_ts) = hits.last().and_then(|(t, _)| *t) {
                hits.retain(|(t, _)| *t != Some(last_ts));
                let second = Term::from_field_i64(f.ts, last_ts);
                let same_second = BooleanQuery::new(vec![
                    (Occur::Must, query.box_clone()),
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            Bound::Included(second.clone()),
                            Bound::Included(second),
                        )),
                    ),
                ]);
                let by_id = TopDocs::with_limit(limit - hits.len())
                    .order_by_fast_field::<u64>("id", Order::Desc);
                let ties: Vec<(Option<u64>, DocAddress)> =
                    searcher.search(&same_second, &by_id).map_err(err)?;
                hits.extend(ties.into_iter().map(|(_, a)| (Some(last_ts), a)));
            }
        }
        hits.into_iter().map(|(_, a)| a).collect()
    };
    let mut rows = Vec::with_capacity(hits.len());
    let mut buf = String::new();
    let mut cached: Option<(u32, SegmentColumns)> = None;
    for addr in hits {
        if cached.as_ref().map(|(o, _)| *o) != Some(addr.segment_ord) {
            let reader = searcher.segment_reader(addr.segment_ord);
            cached = Some((addr.segment_ord, SegmentColumns::open(reader)?));
        }
        let Some((_, cols)) = &cached else { continue };
        let doc = addr.doc_id;
        let u = |c: &tantivy::columnar::Column<u64>| c.first(doc).unwrap_or(0);
        rows.push(Row {
            id: u(&cols.id),
            ts: cols.ts.first(doc).unwrap_or(0),
            app: read_str(&cols.app, doc, &mut buf),
            category: read_str(&cols.category, doc, &mut buf).unwrap_or_default(),
            action: read_str(&cols.action, doc, &mut buf).unwrap_or_default(),
            status: read_str(&cols.status, doc, &mut buf).unwrap_or_default(),
            classification: read_str(&cols.classification, doc, &mut buf),
            source_type: read_str(&cols.source_type, doc, &mut buf),
            rev: read_str(&cols.rev, doc, &mut buf),
            image_tag: read_str(&cols.image_tag, doc, &mut buf),
            actor_label: read_str(&cols.actor_label, doc, &mut buf).unwrap_or_default(),
            message: read_str(&cols.message, doc, &mut buf).unwrap_or_default(),
            location: Some((u(&cols.seg), u(&cols.off))),
            event: None,
        });
    }
    rows.sort_by_key(|r| std::cmp::Reverse((r.ts, r.id)));
    rows.truncate(q.limit);
    Ok(rows)
}

/// The last `limit` matching, live documents of every index segment, found by scanning
/// windows from the end of each segment (4,096 documents, then 8× more until enough match).
fn newest_documents(
    searcher: &Searcher,
    query: &dyn Query,
    limit: usize,
) -> tantivy::Result<Vec<DocAddress>> {
    use tantivy::query::EnableScoring;
    use tantivy::{DocSet, TERMINATED};
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut out = Vec::new();
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let max = reader.max_doc();
        let alive = reader.alive_bitset();
        let mut window: u32 = 4096;
        loop {
            let lo = max.saturating_sub(window);
            let mut scorer = weight.scorer(reader, 1.0)?;
            let mut doc = scorer.doc();
            if doc < lo {
                doc = scorer.seek(lo);
            }
            let mut found = Vec::new();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    found.push(doc);
                }
                doc = scorer.advance();
            }
            if found.len() >= limit || lo == 0 {
                let skip = found.len().saturating_sub(limit);
                out.extend(
                    found[skip..]
                        .iter()
                        .map(|d| DocAddress::new(ord as u32, *d)),
                );
                break;
            }
            window = window.saturating_mul(8);
        }
    }
    Ok(out)
}

struct SegmentColumns {
    id: tantivy::columnar::Column<u64>,
    ts: tantivy::columnar::Column<i64>,
    seg: tantivy::columnar::Column<u64>,
    off: tantivy::columnar::Column<u64>,
    app: Option<tantivy::columnar::StrColumn>,
    category: Option<tantivy::columnar::StrColumn>,
    action: Option<tantivy::columnar::StrColumn>,
    status: Option<tantivy::columnar::StrColumn>,
    classification: Option<tantivy::columnar::StrColumn>,
    source_type: Option<tantivy::columnar::StrColumn>,
    rev: Option<tantivy::columnar::StrColumn>,
    image_tag: Option<tantivy::columnar::StrColumn>,
    actor_label: Option<tantivy::columnar::StrColumn>,
    message: Option<tantivy::columnar::StrColumn>,
}

impl SegmentColumns {
    fn open(reader: &tantivy::SegmentReader) -> Result<SegmentColumns, IndexError> {
        let ff = reader.fast_fields();
        let e = |e: tantivy::TantivyError| IndexError::Query(e.to_string());
        let s = |name: &str| ff.str(name).map_err(e);
        Ok(SegmentColumns {
            id: ff.u64("id").map_err(e)?,
            ts: ff.i64("ts").map_err(e)?,
            seg: ff.u64("seg").map_err(e)?,
            off: ff.u64("off").map_err(e)?,
            app: s("app")?,
            category: s("category")?,
            action: s("action")?,
            status: s("status")?,
            classification: s("classification")?,
            source_type: s("source_type")?,
            rev: s("rev")?,
            image_tag: s("image_tag")?,
            actor_label: s("actor_label")?,
            message: s("message")?,
        })
    }
}

/// Events with id > `after`, put in an in-memory index and queried the same way.
fn search_tail(
    store: &Store,
    mark: index::Mark,
    q: &ListQuery,
) -> Result<(Vec<Row>, u64), IndexError> {
    let after = mark.hwm;
    let mut events: Vec<Event> = Vec::new();
    store.scan_after(mark.at, after + 1, &mut |item| {
        if let ScanItem::Line { line, .. } = item {
            if line.id().is_some_and(|id| id > after) {
                let json = line.event_json();
                if let Ok(ev) = Event::from_json_text(&String::from_utf8_lossy(&json)) {
                    events.push(ev);
                }
            }
        }
        std::ops::ControlFlow::Continue(())
    })?;
    let scanned = events.len() as u64;
    if events.is_empty() {
        return Ok((Vec::new(), 0));
    }
    // The in-memory index (and its 15 MB arena) only when there is a tail to search.
    let (schema, fields) = index::schema();
    let ram = Index::create_in_ram(schema);
    let mut writer: tantivy::IndexWriter = ram
        .writer_with_num_threads(1, 15_000_000)
        .map_err(|e| IndexError::Query(e.to_string()))?;
    for (i, ev) in events.iter().enumerate() {
        // The offset field carries the position in `events`, to get the event back.
        let d = index::document(&fields, ev, 0, i as u64);
        writer
            .add_document(d)
            .map_err(|e| IndexError::Query(e.to_string()))?;
    }
    writer
        .commit()
        .map_err(|e| IndexError::Query(e.to_string()))?;
    let reader = ram.reader().map_err(|e| IndexError::Query(e.to_string()))?;
    // Never ask for more than there is (a count asks for everything).
    let mut q = q.clone();
    q.limit = q.limit.min(events.len());
    let rows = search(&reader.searcher(), &ram, &fields, &q, false)?;
    let rows = rows
        .into_iter()
        .filter_map(|r| {
            r.location
                .and_then(|(_, i)| events.get(i as usize))
                .map(Row::from_event)
        })
        .collect();
    Ok((rows, scanned))
}

/// Answers a list query: catches the index up when it can (never waiting for another
/// writer), then merges the committed index with the not-yet-indexed tail.
pub fn run(
    store: &Store,
    data_dir: &std::path::Path,
    q: &ListQuery,
) -> Result<(Vec<Row>, Answer), IndexError> {
    store.check_readable()?;
    // A prune or vacuum died between changing segments and updating the index: rebuild it
    // (aside, then swapped in) before trusting it. Read-only or busy: answer as we can.
    let stale = EventIndex::stale_marks(data_dir);
    if !stale.is_empty() && EventIndex::rebuild(data_dir, store, &mut |_| {}).is_ok() {
        for p in stale {
            let _ = crate::store::fsutil::remove_file(p);
        }
    }
    let index = match EventIndex::open_or_create(data_dir) {
        Ok(i) => Some(i),
        // Read-only data dir without an index yet, or a broken index we cannot replace here.
        Err(_) => match EventIndex::open_existing(data_dir) {
            Ok(i) => i,
            Err(_) => {
                // Broken: rebuild if we can, else answer from the segments alone.
                if EventIndex::remove(data_dir).is_ok() {
                    EventIndex::open_or_create(data_dir).ok()
                } else {
                    None
                }
            }
        },
    };
    let mut answer = Answer::default();
    let Some(index) = index else {
        let (rows, scanned) = search_tail(store, index::Mark::default(), q)?;
        answer.tail_scanned = scanned;
        return Ok((rows, answer));
    };
    match index.catch_up(store, &mut |_| {}) {
        Ok(_) | Err(IndexError::Busy(_)) => {}
        Err(IndexError::Tantivy { .. }) => {
            // Inconsistent with the store (restored data, another store's index): rebuild.
            drop(index);
            if EventIndex::remove(data_dir).is_err() {
                // Cannot replace it (read-only data dir): never serve it, scan the segments.
                return whole_tail(store, q);
            }
            let fresh = EventIndex::open_or_create(data_dir)?;
            let _ = fresh.catch_up(store, &mut |_| {});
            return finish(store, &fresh, q);
        }
        Err(e) if read_only(&e) => {}
        Err(e) => return Err(e),
    }
    match finish(store, &index, q) {
        // tantivy takes a lock file to open a reader, which a read-only data dir (or an index
        // dir we may not write) refuses: answer from the segments alone, writing nothing.
        // Found by tests/resource_faults.rs: every list query failed on a read-only data dir
        // that had an index ("Failed to acquire Lockfile").
        Err(e) if read_only(&e) => whole_tail(store, q),
        other => other,
    }
}

/// The answer from the segments alone (an in-memory index of every event): slow, never wrong.
fn whole_tail(store: &Store, q: &ListQuery) -> Result<(Vec<Row>, Answer), IndexError> {
    let (rows, scanned) = search_tail(store, index::Mark::default(), q)?;
    Ok((
        rows,
        Answer {
            from_index: 0,
            tail_scanned: scanned,
        },
    ))
}

fn read_only(e: &IndexError) -> bool {
    let text = e.to_string();
    text.contains("Read-only") || text.contains("ermission denied")
}

fn finish(
    store: &Store,
    index: &EventIndex,
    q: &ListQuery,
) -> Result<(Vec<Row>, Answer), IndexError> {
    // The high-water mark first, then the reader: the reader sees at least that commit, and
    // anything newer it also sees is deduplicated below.
    let hwm = index::high_water_mark(&index.index);
    let reader = index
        .index
        .reader_builder()
        .reload_policy(tantivy::ReloadPolicy::Manual)
        .try_into()
        .map_err(|e: tantivy::TantivyError| IndexError::Query(e.to_string()))?;
    let mut rows = search(
        &reader.searcher(),
        &index.index,
        &index.fields,
        q,
        hwm.time_ordered,
    )?;
    let mut answer = Answer {
        from_index: rows.len(),
        tail_scanned: 0,
    };
    let (tail, scanned) = search_tail(store, hwm, q)?;
    answer.tail_scanned = scanned;
    if !tail.is_empty() {
        let known: std::collections::HashSet<u64> = rows.iter().map(|r| r.id).collect();
        rows.extend(tail.into_iter().filter(|r| !known.contains(&r.id)));
        rows.sort_by_key(|r| std::cmp::Reverse((r.ts, r.id)));
        rows.truncate(q.limit);
    }
    Ok((rows, answer))
}

/// One page of a list query, and how many events match in all.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The rows of the page, newest first.
    pub rows: Vec<Row>,
    /// Every matching event (index and tail together).
    pub total: u64,
}

/// Answers a list query one page at a time (the HTTP API): `q.limit` is ignored; the rows are
/// `offset..offset + count` of the newest-first answer, and `total` counts every match. Same
/// semantics as [`run`], which it calls with `limit = offset + count`.
pub fn run_page(
    store: &Store,
    data_dir: &std::path::Path,
    q: &ListQuery,
    offset: usize,
    count: usize,
) -> Result<Page, IndexError> {
    let mut q = q.clone();
    q.limit = offset.saturating_add(count);
    let (rows, _) = run(store, data_dir, &q)?;
    let total = count_matches(store, data_dir, &q)?;
    Ok(Page {
        rows: rows.into_iter().skip(offset).collect(),
        total,
    })
}

/// How many events match: the committed index up to its high-water mark, plus the tail after
/// it (each event counted once, whatever commits land meanwhile).
pub fn count_matches(
    store: &Store,
    data_dir: &std::path::Path,
    q: &ListQuery,
) -> Result<u64, IndexError> {
    let err = |e: tantivy::TantivyError| IndexError::Query(e.to_string());
    let (indexed, mark) = match EventIndex::open_existing(data_dir).ok().flatten() {
        Some(index) => {
            let mark = index::high_water_mark(&index.index);
            let reader: tantivy::IndexReader = index
                .index
                .reader_builder()
                .reload_policy(tantivy::ReloadPolicy::Manual)
                .try_into()
                .map_err(err)?;
            let query = build_query(&index.index, &index.fields, q)?;
            // When no commit landed between the mark and the reader, the reader is at the mark
            // and counts exactly up to it; otherwise cut at the mark by id (a column scan).
            let query: Box<dyn Query> = if index::high_water_mark(&index.index) == mark {
                query
            } else {
                Box::new(BooleanQuery::new(vec![
                    (Occur::Must, query),
                    (
                        Occur::Must,
                        Box::new(RangeQuery::new(
                            Bound::Unbounded,
                            Bound::Included(Term::from_field_u64(index.fields.id, mark.hwm)),
                        )),
                    ),
                ]))
            };
            let n = reader
                .searcher()
                .search(&query, &tantivy::collector::Count)
                .map_err(err)?;
            (n as u64, mark)
        }
        None => (0, index::Mark::default()),
    };
    let mut all = q.clone();
    all.limit = usize::MAX;
    let (tail, _) = search_tail(store, mark, &all)?;
    Ok(indexed + tail.len() as u64)
}

/// Checks a full-text query's syntax without running it: `Err` carries the parser's message.
pub fn check_text(text: &str) -> Result<(), String> {
    let (schema, fields) = index::schema();
    let ram = Index::create_in_ram(schema);
    let mut parser = QueryParser::for_index(&ram, vec![fields.text]);
    parser.set_conjunction_by_default();
    let parsed = parser.parse_query(text).map_err(|e| e.to_string())?;
    check_runnable(&*parsed, &ram.schema()).map_err(|e| match e {
        IndexError::Query(m) => m,
        other => other.to_string(),
    })
}

/// A parsed query can be turned into a weight without scoring (what running it does first).
fn check_runnable(query: &dyn Query, schema: &tantivy::schema::Schema) -> Result<(), IndexError> {
    query
        .weight(tantivy::query::EnableScoring::disabled_from_schema(schema))
        .map(|_| ())
        .map_err(|e| IndexError::Query(e.to_string()))
}

/// The full events of rows (JSON output): tail rows carry theirs, index rows are fetched from
/// the segments by location.
pub fn full_events(store: &Store, rows: &[Row]) -> Result<Vec<Event>, IndexError> {
    let locations: Vec<(u64, u64)> = rows.iter().filter_map(|r| r.location).collect();
    let fetched = if locations.is_empty() {
        Default::default()
    } else {
        store.fetch(&locations)?
    };
    Ok(rows
        .iter()
        .filter_map(|r| match (&r.event, r.location) {
            (Some(e), _) => Some((**e).clone()),
            (None, Some(loc)) => fetched.get(&loc).cloned(),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error tantivy gives when it cannot create its reader lock file on a read-only
    /// filesystem is what sends a query to the segments-only answer.
    #[test]
    fn reader_lock_refused_by_a_read_only_fs_counts_as_read_only() {
        let io = std::io::Error::from_raw_os_error(30);
        let e = IndexError::Query(format!("Failed to acquire Lockfile: IoError({io:?}). None"));
        assert!(read_only(&e));
        assert!(!read_only(&IndexError::Query("syntax error".into())));
    }

    /// An exists query on a field the schema lacks is refused when built, not when run.
    #[test]
    fn queries_that_cannot_run_are_refused_when_built() {
        let (schema, fields) = index::schema();
        let ram = Index::create_in_ram(schema);
        let q = |text: &str| ListQuery {
            text: Some(text.into()),
            ..Default::default()
        };
        let weird = "\u{FFFD}\u{FFFD}0\u{14}-08T21:*";
        assert!(build_query(&ram, &fields, &q(weird)).is_err());
        assert!(check_text(weird).is_err());
        assert!(build_query(&ram, &fields, &q("app:*")).is_ok());
        assert!(build_query(&ram, &fields, &q("deploy AND finished")).is_ok());
    }

    #[test]
    fn globs() {
        assert_eq!(glob_to_regex("cron-job*"), "cron\\-job.*");
        assert_eq!(glob_to_regex("s?t"), "s.t");
        // Every glob is a valid pattern, whatever characters it holds.
        let (_, f) = index::schema();
        let ascii: String = (1u8..128).map(char::from).collect();
        for g in [
            ascii.as_str(),
            "\u{8}\u{FFFD}\t?91m",
            "→*",
            "a<b>*",
            "\\d*",
            "é?",
        ] {
            let re = glob_to_regex(g);
            assert!(
                RegexQuery::from_pattern(&re, f.action).is_ok(),
                "{g:?} → {re:?}"
            );
        }
    }
}
