//! Appending: take the writer lock, find the head (last id, chain value, active segment), repair
//! a torn tail, write the new lines, fsync, rotate and seal. The whole protocol is
//! segments-format.md §6–§7; every step that can be interrupted leaves a state §8 recovers.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};
use super::head::{ActiveTail, Tail, Torn};
use super::line::{encode_line, memfind, ChainHash};
use super::reader::{scan_segment, ScanItem, MAX_LINE_BYTES};
use super::recover::Recovered;
use super::releases::{Numbering, Resume};
use super::segment::{self, file_name, SegmentFiles, Trailer, PLAIN_SUFFIX};
use super::{Durability, StoreOptions};
use crate::crashpoint;
use crate::layout::Layout;
use crate::record::{ActorStamp, Event};
use crate::safefs::{self, Ownership, WriterLock};

mod repair;

use repair::{recovery_event, repair_event, repair_torn_tail};

/// Who is appending, for the maintenance events the store itself writes (torn-tail repair).
#[derive(Debug, Clone)]
pub struct AppendContext {
    /// "Now" as an event timestamp.
    pub now: String,
    /// The trigger or command doing the append.
    pub source_trigger: String,
    /// The actor to stamp on store-written maintenance events.
    pub actor: ActorStamp,
}

/// What an append did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendReceipt {
    /// Id of the first event of the batch (0 for an empty batch).
    pub first_id: u64,
    /// Id of the last event of the batch.
    pub last_id: u64,
    /// Chain head after the append.
    pub chain_head: String,
    /// The repair performed first, if the active segment had a torn tail.
    pub repaired: Option<Repair>,
    /// Segments sealed during this append.
    pub sealed: Vec<PathBuf>,
    /// What was finished or undone after a crash before this append (see `recover.rs`).
    pub recovered: Recovered,
    /// Seals that failed after the events were durable. The append still succeeded: the plain
    /// segment stays complete and the next append seals it again.
    pub seal_errors: Vec<String>,
    /// Spooled events appended (before this batch) from spool files (see `spool.rs`).
    pub drained: u64,
    /// The spool drain tried after the lock was released failed (the events of the append are
    /// durable; the spool waits for the next writer).
    pub drain_error: Option<String>,
}

/// A torn-tail repair: what was cut off the active segment, and where the bytes were kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repair {
    /// The segment file.
    pub segment: String,
    /// Offset the segment was truncated to.
    pub offset: u64,
    /// Bytes removed.
    pub removed_bytes: u64,
    /// Pieces (partial or failing lines) removed.
    pub removed_lines: u64,
    /// Where the removed bytes were saved, relative to the data directory.
    pub quarantine: String,
}

/// The canonical JSON of an event whose id is not yet assigned starts with this.
pub const ID_PLACEHOLDER: &[u8] = b"{\"id\":0,";

/// The event JSON after its `{"id":0,` placeholder (where the writer puts the real id).
pub(crate) fn after_placeholder(json: &[u8]) -> Result<&[u8]> {
    json.strip_prefix(ID_PLACEHOLDER)
        .ok_or_else(|| StoreError::Segment {
            segment: "-".into(),
            detail: "event JSON does not start with the id placeholder".into(),
        })
}

/// Appends `events` (canonical event JSON with `"id":0`, see [`ID_PLACEHOLDER`]) as one batch:
/// one lock, one write per segment touched, one fsync at the end.
pub fn append_raw(
    paths: &Layout,
    opts: &StoreOptions,
    owner: &Ownership,
    events: &mut dyn Iterator<Item = &[u8]>,
    ctx: &AppendContext,
) -> Result<AppendReceipt> {
    let lock = WriterLock::acquire(&paths.lock, owner, opts.lock_timeout)?;
    append_raw_locked(&lock, paths, opts, owner, events, ctx)
}

