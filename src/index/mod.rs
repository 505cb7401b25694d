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
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{doc, Index, IndexWriter, TantivyDocument, Term};

use crate::record::Event;
use crate::store::{ScanItem, Store, StoreError};

/// Index segments tolerated before small ones are merged.
pub const MAX_SEGMENTS: usize = 8;

/// Memory for a catch-up writer (tantivy's minimum per thread).
const CATCH_UP_MEMORY: usize = 15_000_000;

/// What can go wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// tantivy failed (corrupt or unreadable index, I/O).
    #[error("search index {path}: {source}")]
    Tantivy {
        /// The index directory.
        path: PathBuf,
        /// What tantivy said.
        source: tantivy::TantivyError,
    },
    /// Another process holds the index writer.
    #[error("search index {0} is being updated by another process")]
    Busy(PathBuf),
    /// Reading the segments failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A `--query` the parser does not accept.
    #[error("invalid query: {0}")]
    Query(String),
    /// Filesystem trouble around the index directory.
    #[error("search index {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The schema's fields.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Event id (indexed, fast).
    pub id: Field,
    /// `ts` as epoch seconds (indexed, fast).
    pub ts: Field,
    /// Segment (first id) holding the event.
    pub seg: Field,
    /// Byte offset of its line in the segment's plain content.
    pub off: Field,
    /// Raw terms, filterable and shown.
    pub app: Field,
    /// Raw.
    pub category: Field,
    /// Raw.
    pub action: Field,
    /// Raw.
    pub status: Field,
    /// Raw.
    pub classification: Field,
    /// Raw.
    pub source_type: Field,
    /// Raw terms: the actor label and the actor name (filter only).
    pub actor: Field,
    /// Shown only (fast).
    pub actor_label: Field,
    /// Shown only (fast).
    pub message: Field,
    /// Shown only (fast).
    pub rev: Field,
    /// Shown only (fast).
    pub image_tag: Field,
    /// Full text: message and every meta value.
    pub text: Field,
}

/// The schema and its fields.
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let raw = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        )
        .set_fast("raw");
    let shown = TextOptions::default().set_fast("raw");
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    );
    let actor = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    // No field norms anywhere: results are ordered by time, never by relevance.
    // Ids and times are fast fields only: range queries and deletes run on the columns, and a
    // term per event (nearly every id and second is unique) would double the index.
    let fast = NumericOptions::default().set_fast();
    let fields = Fields {
        id: b.add_u64_field("id", fast.clone()),
        ts: b.add_i64_field("ts", fast.clone()),
        // Indexed too (a few hundred distinct values: tiny postings) so prune and vacuum delete a
        // segment's documents by term instead of scanning a column per segment.
        seg: b.add_u64_field("seg", NumericOptions::default().set_indexed().set_fast()),
        off: b.add_u64_field("off", fast),
        app: b.add_text_field("app", raw.clone()),
        category: b.add_text_field("category", raw.clone()),
        action: b.add_text_field("action", raw.clone()),
        status: b.add_text_field("status", raw.clone()),
        classification: b.add_text_field("classification", raw.clone()),
        source_type: b.add_text_field("source_type", raw),
        actor: b.add_text_field("actor", actor),
        actor_label: b.add_text_field("actor_label", shown.clone()),
        message: b.add_text_field("message", shown.clone()),
        rev: b.add_text_field("rev", shown.clone()),
        image_tag: b.add_text_field("image_tag", shown),
        text: b.add_text_field("text", text),
    };
    (b.build(), fields)
}

/// `ts` as epoch seconds (0 if unparseable, which validated events never are).
pub fn epoch(ts: &str) -> i64 {
    crate::timefmt::parse_canonical(ts).map_or(0, |t| t.timestamp())
}

/// Meta keys left out of the full text (their values are enumerations or duplicates).
pub const UNSEARCHED_META_KEYS: &[&str] = &[
    "actor_source",
    "success_hint",
    "subcommand",
    "triggered_by_subcommand",
    "container_type",
    "dokku_version",
    "hostname",
    "value_redacted",
];

