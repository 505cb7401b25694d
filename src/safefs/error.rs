//! `FsError`: a file operation under the data directory that failed, with the path it concerns.

use std::path::PathBuf;

/// An error from a [`super`] helper.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// An I/O call failed on a path (a symlink where a file was expected is one: `ELOOP`).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `rename`, `chmod`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data directory cannot be written (permissions, read-only filesystem).
    #[error("data directory is not writable: {path}: {source}")]
    NotWritable {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Another process held a lock for longer than allowed.
    #[error("the store is locked by another writer ({path}); gave up after {waited_ms} ms")]
    LockBusy {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited_ms: u128,
    },
}

impl FsError {
    /// Wraps an `io::Error` with the operation and path.
    pub fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> FsError {
        let path = path.into();
        move |source| FsError::Io { op, path, source }
    }
}

/// Result alias for the helpers.
pub type Result<T, E = FsError> = std::result::Result<T, E>;
