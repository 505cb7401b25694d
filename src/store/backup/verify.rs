//! Verifying a backup: every file against its manifest, then the segments.

use std::path::Path;

use super::hash::hash_file;
use super::*;
use crate::safefs::Ownership;
use crate::store::error::StoreError;
use crate::store::line::FORMAT_VERSION;
use crate::store::segment::{self, file_name};
use crate::store::verify::VerifyReport;
use crate::store::Store;

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
    let bytes = match crate::safefs::read(&mpath) {
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
                .strip_prefix(SEGMENTS_DIR)
                .and_then(|rest| rest.strip_prefix('/'))
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
        .map(|p| format!("{SEGMENTS_DIR}/{}", file_name(p)))
        .find(|p| manifest.file(p).is_none());
    if let Some(p) = unlisted {
        return Err(invalid(format!("{p} is not listed in {MANIFEST_FILE}")));
    }
    let bstore = Store::new(
        dir,
        crate::store::StoreOptions::default(),
        Ownership::default(),
    );
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
