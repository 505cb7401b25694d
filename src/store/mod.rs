//! The segment store: the only code that opens segment files.
//!
//! Events are appended as checksummed, hash-chained JSONL lines to the active segment
//! (`segments/<first id>.jsonl`); full or day-old segments are sealed to zstd
//! (`segments/<first id>.jsonl.zst`). `segments-format.md` at the repository root is the
//! normative description of every byte; this module is its implementation.
//!
//! The store uses `FORMAT`, `LOCK`, `segments/`, `quarantine/`, `spool/` and `compact.journal`
//! of the data directory, by the names [`crate::layout`] gives them.

pub mod backup;
pub mod compact;
pub mod error;
pub mod fleet;
pub mod follow;
mod head;
pub(crate) mod line;
pub(crate) mod reader;
pub mod recover;
pub mod releases;
mod scan;
pub(crate) mod segment;
pub mod spool;
pub mod verify;
pub mod writer;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::safefs::Ownership;
pub use error::{Result, StoreError};
pub use line::{CheckedLine, FORMAT_VERSION};
pub use reader::{Damage, DamageKind, LinePos, ScanItem};
pub use scan::HeadStamp;
pub use segment::{SegmentFiles, Trailer};
pub use verify::{Problem, VerifyReport};
pub use writer::{AppendContext, AppendReceipt, Repair, ID_PLACEHOLDER};

/// The line codec and segment files, for the compatibility tests, the fuzz targets and the
/// benches only: everything else goes through [`Store`]. Not a stable API.
#[doc(hidden)]
pub mod codec {
    pub use super::line::{
        check_line, encode_line, parse_id, ChainHash, CheckedLine, LineError, CHAIN_BYTES,
        FORMAT_VERSION, TAIL_LEN,
    };
    pub use super::reader::{scan_segment, MAX_LINE_BYTES};
    pub use super::segment::{
        list, seal, stem, SegmentName, Trailer, PLAIN_SUFFIX, SEALED_SUFFIX, TEMP_SUFFIX,
        TRAILER_FRAME_MAGIC, TRAILER_MAGIC,
    };
    pub use super::writer::seal_plain;
}

use crate::layout::Layout;
use crate::record::Event;
use crate::safefs;
use crate::settings::{Settings, SettingsError};

/// When appends reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fdatasync before an append returns (default): an acknowledged event survives a crash.
    Always,
    /// Leave it to the OS: faster, but a crash may lose the last seconds of events.
    Relaxed,
}

/// Tunables of the store, resolved from settings by the caller.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Seal the active segment before it would pass this many bytes of plain JSONL.
    pub segment_max_bytes: u64,
    /// Seal when the UTC day of the event being appended differs from the segment's.
    pub rotate_daily: bool,
    /// When appends reach the disk.
    pub durability: Durability,
    /// How long the plain copy of a sealed segment stays for log shippers.
    pub seal_grace: Duration,
    /// zstd level used when sealing.
    pub zstd_level: i32,
    /// How long a writer waits for the lock.
    pub lock_timeout: Duration,
    /// Delete whole sealed segments older than this many days whenever a segment is sealed
    /// (0: keep everything).
    pub retention_days: u64,
}

impl StoreOptions {
    /// The options the settings give (the store reads no setting itself).
    pub fn from_settings(s: &Settings) -> std::result::Result<StoreOptions, SettingsError> {
        let s = s.store_settings()?;
        Ok(StoreOptions {
            segment_max_bytes: s.segment_max_bytes,
            rotate_daily: s.rotate_daily,
            durability: if s.durability_relaxed {
                Durability::Relaxed
            } else {
                Durability::Always
            },
            seal_grace: s.seal_grace,
            zstd_level: s.zstd_level,
            lock_timeout: s.busy_timeout,
            retention_days: s.retention_days,
        })
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            segment_max_bytes: 16 * 1024 * 1024,
            rotate_daily: true,
            durability: Durability::Always,
            seal_grace: Duration::from_secs(3600),
            zstd_level: 7,
            lock_timeout: Duration::from_secs(30),
            retention_days: 0,
        }
    }
}

/// Validates each event (a bad one refuses the whole batch before anything is written) and
/// encodes it as canonical JSON with the id placeholder.
pub(crate) fn encode_for_append(events: &mut [Event]) -> Result<Vec<Vec<u8>>> {
    let mut encoded = Vec::with_capacity(events.len());
    for (i, ev) in events.iter_mut().enumerate() {
        ev.validate().map_err(|source| StoreError::BadEvent {
            index: i + 1,
            source,
        })?;
        ev.id = 0;
        encoded.push(ev.to_json_bytes());
    }
    Ok(encoded)
}

