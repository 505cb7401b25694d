//! Deleting and merging at the segment level: prune (given the ids to delete, from whatever
//! decided them), retention (whole expired segments) and vacuum (merging small sealed
//! segments). Lines are never re-encoded: kept lines are copied byte for byte, so their ids and
//! chain values stay what they were, and every gap the deletion opens in the chain is recorded as
//! a chain anchor (`{"id": first kept id, "prev": chain value of the deleted line before it}`)
//! in the maintenance event that the operation appends (segments-format.md §5.3).
//!
//! Order of work, so that a crash never loses a kept event and ids are never reused:
//! 1. without the lock: the rewritten segments are written and sealed in a staging directory
//!    (`<data dir>/compact-<pid>/`; sealed segments are immutable, so this reads a stable view);
//! 2. under the writer lock: the maintenance event is appended first (it becomes the head, so the
//!    next id never restarts even if every older segment goes), then the staged segments are
//!    renamed into `segments/` (a rewrite keeping its first id replaces the old file atomically),
//!    then the deleted and replaced files are removed, then the directory is fsynced.
//!
//! 3. between the event and the first rename, the renames and removals are written to a
//!    compaction journal (`recover.rs`): a crash after that point is rolled forward by the next
//!    writer, so a rewrite that starts at a later id and the file it replaces never both count
//!    for longer than until the next write.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};
use super::line::ChainHash;
use super::reader::{scan_segment, ScanItem};
use super::recover::CompactionJournal;
use super::releases::RELEASES_THROUGH_KEY;
use super::segment::{self, file_name, SegmentFiles, Trailer};
use super::writer::{self, AppendContext, AppendReceipt};
use super::Store;
use crate::crashpoint;
use crate::layout::Layout;
use crate::record::Event;
use crate::safefs::{self, WriterLock};

mod merge;
mod removal;

pub use merge::Merge;
pub use removal::Removal;

