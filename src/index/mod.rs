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
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED,
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
    /// `(ts << 32) | (id & 0xffff_ffff)`: newest first in one fast-field sort.
    pub sort: Field,
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
                .set_index_option(IndexRecordOption::Basic),
        )
        .set_fast("raw");
    let shown = TextOptions::default().set_fast("raw");
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let actor = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic),
    );
    let fields = Fields {
        id: b.add_u64_field("id", INDEXED | FAST),
        ts: b.add_i64_field("ts", INDEXED | FAST),
        sort: b.add_u64_field("sort", FAST),
        seg: b.add_u64_field("seg", FAST),
        off: b.add_u64_field("off", FAST),
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

/// The newest-first sort key.
pub fn sort_key(ts: i64, id: u64) -> u64 {
    ((ts.max(0) as u64) << 32) | (id & 0xffff_ffff)
}

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
    for v in e.meta.values() {
        push_meta_text(v, &mut text);
    }
    let mut d = doc!(
        f.id => e.id,
        f.ts => ts,
        f.sort => sort_key(ts, e.id),
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

/// The payload of an index commit: how far it has indexed.
pub fn high_water_mark(index: &Index) -> u64 {
    index
        .load_metas()
        .ok()
        .and_then(|m| m.payload)
        .and_then(|p| serde_json::from_str::<Value>(&p).ok())
        .and_then(|v| v.get("hwm").and_then(Value::as_u64))
        .unwrap_or(0)
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
        let dir = Self::dir_of(data_dir);
        if !dir.join("meta.json").exists() {
            return Ok(None);
        }
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
        if let Some(i) = Self::open_existing(data_dir)? {
            return Ok(i);
        }
        let dir = Self::dir_of(data_dir);
        let owner = crate::store::Ownership::from_env();
        crate::store::fsutil::ensure_dir(&dir, &owner)?;
        let (schema, fields) = schema();
        let index = Index::create_in_dir(&dir, schema).map_err(tantivy_err(&dir))?;
        Ok(EventIndex { dir, index, fields })
    }

    /// Deletes the index directory (it is derived data).
    pub fn remove(data_dir: &Path) -> Result<(), IndexError> {
        let dir = Self::dir_of(data_dir);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(IndexError::Io { path: dir, source }),
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
        let hwm = high_water_mark(&self.index);
        let last = store.stats()?.last_id;
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
        let mut new_hwm = hwm;
        let mut failure: Option<tantivy::TantivyError> = None;
        store.scan_from(hwm + 1, &mut |item| {
            if let ScanItem::Line { pos, line } = item {
                let Some(id) = line.id().filter(|id| *id > hwm) else {
                    return std::ops::ControlFlow::Continue(());
                };
                let json = line.event_json();
                if let Ok(ev) = Event::from_json_text(&String::from_utf8_lossy(&json)) {
                    let d = document(&self.fields, &ev, segment_id(&pos.segment), pos.offset);
                    if let Err(e) = writer.add_document(d) {
                        failure = Some(e);
                        return std::ops::ControlFlow::Break(());
                    }
                    indexed += 1;
                    progress(id);
                }
                new_hwm = id;
            }
            std::ops::ControlFlow::Continue(())
        })?;
        if let Some(e) = failure {
            return Err(tantivy_err(&self.dir)(e));
        }
        let mut prepared = writer.prepare_commit().map_err(tantivy_err(&self.dir))?;
        prepared.set_payload(&format!("{{\"hwm\":{new_hwm}}}"));
        prepared.commit().map_err(tantivy_err(&self.dir))?;
        self.merge_small_segments(&mut writer)?;
        writer
            .wait_merging_threads()
            .map_err(tantivy_err(&self.dir))?;
        Ok(CatchUp {
            indexed,
            hwm: new_hwm,
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
        let ids: Vec<_> = metas[keep..].iter().map(|m| m.id()).collect();
        writer.merge(&ids).wait().map_err(tantivy_err(&self.dir))?;
        Ok(())
    }

    /// Merges everything into one segment (after a full reindex).
    pub fn merge_all(&self) -> Result<(), IndexError> {
        let ids = self
            .index
            .searchable_segment_ids()
            .map_err(tantivy_err(&self.dir))?;
        if ids.len() <= 1 {
            return Ok(());
        }
        let mut writer = self.writer(1, CATCH_UP_MEMORY)?;
        writer.merge(&ids).wait().map_err(tantivy_err(&self.dir))?;
        writer
            .wait_merging_threads()
            .map_err(tantivy_err(&self.dir))?;
        Ok(())
    }

    /// Number of index segments (for status and tests).
    pub fn segment_count(&self) -> usize {
        self.index
            .searchable_segment_ids()
            .map(|v| v.len())
            .unwrap_or(0)
    }

    /// Deletes the documents of these ids (prune).
    pub fn delete_ids(&self, ids: &[u64]) -> Result<(), IndexError> {
        let mut writer = self.writer(1, CATCH_UP_MEMORY)?;
        for id in ids {
            writer.delete_term(Term::from_field_u64(self.fields.id, *id));
        }
        let hwm = high_water_mark(&self.index);
        let mut prepared = writer.prepare_commit().map_err(tantivy_err(&self.dir))?;
        prepared.set_payload(&format!("{{\"hwm\":{hwm}}}"));
        prepared.commit().map_err(tantivy_err(&self.dir))?;
        writer
            .wait_merging_threads()
            .map_err(tantivy_err(&self.dir))?;
        Ok(())
    }
}
