//! Finishing what a crash interrupted. Runs under the writer lock, before anything else is
//! written (every append passes through here, and so do restore and sealing), so the state it
//! repairs cannot change under it.
//!
//! Two multi-file changes cannot be made atomic by one rename, so each leaves enough behind for
//! this module to finish or undo it (segments-format.md §8):
//!
//! - **Compaction** (prune's rewrites, vacuum's merges, retention): after its maintenance event
//!   is durable and before it touches `segments/`, it writes `compact.journal` — the renames of
//!   staged segments into `segments/` and the files to remove after them. A crash anywhere
//!   after that is rolled *forward* here (every step is idempotent), so a rewrite that starts at
//!   a later id never sits beside the file it replaces for longer than until the next write. A
//!   crash after the event and before the journal leaves `segments/` untouched: the event then
//!   names deletions that did not happen, and running the same prune again does them.
//! - **Restore** swaps `segments/` for the restored copy with two renames. A crash between them
//!   leaves no `segments/` (or an empty one a later `init` created) beside `segments.old-<pid>`,
//!   the untouched live history: that is rolled *back* here, as if the restore never started.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::segment::{Listing, SegmentFiles, SegmentName};
use super::writer::AppendContext;
use super::Store;
use crate::crashpoint;
use crate::layout::{self, Layout, COMPACT_JOURNAL};
use crate::safefs::{self, Ownership};

/// The steps a compaction still has to take, in order. Paths are relative to the data
/// directory, so a directory moved by hand (`cp -a`, restore of a host backup) still recovers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactionJournal {
    /// The staging directory holding the new segments (removed at the end).
    pub staging: String,
    /// `(staged file, target file)` renames into `segments/`.
    pub renames: Vec<(String, String)>,
    /// Files to remove after the renames (replaced or deleted segments, plain twins).
    pub remove: Vec<String>,
}

/// What [`recover`] did, for the caller to report (never an error on its own).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// A compaction journal was rolled forward.
    pub compaction: bool,
    /// An interrupted restore was rolled back from this directory.
    pub restore_rolled_back: Option<PathBuf>,
}

impl Recovered {
    /// Whether anything was done.
    pub fn any(&self) -> bool {
        self.compaction || self.restore_rolled_back.is_some()
    }
}

fn rel(paths: &Layout, p: &Path) -> String {
    p.strip_prefix(&paths.root)
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

impl CompactionJournal {
    /// An empty journal for a staging directory.
    pub fn new(paths: &Layout, staging: &Path) -> CompactionJournal {
        CompactionJournal {
            staging: rel(paths, staging),
            ..CompactionJournal::default()
        }
    }

    /// Adds a rename of `staged` to `target`.
    pub fn rename(&mut self, paths: &Layout, staged: &Path, target: &Path) {
        self.renames.push((rel(paths, staged), rel(paths, target)));
    }

    /// Adds a file to remove.
    pub fn remove(&mut self, paths: &Layout, file: &Path) {
        self.remove.push(rel(paths, file));
    }

    /// Makes the journal durable (atomic write, fsync). From here on the compaction will
    /// complete, by this process or by the next writer.
    pub fn write(&self, paths: &Layout, owner: &Ownership) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|e| StoreError::Segment {
            segment: COMPACT_JOURNAL.into(),
            detail: e.to_string(),
        })?;
        Ok(safefs::atomic_write(&paths.compact_journal, &bytes, owner)?)
    }

    /// Takes every step (idempotent: a step already taken is skipped), fsyncs `segments/`,
    /// then deletes the journal and the staging directory.
    pub fn complete(&self, paths: &Layout) -> Result<()> {
        for (n, (staged, target)) in self.renames.iter().enumerate() {
            let (staged, target) = (paths.root.join(staged), paths.root.join(target));
            if staged.exists() {
                crate::safefs::rename(&staged, &target)
                    .map_err(StoreError::io("rename", &target))?;
            }
            if n == 0 {
                crashpoint::hit("compact.after_first_rename");
            }
        }
        for file in &self.remove {
            let file = paths.root.join(file);
            match crate::safefs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::io("remove", &file)(e)),
            }
        }
        safefs::sync_dir(&paths.segments)?;
        crashpoint::hit("compact.before_journal_removal");
        let journal = paths.compact_journal.clone();
        match crate::safefs::remove_file(&journal) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove", &journal)(e)),
        }
        safefs::sync_dir(&paths.root)?;
        let staging = paths.root.join(&self.staging);
        if !self.staging.is_empty() && staging != paths.root {
            let _ = crate::safefs::remove_dir_all(staging);
        }
        Ok(())
    }
}

