//! The list commands' query: filters (and an optional full-text query) over the index, newest
//! first, plus the events not yet indexed — so a query sees an event appended a millisecond
//! earlier even while another process holds the index writer.
//!
//! The not-yet-indexed tail is put in a small in-memory index with the same schema and asked
//! the same tantivy query, so both halves have exactly the same semantics. Without any usable
//! index on disk (read-only data dir before the first index, or a broken one that cannot be
//! rebuilt), the whole store is the "tail": slower, never wrong.

use std::ops::Bound;

use tantivy::query::{BooleanQuery, Occur, Query, RangeQuery};
use tantivy::Term;

use crate::index::{self, EventIndex, IndexError};
use crate::record::Event;
use crate::store::Store;

mod direct;
mod firsts;
mod page;
mod plan;
mod search;
mod tail;
pub mod tally;
mod ts_filter;

pub use firsts::first_releases;
pub use page::{finish_page, indexed_page, matching_events, page_of, Indexed, Tail, View};
pub use plan::{build_query, check_query, check_text};
use tail::search_tail;

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
    /// Exact source type (`git-push`, `docker-image`, …).
    pub source_type: Option<String>,
    /// Release number (`meta.release`).
    pub release: Option<u64>,
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
    /// Release number (`meta.release`) of a release.
    pub release: Option<u64>,
    /// `meta.triggered_by_subcommand` (not in lean rows).
    pub triggered_by_subcommand: Option<String>,
    /// (segment first id, offset), when it came from the index.
    pub location: Option<(u64, u64)>,
    /// The whole event, when it came from the tail.
    pub event: Option<Box<Event>>,
}

