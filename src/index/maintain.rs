//! Maintenance of the index: bounded segment count, merges, and the deletions and
//! replacements prune and vacuum make.

use tantivy::{IndexWriter, Term};

use super::{
    document, high_water_mark, tantivy_err, EventIndex, IndexError, CATCH_UP_MEMORY, MAX_SEGMENTS,
};
use crate::record::Event;
use crate::store::{ScanItem, Store};

impl EventIndex {
    /// Keeps the number of index segments bounded: with more than [`MAX_SEGMENTS`], merges all
    /// but the largest few into one (the small ones are the recent catch-ups, so this is cheap).
    pub(super) fn merge_small_segments(&self, writer: &mut IndexWriter) -> Result<(), IndexError> {
        let mut metas = self
            .index
            .searchable_segment_metas()
            .map_err(tantivy_err(&self.dir))?;
        if metas.len() <= MAX_SEGMENTS {
            return Ok(());
        }
        metas.sort_by_key(|m| std::cmp::Reverse(m.num_docs()));
        let keep = 3;
        let ids = self.in_id_order(metas[keep..].iter().map(|m| m.id()).collect())?;
        writer.merge(&ids).wait().map_err(tantivy_err(&self.dir))?;
        Ok(())
    }

    /// Segment ids sorted by the smallest event id they hold: a merge keeps the documents in
    /// the order of the segments given, so documents stay in event order.
    fn in_id_order(
        &self,
        mut ids: Vec<tantivy::index::SegmentId>,
    ) -> Result<Vec<tantivy::index::SegmentId>, IndexError> {
        let reader = self.index.reader().map_err(tantivy_err(&self.dir))?;
        let searcher = reader.searcher();
        let mut min_of = std::collections::HashMap::new();
        for r in searcher.segment_readers() {
            let min = r
                .fast_fields()
                .u64("id")
                .map(|c| c.min_value())
                .unwrap_or(0);
            min_of.insert(r.segment_id(), min);
        }
        ids.sort_by_key(|id| min_of.get(id).copied().unwrap_or(0));
        Ok(ids)
    }

    /// Merges everything into one segment (after a full reindex).
    pub fn merge_all(&self) -> Result<(), IndexError> {
        let ids = self
            .index
            .searchable_segment_ids()
            .map_err(tantivy_err(&self.dir))?;
        let ids = self.in_id_order(ids)?;
        if ids.len() <= 1 {
            return Ok(());
        }
        let mut writer = self.writer(CATCH_UP_MEMORY)?;
        writer.merge(&ids).wait().map_err(tantivy_err(&self.dir))?;
        writer
            .wait_merging_threads()
            .map_err(tantivy_err(&self.dir))?;
        self.share_files();
        Ok(())
    }

    /// Number of index segments (for status and tests).
    pub fn segment_count(&self) -> usize {
        self.index
            .searchable_segment_ids()
            .map(|v| v.len())
            .unwrap_or(0)
    }