/// Prefix of the `FORMAT` marker file; the version number follows.
pub const FORMAT_MARKER: &str = "dokku-audit segments ";

/// Counts for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Segments (sealed + active).
    pub segments: u64,
    /// Sealed segments.
    pub sealed_segments: u64,
    /// Events in all segments.
    pub events: u64,
    /// Bytes of segment files on disk (sealed copies, plain active, plain copies in grace).
    pub bytes_on_disk: u64,
    /// Bytes of sealed segment files.
    pub sealed_bytes: u64,
    /// Events in sealed segments.
    pub sealed_events: u64,
    /// Bytes of plain segments that are the segment (the active one, or one awaiting sealing).
    pub plain_bytes: u64,
    /// Bytes of plain copies of sealed segments kept for their grace period (§6.5).
    pub plain_copy_bytes: u64,
    /// Id of the newest event.
    pub last_id: u64,
    /// `ts` of the newest event (by id).
    pub last_ts: Option<String>,
}

/// Set when this process takes the writer lock for a maintenance operation (see
/// [`Store::took_writer_lock`]).
static TOOK_WRITER_LOCK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The store facade.
#[derive(Debug, Clone)]
pub struct Store {
    paths: Layout,
    opts: StoreOptions,
    owner: Ownership,
}

impl Store {
    /// A store over `data_dir`. Does no I/O.
    pub fn new(data_dir: &Path, opts: StoreOptions, owner: Ownership) -> Store {
        Store {
            paths: Layout::new(data_dir),
            opts,
            owner,
        }
    }

    /// The paths it uses.
    pub fn paths(&self) -> &Layout {
        &self.paths
    }

