//! The spool: where a trigger leaves its events when the writer lock stays busy for longer
//! than its budget (`hook_timeout_ms`), so that a long maintenance operation (a restore, a
//! large seal) never costs an audit event. A spool file is written atomically and fsynced, so
//! the events are durable when the trigger returns; whoever holds the writer lock next drains
//! every spool file into the segments, oldest first, before its own events (segments-format.md
//! §7.7).
//!
//! Each spooled event carries `meta.spooled_from` (`<file>#<n>`). Draining appends the events,
//! fsyncs, then deletes the files; a crash between the two leaves files whose events are
//! already stored, so a drain first looks for their markers in the newest segments and skips
//! what is there: never twice, never lost.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};
use super::line::memfind;
use super::segment::SegmentFiles;
use super::writer::ID_PLACEHOLDER;
use crate::layout::Layout;
use crate::safefs::{self, Ownership};

/// Suffix of a complete spool file (temp files of `atomic_write` never end in it).
pub const SPOOL_SUFFIX: &str = ".spool.jsonl";

/// Writes events (canonical JSON with the id placeholder, one per line, already carrying
/// `meta.spooled_from`) to a new spool file; returns its path. `name` must be unique (the
/// caller uses time, pid and a counter).
pub fn write(paths: &Layout, owner: &Ownership, name: &str, lines: &[Vec<u8>]) -> Result<PathBuf> {
    let dir = paths.spool.clone();
    safefs::ensure_dir(&dir, owner)?;
    let path = dir.join(format!("{name}{SPOOL_SUFFIX}"));
    let mut bytes = Vec::new();
    for l in lines {
        bytes.extend_from_slice(l);
        bytes.push(b'\n');
    }
    safefs::atomic_write(&path, &bytes, owner)?;
    Ok(path)
}

/// The spool marker a spooled event carries in `meta.spooled_from`.
pub fn marker(name: &str, n: usize) -> String {
    format!("{name}#{n}")
}

/// Complete spool files, oldest first (names start with a zero-padded time).
pub fn pending(paths: &Layout) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(paths.spool.clone()) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(SPOOL_SUFFIX) && !n.starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// What waits in the spool (for `status` and `doctor`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Complete spool files.
    pub files: usize,
    /// Events in them (lines).
    pub events: usize,
    /// When the oldest was written, from its name: nanoseconds since the Unix epoch.
    pub oldest_ns: Option<u128>,
}

/// Counts what waits in the spool. An unreadable file counts as a file with no events.
pub fn waiting(paths: &Layout) -> Waiting {
    let files = pending(paths);
    let events = files
        .iter()
        .filter_map(|f| crate::safefs::read(f).ok())
        .map(|b| b.split(|c| *c == b'\n').filter(|l| !l.is_empty()).count())
        .sum();
    let oldest_ns = files.first().and_then(|f| {
        let name = f.file_name()?.to_str()?;
        name.get(..24)?.parse::<u128>().ok()
    });
    Waiting {
        files: files.len(),
        events,
        oldest_ns,
    }
}

/// The events of the pending spool files that the newest segments do not hold yet, and the
/// files to delete once they are durable.
pub struct Drain {
    /// Event JSON (with the id placeholder), in order.
    pub events: Vec<Vec<u8>>,
    /// The spool files drained.
    pub files: Vec<PathBuf>,
}

/// Reads the pending spool files. `recent` are the newest segments (where an earlier drain
/// that crashed before deleting its files put their events).
pub fn collect(paths: &Layout, recent: &[SegmentFiles]) -> Result<Drain> {
    let files = pending(paths);
    let mut drain = Drain {
        events: Vec::new(),
        files: Vec::new(),
    };
    if files.is_empty() {
        return Ok(drain);
    }
    let mut tail = Vec::new();
    for seg in recent {
        // Only plain files are searched: a drain that crashed left its events in the active
        // segment (or one rotated out and not yet sealed, still plain).
        if let Some(p) = &seg.plain {
            if let Ok(b) = crate::safefs::read(p) {
                tail.extend_from_slice(&b);
            }
        }
    }
    // Every marker the newest segments hold, found in one pass (not one search of the whole
    // tail per spooled event: with hundreds of spool files and a large active segment, that
    // was most of a drain's time).
    let stored = markers_in(&tail);
    for file in files {
        let bytes = crate::safefs::read(&file).map_err(StoreError::io("read", &file))?;
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if !line.starts_with(ID_PLACEHOLDER) {
                return Err(StoreError::Segment {
                    segment: name_of(&file),
                    detail: "spool file holds a line that is not a spooled event".into(),
                });
            }
            if spooled_from(line).is_some_and(|m| stored.contains(m)) {
                continue;
            }
            drain.events.push(line.to_vec());
        }
        drain.files.push(file);
    }
    Ok(drain)
}

const MARKER_KEY: &[u8] = b"\"spooled_from\":\"";

fn spooled_from(line: &[u8]) -> Option<&[u8]> {
    let at = memfind(line, MARKER_KEY)? + MARKER_KEY.len();
    let end = memfind(&line[at..], b"\"")?;
    Some(&line[at..at + end])
}

/// The `meta.spooled_from` values in `bytes` (segment lines).
fn markers_in(bytes: &[u8]) -> std::collections::HashSet<&[u8]> {
    let mut found = std::collections::HashSet::new();
    let mut rest = bytes;
    while let Some(at) = memfind(rest, MARKER_KEY) {
        let value = &rest[at + MARKER_KEY.len()..];
        match memfind(value, b"\"") {
            Some(end) => {
                found.insert(&value[..end]);
                rest = &value[end..];
            }
            None => break,
        }
    }
    found
}

fn name_of(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Deletes drained files (after the append that holds their events is durable).
pub fn remove(paths: &Layout, files: &[PathBuf]) -> Result<()> {
    for f in files {
        match crate::safefs::remove_file(f) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io("remove", f)(e)),
        }
    }
    if !files.is_empty() {
        safefs::sync_dir(&paths.spool)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_in_one_pass_and_matched_exactly() {
        let tail = br#"{"id":7,"meta":{"spooled_from":"000-1-0#0"}}
{"id":8,"meta":{"spooled_from":"000-1-0#1"}}
{"id":9,"meta":{"spooled_from":"000-2-0#10"}}
{"id":10,"meta":{"spooled_from":"cut"#;
        let found = markers_in(tail);
        let mut v: Vec<&[u8]> = found.iter().copied().collect();
        v.sort();
        assert_eq!(v, [&b"000-1-0#0"[..], b"000-1-0#1", b"000-2-0#10"]);
        // A marker that is a prefix of a stored one is not stored.
        let line = br#"{"id":0,"meta":{"spooled_from":"000-2-0#1"}}"#;
        assert_eq!(spooled_from(line), Some(&b"000-2-0#1"[..]));
        assert!(!found.contains(spooled_from(line).unwrap()));
    }
}