/// [`append_raw`] for a caller that already holds the writer lock (maintenance operations that
/// append their record and change segments in one critical section).
pub fn append_raw_locked(
    _lock: &WriterLock,
    paths: &Layout,
    opts: &StoreOptions,
    owner: &Ownership,
    events: &mut dyn Iterator<Item = &[u8]>,
    ctx: &AppendContext,
) -> Result<AppendReceipt> {
    // Finish (or undo) whatever a crash interrupted before looking at the segments.
    let recovered = super::recover::recover(paths)?;
    let listing = segment::list(&paths.segments)?;
    let tail = Tail::load(&listing.segments)?;
    let mut w = SegmentWriter {
        dir: &paths.segments,
        opts,
        owner,
        next_id: tail.next_id,
        chain: tail.chain,
        active: None,
        buf: Vec::with_capacity(64 * 1024),
        sealing: Vec::new(),
        sealed: Vec::new(),
        seal_errors: Vec::new(),
        dir_dirty: false,
    };
    let mut receipt = AppendReceipt::default();
    if let Some(active) = tail.active {
        let file = safefs::open_create(&active.path, owner, true)?;
        if let Some(torn) = &active.torn {
            let repair = repair_torn_tail(paths, owner, &active, torn, &file)?;
            receipt.repaired = Some(repair.clone());
            if active.valid_len > 0 {
                w.active = Some(ActiveFile::from_tail(&active, file));
            } else {
                drop(file);
                crate::safefs::remove_file(&active.path)
                    .map_err(StoreError::io("remove", &active.path))?;
                w.dir_dirty = true;
            }
            crashpoint::hit("repair.after_truncate");
            w.push(&repair_event(&repair, ctx).to_json_bytes())?;
        } else if active.valid_len > 0 {
            w.active = Some(ActiveFile::from_tail(&active, file));
        } else {
            // An empty active file (a crash right after creating it): its name may not match the
            // next id, so start afresh.
            drop(file);
            crate::safefs::remove_file(&active.path)
                .map_err(StoreError::io("remove", &active.path))?;
            w.dir_dirty = true;
        }
    }
    if recovered.any() {
        w.push(&recovery_event(&recovered, paths, ctx).to_json_bytes())?;
    }
    receipt.recovered = recovered;
    // Events triggers spooled while the lock was busy go first: they happened earlier.
    let recent: Vec<SegmentFiles> = listing.segments.iter().rev().take(2).cloned().collect();
    let drain = super::spool::collect(paths, &recent)?;
    let mut numbering = Numbering::new(paths, &listing.segments, tail.next_id.saturating_sub(1));
    for ev in &drain.events {
        w.push_numbered(ev, &mut numbering)?;
    }
    receipt.drained = drain.events.len() as u64;
    let first_id = w.next_id;
    for ev in events {
        w.push_numbered(ev, &mut numbering)?;
    }
    w.finish()?;
    // Derived data: a failure to save the counters only costs a rescan at the next release.
    let resume = w.active.as_ref().and_then(|a| {
        let name = file_name(&a.path);
        let seg = segment::SegmentName::parse(&name)?;
        Some(Resume {
            segment: seg.first_id(),
            offset: a.len,
        })
    });
    let _ = numbering.finish(w.next_id.saturating_sub(1), resume, owner);
    if w.next_id > first_id {
        receipt.first_id = first_id;
        receipt.last_id = w.next_id - 1;
    }
    receipt.chain_head = w.chain.to_hex();
    crashpoint::hit("append.after_fsync");
    if !drain.files.is_empty() {
        crashpoint::hit("spool.before_remove");
        // The events are durable; a file left behind is skipped by the next drain (its
        // events' markers are found in the segment).
        if let Err(e) = super::spool::remove(paths, &drain.files) {
            receipt.seal_errors.push(e.to_string());
        }
    }
    // The events are durable: from here on nothing may turn the append into a failure (a caller
    // told "failed" could retry and record the events twice). A seal that fails leaves its plain
    // segment complete, and the next append seals it (it is in `tail.unsealed` then).
    // Segments rotated out were sealed on background threads while writing went on: wait for
    // them (still under the lock), then seal any plain segment a crash left unsealed.
    receipt.sealed = std::mem::take(&mut w.sealed);
    receipt.seal_errors = std::mem::take(&mut w.seal_errors);
    for handle in std::mem::take(&mut w.sealing) {
        match join_seal(handle) {
            Ok(p) => receipt.sealed.push(p),
            Err(e) => receipt.seal_errors.push(e.to_string()),
        }
    }
    for seg in &tail.unsealed {
        if let Some(p) = &seg.plain {
            match seal_plain(p, opts, owner) {
                Ok(p) => receipt.sealed.push(p),
                Err(e) => receipt.seal_errors.push(e.to_string()),
            }
        }
    }
    for tmp in &listing.temp_files {
        let _ = crate::safefs::remove_file(tmp);
    }
    remove_expired_plain(&listing.segments, opts);
    Ok(receipt)
}

