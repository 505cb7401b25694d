//! The correlation state file, `<data dir>/state/correlation.json`, and its lock
//! (`<data dir>/state/LOCK`). A hook takes this lock before the store's, holds it across "read
//! state → append events → write state", and releases it last, so two triggers never interleave
//! their read-modify-write.
//!
//! The file is written to a temporary name and renamed (atomic against crashes of the process);
//! it is not fsynced: it is a hint for attribution, and losing it on power loss loses the
//! attribution of an operation in flight, never an event. A file that does not parse is treated
//! as empty (and overwritten), never as an error that would stop a trigger.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::event::correlate::CorrelationState;
use crate::layout::Layout;
use crate::safefs::{self, FsError, Ownership, WriterLock};

/// Why the state could not be opened or saved.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Other triggers held the state lock for the whole budget (a loaded host): the caller
    /// records its event from a snapshot instead.
    #[error(
        "the correlation state is locked by other triggers ({path}); gave up after {waited_ms} ms"
    )]
    Busy {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited_ms: u128,
    },
    /// A file operation on `state/` failed.
    #[error(transparent)]
    Fs(FsError),
}

impl From<FsError> for StateError {
    fn from(e: FsError) -> StateError {
        match e {
            FsError::LockBusy { path, waited_ms } => StateError::Busy { path, waited_ms },
            e => StateError::Fs(e),
        }
    }
}

/// The state, held under its lock until dropped.
pub struct LockedState {
    path: PathBuf,
    owner: Ownership,
    _lock: WriterLock,
    /// The state as loaded.
    pub state: CorrelationState,
}

impl LockedState {
    /// Creates the state directory if needed, takes the lock (waiting at most `timeout`) and
    /// loads the state.
    pub fn open(
        data_dir: &Path,
        owner: &Ownership,
        timeout: Duration,
    ) -> Result<LockedState, StateError> {
        let layout = Layout::new(data_dir);
        if !layout.state.is_dir() {
            safefs::ensure_dir(data_dir, owner)?;
            safefs::ensure_dir(&layout.state, owner)?;
        }
        let lock = WriterLock::acquire(&layout.state_lock, owner, timeout)?;
        let path = layout.correlation;
        let state = read(&path);
        Ok(LockedState {
            path,
            owner: *owner,
            _lock: lock,
            state,
        })
    }

    /// Writes the state back (temp file + rename).
    pub fn save(&self) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(&self.state).unwrap_or_default();
        safefs::write_replace(&self.path, &bytes, &self.owner, false)?;
        // The marker tells a read-only command's user-auth (which takes no lock) that a
        // `dokku` command may have ended and be owed an event (crate::event::command).
        let marker = self.path.with_file_name(crate::layout::OPEN_COMMANDS);
        let exists = marker.symlink_metadata().is_ok();
        if self.state.dokku_commands.is_empty() {
            if exists {
                safefs::remove_file(&marker)
                    .or_else(ignore_not_found)
                    .map_err(FsError::io("remove", &marker))?;
            }
        } else if !exists {
            safefs::write_replace(&marker, b"", &self.owner, false)?;
        }
        Ok(())
    }
}

fn ignore_not_found(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Whether `dokku` commands are in flight (one `lstat`, no lock): a read-only command's
/// `user-auth` then takes the lock to sweep the ones that have ended.
pub fn has_open_commands(data_dir: &Path) -> bool {
    Layout::new(data_dir)
        .open_commands
        .symlink_metadata()
        .is_ok()
}

fn read(path: &Path) -> CorrelationState {
    safefs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Reads the state without the lock (for `status`): a snapshot, possibly a moment old.
pub fn snapshot(data_dir: &Path) -> CorrelationState {
    read(&Layout::new(data_dir).correlation)
}