/// The pending compaction journal, if a crash left one.
pub fn pending_journal(paths: &Layout) -> Result<Option<CompactionJournal>> {
    let path = paths.compact_journal.clone();
    let bytes = match crate::safefs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("read", &path)(e)),
    };
    let journal: CompactionJournal =
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Segment {
            segment: COMPACT_JOURNAL.into(),
            detail: format!("unreadable compaction journal ({e}); see `dokku audit:doctor`"),
        })?;
    // Every path must stay inside the data directory: the journal is ours, but a hand-edited
    // one must not make a writer rename or delete files elsewhere.
    let inside = |p: &String| {
        let p = Path::new(p);
        p.is_relative()
            && p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
    };
    let all_inside = inside(&journal.staging)
        && journal.renames.iter().all(|(a, b)| inside(a) && inside(b))
        && journal.remove.iter().all(inside);
    if !all_inside {
        return Err(StoreError::Segment {
            segment: COMPACT_JOURNAL.into(),
            detail: "compaction journal names a path outside the data directory; refusing it"
                .into(),
        });
    }
    Ok(Some(journal))
}

/// What readers see while a compaction journal is pending: the state the journal leads to,
/// whichever of its steps have been taken (a reader never takes the lock, so it cannot finish
/// the work, but it must not count a replaced segment and its replacement both). Staged files
/// not yet renamed are read where they are; files to be removed are left out.
pub fn apply_pending_view(paths: &Layout, listing: &mut Listing) {
    let Ok(Some(journal)) = pending_journal(paths) else {
        return;
    };
    let removed: Vec<PathBuf> = journal.remove.iter().map(|f| paths.root.join(f)).collect();
    for seg in &mut listing.segments {
        if seg.plain.as_ref().is_some_and(|p| removed.contains(p)) {
            seg.plain = None;
        }
        if seg.sealed.as_ref().is_some_and(|p| removed.contains(p)) {
            seg.sealed = None;
        }
    }
    listing
        .segments
        .retain(|s| s.plain.is_some() || s.sealed.is_some());
    for (staged, target) in &journal.renames {
        let staged = paths.root.join(staged);
        let target = paths.root.join(target);
        let Some(id) = target
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(SegmentName::parse)
            .and_then(|n| match n {
                SegmentName::Sealed(id) => Some(id),
                _ => None,
            })
        else {
            continue;
        };
        let data = if staged.exists() { staged } else { target };
        match listing.segments.iter_mut().find(|s| s.first_id == id) {
            Some(seg) => seg.sealed = Some(data),
            None => listing.segments.push(SegmentFiles {
                first_id: id,
                plain: None,
                sealed: Some(data),
            }),
        }
    }
    listing.segments.sort_by_key(|s| s.first_id);
}

/// A directory `segments.old-<pid>` left by a restore interrupted between its two renames:
/// it holds the live history (the next writer moves it back; nothing may delete it).
pub fn interrupted_restore(paths: &Layout) -> Option<PathBuf> {
    let live_has_entries = fs::read_dir(&paths.segments)
        .map(|mut d| d.next().is_some())
        .unwrap_or(false);
    if live_has_entries {
        return None;
    }
    let mut olds: Vec<PathBuf> = fs::read_dir(&paths.root)
        .ok()?
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(layout::RESTORE_ASIDE_PREFIX))
        })
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    olds.sort();
    olds.pop()
}

/// Finishes or undoes interrupted multi-file changes. The caller holds the writer lock.
pub fn recover(paths: &Layout) -> Result<Recovered> {
    let mut done = Recovered::default();
    if let Some(old) = interrupted_restore(paths) {
        if paths.segments.exists() {
            // Empty (checked above): created by a later `init` that did not know better.
            crate::safefs::remove_dir(&paths.segments)
                .map_err(StoreError::io("remove", &paths.segments))?;
        }
        crate::safefs::rename(&old, &paths.segments).map_err(StoreError::io("rename", &old))?;
        safefs::sync_dir(&paths.root)?;
        done.restore_rolled_back = Some(old);
    }
    if let Some(journal) = pending_journal(paths)? {
        journal.complete(paths)?;
        done.compaction = true;
    }
    Ok(done)
}

