//! Backups made of files, and restoring one (storage.md "Operations").
//!
//! A backup is a directory with the layout of a data directory, so a [`Store`] opened on it reads
//! and verifies it like any other:
//!
//! ```text
//! <backup>/MANIFEST.json    format version, created_at, ids, event count, chain head, and the
//!                           size and SHA-256 of every other file
//! <backup>/FORMAT           copy of the data directory's format marker
//! <backup>/settings.json    copy of the settings, if there were any
//! <backup>/segments/        sealed segments hard-linked from the store (copied when linking is
//!                           impossible), the active segment copied up to its last valid line
//! ```
//!
//! The writer lock is held only while the segments are listed, linked and the active segment's
//! valid prefix is copied; hashing and verifying happen afterwards, on the backup's own files.
//! The backup is built under a temporary name and renamed into place when complete.
//!
//! A restore verifies the backup (every file against the manifest, then `verify` over its
//! segments), stages a copy of its segments inside the data directory, checking each file's
//! checksum again while copying, and swaps the staged directory in with two renames under the
//! writer lock. Its `maintenance`/`restore` event is written into the staged segments before the
//! swap, with an id above every id the replaced history used: ids are never given out twice.

use std::fs::{self};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::error::{Result, StoreError};
use super::head::Tail;
use super::line::{FORMAT_VERSION, TAIL_LEN};
use super::reader::{scan_segment, ScanItem};
use super::segment::{self, file_name, SegmentFiles};
use super::Store;
use crate::safefs::{self, WriterLock};

mod hash;
mod restore;
mod verify;

use hash::{copy_hashed, list_files, write_new, HashCache, HASH_CACHE_FILE};
use restore::remove_dir_if_exists;
pub use restore::restore_locked;
pub use verify::verify_backup;

/// Name of the manifest inside a backup.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// Version of the manifest's own layout.
pub const MANIFEST_VERSION: u64 = 1;
/// A backup directory uses the data directory's names for what it copies: the settings file
/// (which the store copies but does not read), the format marker, the segments.
use crate::layout::{FORMAT as FORMAT_FILE, SEGMENTS as SEGMENTS_DIR, SETTINGS as SETTINGS_FILE};

/// One file of a backup as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Path relative to the backup directory, `/`-separated (`segments/<name>`, `FORMAT`, …).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

/// What `MANIFEST.json` says about a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Segment format version of the backed-up data.
    pub format_version: u32,
    /// When the backup was made (canonical UTC timestamp).
    pub created_at: String,
    /// Id of the first event (0 when the backup holds none).
    pub first_id: u64,
    /// Id of the last event (0 when the backup holds none).
    pub last_id: u64,
    /// Number of events.
    pub event_count: u64,
    /// Number of segments.
    pub segment_count: u64,
    /// Chain value of the last event (`verify`'s chain head).
    pub chain_head: String,
    /// Every file of the backup except the manifest itself.
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// The manifest as pretty-printed JSON with a final newline.
    pub fn to_json(&self) -> Vec<u8> {
        let files: Vec<Value> = self
            .files
            .iter()
            .map(|f| json!({"path": f.path, "size": f.size, "sha256": f.sha256}))
            .collect();
        let v = json!({
            "manifest_version": MANIFEST_VERSION,
            "tool": concat!("dokku-audit ", env!("CARGO_PKG_VERSION")),
            "format_version": self.format_version,
            "created_at": self.created_at,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "event_count": self.event_count,
            "segment_count": self.segment_count,
            "chain_head": self.chain_head,
            "files": files,
        });
        let mut out = serde_json::to_vec_pretty(&v).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses a manifest; the error says which member is wrong.
    pub fn parse(bytes: &[u8]) -> std::result::Result<Manifest, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
        let uint = |k: &str| {
            v[k].as_u64()
                .ok_or_else(|| format!("member {k:?} is missing or not an integer"))
        };
        let text = |k: &str| {
            v[k].as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("member {k:?} is missing or not a string"))
        };
        let version = uint("manifest_version")?;
        if version != MANIFEST_VERSION {
            return Err(format!(
                "manifest version {version} is not one this dokku-audit reads ({MANIFEST_VERSION})"
            ));
        }
        let list = v["files"]
            .as_array()
            .ok_or_else(|| "member \"files\" is missing or not an array".to_string())?;
        let mut files = Vec::with_capacity(list.len());
        for f in list {
            let (Some(path), Some(size), Some(sha256)) =
                (f["path"].as_str(), f["size"].as_u64(), f["sha256"].as_str())
            else {
                return Err("an entry of \"files\" lacks path, size or sha256".into());
            };
            files.push(ManifestFile {
                path: path.to_string(),
                size,
                sha256: sha256.to_string(),
            });
        }
        Ok(Manifest {
            format_version: u32::try_from(uint("format_version")?)
                .map_err(|_| "member \"format_version\" is out of range".to_string())?,
            created_at: text("created_at")?,
            first_id: uint("first_id")?,
            last_id: uint("last_id")?,
            event_count: uint("event_count")?,
            segment_count: uint("segment_count")?,
            chain_head: text("chain_head")?,
            files,
        })
    }

    fn file(&self, path: &str) -> Option<&ManifestFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

