//! The first release of each of some revisions of an app, without reading the app's whole deploy
//! history row by row: the releases view lists only its newest rows and needs, for each revision
//! among them, the earliest release that deployed it (to say "Rollback to v12").
//!
//! `rev` is indexed as a raw term, so the app's releases of the wanted revisions are found by
//! their postings (a few documents per revision) and only those are read: the cost grows with
//! the rows listed, not with the app's history.

use std::collections::{HashMap, HashSet};

use crate::index::{self, EventIndex, IndexError};
use crate::store::Store;

use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use super::search::{all_documents, read_str};
use super::tail::search_tail;
use super::{build_query, manual_reader, whole_tail, ListQuery, Row};

/// The successful deploy finishes of `app`.
fn releases_of(app: &str) -> ListQuery {
    ListQuery {
        app: Some(app.to_string()),
        category: Some("deploy".into()),
        action: Some("finish".into()),
        status: Some("success".into()),
        limit: usize::MAX,
        ..Default::default()
    }
}

/// For each of `revs`, the smallest release number of a successful deploy of `app` with that
/// revision (revisions never released are absent): the committed index and the not-yet-indexed
/// tail together, as [`super::run`] answers.
pub fn first_releases(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
    revs: &HashSet<String>,
) -> Result<HashMap<String, u64>, IndexError> {
    let mut firsts = HashMap::new();
    if revs.is_empty() {
        return Ok(firsts);
    }
    let q = releases_of(app);
    super::check_query(&q)?;
    store.check_readable()?;
    let Some(index) = EventIndex::open_for_query(data_dir, store)? else {
        fold_rows(&whole_tail(store, &q)?.0, revs, &mut firsts);
        return Ok(firsts);
    };
    let indexed = || -> Result<HashMap<String, u64>, IndexError> {
        let mut firsts = HashMap::new();
        let hwm = index::high_water_mark(&index.index);
        let reader = manual_reader(&index)?;
        let searcher = reader.searcher();
        // The app's releases with one of the revisions: a few postings per revision term.
        let any_rev: Vec<(Occur, Box<dyn Query>)> = revs
            .iter()
            .map(|r| {
                let term = Term::from_field_text(index.fields.rev, r);
                let q: Box<dyn Query> = Box::new(TermQuery::new(term, IndexRecordOption::Basic));
                (Occur::Should, q)
            })
            .collect();
        let query = BooleanQuery::new(vec![
            (Occur::Must, build_query(&index.index, &index.fields, &q)?),
            (Occur::Must, Box::new(BooleanQuery::new(any_rev))),
        ]);
        let fault = index.fault();
        let hits = all_documents(&searcher, &query).map_err(&fault)?;
        let mut buf = String::new();
        // Documents come in index-segment order: one run per segment.
        for run in hits.chunk_by(|a, b| a.segment_ord == b.segment_ord) {
            let ff = searcher.segment_reader(run[0].segment_ord).fast_fields();
            let rev = ff.str("rev").map_err(&fault)?;
            let Some(release) = ff.column_opt::<u64>("release").map_err(&fault)? else {
                continue;
            };
            for a in run {
                if let (Some(r), Some(n)) =
                    (read_str(&rev, a.doc_id, &mut buf), release.first(a.doc_id))
                {
                    keep_min(&mut firsts, &r, n);
                }
            }
        }
        let (tail, _) = search_tail(store, hwm, &q)?;
        fold_rows(&tail, revs, &mut firsts);
        Ok(firsts)
    };
    match indexed() {
        // As in `run`: no reader on a read-only data dir.
        Err(e) if e.is_read_only() => {
            fold_rows(&whole_tail(store, &q)?.0, revs, &mut firsts);
            Ok(firsts)
        }
        other => other,
    }
}

fn keep_min(firsts: &mut HashMap<String, u64>, rev: &str, n: u64) {
    firsts
        .entry(rev.to_string())
        .and_modify(|m| *m = (*m).min(n))
        .or_insert(n);
}

fn fold_rows(rows: &[Row], revs: &HashSet<String>, firsts: &mut HashMap<String, u64>) {
    for r in rows {
        if let (Some(rev), Some(n)) = (r.rev.as_deref(), r.release) {
            if revs.contains(rev) {
                keep_min(firsts, rev, n);
            }
        }
    }
}