impl Row {
    /// The row of an event read whole (the unindexed tail, `tail`, the demo).
    pub fn from_event(e: &Event) -> Row {
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
            release: index::release_number(e),
            triggered_by_subcommand: index::triggered_by_subcommand(e).map(str::to_string),
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

/// Answers a list query: refuses an invalid query first (before any index is read), catches
/// the index up when it can (never waiting for another writer), then merges the committed index with the not-yet-indexed tail.
pub fn run(
    store: &Store,
    data_dir: &std::path::Path,
    q: &ListQuery,
) -> Result<(Vec<Row>, Answer), IndexError> {
    check_query(q)?;
    store.check_readable()?;
    let Some(index) = EventIndex::open_for_query(data_dir, store)? else {
        return whole_tail(store, q);
    };
    match finish(store, &index, q) {
        // tantivy takes a lock file to open a reader, which a read-only data dir (or an index
        // dir we may not write) refuses: answer from the segments alone, writing nothing.
        // Found by tests/resource_faults.rs: every list query failed on a read-only data dir
        // that had an index ("Failed to acquire Lockfile").
        Err(e) if e.is_read_only() => whole_tail(store, q),
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

fn finish(
    store: &Store,
    index: &EventIndex,
    q: &ListQuery,
) -> Result<(Vec<Row>, Answer), IndexError> {
    // The high-water mark first, then the reader: the reader sees at least that commit, and
    // anything newer it also sees is deduplicated below.
    let hwm = index::high_water_mark(&index.index);
    let reader = manual_reader(index)?;
    let mut rows = search::search(
        &reader.searcher(),
        &index.index,
        &index.fields,
        q,
        hwm.time_ordered,
        &index.fault(),
    )?;
    let mut answer = Answer {
        from_index: rows.len(),
        tail_scanned: 0,
    };
    let (tail, scanned) = search_tail(store, hwm, q)?;
    answer.tail_scanned = scanned;
    merge_tail(&mut rows, tail);
    rows.truncate(q.limit);
    Ok((rows, answer))
}

/// A reader that stays at the commit it opened (a query never reloads mid-answer).
fn manual_reader(index: &EventIndex) -> Result<tantivy::IndexReader, IndexError> {
    index
        .index
        .reader_builder()
        .reload_policy(tantivy::ReloadPolicy::Manual)
        .try_into()
        .map_err(index.fault())
}

/// Adds the tail rows the index did not return (it may have committed some meanwhile), newest
/// first.
fn merge_tail(rows: &mut Vec<Row>, tail: Vec<Row>) {
    if tail.is_empty() {
        return;
    }
    let known: std::collections::HashSet<u64> = rows.iter().map(|r| r.id).collect();
    rows.extend(tail.into_iter().filter(|r| !known.contains(&r.id)));
    rows.sort_by_key(|r| std::cmp::Reverse((r.ts, r.id)));
}

/// `q` as a query over the committed documents up to `mark`: when no commit landed between
/// reading the mark and opening the reader, the reader is at the mark and counts exactly up to
/// it; otherwise cut at the mark by id (a column scan).
fn up_to_mark(
    index: &EventIndex,
    q: &ListQuery,
    mark: index::Mark,
) -> Result<Box<dyn Query>, IndexError> {
    let query = build_query(&index.index, &index.fields, q)?;
    if index::high_water_mark(&index.index) == mark {
        return Ok(query);
    }
    Ok(Box::new(BooleanQuery::new(vec![
        (Occur::Must, query),
        (
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Unbounded,
                Bound::Included(Term::from_field_u64(index.fields.id, mark.hwm)),
            )),
        ),
    ])))
}

/// Every match of a list query (its limit ignored), newest first, as lean rows (see
/// `search_lean`: the fields the releases view needs, read in bulk), the committed index
/// merged with the not-yet-indexed tail as in [`run`].
pub fn run_lean(
    store: &Store,
    data_dir: &std::path::Path,
    q: &ListQuery,
) -> Result<Vec<Row>, IndexError> {
    check_query(q)?;
    store.check_readable()?;
    let mut all = q.clone();
    all.limit = usize::MAX;
    let Some(index) = EventIndex::open_for_query(data_dir, store)? else {
        return Ok(whole_tail(store, &all)?.0);
    };
    let lean = || -> Result<Vec<Row>, IndexError> {
        let hwm = index::high_water_mark(&index.index);
        let reader = manual_reader(&index)?;
        let mut rows = search::search_lean(
            &reader.searcher(),
            &index.index,
            &index.fields,
            &all,
            &index.fault(),
        )?;
        let (tail, _) = search_tail(store, hwm, &all)?;
        merge_tail(&mut rows, tail);
        Ok(rows)
    };
    match lean() {
        // As in `run`: no reader on a read-only data dir.
        Err(e) if e.is_read_only() => Ok(whole_tail(store, &all)?.0),
        other => other,
    }
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
    let (indexed, mark) = match EventIndex::open_existing(data_dir).ok().flatten() {
        Some(index) => match count_indexed(&index, q) {
            Ok(counted) => counted,
            // No reader on a read-only data dir (see `run`): count the segments alone.
            Err(e) if e.is_read_only() => (0, index::Mark::default()),
            Err(e) => return Err(e),
        },
        None => (0, index::Mark::default()),
    };
    let mut all = q.clone();
    all.limit = usize::MAX;
    let (tail, _) = search_tail(store, mark, &all)?;
    Ok(indexed + tail.len() as u64)
}

/// How many committed documents match, up to the index's high-water mark (returned too).
fn count_indexed(index: &EventIndex, q: &ListQuery) -> Result<(u64, index::Mark), IndexError> {
    let mark = index::high_water_mark(&index.index);
    let reader = manual_reader(index)?;
    let query = up_to_mark(index, q, mark)?;
    let n = reader
        .searcher()
        .search(&query, &tantivy::collector::Count)
        .map_err(index.fault())?;
    Ok((n as u64, mark))
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
    use super::plan::glob_to_regex;
    use super::*;
    use tantivy::query::RegexQuery;
    use tantivy::Index;

    use crate::index::InvalidQuery;

    fn text(t: &str) -> ListQuery {
        ListQuery {
            text: Some(t.into()),
            limit: 10,
            ..Default::default()
        }
    }

    /// Every kind of query the user can get wrong is the `InvalidQuery` variant (the user's
    /// fault), both when built and when only checked; decided by the variant, never the text.
    #[test]
    fn each_kind_of_invalid_query_is_the_users_fault() {
        let (schema, fields) = index::schema();
        let ram = Index::create_in_ram(schema);
        let syntax = [
            "\"unclosed",
            "nosuchfield:x",
            "app:",
            "(((a",
            "seg:notanumber",
            "ts:2026",
            "id:[1 TO x]",
        ];
        for t in syntax {
            let e = build_query(&ram, &fields, &text(t)).expect_err(t);
            assert!(e.is_user_error(), "{t}: {e:?}");
            assert!(
                matches!(e, IndexError::InvalidQuery(InvalidQuery::Syntax { ref query, .. }) if query == t),
                "{t}: {e:?}"
            );
            assert!(
                matches!(check_text(t), Err(InvalidQuery::Syntax { .. })),
                "{t}"
            );
        }
        let weird = "\u{FFFD}\u{FFFD}0\u{14}-08T21:*";
        let e = build_query(&ram, &fields, &text(weird)).err().unwrap();
        assert!(matches!(
            e,
            IndexError::InvalidQuery(InvalidQuery::Unrunnable { .. })
        ));
        assert!(matches!(
            check_text(weird),
            Err(InvalidQuery::Unrunnable { .. })
        ));
        // `.*a.{24}` as a DFA has 2^24 states: over tantivy's limit.
        let glob = format!("*a{}", "?".repeat(24));
        let q = ListQuery {
            action: Some(glob.clone()),
            ..Default::default()
        };
        match build_query(&ram, &fields, &q).err() {
            Some(IndexError::InvalidQuery(InvalidQuery::Glob { glob: g, .. })) => {
                assert_eq!(g, glob)
            }
            other => panic!("{other:?}"),
        }
    }

    /// An index whose files are damaged after it was built (nothing to catch up, so nothing
    /// rewrites it) fails the query as a fault of the index, naming it, never as the query's.
    #[test]
    fn a_damaged_index_is_a_fault_not_an_invalid_query() {
        use crate::store::{Ownership, StoreOptions};
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path(), StoreOptions::default(), Ownership::default());
        store.init().unwrap();
        let text = r#"{"id":0,"ts":"2026-03-01T00:00:00Z","app":"a","category":"app","action":"create","status":"success","classification":null,"source_trigger":"post-create","source_type":null,"image_tag":null,"rev":null,"actor_type":"system","actor_name":null,"actor_label":"dokku-system","correlation_id":null,"message":"created","meta":{},"created_at":"2026-03-01T00:00:00Z"}"#;
        let ctx = crate::store::AppendContext {
            now: "2026-03-01T00:00:00Z".into(),
            source_trigger: "test".into(),
            actor: crate::record::ActorStamp::system(),
        };
        store
            .append(&mut [Event::from_json_text(text).unwrap()], &ctx)
            .unwrap();
        let (rows, _) = run(&store, tmp.path(), &everything()).unwrap();
        assert_eq!(rows.len(), 1);
        damage_index_files(&EventIndex::dir_of(tmp.path()));
        let e = run(&store, tmp.path(), &everything()).unwrap_err();
        assert!(!e.is_user_error(), "{e:?}");
        assert!(!e.is_read_only(), "{e:?}");
        assert!(matches!(e, IndexError::Tantivy { .. }), "{e:?}");
        assert!(e
            .to_string()
            .contains(&*EventIndex::dir_of(tmp.path()).to_string_lossy()));
        // The same query on a sound index runs: the query was never the problem.
        EventIndex::rebuild(tmp.path(), &store, &mut |_| {}).unwrap();
        assert_eq!(run(&store, tmp.path(), &everything()).unwrap().0.len(), 1);
    }

    fn everything() -> ListQuery {
        ListQuery {
            limit: 10,
            ..Default::default()
        }
    }

    /// Truncates every data file of the index's segments (not its metadata).
    pub(crate) fn damage_index_files(dir: &std::path::Path) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".fast") || name.ends_with(".idx") || name.ends_with(".term") {
                std::fs::write(e.path(), b"").unwrap();
            }
        }
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
