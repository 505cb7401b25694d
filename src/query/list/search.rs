//! Searching the on-disk index: newest first, rows read from the fast fields. The
//! not-yet-indexed tail is searched by `tail`.

use tantivy::collector::TopDocs;
use tantivy::query::Query;
use tantivy::{DocAddress, Index, Order, Searcher};

use crate::index::{Fields, IndexError};

use super::*;

pub(super) fn read_str(
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
/// by id. A failure of tantivy's is the server's side: `fault` wraps it (naming the index).
///
/// When document order is time order (`time_ordered`: every event indexed came at or after the
/// previous one, as live capture always does), the newest matches are the last matching
/// documents of each index segment: they are read from the end in growing windows, so a list
/// query touches thousands of documents instead of all of them. Otherwise the top `limit` by
/// `ts` are collected, and when the last second is cut by the limit, a second pass takes that
/// second's events by id, so ties are decided exactly.
pub(super) fn search(
    searcher: &Searcher,
    index: &Index,
    f: &Fields,
    q: &ListQuery,
    time_ordered: bool,
    fault: &dyn Fn(tantivy::TantivyError) -> IndexError,
) -> Result<Vec<Row>, IndexError> {
    let query = build_query(index, f, q)?;
    let limit = q.limit.max(1);
    let hits: Vec<DocAddress> = if time_ordered {
        newest_documents(searcher, query.as_ref(), limit).map_err(fault)?
    } else {
        let by_ts = TopDocs::with_limit(limit).order_by_fast_field::<i64>("ts", Order::Desc);
        let hits: Vec<(Option<i64>, DocAddress)> =
            searcher.search(&query, &by_ts).map_err(fault)?;
        settle_ties(searcher, query.as_ref(), limit, hits).map_err(fault)?
    };
    let mut rows = rows_of(searcher, &hits, fault)?;
    rows.sort_by_key(|r| std::cmp::Reverse((r.ts, r.id)));
    rows.truncate(q.limit);
    Ok(rows)
}

/// The top `limit` documents by `ts` (`hits`, as collected) with the last second decided
/// exactly: when the limit cuts that second, its events are taken again by id, newest first.
pub(super) fn settle_ties(
    searcher: &Searcher,
    query: &dyn Query,
    limit: usize,
    mut hits: Vec<(Option<i64>, DocAddress)>,
) -> tantivy::Result<Vec<DocAddress>> {
    if hits.len() == limit {
        if let Some(last_ts) = hits.last().and_then(|(t, _)| *t) {
            hits.retain(|(t, _)| *t != Some(last_ts));
            // The query's matches in that second: a filter on their `ts`, not a range scan of
            // the whole column (see `ts_filter`).
            let same_second = super::ts_filter::TsBounded {
                inner: query.box_clone(),
                lo: last_ts,
                hi: last_ts,
            };
            let by_id = TopDocs::with_limit(limit - hits.len())
                .order_by_fast_field::<u64>("id", Order::Desc);
            let ties: Vec<(Option<u64>, DocAddress)> = searcher.search(&same_second, &by_id)?;
            hits.extend(ties.into_iter().map(|(_, a)| (Some(last_ts), a)));
        }
    }
    Ok(hits.into_iter().map(|(_, a)| a).collect())
}

/// The rows of documents with only what finds the event: id, time and location (the other
/// fields empty). For callers that print the events themselves: the string columns are
/// zstd-compressed dictionaries, and a lookup per cell cost more than the rest of a page.
pub(super) fn locations_of(
    searcher: &Searcher,
    hits: &[DocAddress],
    fault: &dyn Fn(tantivy::TantivyError) -> IndexError,
) -> Result<Vec<Row>, IndexError> {
    let mut rows = Vec::with_capacity(hits.len());
    let mut cached: Option<(
        u32,
        [tantivy::columnar::Column<u64>; 3],
        tantivy::columnar::Column<i64>,
    )> = None;
    for addr in hits.iter().copied() {
        if cached.as_ref().map(|c| c.0) != Some(addr.segment_ord) {
            let ff = searcher.segment_reader(addr.segment_ord).fast_fields();
            let u = |n: &str| ff.u64(n).map_err(fault);
            cached = Some((
                addr.segment_ord,
                [u("id")?, u("seg")?, u("off")?],
                ff.i64("ts").map_err(fault)?,
            ));
        }
        let Some((_, [id, seg, off], ts)) = &cached else {
            continue;
        };
        let doc = addr.doc_id;
        let u = |c: &tantivy::columnar::Column<u64>| c.first(doc).unwrap_or(0);
        rows.push(Row {
            id: u(id),
            ts: ts.first(doc).unwrap_or(0),
            location: Some((u(seg), u(off))),
            ..Default::default()
        });
    }
    Ok(rows)
}

/// The rows of documents, read from the fast fields (no stored documents), in `hits` order.
/// Per index segment, each string column is read in bulk: a dictionary block is decoded once
/// per column, not once per cell (a block decode is a zstd frame: per cell, it was most of a
/// list query's time).
pub(super) fn rows_of(
    searcher: &Searcher,
    hits: &[DocAddress],
    fault: &dyn Fn(tantivy::TantivyError) -> IndexError,
) -> Result<Vec<Row>, IndexError> {
    let mut by_segment: std::collections::BTreeMap<u32, Vec<u32>> = Default::default();
    for addr in hits {
        by_segment
            .entry(addr.segment_ord)
            .or_default()
            .push(addr.doc_id);
    }
    let mut rows = Vec::with_capacity(hits.len());
    for (ord, docs) in by_segment {
        let cols = SegmentColumns::open(searcher.segment_reader(ord)).map_err(fault)?;
        let bulk = |c: &Option<tantivy::columnar::StrColumn>| {
            bulk_strs(c, &docs).map_err(|e| fault(tantivy::TantivyError::from(e)))
        };
        let mut app = bulk(&cols.app)?.into_iter();
        let mut category = bulk(&cols.category)?.into_iter();
        let mut action = bulk(&cols.action)?.into_iter();
        let mut status = bulk(&cols.status)?.into_iter();
        let mut classification = bulk(&cols.classification)?.into_iter();
        let mut source_type = bulk(&cols.source_type)?.into_iter();
        let mut rev = bulk(&cols.rev)?.into_iter();
        let mut image_tag = bulk(&cols.image_tag)?.into_iter();
        let mut actor_label = bulk(&cols.actor_label)?.into_iter();
        let mut message = bulk(&cols.message)?.into_iter();
        let mut subcommand = bulk(&cols.triggered_by_subcommand)?.into_iter();
        for doc in docs.iter().copied() {
            let u = |c: &tantivy::columnar::Column<u64>| c.first(doc).unwrap_or(0);
            rows.push(Row {
                id: u(&cols.id),
                ts: cols.ts.first(doc).unwrap_or(0),
                app: app.next().flatten(),
                category: category.next().flatten().unwrap_or_default(),
                action: action.next().flatten().unwrap_or_default(),
                status: status.next().flatten().unwrap_or_default(),
                classification: classification.next().flatten(),
                source_type: source_type.next().flatten(),
                rev: rev.next().flatten(),
                image_tag: image_tag.next().flatten(),
                actor_label: actor_label.next().flatten().unwrap_or_default(),
                message: message.next().flatten().unwrap_or_default(),
                release: cols.release.as_ref().and_then(|c| c.first(doc)),
                triggered_by_subcommand: subcommand.next().flatten(),
                location: Some((u(&cols.seg), u(&cols.off))),
                event: None,
            });
        }
    }
    Ok(rows)
}

/// The last `limit` matching, live documents of every index segment, found by scanning
/// windows from the end of each segment (4,096 documents, then 8× more until enough match).
pub(super) fn newest_documents(
    searcher: &Searcher,
    query: &dyn Query,
    limit: usize,
) -> tantivy::Result<Vec<DocAddress>> {
    Ok(newest_and_count(searcher, query, limit, false)?.0)
}

/// [`newest_documents`], and with `count`, how many live documents match in all, from the same
/// weight (one query preparation; tantivy counts a term or an all-documents query without
/// walking it when the segment has no deletions).
pub(super) fn newest_and_count(
    searcher: &Searcher,
    query: &dyn Query,
    limit: usize,
    count: bool,
) -> tantivy::Result<(Vec<DocAddress>, u64)> {
    use tantivy::query::EnableScoring;
    use tantivy::{DocSet, TERMINATED};
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut out = Vec::new();
    let mut total = 0u64;
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        if count {
            total += u64::from(weight.count(reader)?);
        }
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
    Ok((out, total))
}

pub(super) struct SegmentColumns {
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
    release: Option<tantivy::columnar::Column<u64>>,
    triggered_by_subcommand: Option<tantivy::columnar::StrColumn>,
}

impl SegmentColumns {
    fn open(reader: &tantivy::SegmentReader) -> tantivy::Result<SegmentColumns> {
        let ff = reader.fast_fields();
        let s = |name: &str| ff.str(name);
        Ok(SegmentColumns {
            id: ff.u64("id")?,
            ts: ff.i64("ts")?,
            seg: ff.u64("seg")?,
            off: ff.u64("off")?,
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
            release: ff.column_opt("release")?,
            triggered_by_subcommand: s("triggered_by_subcommand")?,
        })
    }
}

/// Every match of `q` on one searcher (no limit), newest first, as lean rows: id, time, status,
/// classification, source type, revision, image tag, release number and location; the other
/// fields empty. The string columns are read in bulk per segment (each distinct value decoded
/// once, in dictionary order), so tens of thousands of rows cost milliseconds, not the
/// dictionary lookup per cell of [`search()`].
pub(super) fn search_lean(
    searcher: &Searcher,
    index: &Index,
    f: &Fields,
    q: &ListQuery,
    fault: &dyn Fn(tantivy::TantivyError) -> IndexError,
) -> Result<Vec<Row>, IndexError> {
    let query = build_query(index, f, q)?;
    let hits = all_documents(searcher, query.as_ref()).map_err(fault)?;
    let mut rows = Vec::with_capacity(hits.len());
    for run in hits.chunk_by(|a, b| a.segment_ord == b.segment_ord) {
        let docs: Vec<u32> = run.iter().map(|a| a.doc_id).collect();
        let cols =
            SegmentColumns::open(searcher.segment_reader(run[0].segment_ord)).map_err(fault)?;
        let bulk = |c: &Option<tantivy::columnar::StrColumn>| {
            bulk_strs(c, &docs).map_err(|e| fault(tantivy::TantivyError::from(e)))
        };
        let status = bulk(&cols.status)?;
        let classification = bulk(&cols.classification)?;
        let source_type = bulk(&cols.source_type)?;
        let rev = bulk(&cols.rev)?;
        let image_tag = bulk(&cols.image_tag)?;
        for (i, doc) in docs.iter().enumerate() {
            let u = |c: &tantivy::columnar::Column<u64>| c.first(*doc).unwrap_or(0);
            rows.push(Row {
                id: u(&cols.id),
                ts: cols.ts.first(*doc).unwrap_or(0),
                status: status[i].clone().unwrap_or_default(),
                classification: classification[i].clone(),
                source_type: source_type[i].clone(),
                rev: rev[i].clone(),
                image_tag: image_tag[i].clone(),
                release: cols.release.as_ref().and_then(|c| c.first(*doc)),
                location: Some((u(&cols.seg), u(&cols.off))),
                ..Default::default()
            });
        }
    }
    rows.sort_by_key(|r| std::cmp::Reverse((r.ts, r.id)));
    Ok(rows)
}

/// Every matching, live document, in one pass per index segment.
pub(super) fn all_documents(
    searcher: &Searcher,
    query: &dyn Query,
) -> tantivy::Result<Vec<DocAddress>> {
    use tantivy::query::EnableScoring;
    use tantivy::{DocSet, TERMINATED};
    let weight = query.weight(EnableScoring::disabled_from_searcher(searcher))?;
    let mut out = Vec::new();
    for (ord, reader) in searcher.segment_readers().iter().enumerate() {
        let alive = reader.alive_bitset();
        let mut scorer = weight.scorer(reader, 1.0)?;
        let mut doc = scorer.doc();
        while doc != TERMINATED {
            if alive.is_none_or(|a| a.is_alive(doc)) {
                out.push(DocAddress::new(ord as u32, doc));
            }
            doc = scorer.advance();
        }
    }
    Ok(out)
}

/// The values of a string column for `docs`, each distinct term decoded once.
fn bulk_strs(
    col: &Option<tantivy::columnar::StrColumn>,
    docs: &[u32],
) -> std::io::Result<Vec<Option<String>>> {
    let Some(col) = col else {
        return Ok(vec![None; docs.len()]);
    };
    let ords: Vec<Option<u64>> = docs.iter().map(|d| col.ords().first(*d)).collect();
    let mut uniq: Vec<u64> = ords.iter().flatten().copied().collect();
    uniq.sort_unstable();
    uniq.dedup();
    let mut terms: Vec<String> = Vec::with_capacity(uniq.len());
    col.dictionary().sorted_ords_to_term_cb(&uniq, |b| {
        terms.push(String::from_utf8_lossy(b).into_owned())
    })?;
    Ok(ords
        .iter()
        .map(|o| {
            o.and_then(|o| uniq.binary_search(&o).ok())
                .and_then(|i| terms.get(i).cloned())
        })
        .collect())
}
