//! Restoring a verified backup: stage, then swap under the writer lock.

use std::path::Path;

use super::*;
use crate::record::Event;
use crate::safefs::{self};
use crate::store::error::{Result, StoreError};
use crate::store::head::Tail;
use crate::store::line::{encode_line, TAIL_LEN};
use crate::store::releases::{Counters, RELEASES_THROUGH_KEY};
use crate::store::segment::{self, file_name, PLAIN_SUFFIX};
use crate::store::Store;

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
    crate::store::recover::recover(&store.paths)?;
    let (staging, old) = store.paths.restore_staging();
    remove_dir_if_exists(&staging)?;
    remove_dir_if_exists(&old)?;
    let current = segment::list(&store.paths.segments)?;
    let current_next = Tail::load(&current.segments)?.next_id;
    // The replaced history's release numbers stay taken: the restore event keeps them.
    let counters = Counters::load(
        &store.paths,
        &current.segments,
        current_next.saturating_sub(1),
    )?;
    if !counters.apps.is_empty() {
        event
            .meta
            .insert(RELEASES_THROUGH_KEY.into(), counters.to_meta());
    }
    let staged = match stage(store, backup, &staging, current_next, event) {
        Ok(s) => s,
        Err(e) => {
            let _ = crate::safefs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let live = &store.paths.segments;
    let had_live = live.exists();
    if had_live {
        if let Err(e) = crate::safefs::rename(live, &old) {
            let _ = crate::safefs::remove_dir_all(&staging);
            return Err(StoreError::io("rename", live)(e));
        }
    }
    crate::crashpoint::hit("restore.after_move_aside");
    if let Err(e) = crate::safefs::rename(&staging, live) {
        if had_live {
            let _ = crate::safefs::rename(&old, live);
        }
        let _ = crate::safefs::remove_dir_all(&staging);
        return Err(StoreError::io("rename", &staging)(e));
    }
    safefs::sync_dir(root)?;
    // Counted from the replaced history: rebuilt from the restored one (and the event above).
    let _ = crate::safefs::remove_file(&store.paths.releases);
    let leftover = (had_live && crate::safefs::remove_dir_all(&old).is_err()).then_some(old);
    Ok(RestoreOutcome {
        event_id: staged.0,
        replaced_last_id: current_next.saturating_sub(1),
        chain_head: staged.1,
        leftover,
    })
}

/// Builds the staging directory; returns the restore event's id and the new chain head.
pub(super) fn stage(
    store: &Store,
    backup: &VerifiedBackup,
    staging: &Path,
    current_next: u64,
    event: &mut Event,
) -> Result<(u64, String)> {
    let owner = &store.owner;
    safefs::ensure_dir(staging, owner)?;
    for p in backup
        .segments
        .iter()
        .flat_map(|s| [&s.plain, &s.sealed])
        .flatten()
    {
        let name = file_name(p);
        let (size, sha256) = copy_hashed(p, &staging.join(&name), None, owner)?;
        let want = backup.manifest.file(&format!("{SEGMENTS_DIR}/{name}"));
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
            crate::store::writer::seal_plain(plain, &store.opts, owner)?;
            crate::safefs::remove_file(plain).map_err(StoreError::io("remove", plain))?;
        }
    }
    let id = tail.next_id.max(current_next);
    event
        .validate()
        .map_err(|source| StoreError::BadEvent { index: 1, source })?;
    event.id = 0;
    let json = event.to_json_bytes();
    let rest = crate::store::writer::after_placeholder(&json)?;
    let mut ev = format!("{{\"id\":{id},").into_bytes();
    ev.extend_from_slice(rest);
    let mut line = Vec::with_capacity(ev.len() + TAIL_LEN + 1);
    let head = encode_line(&ev, &tail.chain, &mut line);
    let path = staging.join(format!("{}{PLAIN_SUFFIX}", segment::stem(id)));
    write_new(&path, &line, owner)?;
    safefs::sync_dir(staging)?;
    event.id = id;
    Ok((id, head.to_hex()))
}

/// Removes a directory tree if it exists.
pub(super) fn remove_dir_if_exists(dir: &Path) -> Result<()> {
    match crate::safefs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("remove", dir)(e)),
    }
}