/// Seals one plain segment: checks every line, computes the trailer, compresses.
pub fn seal_plain(plain: &Path, opts: &StoreOptions, owner: &Ownership) -> Result<PathBuf> {
    let mut stats: Option<Trailer> = None;
    let mut valid_len = 0u64;
    // The name says the first id; the reader checks every line against it.
    let first_id = file_name(plain)
        .strip_suffix(PLAIN_SUFFIX)
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0);
    let seg = SegmentFiles {
        first_id,
        plain: Some(plain.to_path_buf()),
        sealed: None,
    };
    let _flow = scan_segment(&seg, false, &mut |item| {
        if let ScanItem::Line { pos, line } = item {
            let (id, ts) = (line.id().unwrap_or(0), line.ts().unwrap_or("").to_string());
            let t = stats.get_or_insert_with(|| Trailer {
                format: super::line::FORMAT_VERSION,
                first_id: id,
                last_id: id,
                count: 0,
                first_ts: ts.clone(),
                last_ts: ts.clone(),
                chain_head: line.chain,
                plain_bytes: 0,
            });
            t.last_id = id;
            t.last_ts = ts;
            t.count += 1;
            t.chain_head = line.chain;
            valid_len =
                pos.offset + line.event_open.len() as u64 + super::line::TAIL_LEN as u64 + 1;
        }
        std::ops::ControlFlow::Continue(())
    })?;
    let mut trailer = stats.ok_or_else(|| StoreError::Segment {
        segment: file_name(plain),
        detail: "has no valid line to seal".into(),
    })?;
    trailer.plain_bytes = valid_len;
    segment::seal(plain, valid_len, &trailer, opts.zstd_level, owner)
}

/// Deletes plain copies whose sealed twin is older than the grace period.
fn remove_expired_plain(segments: &[SegmentFiles], opts: &StoreOptions) {
    for seg in segments {
        let (Some(plain), Some(sealed)) = (&seg.plain, &seg.sealed) else {
            continue;
        };
        let age = std::fs::symlink_metadata(sealed)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if age.is_some_and(|a| a >= opts.seal_grace) {
            let _ = crate::safefs::remove_file(plain);
        }
    }
}

struct ActiveFile {
    path: PathBuf,
    file: File,
    day: Option<String>,
    len: u64,
    /// Created by this append (not the segment that was active when it began): if it is also
    /// sealed by this append, its plain copy goes at once (segments-format.md §6.5).
    created: bool,
}

impl ActiveFile {
    fn from_tail(t: &ActiveTail, file: File) -> ActiveFile {
        ActiveFile {
            path: t.path.clone(),
            file,
            day: t.first_day.clone(),
            len: t.valid_len,
            created: false,
        }
    }
}

struct SegmentWriter<'a> {
    dir: &'a Path,
    opts: &'a StoreOptions,
    owner: &'a Ownership,
    next_id: u64,
    chain: ChainHash,
    active: Option<ActiveFile>,
    buf: Vec<u8>,
    /// Seals of rotated segments running in the background (joined before the lock is freed).
    sealing: Vec<std::thread::JoinHandle<Result<PathBuf>>>,
    /// Seals already finished.
    sealed: Vec<PathBuf>,
    /// Seals that failed (reported, never fatal: see `append_raw_locked`).
    seal_errors: Vec<String>,
    dir_dirty: bool,
}

fn join_seal(handle: std::thread::JoinHandle<Result<PathBuf>>) -> Result<PathBuf> {
    handle.join().map_err(|_| StoreError::Segment {
        segment: "-".into(),
        detail: "sealing thread panicked".into(),
    })?
}

