//! Repair before use: the stale mark a prune or vacuum leaves until the index matches the
//! segments again, and the index that is broken, built by another schema or does not match the
//! store (deleted and rebuilt). What a query may use afterwards is decided here, so the query
//! layer only asks for an index and answers from the segments alone when there is none.

use std::path::{Path, PathBuf};

use super::{EventIndex, IndexError, StaleMark, STALE_PREFIX};
use crate::store::Store;

impl EventIndex {
    /// Marks the index as about to fall behind a change of segments (prune, vacuum): until
    /// [`StaleMark::clear`] runs, a crash leaves `index.stale-<pid>` behind, and the next
    /// [`EventIndex::open_caught_up`] rebuilds the index instead of trusting documents that
    /// may point at rewritten segments.
    pub fn mark_stale(data_dir: &Path) -> Result<StaleMark, IndexError> {
        let path = data_dir.join(format!("{STALE_PREFIX}{}", std::process::id()));
        let owner = crate::safefs::Ownership::from_env();
        crate::safefs::atomic_write(&path, b"", &owner)?;
        Ok(StaleMark { path })
    }

    /// Stale marks left by processes that are gone (see [`EventIndex::mark_stale`]).
    pub fn stale_marks(data_dir: &Path) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(data_dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let pid: u32 = name.strip_prefix(STALE_PREFIX)?.parse().ok()?;
                let alive =
                    pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
                (!alive).then(|| e.path())
            })
            .collect()
    }

    /// Rebuilds the index when a prune or vacuum died between changing the segments and
    /// updating the index (it left a stale mark), then removes the marks. Nothing to do
    /// without a mark.
    pub fn repair_stale(data_dir: &Path, store: &Store) -> Result<(), IndexError> {
        let stale = Self::stale_marks(data_dir);
        if stale.is_empty() {
            return Ok(());
        }
        Self::rebuild(data_dir, store, &mut |_| {})?;
        for p in stale {
            let _ = crate::safefs::remove_file(p);
        }
        Ok(())
    }

    /// Opens the index and catches it up, rebuilding it first when a stale mark says it may
    /// point at rewritten segments (for prune and vacuum, which must update it).
    pub fn open_caught_up(data_dir: &Path, store: &Store) -> Result<EventIndex, IndexError> {
        Self::repair_stale(data_dir, store)?;
        let index = Self::open_or_create(data_dir)?;
        index.catch_up(store, &mut |_| {})?;
        Ok(index)
    }

    /// The index a query may read, repaired and caught up as far as this process can, never
    /// waiting for another writer: a stale mark is repaired (rebuilt aside and swapped in); an
    /// index that cannot be opened, or does not match the store, is deleted and rebuilt.
    /// `Ok(None)`: no index may be used (read-only data dir without one, or a broken one this
    /// process cannot replace), so the query answers from the segments alone. An index that
    /// is busy or read-only is returned as it is: the query adds the events after its mark.
    pub fn open_for_query(
        data_dir: &Path,
        store: &Store,
    ) -> Result<Option<EventIndex>, IndexError> {
        // Read-only or busy: answer as we can with the index as it is.
        let _ = Self::repair_stale(data_dir, store);
        let index = match Self::open_or_create(data_dir) {
            Ok(i) => i,
            // Read-only data dir without an index yet, or a broken index we cannot replace here.
            Err(_) => match Self::open_existing(data_dir) {
                Ok(Some(i)) => i,
                Ok(None) => return Ok(None),
                // Broken: rebuild if we can, else answer from the segments alone.
                Err(_) => match Self::remove(data_dir) {
                    Ok(()) => match Self::open_or_create(data_dir) {
                        Ok(i) => i,
                        Err(_) => return Ok(None),
                    },
                    Err(_) => return Ok(None),
                },
            },
        };
        match index.catch_up(store, &mut |_| {}) {
            Ok(_) | Err(IndexError::Busy(_)) => Ok(Some(index)),
            Err(IndexError::Tantivy { .. } | IndexError::Mismatch { .. }) => {
                // Inconsistent with the store (restored data, another store's index) or broken:
                // rebuild.
                drop(index);
                if Self::remove(data_dir).is_err() {
                    // Cannot replace it (read-only data dir): never serve it.
                    return Ok(None);
                }
                let fresh = Self::open_or_create(data_dir)?;
                let _ = fresh.catch_up(store, &mut |_| {});
                Ok(Some(fresh))
            }
            Err(e) if e.is_read_only() => Ok(Some(index)),
            Err(e) => Err(e),
        }
    }
}
