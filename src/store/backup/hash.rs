//! SHA-256 of backup files: the hash cache, listing with hashes, hashed copies.

use std::fs::{self};
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::*;
use crate::safefs::{self, Ownership};
use crate::store::error::{Result, StoreError};
use crate::store::segment::file_name;

/// File name of the SHA-256 cache of sealed segments, in `<data dir>/backups/`.
pub(super) const HASH_CACHE_FILE: &str = ".sha256-cache.json";

/// SHA-256s of sealed segments, keyed by name, size and modification time: sealed segments are
/// immutable (a rewrite is a new file), so a backup hashes only segments sealed since the last.
#[derive(Default)]
pub(super) struct HashCache {
    entries: serde_json::Map<String, serde_json::Value>,
    touched: std::collections::HashSet<String>,
}

impl HashCache {
    pub(super) fn load(path: &Path) -> HashCache {
        let entries = crate::safefs::read(path)
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
    pub(super) fn save(mut self, path: &Path, owner: &Ownership) {
        let touched = std::mem::take(&mut self.touched);
        self.entries.retain(|k, _| touched.contains(k));
        if let Ok(bytes) = serde_json::to_vec(&self.entries) {
            if let Some(dir) = path.parent() {
                let _ = safefs::ensure_dir(dir, owner);
            }
            let _ = safefs::atomic_write(path, &bytes, owner);
        }
    }
}

/// The files of a backup directory (`FORMAT`, `settings.json`, `segments/*`) with size and hash.
pub(super) fn list_files(dir: &Path, cache: &mut HashCache) -> Result<Vec<ManifestFile>> {
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

/// Creates `path` (which must not exist) with `bytes`, fsynced, with the store's mode and owner.
pub(super) fn write_new(path: &Path, bytes: &[u8], owner: &Ownership) -> Result<()> {
    let mut f = safefs::create_new(path, owner)?;
    f.write_all(bytes).map_err(StoreError::io("write", path))?;
    f.sync_all().map_err(StoreError::io("fsync", path))
}

/// Copies `src` (its first `limit` bytes, or all of it) to a new file `dst`, fsynced, with the
/// store's mode and owner. Returns the bytes copied and their SHA-256.
pub(super) fn copy_hashed(
    src: &Path,
    dst: &Path,
    limit: Option<u64>,
    owner: &Ownership,
) -> Result<(u64, String)> {
    let f = crate::safefs::open_read(src).map_err(StoreError::io("open", src))?;
    let mut input: Box<dyn Read> = match limit {
        Some(n) => Box::new(f.take(n)),
        None => Box::new(f),
    };
    let mut out = safefs::create_new(dst, owner)?;
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
pub(super) fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = crate::safefs::open_read(path).map_err(StoreError::io("open", path))?;
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

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
