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
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::error::{Result, StoreError};
use super::fsutil::{self, Ownership, WriterLock};
use super::head::Tail;
use super::line::{encode_line, FORMAT_VERSION, TAIL_LEN};
use super::reader::{scan_segment, ScanItem};
use super::segment::{self, file_name, SegmentFiles, PLAIN_SUFFIX, SEALED_SUFFIX};
use super::verify::VerifyReport;
use super::writer::ID_PLACEHOLDER;
use super::Store;
use crate::record::Event;

/// Name of the manifest inside a backup.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
/// Version of the manifest's own layout.
pub const MANIFEST_VERSION: u64 = 1;
/// The settings file copied along (named by `crate::settings`, which the store does not read).
const SETTINGS_FILE: &str = "settings.json";
/// The format marker's file name.
const FORMAT_FILE: &str = "FORMAT";
/// The segments directory's name.
const SEGMENTS_DIR: &str = "segments";

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
        let lock = WriterLock::acquire(&self.paths.lock, &self.owner, self.opts.lock_timeout)?;
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
    fsutil::ensure_dir(&parent, &store.owner)?;
    let tmp = parent.join(format!(".{}.tmp-{}", file_name(dest), std::process::id()));
    remove_dir_if_exists(&tmp)?;
    let built = build(store, &tmp, created_at);
    let (manifest, linked, copied) = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = crate::store::fsutil::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    crate::crashpoint::hit("backup.before_rename");
    if let Err(e) = crate::store::fsutil::rename(&tmp, dest) {
        let _ = crate::store::fsutil::remove_dir_all(&tmp);
        return Err(StoreError::io("rename", dest)(e));
    }
    fsutil::sync_dir(&parent)?;
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
    fsutil::ensure_dir(tmp, owner)?;
    let seg_dir = tmp.join(SEGMENTS_DIR);
    fsutil::ensure_dir(&seg_dir, owner)?;
    let (mut linked, mut copied) = (0u64, 0u64);
    {
        // Under the lock: no append, seal, prune or repair changes the segments meanwhile.
        let _lock = WriterLock::acquire(&store.paths.lock, owner, store.opts.lock_timeout)?;
        // A backup never copies a half-finished prune or restore.
        super::recover::recover(&store.paths)?;
        let listing = segment::list(&store.paths.segments)?;
        let tail = Tail::load(&listing.segments)?;
        let n = listing.segments.len();
        for (i, seg) in listing.segments.iter().enumerate() {
            if let Some(sealed) = &seg.sealed {
                // Sealed segments are immutable (replaced only by rename): a link is a copy.
                let dst = seg_dir.join(file_name(sealed));
                if crate::store::fsutil::hard_link(sealed, &dst).is_ok() {
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
        fsutil::sync_dir(&seg_dir)?;
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
    let cache_path = store.paths.root.join("backups").join(HASH_CACHE_FILE);
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
    fsutil::sync_dir(tmp)?;
    Ok((manifest, linked, copied))
}

/// File name of the SHA-256 cache of sealed segments, in `<data dir>/backups/`.
const HASH_CACHE_FILE: &str = ".sha256-cache.json";

/// SHA-256s of sealed segments, keyed by name, size and modification time: sealed segments are
/// immutable (a rewrite is a new file), so a backup hashes only segments sealed since the last.
#[derive(Default)]
struct HashCache {
    entries: serde_json::Map<String, serde_json::Value>,
    touched: std::collections::HashSet<String>,
}

impl HashCache {
    fn load(path: &Path) -> HashCache {
        let entries = crate::store::fsutil::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        HashCache {
            entries,
            touched: Default::default(),
        }
    }

    fn key(path: &Path) -> Option<String> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some(format!(
            "{}|{}|{}",
            file_name(path),
            meta.len(),
            mtime.as_nanos()
        ))
    }

    fn hash(&mut self, path: &Path) -> Result<(u64, String)> {
        let sealed = file_name(path).ends_with(".jsonl.zst");
        let key = if sealed { Self::key(path) } else { None };
        if let Some(k) = &key {
            if let Some(h) = self.entries.get(k).and_then(|v| v.as_str()) {
                self.touched.insert(k.clone());
                let size = std::fs::symlink_metadata(path)
                    .map_err(StoreError::io("stat", path))?
                    .len();
                return Ok((size, h.to_string()));
            }
        }
        let (size, sha) = hash_file(path)?;
        if let Some(k) = key {
            self.entries.insert(k.clone(), sha.clone().into());
            self.touched.insert(k);
        }
        Ok((size, sha))
    }

    /// Keeps only the entries of this backup's segments (the cache never grows without bound).
    fn save(mut self, path: &Path, owner: &Ownership) {
        let touched = std::mem::take(&mut self.touched);
        self.entries.retain(|k, _| touched.contains(k));
        if let Ok(bytes) = serde_json::to_vec(&self.entries) {
            if let Some(dir) = path.parent() {
                let _ = fsutil::ensure_dir(dir, owner);
            }
            let _ = fsutil::atomic_write(path, &bytes, owner);
        }
    }
}

/// The files of a backup directory (`FORMAT`, `settings.json`, `segments/*`) with size and hash.
fn list_files(dir: &Path, cache: &mut HashCache) -> Result<Vec<ManifestFile>> {
    let mut out = Vec::new();
    for name in [FORMAT_FILE, SETTINGS_FILE] {
        let p = dir.join(name);
        if p.is_file() {
            let (size, sha256) = hash_file(&p)?;
            out.push(ManifestFile {
                path: name.to_string(),
                size,
                sha256,
            });
        }
    }
    let seg_dir = dir.join(SEGMENTS_DIR);
    let mut names = Vec::new();
    for entry in fs::read_dir(&seg_dir).map_err(StoreError::io("read directory", &seg_dir))? {
        let entry = entry.map_err(StoreError::io("read directory", &seg_dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for name in names {
        let (size, sha256) = cache.hash(&seg_dir.join(&name))?;
        out.push(ManifestFile {
            path: format!("{SEGMENTS_DIR}/{name}"),
            size,
            sha256,
        });
    }
    Ok(out)
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
    let stem = name
        .strip_suffix(SEALED_SUFFIX)
        .or_else(|| name.strip_suffix(PLAIN_SUFFIX));
    stem.is_some_and(|s| {
        s.len() == 20 && s.bytes().all(|c| c.is_ascii_digit()) && s.parse::<u64>().is_ok()
    })
}

/// Checks a backup without changing anything: the manifest, every file's size and SHA-256, that
/// no segment is unlisted, and `verify` over its segments (whose results must match the
/// manifest).
pub fn verify_backup(dir: &Path) -> std::result::Result<VerifiedBackup, BackupError> {
    let invalid = |problem: String| BackupError::Invalid {
        path: dir.to_path_buf(),
        problem,
    };
    if !dir.is_dir() {
        return Err(invalid("no such directory".into()));
    }
    let mpath = dir.join(MANIFEST_FILE);
    let bytes = match crate::store::fsutil::read(&mpath) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(invalid(format!(
                "{MANIFEST_FILE} is missing (not a dokku-audit backup, or an incomplete one)"
            )))
        }
        Err(e) => return Err(StoreError::io("read", &mpath)(e).into()),
    };
    let manifest = Manifest::parse(&bytes).map_err(|e| invalid(format!("{MANIFEST_FILE}: {e}")))?;
    if manifest.format_version > FORMAT_VERSION {
        return Err(invalid(format!(
            "it uses format version {}, newer than this dokku-audit supports ({FORMAT_VERSION}); upgrade dokku-audit",
            manifest.format_version
        )));
    }
    for f in &manifest.files {
        let allowed = f.path == FORMAT_FILE
            || f.path == SETTINGS_FILE
            || f.path
                .strip_prefix("segments/")
                .is_some_and(is_segment_name);
        if !allowed {
            return Err(invalid(format!(
                "{MANIFEST_FILE} lists an unexpected file {:?}",
                f.path
            )));
        }
        let p = dir.join(&f.path);
        let size = match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => return Err(invalid(format!("{} is not a file", f.path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(invalid(format!("{} is missing", f.path)))
            }
            Err(e) => return Err(StoreError::io("stat", &p)(e).into()),
        };
        if size != f.size {
            return Err(invalid(format!(
                "{} has {size} bytes, {MANIFEST_FILE} says {}",
                f.path, f.size
            )));
        }
        if hash_file(&p)?.1 != f.sha256 {
            return Err(invalid(format!(
                "{} does not match its SHA-256 checksum in {MANIFEST_FILE}",
                f.path
            )));
        }
    }
    let listing = segment::list(&dir.join(SEGMENTS_DIR))?;
    let unlisted = listing
        .segments
        .iter()
        .flat_map(|s| [&s.plain, &s.sealed])
        .flatten()
        .chain(&listing.temp_files)
        .map(|p| format!("segments/{}", file_name(p)))
        .find(|p| manifest.file(p).is_none());
    if let Some(p) = unlisted {
        return Err(invalid(format!("{p} is not listed in {MANIFEST_FILE}")));
    }
    let bstore = Store::new(dir, super::StoreOptions::default(), Ownership::default());
    let report: VerifyReport = bstore.verify()?;
    if let Some(p) = report.problems.first() {
        return Err(invalid(format!(
            "its segments do not verify: {}: {} ({} problem(s) in all)",
            p.pos,
            p.message,
            report.problems.len()
        )));
    }
    if let Some(t) = &report.torn_tail {
        return Err(invalid(format!("{} ends in a torn line", t.pos.segment)));
    }
    if report.events != manifest.event_count
        || report.last_id != manifest.last_id
        || report.chain_head != manifest.chain_head
    {
        return Err(invalid(format!(
            "{MANIFEST_FILE} says {} event(s) up to id {} with chain head {}, the segments hold {} up to id {} with chain head {}",
            manifest.event_count,
            manifest.last_id,
            manifest.chain_head,
            report.events,
            report.last_id,
            report.chain_head
        )));
    }
    Ok(VerifiedBackup {
        path: dir.to_path_buf(),
        manifest,
        segments: listing.segments,
    })
}

/// Replaces the store's segments with the backup's, under the writer lock, and records `event`
/// (a `maintenance` event with id 0; its id is set here) as the first event after the restored
/// history. The event gets an id above every id of both the restored and the replaced history,
/// so no id is ever given to two different events.
///
/// Steps: copy the backup's segments into `segments.restore-<pid>` (checking each file's SHA-256
/// against the manifest while copying), seal its plain segment and write the event as a new
/// segment there, fsync; rename `segments` to `segments.old-<pid>` and the staging directory to
/// `segments`; fsync the data directory; delete the old directory. Any failure before the first
/// rename leaves the data directory as it was (the staging directory is removed).
pub fn restore_locked(
    guard: &WriterGuard<'_>,
    backup: &VerifiedBackup,
    event: &mut Event,
) -> Result<RestoreOutcome> {
    let store = guard.store;
    let root = &store.paths.root;
    let pid = std::process::id();
    super::recover::recover(&store.paths)?;
    let staging = root.join(format!("segments.restore-{pid}"));
    let old = root.join(format!("segments.old-{pid}"));
    remove_dir_if_exists(&staging)?;
    remove_dir_if_exists(&old)?;
    let current = segment::list(&store.paths.segments)?;
    let current_next = Tail::load(&current.segments)?.next_id;
    let staged = match stage(store, backup, &staging, current_next, event) {
        Ok(s) => s,
        Err(e) => {
            let _ = crate::store::fsutil::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let live = &store.paths.segments;
    let had_live = live.exists();
    if had_live {
        if let Err(e) = crate::store::fsutil::rename(live, &old) {
            let _ = crate::store::fsutil::remove_dir_all(&staging);
            return Err(StoreError::io("rename", live)(e));
        }
    }
    crate::crashpoint::hit("restore.after_move_aside");
    if let Err(e) = crate::store::fsutil::rename(&staging, live) {
        if had_live {
            let _ = crate::store::fsutil::rename(&old, live);
        }
        let _ = crate::store::fsutil::remove_dir_all(&staging);
        return Err(StoreError::io("rename", &staging)(e));
    }
    fsutil::sync_dir(root)?;
    let leftover = (had_live && crate::store::fsutil::remove_dir_all(&old).is_err()).then_some(old);
    Ok(RestoreOutcome {
        event_id: staged.0,
        replaced_last_id: current_next.saturating_sub(1),
        chain_head: staged.1,
        leftover,
    })
}

/// Builds the staging directory; returns the restore event's id and the new chain head.
fn stage(
    store: &Store,
    backup: &VerifiedBackup,
    staging: &Path,
    current_next: u64,
    event: &mut Event,
) -> Result<(u64, String)> {
    let owner = &store.owner;
    fsutil::ensure_dir(staging, owner)?;
    for p in backup
        .segments
        .iter()
        .flat_map(|s| [&s.plain, &s.sealed])
        .flatten()
    {
        let name = file_name(p);
        let (size, sha256) = copy_hashed(p, &staging.join(&name), None, owner)?;
        let want = backup.manifest.file(&format!("segments/{name}"));
        if want.is_none_or(|w| w.size != size || w.sha256 != sha256) {
            return Err(StoreError::Segment {
                segment: name,
                detail: format!(
                    "changed in backup {} while it was being restored; nothing was restored",
                    backup.path.display()
                ),
            });
        }
    }
    let listing = segment::list(staging)?;
    let tail = Tail::load(&listing.segments)?;
    // The restored history's plain segment no longer is the newest one: seal it, as a writer
    // would when rotating, and keep no plain copy (nobody follows the staging directory).
    for seg in &listing.segments {
        if let (Some(plain), None) = (&seg.plain, &seg.sealed) {
            super::writer::seal_plain(plain, &store.opts, owner)?;
            crate::store::fsutil::remove_file(plain).map_err(StoreError::io("remove", plain))?;
        }
    }
    let id = tail.next_id.max(current_next);
    event
        .validate()
        .map_err(|source| StoreError::BadEvent { index: 1, source })?;
    event.id = 0;
    let json = event.to_json_bytes();
    let rest = json
        .strip_prefix(ID_PLACEHOLDER)
        .ok_or_else(|| StoreError::Segment {
            segment: "-".into(),
            detail: "event JSON does not start with the id placeholder".into(),
        })?;
    let mut ev = format!("{{\"id\":{id},").into_bytes();
    ev.extend_from_slice(rest);
    let mut line = Vec::with_capacity(ev.len() + TAIL_LEN + 1);
    let head = encode_line(&ev, &tail.chain, &mut line);
    let path = staging.join(format!("{}{PLAIN_SUFFIX}", segment::stem(id)));
    write_new(&path, &line, owner)?;
    fsutil::sync_dir(staging)?;
    event.id = id;
    Ok((id, head.to_hex()))
}

/// Removes a directory tree if it exists.
fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match crate::store::fsutil::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("remove", dir)(e)),
    }
}

/// Creates `path` (which must not exist) with `bytes`, fsynced, with the store's mode and owner.
fn write_new(path: &Path, bytes: &[u8], owner: &Ownership) -> Result<()> {
    let mut f = fsutil::create_new(path, owner)?;
    f.write_all(bytes).map_err(StoreError::io("write", path))?;
    f.sync_all().map_err(StoreError::io("fsync", path))
}

/// Copies `src` (its first `limit` bytes, or all of it) to a new file `dst`, fsynced, with the
/// store's mode and owner. Returns the bytes copied and their SHA-256.
fn copy_hashed(
    src: &Path,
    dst: &Path,
    limit: Option<u64>,
    owner: &Ownership,
) -> Result<(u64, String)> {
    let f = crate::store::fsutil::open_read(src).map_err(StoreError::io("open", src))?;
    let mut input: Box<dyn Read> = match limit {
        Some(n) => Box::new(f.take(n)),
        None => Box::new(f),
    };
    let mut out = fsutil::create_new(dst, owner)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::io("read", src)(e)),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(StoreError::io("write", dst))?;
        total += n as u64;
    }
    if limit.is_some_and(|n| n != total) {
        return Err(StoreError::Segment {
            segment: file_name(src),
            detail: format!("shrank while being copied ({total} bytes)"),
        });
    }
    out.sync_all().map_err(StoreError::io("fsync", dst))?;
    Ok((total, hex(&hasher.finalize())))
}

/// Size and SHA-256 of a file.
fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = crate::store::fsutil::open_read(path).map_err(StoreError::io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(StoreError::io("read", path)(e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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
