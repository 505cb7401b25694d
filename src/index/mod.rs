//! The search index: a tantivy index in `<data dir>/index/`, derived from the segments and
//! disposable (delete it and the next query rebuilds it). Never touched on the hook path.
//!
//! Each event is one document: its filterable fields as raw terms (app, category, action, status,
//! classification, actor, source type), `ts` and `id` as numbers, message and meta values as
//! full text, and where the event lives (segment + byte offset). The columns the list tables
//! show are fast fields, so a table never reads a segment; JSON output fetches the events from
//! the segments by location.
//!
//! The high-water mark (last indexed event id) is the commit payload, so catching up means
//! indexing the events after it, in one commit. Every commit adds an index segment; small ones
//! are merged synchronously when there are more than [`MAX_SEGMENTS`], so readers stay fast and
//! no merge is abandoned when the process exits.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tantivy::{Index, IndexWriter, Term};

use crate::record::Event;
use crate::store::{ScanItem, Store};

mod error;
mod maintain;
mod mark;
mod repair;
mod schema;

pub use error::{IndexError, InvalidQuery};
use mark::store_holds_mark;
pub use mark::{high_water_mark, Mark, StaleMark, STALE_PREFIX};
pub use schema::{
    document, epoch, release_number, schema, segment_id, triggered_by_subcommand, Fields,
    UNSEARCHED_META_KEYS,
};

/// Index segments tolerated before small ones are merged.
pub const MAX_SEGMENTS: usize = 8;

/// Memory for a catch-up writer (tantivy's minimum per thread).
const CATCH_UP_MEMORY: usize = 15_000_000;

/// The index of one data directory.
pub struct EventIndex {
    dir: PathBuf,
    /// The tantivy index.
    pub index: Index,
    /// Its fields.
    pub fields: Fields,
}

fn tantivy_err(dir: &Path) -> impl Fn(tantivy::TantivyError) -> IndexError + '_ {
    move |source| IndexError::Tantivy {
        path: dir.to_path_buf(),
        source,
    }
}

/// How a catch-up went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    /// Events indexed now.
    pub indexed: u64,
    /// The high-water mark after it.
    pub hwm: u64,
}

impl EventIndex {
    /// The index directory of a data directory.
    pub fn dir_of(data_dir: &Path) -> PathBuf {
        crate::layout::Layout::new(data_dir).index
    }

    /// Opens the index if it exists (read-only use is fine).
    pub fn open_existing(data_dir: &Path) -> Result<Option<EventIndex>, IndexError> {
        Self::open_existing_at(&Self::dir_of(data_dir))
    }

    /// Opens the index in `dir` if there is one.
    pub fn open_existing_at(dir: &Path) -> Result<Option<EventIndex>, IndexError> {
        let dir = dir.to_path_buf();
        if !dir.join("meta.json").exists() {
            return Ok(None);
        }
        // tantivy opens its files by path: leave it no planted symlink to follow.
        crate::safefs::clear_symlinks(&dir).map_err(|source| IndexError::Io {
            path: dir.clone(),
            source,
        })?;
        let index = Index::open_in_dir(&dir).map_err(tantivy_err(&dir))?;
        let (want, fields) = schema();
        if index.schema() != want {
            return Err(IndexError::Tantivy {
                path: dir,
                source: tantivy::TantivyError::SchemaError(
                    "built by another version of dokku-audit".into(),
                ),
            });
        }
        Ok(Some(EventIndex { dir, index, fields }))
    }

    /// Opens the index, creating it (empty) if it does not exist.
    pub fn open_or_create(data_dir: &Path) -> Result<EventIndex, IndexError> {
        Self::open_or_create_at(&Self::dir_of(data_dir))
    }

    /// Opens or creates the index in `dir`.
    pub fn open_or_create_at(dir: &Path) -> Result<EventIndex, IndexError> {
        if let Some(i) = Self::open_existing_at(dir)? {
            return Ok(i);
        }
        let dir = dir.to_path_buf();
        let owner = crate::safefs::Ownership::from_env();
        crate::safefs::ensure_dir(&dir, &owner)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(&dir, schema).map_err(tantivy_err(&dir))?;
        Ok(EventIndex { dir, index, fields })
    }

