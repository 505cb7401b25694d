//! What can go wrong with the index, typed so that callers decide by variant, never by text:
//! [`IndexError::InvalidQuery`] is the user's fault (a 400 in `serve`, a usage error in the CLI);
//! every other variant is the server's side (a 500, logged).

use std::path::PathBuf;
use std::sync::Arc;

use crate::store::StoreError;

/// What can go wrong with the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The query the user wrote cannot run: their fault, nothing is wrong with the index.
    #[error(transparent)]
    InvalidQuery(#[from] InvalidQuery),
    /// tantivy failed on the index on disk (corrupt or unreadable index, I/O, a lock).
    #[error("search index {path}: {source}")]
    Tantivy {
        /// The index directory.
        path: PathBuf,
        /// What tantivy said.
        source: tantivy::TantivyError,
    },
    /// tantivy failed on the in-memory index of the not-yet-indexed events.
    #[error("in-memory search index: {0}")]
    InMemory(tantivy::TantivyError),
    /// The index does not describe this store's events (a restored data dir, another store's
    /// index): it must be rebuilt, never served.
    #[error("search index {path} does not match the store: {detail}")]
    Mismatch {
        /// The index directory.
        path: PathBuf,
        /// How it differs.
        detail: String,
    },
    /// Another process holds the index writer.
    #[error("search index {0} is being updated by another process")]
    Busy(PathBuf),
    /// Reading the segments failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A file operation on the index directory failed.
    #[error(transparent)]
    Fs(#[from] crate::safefs::FsError),
    /// Filesystem trouble around the index directory.
    #[error("search index {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A query the user wrote that cannot run. The query text is kept for context; the message
/// does not repeat it (the user just typed it, and `serve` bounds what it echoes).
#[derive(Debug, thiserror::Error)]
pub enum InvalidQuery {
    /// The full-text query does not parse: syntax, an unknown or unindexed field, a value
    /// that is not a valid date or number for its field, …
    #[error("invalid query: {source}")]
    Syntax {
        /// The full-text query.
        query: String,
        /// What the parser said.
        source: tantivy::query::QueryParserError,
    },
    /// The full-text query parses but cannot run against the schema (an exists query on a
    /// field the schema lacks).
    #[error("invalid query: {source}")]
    Unrunnable {
        /// The full-text query.
        query: String,
        /// What tantivy said when the query was prepared.
        source: tantivy::TantivyError,
    },
    /// An action glob whose automaton is over tantivy's limits. Every glob is escaped into a
    /// valid pattern (`pattern`; unit-tested and fuzzed), so only its size is refused.
    #[error("invalid query: action pattern is too complex to search ({source})")]
    Glob {
        /// The glob as given.
        glob: String,
        /// The regular expression it became.
        pattern: String,
        /// What tantivy said.
        source: tantivy::TantivyError,
    },
}

impl IndexError {
    /// The user's fault (the query), as opposed to the server's. Decided by the variant.
    pub fn is_user_error(&self) -> bool {
        matches!(self, IndexError::InvalidQuery(_))
    }

    /// The index could not be written or locked because the filesystem or its permissions
    /// refuse it (read-only data dir, an index dir we may not write): a query can still be
    /// answered from the segments alone. Decided by the variant and the OS error kind.
    pub fn is_read_only(&self) -> bool {
        let io = match self {
            IndexError::Io { source, .. }
            | IndexError::Fs(
                crate::safefs::FsError::Io { source, .. }
                | crate::safefs::FsError::NotWritable { source, .. },
            ) => Some(source),
            IndexError::Tantivy { source, .. } => tantivy_io_error(source),
            _ => None,
        };
        io.is_some_and(|e| {
            matches!(
                e.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            )
        })
    }
}

/// The OS error inside a tantivy error, if it wraps one.
fn tantivy_io_error(e: &tantivy::TantivyError) -> Option<&std::io::Error> {
    use tantivy::directory::error::{LockError, OpenDirectoryError, OpenReadError, OpenWriteError};
    use tantivy::TantivyError as T;
    let arc: &Arc<std::io::Error> = match e {
        T::IoError(io)
        | T::LockFailure(LockError::IoError(io), _)
        | T::OpenReadError(OpenReadError::IoError { io_error: io, .. })
        | T::OpenWriteError(OpenWriteError::IoError { io_error: io, .. })
        | T::OpenDirectoryError(OpenDirectoryError::IoError { io_error: io, .. }) => io,
        _ => return None,
    };
    Some(arc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::directory::error::LockError;

    fn tantivy(source: tantivy::TantivyError) -> IndexError {
        IndexError::Tantivy {
            path: "/d/index".into(),
            source,
        }
    }

    /// tantivy's reader lock refused by a read-only filesystem (what a list query on a
    /// read-only data dir meets) sends the query to the segments; other failures do not.
    #[test]
    fn read_only_is_decided_by_the_os_error_kind() {
        let erofs = Arc::new(std::io::Error::from_raw_os_error(30));
        let lock = tantivy(tantivy::TantivyError::LockFailure(
            LockError::IoError(erofs.clone()),
            None,
        ));
        assert!(lock.is_read_only() && !lock.is_user_error());
        let denied = IndexError::Io {
            path: "/d/index".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert!(denied.is_read_only());
        let corrupt = tantivy(tantivy::TantivyError::IoError(Arc::new(
            std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
        )));
        assert!(!corrupt.is_read_only() && !corrupt.is_user_error());
        let busy = tantivy(tantivy::TantivyError::LockFailure(
            LockError::LockBusy,
            None,
        ));
        assert!(!busy.is_read_only());
        let bad = IndexError::from(InvalidQuery::Syntax {
            query: "\"".into(),
            source: tantivy::query::QueryParserError::SyntaxError("x".into()),
        });
        assert!(bad.is_user_error() && !bad.is_read_only());
    }
}