    /// Every live document matching `query`, as event ids grouped by segment (first id).
    /// Walks each index segment's matches with the id and segment columns at hand (no set of
    /// document addresses), then builds the sets in bulk from sorted vectors.
    pub fn matching_ids(
        &self,
        query: &dyn tantivy::query::Query,
    ) -> Result<std::collections::BTreeMap<u64, std::collections::BTreeSet<u64>>, IndexError> {
        use tantivy::query::EnableScoring;
        use tantivy::{DocSet, TERMINATED};
        let reader = self.index.reader().map_err(tantivy_err(&self.dir))?;
        let searcher = reader.searcher();
        let weight = query
            .weight(EnableScoring::disabled_from_searcher(&searcher))
            .map_err(tantivy_err(&self.dir))?;
        let mut by_seg: std::collections::HashMap<u64, Vec<u64>> = Default::default();
        for seg_reader in searcher.segment_readers() {
            let ff = seg_reader.fast_fields();
            let ids = ff.u64("id").map_err(tantivy_err(&self.dir))?;
            let segs = ff.u64("seg").map_err(tantivy_err(&self.dir))?;
            let alive = seg_reader.alive_bitset();
            let mut scorer = weight
                .scorer(seg_reader, 1.0)
                .map_err(tantivy_err(&self.dir))?;
            let mut doc = scorer.doc();
            let mut last_seg = u64::MAX;
            let mut bucket: Vec<u64> = Vec::new();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    if let (Some(i), Some(s)) = (ids.first(doc), segs.first(doc)) {
                        if s != last_seg {
                            if !bucket.is_empty() {
                                by_seg.entry(last_seg).or_default().append(&mut bucket);
                            }
                            last_seg = s;
                        }
                        bucket.push(i);
                    }
                }
                doc = scorer.advance();
            }
            if !bucket.is_empty() {
                by_seg.entry(last_seg).or_default().append(&mut bucket);
            }
        }
        Ok(by_seg
            .into_iter()
            .map(|(seg, mut ids)| {
                ids.sort_unstable();
                ids.dedup();
                (seg, ids.into_iter().collect())
            })
            .collect())
    }

    /// After segments were deleted or rewritten (prune, vacuum): drops the documents of the
    /// old segments and indexes the events of their replacements, in one commit. `old` are the
    /// first ids of the segments that are gone, `new` those of the segments written instead.
    pub fn replace_segments(
        &self,
        store: &Store,
        old: &[u64],
        new: &[u64],
    ) -> Result<(), IndexError> {
        let mut writer = self.writer(CATCH_UP_MEMORY)?;
        for seg in old {
            writer.delete_term(Term::from_field_u64(self.fields.seg, *seg));
        }
        let mark = high_water_mark(&self.index);
        let mut failure = None;
        for seg in new {
            store.scan_segment_id(*seg, &mut |item| {
                if let ScanItem::Line { pos, line } = item {
                    if line.id().is_some_and(|id| id <= mark.hwm) {
                        let json = line.event_json();
                        if let Ok(ev) = Event::from_json_text(&String::from_utf8_lossy(&json)) {
                            let d = document(&self.fields, &ev, *seg, pos.offset);
                            if let Err(e) = writer.add_document(d) {
                                failure = Some(e);
                                return std::ops::ControlFlow::Break(());
                            }
                        }
                    }
                }
                std::ops::ControlFlow::Continue(())
            })?;
        }
        if let Some(e) = failure {
            return Err(tantivy_err(&self.dir)(e));
        }
        let mut prepared = writer.prepare_commit().map_err(tantivy_err(&self.dir))?;
        prepared.set_payload(&mark.payload());
        prepared.commit().map_err(tantivy_err(&self.dir))?;
        writer
            .wait_merging_threads()
            .map_err(tantivy_err(&self.dir))?;
        self.share_files();
        Ok(())
    }

    /// Deletes every document matching `query` (after a prune removed those events).
    pub fn delete_matching(&self, query: Box<dyn tantivy::query::Query>) -> Result<(), IndexError> {
        let mut writer = self.writer(CATCH_UP_MEMORY)?;
        writer.delete_query(query).map_err(tantivy_err(&self.dir))?;
        let mark = high_water_mark(&self.index);
        let mut prepared = writer.prepare_commit().map_err(tantivy_err(&self.dir))?;
        prepared.set_payload(&mark.payload());
        prepared.commit().map_err(tantivy_err(&self.dir))?;
        writer
            .wait_merging_threads()
            .map_err(tantivy_err(&self.dir))?;
        self.share_files();
        Ok(())
    }

    /// Deletes the documents of these ids (prune).
    pub fn delete_ids(&self, ids: &[u64]) -> Result<(), IndexError> {
        let mut writer = self.writer(CATCH_UP_MEMORY)?;
        for id in ids {
            let t = Term::from_field_u64(self.fields.id, *id);
            let q = tantivy::query::RangeQuery::new(
                std::ops::Bound::Included(t.clone()),
                std::ops::Bound::Included(t),
            );
            writer
                .delete_query(Box::new(q))
                .map_err(tantivy_err(&self.dir))?;
        }
        let mark = high_water_mark(&self.index);
        let mut prepared = writer.prepare_commit().map_err(tantivy_err(&self.dir))?;
        prepared.set_payload(&mark.payload());
        prepared.commit().map_err(tantivy_err(&self.dir))?;
        writer
            .wait_merging_threads()
            .map_err(tantivy_err(&self.dir))?;
        self.share_files();
        Ok(())
    }
}