    /// Deletes the index directory (it is derived data).
    pub fn remove(data_dir: &Path) -> Result<(), IndexError> {
        let dir = Self::dir_of(data_dir);
        match crate::safefs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IndexError::Io { path: dir, source }),
        }
    }

    /// Rebuilds the index of `data_dir` from the segments in a temporary directory and swaps it
    /// in when complete, so queries keep using the old index meanwhile.
    pub fn rebuild(
        data_dir: &Path,
        store: &Store,
        progress: &mut dyn FnMut(u64),
    ) -> Result<CatchUp, IndexError> {
        let live = Self::dir_of(data_dir);
        let (tmp, old) = crate::layout::Layout::new(data_dir).index_rebuild();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, source }
        };
        let _ = crate::safefs::remove_dir_all(&tmp);
        let fresh = Self::open_or_create_at(&tmp)?;
        let done = fresh.catch_up(store, progress)?;
        fresh.merge_all()?;
        fresh.share_files();
        drop(fresh);
        if live.exists() {
            crate::safefs::rename(&live, &old).map_err(io(&live))?;
        }
        if crate::safefs::rename(&tmp, &live).is_err() {
            // A query created an empty index in the moment between the two renames.
            let _ = crate::safefs::remove_dir_all(&live);
            crate::safefs::rename(&tmp, &live).map_err(io(&live))?;
        }
        let _ = crate::safefs::remove_dir_all(&old);
        Ok(done)
    }

    /// Gives every index file the data directory's owner and mode 0660: tantivy creates them
    /// 0600/0644 for whoever ran the query, and root and dokku must both be able to use them.
    pub fn share_files(&self) {
        let owner = crate::safefs::Ownership::from_env();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = owner.apply(&e.path(), 0o660);
                }
            }
        }
    }

    /// Whether the index still exists on disk (its directory can be deleted under a reader
    /// that keeps it open: it is derived data).
    pub fn is_present(&self) -> bool {
        crate::safefs::metadata(self.dir.join("meta.json")).is_ok()
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Wraps a tantivy failure on this index: the server's side, never the query's.
    pub fn fault(&self) -> impl Fn(tantivy::TantivyError) -> IndexError + '_ {
        tantivy_err(&self.dir)
    }

    /// The index writer: one indexing thread (documents stay in event order within and across
    /// segments, which `time_ordered` list queries rely on; see `catch_up`), no merge policy
    /// (merges are ours, in event-id order).
    fn writer(&self, memory: usize) -> Result<IndexWriter, IndexError> {
        match self.index.writer_with_num_threads(1, memory) {
            Ok(w) => {
                w.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
                Ok(w)
            }
            Err(tantivy::TantivyError::LockFailure(..)) => Err(IndexError::Busy(self.dir.clone())),
            Err(e) => Err(tantivy_err(&self.dir)(e)),
        }
    }

    /// Indexes every event after the high-water mark, in one commit. Returns
    /// [`IndexError::Busy`] without waiting if another process is writing the index.
    /// `progress` is told the id of each event indexed.
    pub fn catch_up(
        &self,
        store: &Store,
        progress: &mut dyn FnMut(u64),
    ) -> Result<CatchUp, IndexError> {
        let mark = high_water_mark(&self.index);
        let hwm = mark.hwm;
        if !store_holds_mark(store, &mark)? {
            // Another store's index (copied over, or left from data since replaced) that is
            // not ahead of this store: serving it would answer with foreign events.
            return Err(IndexError::Mismatch {
                path: self.dir.clone(),
                detail: format!(
                    "indexed up to event {hwm}, which this store holds with another time: the index belongs to other data"
                ),
            });
        }
        let last = store.last_id()?;
        if last <= hwm {
            if last < hwm {
                // The index is ahead of the store (a restore, or another store's index).
                return Err(IndexError::Mismatch {
                    path: self.dir.clone(),
                    detail: format!("indexed up to event {hwm} but the store ends at {last}"),
                });
            }
            return Ok(CatchUp { indexed: 0, hwm });
        }
        // One indexing thread, always: with two, tantivy deals the documents to two segments
        // in turns, so neither segment (nor their merge) holds them in event order any more,
        // while the mark still says `time_ordered` and list queries take each segment's last
        // documents as its newest (found by the ClickHouse comparison: `last-deploys --limit
        // 200` left out 12 deploys after a reindex of 1M events). A big catch-up gets a bigger
        // budget, so it flushes fewer, consecutive segments instead.
        let memory = if last - hwm > 100_000 {
            200_000_000
        } else {
            CATCH_UP_MEMORY
        };
        let mut writer = self.writer(memory)?;
        let mut indexed = 0u64;
        let mut new_mark = mark;
        let mut removed: Vec<u64> = Vec::new();
        let mut failure: Option<tantivy::TantivyError> = None;
        store.scan_after(mark.at, hwm + 1, &mut |item| {
            if let ScanItem::Line { pos, line } = item {
                let Some(id) = line.id().filter(|id| *id > hwm) else {
                    return std::ops::ControlFlow::Continue(());
                };
                let json = line.event_json();
                if let Ok(ev) = Event::from_json_text(&String::from_utf8_lossy(&json)) {
                    // A prune or retention says which segments it removed: their documents go.
                    if ev.category == "maintenance" {
                        if let Some(gone) =
                            ev.meta.get("removed_segments").and_then(Value::as_array)
                        {
                            removed.extend(gone.iter().filter_map(Value::as_u64));
                        }
                    }
                    let ts = epoch(&ev.ts);
                    new_mark.time_ordered &= ts >= new_mark.last_ts;
                    new_mark.last_ts = ts;
                    let d = document(&self.fields, &ev, segment_id(&pos.segment), pos.offset);
                    if let Err(e) = writer.add_document(d) {
                        failure = Some(e);
                        return std::ops::ControlFlow::Break(());
                    }
                    indexed += 1;
                    progress(id);
                }
                new_mark.hwm = id;
                new_mark.at = Some((segment_id(&pos.segment), pos.offset));
            }
            std::ops::ControlFlow::Continue(())
        })?;
        if let Some(e) = failure {
            return Err(tantivy_err(&self.dir)(e));
        }
        // Only segments that are really gone: a prune that died after appending its record
        // but before its journal changed nothing, and those segments' documents stay valid.
        if !removed.is_empty() {
            let existing: std::collections::BTreeSet<u64> =
                store.segments()?.iter().map(|s| s.first_id).collect();
            removed.retain(|s| !existing.contains(s));
        }
        for seg in removed {
            writer.delete_term(Term::from_field_u64(self.fields.seg, seg));
        }
        let mut prepared = writer.prepare_commit().map_err(tantivy_err(&self.dir))?;
        prepared.set_payload(&new_mark.payload());
        prepared.commit().map_err(tantivy_err(&self.dir))?;
        self.merge_small_segments(&mut writer)?;
        writer
            .wait_merging_threads()
            .map_err(tantivy_err(&self.dir))?;
        self.share_files();
        Ok(CatchUp {
            indexed,
            hwm: new_mark.hwm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Ownership, StoreOptions};

    fn ctx() -> crate::store::AppendContext {
        crate::store::AppendContext {
            now: "2026-03-01T00:00:00Z".into(),
            source_trigger: "test".into(),
            actor: crate::record::ActorStamp::system(),
        }
    }

    fn store_with(dir: &Path, apps: &[&str], ts: &str) -> Store {
        let store = Store::new(dir, StoreOptions::default(), Ownership::default());
        store.init().unwrap();
        for app in apps {
            let text = format!(
                r#"{{"id":0,"ts":"{ts}","app":"{app}","category":"app","action":"create","status":"success","classification":null,"source_trigger":"post-create","source_type":null,"image_tag":null,"rev":null,"actor_type":"system","actor_name":null,"actor_label":"dokku-system","correlation_id":null,"message":"created","meta":{{}},"created_at":"{ts}"}}"#
            );
            let mut ev = [Event::from_json_text(&text).unwrap()];
            store.append(&mut ev, &ctx()).unwrap();
        }
        store
    }

    #[test]
    fn an_index_of_other_data_is_refused_even_when_not_ahead() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        let small = store_with(&a, &["x", "y"], "2026-01-01T00:00:00Z");
        let big = store_with(&b, &["p", "q", "r"], "2026-02-01T00:00:00Z");
        let index = EventIndex::open_or_create(&a).unwrap();
        index.catch_up(&small, &mut |_| {}).unwrap();
        assert!(store_holds_mark(&small, &high_water_mark(&index.index)).unwrap());
        // The same index against another store that has event 2 at another time.
        assert!(!store_holds_mark(&big, &high_water_mark(&index.index)).unwrap());
        assert!(matches!(
            index.catch_up(&big, &mut |_| {}),
            Err(IndexError::Mismatch { .. })
        ));
        // Its own store keeps using it.
        assert!(index.catch_up(&small, &mut |_| {}).is_ok());
    }
}