/// A backup that was just written.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    /// Where it is.
    pub path: PathBuf,
    /// What its manifest says.
    pub manifest: Manifest,
    /// Sealed segments hard-linked from the store.
    pub linked: u64,
    /// Segment files copied (the active segment's prefix, and sealed ones that could not be
    /// linked).
    pub copied: u64,
}

/// Why a backup cannot be restored, or an I/O failure while checking it.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The backup is incomplete, damaged or not a backup.
    #[error("backup {path} is not valid: {problem}")]
    Invalid {
        /// The backup directory.
        path: PathBuf,
        /// What is wrong, in one sentence.
        problem: String,
    },
    /// Reading failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A backup whose files match its manifest and whose segments verify.
#[derive(Debug, Clone)]
pub struct VerifiedBackup {
    /// The backup directory.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its segments.
    pub segments: Vec<SegmentFiles>,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// Id given to the restore event (above every id of both histories).
    pub event_id: u64,
    /// Id of the last event of the history that was replaced (0 if there was none).
    pub replaced_last_id: u64,
    /// Chain head after the restore event.
    pub chain_head: String,
    /// The old segments directory, if it could not be removed after the swap.
    pub leftover: Option<PathBuf>,
}

/// Proof that the store's writer lock is held; see [`Store::with_writer_lock`].
pub struct WriterGuard<'a> {
    store: &'a Store,
    _lock: WriterLock,
}

impl Store {
    /// Runs `f` while holding the writer lock (waiting at most the store's lock timeout), so that
    /// no append happens meanwhile. The data directory must exist. The guard lets `f` call the
    /// operations that require the lock, such as [`restore_locked`].
    pub fn with_writer_lock<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&WriterGuard<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let lock = self.lock_writer()?;
        let guard = WriterGuard {
            store: self,
            _lock: lock,
        };
        f(&guard)
    }
}

/// Writes a backup of `store` to `dest` (which must not exist), stamped `created_at`.
pub fn create(store: &Store, dest: &Path, created_at: &str) -> Result<BackupSummary> {
    store.check_readable()?;
    if fs::symlink_metadata(dest).is_ok() {
        return Err(StoreError::io("create backup", dest)(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already exists",
        )));
    }
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    safefs::ensure_dir(&parent, &store.owner)?;
    let tmp = parent.join(crate::layout::temp_name(&file_name(dest)));
    remove_dir_if_exists(&tmp)?;
    let built = build(store, &tmp, created_at);
    let (manifest, linked, copied) = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = crate::safefs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    crate::crashpoint::hit("backup.before_rename");
    if let Err(e) = crate::safefs::rename(&tmp, dest) {
        let _ = crate::safefs::remove_dir_all(&tmp);
        return Err(StoreError::io("rename", dest)(e));
    }
    safefs::sync_dir(&parent)?;
    Ok(BackupSummary {
        path: dest.to_path_buf(),
        manifest,
        linked,
        copied,
    })
}