    /// The options it was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.opts
    }

    /// Creates the data directory layout if needed and checks the format marker. Writers call
    /// this; it is cheap when everything exists.
    pub fn init(&self) -> Result<()> {
        if !self.paths.segments.is_dir() {
            safefs::ensure_dir(&self.paths.root, &self.owner)?;
            safefs::ensure_dir(&self.paths.segments, &self.owner)?;
        }
        match self.read_format()? {
            Some(_) => Ok(()),
            None => Ok(safefs::atomic_write(
                &self.paths.format,
                format!("{FORMAT_MARKER}{FORMAT_VERSION}\n").as_bytes(),
                &self.owner,
            )?),
        }
    }

    /// The last release number of each app (`store::releases`), brought up to the segments.
    pub fn release_counters(&self) -> Result<releases::Counters> {
        let listing = segment::list(&self.paths.segments)?;
        let last_id = head::Tail::load(&listing.segments)?
            .next_id
            .saturating_sub(1);
        releases::Counters::load(&self.paths, &listing.segments, last_id)
    }

    /// Checks that the data directory exists and is of a format this build reads.
    pub fn check_readable(&self) -> Result<()> {
        if !self.paths.root.is_dir() {
            return Err(StoreError::NoDataDir(self.paths.root.clone()));
        }
        self.read_format().map(|_| ())
    }

    /// The version in `FORMAT`, `None` if the file does not exist yet. A newer version is an
    /// error: it is never misread.
    pub fn read_format(&self) -> Result<Option<u32>> {
        let text = match crate::safefs::read_to_string(&self.paths.format) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io("read", &self.paths.format)(e)),
        };
        // Decimal digits only (`+1`, ` 1`, `1.0` are not a version); a number too large for a
        // u32 is refused as unrecognised.
        let version = text
            .trim()
            .strip_prefix(FORMAT_MARKER)
            .filter(|v| !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| StoreError::BadFormatMarker(self.paths.format.clone()))?;
        if version == 0 {
            return Err(StoreError::UnknownFormat {
                what: format!("data directory {}", self.paths.root.display()),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        if version > FORMAT_VERSION {
            return Err(StoreError::NewerFormat {
                what: format!("data directory {}", self.paths.root.display()),
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(Some(version))
    }

    /// Appends events as one durable batch and sets their ids. Each event is validated first;
    /// a bad one refuses the whole batch before anything is written.
    pub fn append(&self, events: &mut [Event], ctx: &AppendContext) -> Result<AppendReceipt> {
        let encoded = encode_for_append(events)?;
        let receipt = self.append_raw(&mut encoded.iter().map(Vec::as_slice), ctx)?;
        for (i, ev) in events.iter_mut().enumerate() {
            ev.id = receipt.first_id + i as u64;
        }
        Ok(receipt)
    }

    /// Spools events instead of appending them (the writer lock stayed busy): validated,
    /// marked with `meta.spooled_from`, written to one durable spool file that the next writer
    /// drains (see [`spool`]); their ids are assigned then. Once the file is durable, the lock is
    /// tried once more without waiting (the hand-off, [`Store::drain_spool_if_free`]): if its
    /// holder released it meanwhile, nobody else may come to drain. A failed drain leaves the
    /// events in the spool (durable) and is returned as a warning in `Ok`.
    pub fn spool(&self, events: &mut [Event], ctx: &AppendContext) -> Result<Option<String>> {
        self.spool_file(events)?;
        Ok(self.drain_spool_if_free(ctx).err().map(|e| e.to_string()))
    }

    fn spool_file(&self, events: &mut [Event]) -> Result<std::path::PathBuf> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static SEQ: AtomicU32 = AtomicU32::new(0);
        self.init()?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{nanos:024}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        for (i, ev) in events.iter_mut().enumerate() {
            ev.meta.insert(
                "spooled_from".into(),
                serde_json::Value::from(spool::marker(&name, i)),
            );
        }
        let lines = encode_for_append(events)?;
        spool::write(&self.paths, &self.owner, &name, &lines)
    }

    /// Appends pre-encoded events (canonical JSON starting with [`ID_PLACEHOLDER`]); the caller
    /// has validated them. This is the bulk path of `import`.
    pub fn append_raw(
        &self,
        events: &mut dyn Iterator<Item = &[u8]>,
        ctx: &AppendContext,
    ) -> Result<AppendReceipt> {
        self.init()?;
        let mut receipt = writer::append_raw(&self.paths, &self.opts, &self.owner, events, ctx)?;
        self.retain_after(&receipt, ctx)?;
        // The lock is released: hand off what was spooled meanwhile (see `drain_spool_if_free`).
        // The events of this append are durable already; a failed drain leaves the spool to the
        // next writer and is only a warning.
        if let Err(e) = self.drain_spool_if_free(ctx) {
            receipt.drain_error = Some(e.to_string());
        }
        Ok(receipt)
    }

    /// Retention is enforced when a segment is sealed (storage.md). The events of the append are
    /// durable already: a retention failure is reported, never undone.
    fn retain_after(&self, receipt: &AppendReceipt, ctx: &AppendContext) -> Result<()> {
        if !receipt.sealed.is_empty() && self.opts.retention_days > 0 {
            if let Some(now) = crate::timefmt::parse_canonical(&ctx.now) {
                let days = self.opts.retention_days;
                let cutoff = now - chrono::Duration::days(days.min(100_000) as i64);
                self.enforce_retention(days, &crate::timefmt::format_utc(cutoff), ctx)?;
            }
        }
        Ok(())
    }

    /// Takes the writer lock for a maintenance operation, waiting at most the store's lock
    /// timeout, and remembers for [`Store::took_writer_lock`] that this process held it.
    pub(crate) fn lock_writer(&self) -> Result<safefs::WriterLock> {
        let lock =
            safefs::WriterLock::acquire(&self.paths.lock, &self.owner, self.opts.lock_timeout)?;
        TOOK_WRITER_LOCK.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(lock)
    }

    /// Whether this process has held the writer lock for a maintenance operation: a command that
    /// did hands the spool off when it ends ([`Store::drain_spool_if_free`]), since triggers
    /// spool while it holds the lock.
    pub fn took_writer_lock() -> bool {
        TOOK_WRITER_LOCK.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends what the spool holds if it holds anything and the writer lock is free right now
    /// (never waits); returns how many spooled events it appended.
    ///
    /// Whoever releases the writer lock calls this, and so does a trigger right after it spooled.
    /// That hand-off leaves no spool file stranded while no more triggers come (segments-format.md
    /// §7.7): a spooler whose try finds the lock held wrote its file before the holder released
    /// the lock, and the holder looks at the spool after releasing it; if the holder's try fails
    /// in turn, the lock has a newer holder, which does the same.
    pub fn drain_spool_if_free(&self, ctx: &AppendContext) -> Result<u64> {
        let mut drained = 0;
        // Until the spool is empty or another process holds the lock (then that one hands off).
        // Each round appends what spooling triggers left meanwhile: a finite number.
        while !spool::pending(&self.paths).is_empty() {
            let lock =
                match safefs::WriterLock::acquire(&self.paths.lock, &self.owner, Duration::ZERO) {
                    Ok(lock) => lock,
                    Err(safefs::FsError::LockBusy { .. }) => break,
                    Err(e) => return Err(e.into()),
                };
            let receipt = writer::append_raw_locked(
                &lock,
                &self.paths,
                &self.opts,
                &self.owner,
                &mut std::iter::empty(),
                ctx,
            )?;
            drop(lock);
            drained += receipt.drained;
            self.retain_after(&receipt, ctx)?;
            if receipt.drained == 0 {
                // Nothing new was appended (the files were already stored, or could not be
                // removed): looking again would find the same files.
                break;
            }
        }
        Ok(drained)
    }

    /// Lists the segments in event order.
    pub fn segments(&self) -> Result<Vec<SegmentFiles>> {
        Ok(self.listing()?.segments)
    }

    /// Everything the segments directory holds, including leftovers.
    pub fn listing(&self) -> Result<segment::Listing> {
        let mut listing = segment::list(&self.paths.segments)?;
        recover::apply_pending_view(&self.paths, &mut listing);
        Ok(listing)
    }

    /// Checks every CRC, id order, trailers and the chain.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.check_readable()?;
        let listing = self.listing()?;
        let mut report = verify::verify(&listing.segments)?;
        // A compaction journal that is refused (a path outside the data directory, not JSON)
        // is ignored by readers, who read `segments/` as it stands, and blocks every writer
        // until it is removed: that is an integrity failure (segments-format.md §8.1).
        if let Err(e) = recover::pending_journal(&self.paths) {
            let detail = match e {
                StoreError::Segment { detail, .. } => detail,
                other => other.to_string(),
            };
            report.problems.insert(
                0,
                Problem {
                    pos: LinePos {
                        segment: crate::layout::COMPACT_JOURNAL.into(),
                        line: 0,
                        offset: 0,
                    },
                    message: format!(
                        "{detail}; readers ignore it and writers refuse to write until it is moved away"
                    ),
                },
            );
        }
        // Something under a segment's name that is not a regular file (a directory, a FIFO) is
        // never read, but it is not what the writer left there: report it.
        for p in &listing.foreign_files {
            let name = segment::file_name(p);
            let segment_like =
                segment::SegmentName::parse(&name).is_some_and(segment::SegmentName::is_data);
            let regular = std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file());
            if segment_like && !regular {
                report.problems.push(Problem {
                    pos: LinePos {
                        segment: name,
                        line: 0,
                        offset: 0,
                    },
                    message: "is not a regular file, so it is not read as a segment; move it away"
                        .into(),
                });
            }
        }
        Ok(report)
    }

    /// Counts for `status`: sealed segments are counted from their trailers, the active one by
    /// reading it.
    pub fn stats(&self) -> Result<StoreStats> {
        self.check_readable()?;
        let segments = self.segments()?;
        let mut s = StoreStats {
            segments: segments.len() as u64,
            ..Default::default()
        };
        for (i, seg) in segments.iter().enumerate() {
            let size = |p: &Option<PathBuf>| {
                p.as_ref()
                    .map_or(0, |p| std::fs::symlink_metadata(p).map_or(0, |m| m.len()))
            };
            let (plain, sealed) = (size(&seg.plain), size(&seg.sealed));
            s.bytes_on_disk += plain + sealed;
            if seg.sealed.is_some() {
                s.sealed_bytes += sealed;
                s.plain_copy_bytes += plain;
            } else {
                s.plain_bytes += plain;
            }
            let trailer = match &seg.sealed {
                Some(p) => Trailer::read(p)?,
                None => None,
            };
            if let Some(t) = trailer {
                s.sealed_segments += 1;
                s.events += t.count;
                s.sealed_events += t.count;
                if t.count > 0 {
                    s.last_id = t.last_id;
                    s.last_ts = Some(t.last_ts);
                }
                continue;
            }
            let is_active = i + 1 == segments.len() && seg.is_plain();
            let _flow = reader::scan_segment(seg, is_active, &mut |item| {
                if let ScanItem::Line { line, .. } = item {
                    s.events += 1;
                    s.last_id = line.id().unwrap_or(s.last_id);
                    s.last_ts = line.ts().map(str::to_string);
                }
                ControlFlow::Continue(())
            })?;
        }
        Ok(s)
    }
}