impl Store {
    /// Finishes or undoes what a crash interrupted (a compaction journal, a restore), under
    /// the writer lock, without appending anything but the `recover` event it may write.
    pub fn recover_interrupted(&self, ctx: &AppendContext) -> Result<Recovered> {
        self.init()?;
        let lock = self.lock_writer()?;
        if pending_journal(&self.paths)?.is_none() && interrupted_restore(&self.paths).is_none() {
            return Ok(Recovered::default());
        }
        // An empty append: it runs the recovery first and records what it did.
        let receipt = self.append_locked(&lock, &mut [], ctx)?;
        Ok(receipt.recovered)
    }

    /// Leftovers of interrupted work in the data directory (temp files, staging directories of
    /// compaction, reindex, restore), for `vacuum` to remove and `doctor` to report.
    pub fn leftovers(&self) -> Result<Vec<PathBuf>> {
        Ok(self.leftover_scan()?.0)
    }

    /// The one list of leftovers, shared by `doctor` (which reports it) and `vacuum` (which
    /// removes it): seal temp files in `segments/`; staging directories and temp files in
    /// [`Layout::leftover_dirs`] ([`layout::is_ours`]) whose owning process
    /// ([`layout::owner_pid`]) is gone. Also returns how many such names belong to running
    /// processes (work in progress, left alone).
    pub fn leftover_scan(&self) -> Result<(Vec<PathBuf>, usize)> {
        let mut out = self.listing()?.temp_files;
        let mut running_count = 0usize;
        // The staging directory of a compaction whose journal is pending is not a leftover: the
        // next writer renames its segments into place.
        let pending = pending_journal(&self.paths)
            .ok()
            .flatten()
            .map(|j| self.paths.root.join(j.staging));
        // Nor is the live history an interrupted restore moved aside.
        let moved_aside = interrupted_restore(&self.paths);
        for dir in self.paths.leftover_dirs() {
            let Ok(entries) = fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !layout::is_ours(&name) {
                    continue;
                }
                let needed = pending.as_deref() == Some(e.path().as_path())
                    || moved_aside.as_deref() == Some(e.path().as_path());
                if layout::in_progress(&name) {
                    running_count += 1;
                } else if !needed {
                    out.push(e.path());
                }
            }
        }
        out.sort();
        Ok((out, running_count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(root: &Path) -> Layout {
        Layout::new(root)
    }

    #[test]
    fn journal_rolls_forward_idempotently() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        fs::create_dir_all(&p.segments).unwrap();
        let staging = dir.path().join("compact-1");
        fs::create_dir_all(&staging).unwrap();
        fs::write(staging.join("new"), b"new").unwrap();
        fs::write(p.segments.join("old"), b"old").unwrap();
        let mut j = CompactionJournal::new(&p, &staging);
        j.rename(&p, &staging.join("new"), &p.segments.join("5.zst"));
        j.remove(&p, &p.segments.join("old"));
        j.write(&p, &Ownership::default()).unwrap();
        // Half done already: the rename happened, the removal did not.
        fs::rename(staging.join("new"), p.segments.join("5.zst")).unwrap();
        let r = recover(&p).unwrap();
        assert!(r.compaction);
        assert_eq!(fs::read(p.segments.join("5.zst")).unwrap(), b"new");
        assert!(!p.segments.join("old").exists());
        assert!(!dir.path().join(COMPACT_JOURNAL).exists());
        assert!(!staging.exists());
        assert!(!recover(&p).unwrap().any());
    }

    #[test]
    fn journal_outside_the_data_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let j = CompactionJournal {
            staging: "compact-1".into(),
            renames: vec![],
            remove: vec!["../elsewhere".into()],
        };
        j.write(&p, &Ownership::default()).unwrap();
        let e = recover(&p).unwrap_err().to_string();
        assert!(e.contains("outside the data directory"), "{e}");
    }

    #[test]
    fn interrupted_restore_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        let old = dir.path().join("segments.old-77");
        fs::create_dir_all(&old).unwrap();
        fs::write(old.join("1.jsonl"), b"x").unwrap();
        // A later init created an empty segments/.
        fs::create_dir_all(&p.segments).unwrap();
        let r = recover(&p).unwrap();
        assert_eq!(r.restore_rolled_back, Some(old.clone()));
        assert_eq!(fs::read(p.segments.join("1.jsonl")).unwrap(), b"x");
        assert!(!old.exists());
        // A completed restore (live segments present) is left alone.
        fs::create_dir_all(&old).unwrap();
        assert!(!recover(&p).unwrap().any());
    }
}