fn bytes_of(seg: &SegmentFiles) -> u64 {
    [&seg.plain, &seg.sealed]
        .into_iter()
        .flatten()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Both files of a segment go (sealed first, so a crash never leaves only the plain twin
/// of a deleted segment counting).
fn journal_remove_segment(journal: &mut CompactionJournal, paths: &Layout, seg: &SegmentFiles) {
    for p in [&seg.sealed, &seg.plain].into_iter().flatten() {
        journal.remove(paths, p);
    }
}

/// What goes from one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Doomed {
    /// Every event (retention, or a prune that matched all of them).
    Whole,
    /// These ids.
    Ids(BTreeSet<u64>),
}

/// A segment rewritten in the staging directory.
struct Staged {
    /// The original segment.
    original: SegmentFiles,
    /// The sealed replacement (None: nothing kept).
    sealed: Option<PathBuf>,
    /// Its first id.
    first_id: u64,
}

impl Store {
    /// Seals the active segment (if it holds events), so that every event is in an immutable
    /// segment; the next append starts a new active segment. Done under the writer lock.
    pub fn seal_active(&self) -> Result<()> {
        self.init()?;
        let _lock = self.lock_writer()?;
        super::recover::recover(&self.paths)?;
        let segments = self.segments()?;
        if let Some(last) = segments.last() {
            if let (true, Some(plain)) = (last.is_plain(), &last.plain) {
                let has_lines = std::fs::symlink_metadata(plain)
                    .map(|m| m.len() > 0)
                    .unwrap_or(false);
                if has_lines {
                    writer::seal_plain(plain, &self.opts, &self.owner)?;
                }
            }
        }
        Ok(())
    }

    /// Deletes the events with these ids (grouped by the first id of the segment holding them)
    /// and appends `record(&removal)` as the maintenance event that says so, with its chain
    /// anchors. With `dry_run`, only counts. Call [`Store::seal_active`] first if any of the ids
    /// may be in the active segment: only sealed segments are rewritten.
    pub fn remove_events(
        &self,
        ids: &BTreeMap<u64, Doomed>,
        dry_run: bool,
        record: &dyn Fn(&Removal) -> Event,
        ctx: &AppendContext,
    ) -> Result<(Removal, Option<AppendReceipt>)> {
        self.check_readable()?;
        let segments = self.segments()?;
        let mut removal = Removal::default();
        let staging = self.paths.compact_staging();
        let mut staged: Vec<Staged> = Vec::new();
        let mut whole: Vec<SegmentFiles> = Vec::new();
        // The chain value of the last line seen, and whether it was deleted.
        let mut prev_deleted: Option<ChainHash> = None;
        let result = (|| -> Result<()> {
            for seg in &segments {
                removal.bytes_before += bytes_of(seg);
                let doomed = ids.get(&seg.first_id);
                let trailer = match &seg.sealed {
                    Some(p) => Trailer::read(p)?,
                    None => None,
                };
                match (doomed, &trailer) {
                    (None, Some(t)) => {
                        // Untouched sealed segment: its first line may follow a deleted one.
                        if let Some(prev) = prev_deleted.take() {
                            removal.anchors.push((t.first_id, prev.to_hex()));
                        }
                        prev_deleted = None;
                        removal.bytes_after += bytes_of(seg);
                    }
                    (None, None) => {
                        // The active segment (never rewritten here).
                        if let Some(prev) = prev_deleted {
                            if let Some(first) = first_id_of(seg)? {
                                removal.anchors.push((first, prev.to_hex()));
                                prev_deleted = None;
                            }
                        }
                        removal.bytes_after += bytes_of(seg);
                    }
                    (Some(doomed), Some(t))
                        if matches!(doomed, Doomed::Whole)
                            || matches!(doomed, Doomed::Ids(d) if d.len() as u64 == t.count) =>
                    {
                        removal.deleted += t.count;
                        note_ids(&mut removal, t.first_id, t.last_id);
                        removal.segments_deleted += 1;
                        prev_deleted = Some(t.chain_head);
                        whole.push(seg.clone());
                    }
                    (Some(Doomed::Ids(doomed)), Some(_)) => {
                        let s = self.rewrite(
                            seg,
                            doomed,
                            &staging,
                            &mut removal,
                            &mut prev_deleted,
                            dry_run,
                        )?;
                        staged.push(s);
                    }
                    (Some(doomed), None) if dry_run => {
                        // The active segment: `--yes` seals it first (only sealed segments
                        // are rewritten), so count what it will do to the sealed copy: the
                        // segment's valid lines go whole, or it is rewritten.
                        let Some((count, first, last, head)) = summary_of(seg)? else {
                            continue;
                        };
                        match doomed {
                            Doomed::Ids(d) if (d.len() as u64) < count => {
                                let s = self.rewrite(
                                    seg,
                                    d,
                                    &staging,
                                    &mut removal,
                                    &mut prev_deleted,
                                    true,
                                )?;
                                staged.push(s);
                            }
                            _ => {
                                removal.deleted += count;
                                note_ids(&mut removal, first, last);
                                removal.segments_deleted += 1;
                                prev_deleted = Some(head);
                                whole.push(seg.clone());
                            }
                        }
                    }
                    (Some(_), _) => {
                        return Err(StoreError::Segment {
                            segment: file_name(seg.data_path()),
                            detail: "events to remove are in the active segment; seal it first"
                                .into(),
                        })
                    }
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = crate::safefs::remove_dir_all(&staging);
            return Err(e);
        }
        for s in &staged {
            removal.bytes_after += s
                .sealed
                .as_ref()
                .and_then(|p| std::fs::symlink_metadata(p).ok())
                .map_or(0, |m| m.len());
        }
        for s in &staged {
            removal.old_segments.push(s.original.first_id);
            if s.sealed.is_some() {
                removal.new_segments.push(s.first_id);
            }
        }
        removal
            .old_segments
            .extend(whole.iter().map(|w| w.first_id));
        if dry_run {
            let _ = crate::safefs::remove_dir_all(&staging);
            return Ok((removal, None));
        }
        let lock = self.lock_writer()?;
        if let Some(prev) = prev_deleted {
            // Everything up to the head goes: the record itself follows a deleted line.
            let next_id = self.last_id()? + 1;
            removal.anchors.push((next_id, prev.to_hex()));
        }
        let mut event = record(&removal);
        // The release numbers of the removed events stay taken (store::releases).
        let counters = self.release_counters()?;
        if removal.deleted > 0 && !counters.apps.is_empty() {
            event
                .meta
                .insert(RELEASES_THROUGH_KEY.into(), counters.to_meta());
        }
        let mut ev = [event];
        let receipt = self.append_locked(&lock, &mut ev, ctx)?;
        crashpoint::hit("compact.after_record");
        let mut journal = CompactionJournal::new(&self.paths, &staging);
        for s in &staged {
            if let Some(new) = &s.sealed {
                let target = self.paths.segments.join(format!(
                    "{}{}",
                    segment::stem(s.first_id),
                    segment::SEALED_SUFFIX
                ));
                journal.rename(&self.paths, new, &target);
                if s.first_id != s.original.first_id {
                    journal_remove_segment(&mut journal, &self.paths, &s.original);
                } else if let Some(plain) = &s.original.plain {
                    journal.remove(&self.paths, plain);
                }
            } else {
                journal_remove_segment(&mut journal, &self.paths, &s.original);
            }
        }
        for seg in &whole {
            journal_remove_segment(&mut journal, &self.paths, seg);
        }
        journal.write(&self.paths, &self.owner)?;
        crashpoint::hit("compact.after_journal");
        journal.complete(&self.paths)?;
        drop(lock);
        Ok((removal, Some(receipt)))
    }

    /// Retention: deletes whole sealed segments whose events are all older than `cutoff`
    /// (by the trailer's first and last `ts`), never the newest segment, and records a
    /// `maintenance`/`prune` event with `meta.retention_days`. Returns what went.
    pub fn enforce_retention(
        &self,
        days: u64,
        cutoff: &str,
        ctx: &AppendContext,
    ) -> Result<Option<Removal>> {
        let segments = self.segments()?;
        let mut doomed = BTreeMap::new();
        for seg in segments.iter().take(segments.len().saturating_sub(1)) {
            if let Some(t) = match &seg.sealed {
                Some(p) => Trailer::read(p)?,
                None => None,
            } {
                if t.first_ts.as_str() < cutoff && t.last_ts.as_str() < cutoff {
                    doomed.insert(seg.first_id, Doomed::Whole);
                }
            }
        }
        if doomed.is_empty() {
            return Ok(None);
        }
        let record = |r: &Removal| {
            let mut meta = serde_json::Map::new();
            meta.insert("retention_days".into(), days.into());
            let mut ev = Event::maintenance(
                "prune",
                format!("retention: removed events older than {days} days"),
                meta,
                &ctx.now,
                &ctx.source_trigger,
                &ctx.actor,
            );
            ev.meta.insert("deleted_count".into(), r.deleted.into());
            if let (Some(lo), Some(hi)) = (r.min_id, r.max_id) {
                ev.meta.insert("min_id".into(), lo.into());
                ev.meta.insert("max_id".into(), hi.into());
            }
            ev.meta.insert("chain_anchors".into(), r.anchors_json());
            ev.meta.insert(
                "removed_segments".into(),
                doomed.keys().copied().collect::<Vec<u64>>().into(),
            );
            ev
        };
        let (removal, _) = self.remove_events(&doomed, false, &record, ctx)?;
        Ok(Some(removal))
    }

    /// Appends under a lock the caller holds.
    pub(in crate::store) fn append_locked(
        &self,
        lock: &WriterLock,
        events: &mut [Event],
        ctx: &AppendContext,
    ) -> Result<AppendReceipt> {
        let encoded = super::encode_for_append(events)?;
        let receipt = writer::append_raw_locked(
            lock,
            &self.paths,
            &self.opts,
            &self.owner,
            &mut encoded.iter().map(Vec::as_slice),
            ctx,
        )?;
        for (i, ev) in events.iter_mut().enumerate() {
            ev.id = receipt.first_id + i as u64;
        }
        Ok(receipt)
    }

    /// Writes the kept lines of `seg` to the staging directory and seals them there.
    fn rewrite(
        &self,
        seg: &SegmentFiles,
        doomed: &BTreeSet<u64>,
        staging: &Path,
        removal: &mut Removal,
        prev_deleted: &mut Option<ChainHash>,
        dry_run: bool,
    ) -> Result<Staged> {
        safefs::ensure_dir(staging, &self.owner)?;
        let plain = staging.join(format!("{}.rewrite", seg.first_id));
        let file = safefs::create_new(&plain, &self.owner)?;
        let mut out = BufWriter::new(file);
        let mut first_kept: Option<u64> = None;
        let mut kept = 0u64;
        let mut first_ts = String::new();
        let mut last = (0u64, String::new(), ChainHash::GENESIS);
        let mut write_err: Option<std::io::Error> = None;
        let _flow = scan_segment(seg, false, &mut |item| {
            if let ScanItem::Line { line, .. } = item {
                let id = line.id().unwrap_or(0);
                if doomed.contains(&id) {
                    removal.deleted += 1;
                    note_ids(removal, id, id);
                    *prev_deleted = Some(line.chain);
                } else {
                    if let Some(prev) = prev_deleted.take() {
                        removal.anchors.push((id, prev.to_hex()));
                    }
                    if first_kept.is_none() {
                        first_kept = Some(id);
                        first_ts = line.ts().unwrap_or_default().to_string();
                    }
                    kept += 1;
                    last = (id, line.ts().unwrap_or_default().to_string(), line.chain);
                    if !dry_run {
                        if let Err(e) = out.write_all(line.raw).and_then(|()| out.write_all(b"\n"))
                        {
                            write_err = Some(e);
                            return ControlFlow::Break(());
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
        if let Some(e) = write_err {
            return Err(StoreError::io("write", &plain)(e));
        }
        out.flush().map_err(StoreError::io("write", &plain))?;
        drop(out);
        removal.segments_rewritten += 1;
        let Some(first_id) = first_kept else {
            let _ = crate::safefs::remove_file(&plain);
            return Ok(Staged {
                original: seg.clone(),
                sealed: None,
                first_id: seg.first_id,
            });
        };
        if dry_run {
            let _ = crate::safefs::remove_file(&plain);
            return Ok(Staged {
                original: seg.clone(),
                sealed: None,
                first_id,
            });
        }
        let plain_bytes = std::fs::symlink_metadata(&plain)
            .map_err(StoreError::io("stat", &plain))?
            .len();
        let trailer = Trailer {
            format: super::FORMAT_VERSION,
            first_id,
            last_id: last.0,
            count: kept,
            first_ts,
            last_ts: last.1,
            chain_head: last.2,
            plain_bytes,
        };
        let sealed = segment::seal(
            &plain,
            plain_bytes,
            &trailer,
            self.opts.zstd_level,
            &self.owner,
        )?;
        let _ = crate::safefs::remove_file(&plain);
        Ok(Staged {
            original: seg.clone(),
            sealed: Some(sealed),
            first_id,
        })
    }
}

fn note_ids(r: &mut Removal, lo: u64, hi: u64) {
    r.min_id = Some(r.min_id.map_or(lo, |m| m.min(lo)));
    r.max_id = Some(r.max_id.map_or(hi, |m| m.max(hi)));
}

/// Valid lines of a segment: count, first id, last id, chain head (`None` without a valid line).
fn summary_of(seg: &SegmentFiles) -> Result<Option<(u64, u64, u64, ChainHash)>> {
    let mut out: Option<(u64, u64, u64, ChainHash)> = None;
    let _flow = scan_segment(seg, true, &mut |item| {
        if let ScanItem::Line { line, .. } = item {
            let id = line.id().unwrap_or(0);
            let o = out.get_or_insert((0, id, id, line.chain));
            o.0 += 1;
            o.2 = id;
            o.3 = line.chain;
        }
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

fn first_id_of(seg: &SegmentFiles) -> Result<Option<u64>> {
    let mut first = None;
    let _flow = scan_segment(seg, true, &mut |item| {
        if let ScanItem::Line { line, .. } = item {
            first = line.id();
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    })?;
    Ok(first)
}