fn push_meta_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push(' ');
            out.push_str(s);
        }
        Value::Number(n) => {
            out.push(' ');
            out.push_str(&n.to_string());
        }
        Value::Array(a) => a.iter().for_each(|x| push_meta_text(x, out)),
        Value::Object(m) => m.values().for_each(|x| push_meta_text(x, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// The document of an event at (segment, offset).
pub fn document(f: &Fields, e: &Event, seg: u64, off: u64) -> TantivyDocument {
    let ts = epoch(&e.ts);
    let mut text = e.message.clone();
    for (k, v) in &e.meta {
        // Bookkeeping keys repeat on every event and say nothing an operator searches for;
        // a value equal to the message (`command`) is already there.
        if UNSEARCHED_META_KEYS.contains(&k.as_str()) || v.as_str() == Some(e.message.as_str()) {
            continue;
        }
        push_meta_text(v, &mut text);
    }
    let mut d = doc!(
        f.id => e.id,
        f.ts => ts,
        f.seg => seg,
        f.off => off,
        f.category => e.category.as_str(),
        f.action => e.action.as_str(),
        f.status => e.status.as_str(),
        f.actor => e.actor_label.as_str(),
        f.actor_label => e.actor_label.as_str(),
        f.message => e.message.as_str(),
        f.text => text,
    );
    let mut opt = |field: Field, v: &Option<String>| {
        if let Some(v) = v {
            d.add_text(field, v);
        }
    };
    opt(f.app, &e.app);
    opt(f.classification, &e.classification);
    opt(f.source_type, &e.source_type);
    opt(f.rev, &e.rev);
    opt(f.image_tag, &e.image_tag);
    if let Some(name) = &e.actor_name {
        if *name != e.actor_label {
            d.add_text(f.actor, name);
        }
    }
    d
}

/// The segment first id from a segment file name.
pub fn segment_id(file_name: &str) -> u64 {
    file_name
        .get(..20)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}

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
    fn payload(&self) -> String {
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
fn store_holds_mark(store: &Store, mark: &Mark) -> Result<bool, StoreError> {
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

/// Prefix of the files that say an index update is pending (see [`EventIndex::mark_stale`]).
pub const STALE_PREFIX: &str = "index.stale-";

/// A pending index update; [`StaleMark::clear`] once the index matches the segments again.
#[derive(Debug)]
pub struct StaleMark {
    path: PathBuf,
}

impl StaleMark {
    /// The index is consistent again.
    pub fn clear(self) {
        let _ = crate::store::fsutil::remove_file(&self.path);
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
        data_dir.join("index")
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
        crate::store::fsutil::clear_symlinks(&dir).map_err(|source| IndexError::Io {
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
        let owner = crate::store::Ownership::from_env();
        crate::store::fsutil::ensure_dir(&dir, &owner)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(&dir, schema).map_err(tantivy_err(&dir))?;
        Ok(EventIndex { dir, index, fields })
    }

    /// Deletes the index directory (it is derived data).
    pub fn remove(data_dir: &Path) -> Result<(), IndexError> {
        let dir = Self::dir_of(data_dir);
        match crate::store::fsutil::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IndexError::Io { path: dir, source }),
        }
    }

    /// Marks the index as about to fall behind a change of segments (prune, vacuum): until
    /// [`StaleMark::clear`] runs, a crash leaves `index.stale-<pid>` behind, and the next
    /// [`EventIndex::open_caught_up`] rebuilds the index instead of trusting documents that
    /// may point at rewritten segments.
    pub fn mark_stale(data_dir: &Path) -> Result<StaleMark, IndexError> {
        let path = data_dir.join(format!("{STALE_PREFIX}{}", std::process::id()));
        let owner = crate::store::Ownership::from_env();
        crate::store::fsutil::atomic_write(&path, b"", &owner)?;
        Ok(StaleMark { path })
    }

    /// Stale marks left by processes that are gone (see [`EventIndex::mark_stale`]).
    pub fn stale_marks(data_dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(data_dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let pid: u32 = name.strip_prefix(STALE_PREFIX)?.parse().ok()?;
                let alive =
                    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
                (!alive).then(|| e.path())
            })
            .collect()
    }

    /// Opens the index and catches it up, rebuilding it first when a prune or vacuum died
    /// between changing the segments and updating the index (a stale mark is left).
    pub fn open_caught_up(data_dir: &Path, store: &Store) -> Result<EventIndex, IndexError> {
        let stale = Self::stale_marks(data_dir);
        if !stale.is_empty() {
            Self::rebuild(data_dir, store, &mut |_| {})?;
            for p in stale {
                let _ = crate::store::fsutil::remove_file(p);
            }
        }
        let index = Self::open_or_create(data_dir)?;
        index.catch_up(store, &mut |_| {})?;
        Ok(index)
    }

    /// Rebuilds the index of `data_dir` from the segments in a temporary directory and swaps it
    /// in when complete, so queries keep using the old index meanwhile.
    pub fn rebuild(
        data_dir: &Path,
        store: &Store,
        progress: &mut dyn FnMut(u64),
    ) -> Result<CatchUp, IndexError> {
        let live = Self::dir_of(data_dir);
        let pid = std::process::id();
        let tmp = data_dir.join(format!("index.tmp-{pid}"));
        let old = data_dir.join(format!("index.old-{pid}"));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| IndexError::Io { path, source }
        };
        let _ = crate::store::fsutil::remove_dir_all(&tmp);
        let fresh = Self::open_or_create_at(&tmp)?;
        let done = fresh.catch_up(store, progress)?;
        fresh.merge_all()?;
        fresh.share_files();
        drop(fresh);
        if live.exists() {
            crate::store::fsutil::rename(&live, &old).map_err(io(&live))?;
        }
        if crate::store::fsutil::rename(&tmp, &live).is_err() {
            // A query created an empty index in the moment between the two renames.
            let _ = crate::store::fsutil::remove_dir_all(&live);
            crate::store::fsutil::rename(&tmp, &live).map_err(io(&live))?;
        }
        let _ = crate::store::fsutil::remove_dir_all(&old);
        Ok(done)
    }

    /// Gives every index file the data directory's owner and mode 0660: tantivy creates them
    /// 0600/0644 for whoever ran the query, and root and dokku must both be able to use them.
    pub fn share_files(&self) {
        let owner = crate::store::Ownership::from_env();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = owner.apply(&e.path(), 0o660);
                }
            }
        }
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn writer(&self, threads: usize, memory: usize) -> Result<IndexWriter, IndexError> {
        match self.index.writer_with_num_threads(threads, memory) {
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
            return Err(IndexError::Tantivy {
                path: self.dir.clone(),
                source: tantivy::TantivyError::InvalidArgument(format!(
                    "indexed up to event {hwm}, which this store holds with another time: the index belongs to other data"
                )),
            });
        }
        let last = store.last_id()?;
        if last <= hwm {
            if last < hwm {
                // The index is ahead of the store (a restore, or another store's index).
                return Err(IndexError::Tantivy {
                    path: self.dir.clone(),
                    source: tantivy::TantivyError::InvalidArgument(format!(
                        "indexed up to event {hwm} but the store ends at {last}"
                    )),
                });
            }
            return Ok(CatchUp { indexed: 0, hwm });
        }
        let threads = if last - hwm > 100_000 { 2 } else { 1 };
        let memory = if threads > 1 {
            200_000_000
        } else {
            CATCH_UP_MEMORY
        };
        let mut writer = self.writer(threads, memory)?;
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

    /// Keeps the number of index segments bounded: with more than [`MAX_SEGMENTS`], merges all
    /// but the largest few into one (the small ones are the recent catch-ups, so this is cheap).
    fn merge_small_segments(&self, writer: &mut IndexWriter) -> Result<(), IndexError> {
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
        let mut writer = self.writer(1, CATCH_UP_MEMORY)?;
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
        let mut writer = self.writer(1, CATCH_UP_MEMORY)?;
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
        let mut writer = self.writer(1, CATCH_UP_MEMORY)?;
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
        let mut writer = self.writer(1, CATCH_UP_MEMORY)?;
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
            Err(IndexError::Tantivy { .. })
        ));
        // Its own store keeps using it.
        assert!(index.catch_up(&small, &mut |_| {}).is_ok());
    }
}
