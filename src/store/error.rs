//! `StoreError`: everything that can go wrong below the store facade, each with the path,
//! segment or line it concerns, so `main` can print one precise ` !     …` line.

use std::path::PathBuf;

use crate::record::RecordError;

/// An error from the segment store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O call failed on a path.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The data directory does not exist (queries never create it).
    #[error(
        "data directory does not exist: {0} (run `dokku audit:migrate` or append an event first)"
    )]
    NoDataDir(PathBuf),
    /// A file operation under the data directory failed (see [`crate::safefs`]).
    #[error(transparent)]
    Fs(#[from] crate::safefs::FsError),
    /// The data directory or a segment is of a newer format than this binary.
    #[error("{what} uses format version {found}, newer than this dokku-audit supports ({supported}); upgrade dokku-audit")]
    NewerFormat {
        /// Where the version was found.
        what: String,
        /// The version found.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The format marker names a version that never existed (0): refused, never guessed.
    #[error("{what} names format version {found}, which no dokku-audit writes (known: 1..={supported}); refusing to read it")]
    UnknownFormat {
        /// Where the version was found.
        what: String,
        /// The version found.
        found: u32,
        /// The newest version this build knows.
        supported: u32,
    },
    /// The format marker file is unreadable.
    #[error("unrecognised format marker in {0}")]
    BadFormatMarker(PathBuf),
    /// A sealed segment could not be decoded.
    #[error("segment {segment}: {detail}")]
    Segment {
        /// The segment file name.
        segment: String,
        /// What is wrong.
        detail: String,
    },
    /// An event given to append breaks an invariant.
    #[error("event #{index} refused: {source}")]
    BadEvent {
        /// 1-based position in the batch.
        index: usize,
        /// Why.
        source: RecordError,
    },
    /// The id space is exhausted (never happens in practice; refused rather than wrapped).
    #[error("event id overflow")]
    IdOverflow,
}

impl StoreError {
    /// Wraps an `io::Error` with the operation and path.
    pub fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { op, path, source }
    }
}

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