/// Fills the temporary backup directory `tmp` and returns its manifest and the link/copy counts.
fn build(store: &Store, tmp: &Path, created_at: &str) -> Result<(Manifest, u64, u64)> {
    let owner = &store.owner;
    safefs::ensure_dir(tmp, owner)?;
    let seg_dir = tmp.join(SEGMENTS_DIR);
    safefs::ensure_dir(&seg_dir, owner)?;
    let (mut linked, mut copied) = (0u64, 0u64);
    {
        // Under the lock: no append, seal, prune or repair changes the segments meanwhile.
        let _lock = store.lock_writer()?;
        // A backup never copies a half-finished prune or restore.
        super::recover::recover(&store.paths)?;
        let listing = segment::list(&store.paths.segments)?;
        let tail = Tail::load(&listing.segments)?;
        let n = listing.segments.len();
        for (i, seg) in listing.segments.iter().enumerate() {
            if let Some(sealed) = &seg.sealed {
                // Sealed segments are immutable (replaced only by rename): a link is a copy.
                let dst = seg_dir.join(file_name(sealed));
                if crate::safefs::hard_link(sealed, &dst).is_ok() {
                    linked += 1;
                } else {
                    copy_hashed(sealed, &dst, None, owner)?;
                    copied += 1;
                }
            } else if let Some(plain) = &seg.plain {
                // The active segment (or a plain one a crash left unsealed): its whole lines up
                // to the last valid one, never a torn tail.
                let valid = if i + 1 == n {
                    tail.active.as_ref().map_or(0, |a| a.valid_len)
                } else {
                    plain_valid_len(seg)?
                };
                if valid > 0 {
                    copy_hashed(plain, &seg_dir.join(file_name(plain)), Some(valid), owner)?;
                    copied += 1;
                }
            }
        }
        safefs::sync_dir(&seg_dir)?;
    }
    for name in [FORMAT_FILE, SETTINGS_FILE] {
        let src = store.paths.root.join(name);
        if src.is_file() {
            copy_hashed(&src, &tmp.join(name), None, owner)?;
        }
    }
    // The summary comes from the trailers and the active segment's copy (no full verify here:
    // sealed segments were checked when sealed, the active copy line by line above, and a
    // restore verifies everything before it replaces anything).
    let bstore = Store::new(tmp, store.opts.clone(), *owner);
    let segments = bstore.segments()?;
    let stats = bstore.stats()?;
    let chain_head = Tail::load(&segments)?.chain.to_hex();
    let cache_path = store.paths.backups.join(HASH_CACHE_FILE);
    let mut cache = HashCache::load(&cache_path);
    let manifest = Manifest {
        format_version: store.read_format()?.unwrap_or(FORMAT_VERSION),
        created_at: created_at.to_string(),
        first_id: first_id(&segments)?,
        last_id: stats.last_id,
        event_count: stats.events,
        segment_count: segments.len() as u64,
        chain_head,
        files: list_files(tmp, &mut cache)?,
    };
    cache.save(&cache_path, owner);
    let mpath = tmp.join(MANIFEST_FILE);
    write_new(&mpath, &manifest.to_json(), owner)?;
    safefs::sync_dir(tmp)?;
    Ok((manifest, linked, copied))
}

/// Id of the first valid line of the first segment that has one (0 for none).
fn first_id(segments: &[SegmentFiles]) -> Result<u64> {
    for (i, seg) in segments.iter().enumerate() {
        let is_active = i + 1 == segments.len() && seg.is_plain();
        let mut found = None;
        let _flow = scan_segment(seg, is_active, &mut |item| {
            if let ScanItem::Line { line, .. } = item {
                found = line.id();
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        })?;
        if let Some(id) = found {
            return Ok(id);
        }
    }
    Ok(0)
}

/// Length of a plain segment up to the end of its last valid line.
fn plain_valid_len(seg: &SegmentFiles) -> Result<u64> {
    let mut valid = 0u64;
    let _flow = scan_segment(seg, false, &mut |item| {
        if let ScanItem::Line { pos, line } = item {
            valid = pos.offset + line.event_open.len() as u64 + TAIL_LEN as u64 + 1;
        }
        ControlFlow::Continue(())
    })?;
    Ok(valid)
}

/// True for the file names a backup's `segments/` may hold.
fn is_segment_name(name: &str) -> bool {
    segment::SegmentName::parse(name).is_some_and(segment::SegmentName::is_data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trips_and_rejects_damage() {
        let m = Manifest {
            format_version: 1,
            created_at: "2026-04-08T20:00:00Z".into(),
            first_id: 1,
            last_id: 9,
            event_count: 9,
            segment_count: 2,
            chain_head: "00".repeat(16),
            files: vec![ManifestFile {
                path: "FORMAT".into(),
                size: 23,
                sha256: "ab".repeat(32),
            }],
        };
        assert_eq!(Manifest::parse(&m.to_json()), Ok(m));
        assert!(Manifest::parse(b"{}").is_err());
        assert!(Manifest::parse(b"not json").is_err());
    }

    #[test]
    fn segment_names() {
        assert!(is_segment_name("00000000000000000001.jsonl"));
        assert!(is_segment_name("00000000000000000001.jsonl.zst"));
        assert!(!is_segment_name("../00000000000000000001.jsonl"));
        assert!(!is_segment_name("1.jsonl"));
        assert!(!is_segment_name("99999999999999999999.jsonl"));
    }
}