impl SegmentWriter<'_> {
    /// [`Self::push`] after giving a release event its number.
    fn push_numbered(&mut self, json: &[u8], numbering: &mut Numbering<'_>) -> Result<()> {
        match numbering.stamp(json)? {
            Some(stamped) => self.push(&stamped),
            None => self.push(json),
        }
    }

    fn push(&mut self, json: &[u8]) -> Result<()> {
        let rest = after_placeholder(json)?;
        let id = self.next_id;
        let day = day_of(rest);
        let line_len = json.len() + super::line::TAIL_LEN + 24;
        // Readers refuse longer lines (they bound their buffers), so such an event would be
        // acknowledged and then unreadable: refuse it here instead.
        if line_len > MAX_LINE_BYTES {
            return Err(StoreError::Segment {
                segment: "-".into(),
                detail: format!(
                    "event of {} bytes refused: a line may hold at most {MAX_LINE_BYTES} bytes",
                    json.len()
                ),
            });
        }
        if let Some(active) = &self.active {
            let size = active.len + self.buf.len() as u64;
            let too_big = size > 0 && size + line_len as u64 > self.opts.segment_max_bytes;
            let new_day = self.opts.rotate_daily && active.day.as_deref() != day;
            if too_big || new_day {
                self.rotate()?;
            }
        }
        if self.active.is_none() {
            let path = self
                .dir
                .join(format!("{}{PLAIN_SUFFIX}", segment::stem(id)));
            let file = safefs::open_create(&path, self.owner, true)?;
            self.active = Some(ActiveFile {
                path,
                file,
                day: day.map(str::to_string),
                len: 0,
                created: true,
            });
            self.dir_dirty = true;
        }
        let mut ev = Vec::with_capacity(json.len() + 20);
        ev.extend_from_slice(b"{\"id\":");
        ev.extend_from_slice(id.to_string().as_bytes());
        ev.push(b',');
        ev.extend_from_slice(rest);
        self.chain = encode_line(&ev, &self.chain, &mut self.buf);
        self.next_id = id.checked_add(1).ok_or(StoreError::IdOverflow)?;
        if self.buf.len() >= 1024 * 1024 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(active) = &mut self.active else {
            return Ok(());
        };
        if crashpoint::is_armed("append.partial_write") {
            // Half a batch reaches the file, as when the machine dies mid-write.
            let half = self.buf.len() / 2;
            let _ = active.file.write_all(&self.buf[..half]);
            crashpoint::hit("append.partial_write");
        }
        active
            .file
            .write_all(&self.buf)
            .map_err(StoreError::io("write", &active.path))?;
        active.len += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        if let Some(active) = &self.active {
            if self.opts.durability == Durability::Always {
                active
                    .file
                    .sync_data()
                    .map_err(StoreError::io("fsync", &active.path))?;
            }
        }
        if self.dir_dirty && self.opts.durability == Durability::Always {
            safefs::sync_dir(self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        self.flush()?;
        if let Some(active) = self.active.take() {
            // A segment is sealed only from durable bytes.
            active
                .file
                .sync_data()
                .map_err(StoreError::io("fsync", &active.path))?;
            // At most two seals in flight, so a long import does not hold every segment in memory.
            if self.sealing.len() >= 2 {
                let oldest = self.sealing.remove(0);
                match join_seal(oldest) {
                    Ok(p) => self.sealed.push(p),
                    Err(e) => self.seal_errors.push(e.to_string()),
                }
            }
            crashpoint::hit("rotate.before_seal");
            let (opts, owner) = (self.opts.clone(), *self.owner);
            self.sealing.push(std::thread::spawn(move || {
                let sealed = seal_plain(&active.path, &opts, &owner)?;
                // A segment this append both created and sealed (a bulk import) was never
                // the active segment between two appends: no log shipper can be relying on
                // its plain copy, so it does not wait for the grace period. That bounds an
                // import's transient space to the seals in flight.
                if active.created {
                    match crate::safefs::remove_file(&active.path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(StoreError::io("remove", &active.path)(e)),
                    }
                }
                Ok(sealed)
            }));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.flush()?;
        crashpoint::hit("append.before_fsync");
        self.sync()
    }
}

/// The UTC day of an event from its canonical JSON (after the id), without a JSON parser.
fn day_of(rest: &[u8]) -> Option<&str> {
    let at = memfind(rest, b"\"ts\":\"")? + 6;
    std::str::from_utf8(rest.get(at..at + 10)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event whose line would pass the readers' 64 MiB limit is refused before anything is
    /// written: never acknowledged and then unreadable.
    #[test]
    fn an_event_over_the_line_limit_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            super::super::Store::new(dir.path(), StoreOptions::default(), Ownership::default());
        store.init().unwrap();
        let ctx = AppendContext {
            now: "2026-04-08T20:00:00Z".into(),
            source_trigger: "test".into(),
            actor: ActorStamp::system(),
        };
        let small = br#"{"id":0,"ts":"2026-04-08T20:00:00Z","message":"ok"}"#.to_vec();
        let mut big = br#"{"id":0,"ts":"2026-04-08T20:00:00Z","message":""#.to_vec();
        big.resize(big.len() + MAX_LINE_BYTES, b'x');
        big.extend_from_slice(b"\"}");
        let err = store
            .append_raw(&mut [small.as_slice(), big.as_slice()].into_iter(), &ctx)
            .unwrap_err();
        assert!(err.to_string().contains("a line may hold at most"), "{err}");
        assert_eq!(
            store.last_id().unwrap(),
            0,
            "nothing of the batch was stored"
        );
        let ok = store
            .append_raw(&mut [small.as_slice()].into_iter(), &ctx)
            .unwrap();
        assert_eq!((ok.first_id, ok.last_id), (1, 1));
    }
}
