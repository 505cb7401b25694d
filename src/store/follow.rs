//! Following the log (`tail`, `tail --follow`): the newest events, then every event appended
//! after them, as other processes write them, like `journalctl -f`.
//!
//! A follower is a reader (segments-format.md §2, §9): it never takes the lock and never writes,
//! so it works on a read-only data directory. It keeps a cursor (segment, byte offset after the
//! last complete line it dealt with) and, at each [`Follower::poll`], reads what was appended
//! since. Only complete lines that pass their CRC are served; a final piece without `\n` (a write
//! in flight, or a crash leftover) is left for a later poll. A bad complete line is held back
//! until a valid line follows it: until then it may be a torn tail that the next writer cuts
//! (§7.3), and the cursor must not move past bytes that may be cut.
//!
//! Rotation: the listing is taken before reading, so a segment that had a newer segment in the
//! listing is complete (a rotating writer writes out the old segment before creating the new
//! one); the follower reads it to its end and moves on. Its plain copy stays for the grace period
//! after sealing (§6.5) and is byte for byte the sealed content; when it is gone the sealed file
//! is read instead. Every served event's id is remembered and nothing with an id at or below it
//! is served again, so re-reading after a resync never duplicates, and nothing is skipped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};
use super::line::check_line;
use super::reader::{scan_segment, Damage, DamageKind, LinePos, ScanItem, MAX_LINE_BYTES};
use super::segment::{self, file_name, SegmentFiles, SEALED_SUFFIX};
use super::Store;

/// One thing a follower yields.
#[derive(Debug)]
pub enum FollowItem<'a> {
    /// A new event: its id and its canonical JSON (without integrity fields, with its `}`).
    Event {
        /// The event id.
        id: u64,
        /// The canonical event JSON.
        json: &'a [u8],
    },
    /// Damage found on the way (never a torn tail of the active segment), reported once and
    /// skipped.
    Damage(Damage),
}

/// An event read by [`Store::tail`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailEvent {
    /// The event id.
    pub id: u64,
    /// The canonical event JSON (without integrity fields).
    pub json: Vec<u8>,
}

/// Where a follower is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    /// The segment (its first id, which is its name).
    first_id: u64,
    /// Byte offset after the last line dealt with, in the segment's plain content.
    offset: u64,
    /// Lines before `offset` (for damage reports).
    line: u64,
    /// The segment was read to its end and can get no more lines.
    done: bool,
    /// Inode of the plain file read: a file replaced under the same name (an empty active
    /// segment deleted and created again, a rewrite) is read again from its start.
    ino: Option<u64>,
}

impl Cursor {
    fn start(first_id: u64) -> Cursor {
        Cursor {
            first_id,
            offset: 0,
            line: 0,
            done: false,
            ino: None,
        }
    }
}

/// Follows the segments of a store from a position: see the module documentation.
#[derive(Debug, Clone)]
pub struct Follower {
    dir: PathBuf,
    last_id: u64,
    cursor: Option<Cursor>,
}

impl Follower {
    /// The id of the last event served (0: none yet).
    pub fn last_id(&self) -> u64 {
        self.last_id
    }

    /// Serves every complete, valid event appended since the last poll, in id order, and
    /// damage met on the way. Stops early (returning `Break`) when `f` does.
    pub fn poll(
        &mut self,
        f: &mut dyn FnMut(FollowItem<'_>) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>> {
        // The listing comes first: every segment it shows before the last one is complete.
        let segments = segment::list(&self.dir)?.segments;
        if segments.is_empty() {
            return Ok(ControlFlow::Continue(()));
        }
        let found = self.cursor.and_then(|c| {
            segments
                .iter()
                .position(|s| s.first_id == c.first_id)
                .map(|i| (i, c))
        });
        let (mut idx, mut cursor) = match found {
            Some(x) => x,
            None => {
                // First poll, or the segment went away (an empty active segment deleted and
                // created again, vacuum, prune): start again at the segment that can hold the
                // next id; ids at or below the last served one are skipped.
                let next = self.last_id.saturating_add(1);
                let i = segments
                    .iter()
                    .rposition(|s| s.first_id <= next)
                    .unwrap_or(0);
                (i, Cursor::start(segments[i].first_id))
            }
        };
        loop {
            let seg = &segments[idx];
            let is_last = idx + 1 == segments.len();
            if !cursor.done {
                let complete = !is_last || seg.sealed.is_some();
                match self.read_segment(seg, &mut cursor, complete, f)? {
                    Step::Flow(ControlFlow::Break(())) => {
                        self.cursor = Some(cursor);
                        return Ok(ControlFlow::Break(()));
                    }
                    Step::Flow(ControlFlow::Continue(())) => {}
                    Step::Resync => {
                        // The file shrank under the cursor or vanished: find the place again at
                        // the next poll.
                        self.cursor = None;
                        return Ok(ControlFlow::Continue(()));
                    }
                }
                if complete {
                    cursor.done = true;
                }
            }
            if is_last {
                self.cursor = Some(cursor);
                return Ok(ControlFlow::Continue(()));
            }
            idx += 1;
            cursor = Cursor::start(segments[idx].first_id);
        }
    }

    /// Reads one segment from the cursor: the plain file when it is there (the active segment,
    /// or the plain copy of a sealed one), else the sealed file.
    fn read_segment(
        &mut self,
        seg: &SegmentFiles,
        cursor: &mut Cursor,
        complete: bool,
        f: &mut dyn FnMut(FollowItem<'_>) -> ControlFlow<()>,
    ) -> Result<Step> {
        if let Some(plain) = &seg.plain {
            match self.read_plain(plain, cursor, complete, f)? {
                Plain::Read(flow) => return Ok(Step::Flow(flow)),
                Plain::Shrank => return Ok(Step::Resync),
                Plain::Gone => {}
            }
        }
        let sealed = match &seg.sealed {
            Some(p) => p.clone(),
            None => {
                let p = self
                    .dir
                    .join(format!("{}{SEALED_SUFFIX}", segment::stem(seg.first_id)));
                if !p.exists() {
                    return Ok(Step::Resync);
                }
                p
            }
        };
        let only_sealed = SegmentFiles {
            first_id: seg.first_id,
            plain: None,
            sealed: Some(sealed),
        };
        let from = cursor.offset;
        let last_id = &mut self.last_id;
        let mut end = cursor.offset;
        let mut lines = cursor.line;
        let flow = scan_segment(&only_sealed, false, &mut |item| match item {
            ScanItem::Line { pos, line } => {
                end = end.max(pos.offset);
                lines = lines.max(pos.line);
                match line.id() {
                    Some(id) if id > *last_id => {
                        *last_id = id;
                        f(FollowItem::Event {
                            id,
                            json: &line.event_json(),
                        })
                    }
                    _ => ControlFlow::Continue(()),
                }
            }
            // Damage before the cursor was reported when that part was read from the plain copy.
            ScanItem::Damage(d) if d.pos.offset < from => ControlFlow::Continue(()),
            ScanItem::Damage(d) => f(FollowItem::Damage(d)),
        })?;
        cursor.offset = end;
        cursor.line = lines;
        if flow.is_continue() {
            // A sealed segment is immutable: nothing more will come from it.
            cursor.done = true;
        }
        Ok(Step::Flow(flow))
    }

    /// Reads a plain segment from the cursor to its last complete line.
    fn read_plain(
        &mut self,
        path: &Path,
        cursor: &mut Cursor,
        complete: bool,
        f: &mut dyn FnMut(FollowItem<'_>) -> ControlFlow<()>,
    ) -> Result<Plain> {
        let mut file = match crate::safefs::open_read(path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Plain::Gone),
            Err(e) => return Err(StoreError::io("open", path)(e)),
        };
        let meta = file.metadata().map_err(StoreError::io("stat", path))?;
        let len = meta.len();
        if cursor.ino.is_some_and(|ino| ino != meta.ino()) {
            // Same name, another file: ids already served are skipped, so start over.
            cursor.offset = 0;
            cursor.line = 0;
        }
        cursor.ino = Some(meta.ino());
        if len < cursor.offset {
            return Ok(Plain::Shrank);
        }
        if len == cursor.offset && !complete {
            return Ok(Plain::Read(ControlFlow::Continue(())));
        }
        file.seek(SeekFrom::Start(cursor.offset))
            .map_err(StoreError::io("seek", path))?;
        let name = file_name(path);
        let mut reader = BufReader::with_capacity(64 * 1024, file);
        let mut buf = Vec::with_capacity(4096);
        let mut pos = cursor.offset;
        let mut line_no = cursor.line;
        // Bad complete lines not yet known to be damage (a valid line after them proves it).
        let mut held: Vec<Damage> = Vec::new();
        loop {
            buf.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64)
                .read_until(b'\n', &mut buf)
                .map_err(StoreError::io("read", path))?;
            if n == 0 {
                break;
            }
            let here = LinePos {
                segment: name.clone(),
                line: line_no + 1,
                offset: pos,
            };
            if buf.last() != Some(&b'\n') {
                // A write in flight or a torn tail: wait for it, unless nothing more can come.
                if complete {
                    held.push(Damage {
                        pos: here,
                        kind: DamageKind::Truncated { bytes: n as u64 },
                    });
                    pos += n as u64;
                    line_no += 1;
                    cursor.offset = pos;
                    cursor.line = line_no;
                    for d in held {
                        if f(FollowItem::Damage(d)).is_break() {
                            return Ok(Plain::Read(ControlFlow::Break(())));
                        }
                    }
                }
                return Ok(Plain::Read(ControlFlow::Continue(())));
            }
            pos += n as u64;
            line_no += 1;
            match check_line(&buf[..n - 1]) {
                Ok(line) => {
                    for d in held.drain(..) {
                        if f(FollowItem::Damage(d)).is_break() {
                            return Ok(Plain::Read(ControlFlow::Break(())));
                        }
                    }
                    cursor.offset = pos;
                    cursor.line = line_no;
                    if let Some(id) = line.id().filter(|id| *id > self.last_id) {
                        self.last_id = id;
                        if f(FollowItem::Event {
                            id,
                            json: &line.event_json(),
                        })
                        .is_break()
                        {
                            return Ok(Plain::Read(ControlFlow::Break(())));
                        }
                    }
                }
                Err(err) => held.push(Damage {
                    pos: here,
                    kind: DamageKind::Line(err),
                }),
            }
        }
        if complete {
            cursor.offset = pos;
            cursor.line = line_no;
            for d in held {
                if f(FollowItem::Damage(d)).is_break() {
                    return Ok(Plain::Read(ControlFlow::Break(())));
                }
            }
        }
        Ok(Plain::Read(ControlFlow::Continue(())))
    }
}

enum Step {
    Flow(ControlFlow<()>),
    Resync,
}

enum Plain {
    Read(ControlFlow<()>),
    Shrank,
    Gone,
}

/// What [`Store::tail`] returns.
#[derive(Debug)]
pub struct Tail {
    /// The newest events, oldest first.
    pub events: Vec<TailEvent>,
    /// Damage met while reading them (never a torn tail of the active segment).
    pub damage: Vec<Damage>,
    /// A follower positioned right after the newest event.
    pub follower: Follower,
}

impl Store {
    /// A follower that serves every event with an id above `after`, from wherever it is (the
    /// segment that can hold the next id), then what is appended later: resuming a stream
    /// (`Last-Event-ID`) without loss or duplicates. Takes no lock.
    pub fn follow_after(&self, after: u64) -> Result<Follower> {
        self.check_readable()?;
        Ok(Follower {
            dir: self.paths.segments.clone(),
            last_id: after,
            cursor: None,
        })
    }

    /// The newest `n` events, oldest first (like `tail -n`), and a follower that serves what is
    /// appended after them. Reads only the segments needed, newest first; takes no lock.
    pub fn tail(&self, n: usize) -> Result<Tail> {
        self.check_readable()?;
        let dir = self.paths.segments.clone();
        let segments = segment::list(&dir)?.segments;
        let mut follower = Follower {
            dir,
            last_id: 0,
            cursor: segments.last().map(|s| Cursor::start(s.first_id)),
        };
        let mut newest: VecDeque<TailEvent> = VecDeque::new();
        let mut damage = Vec::new();
        let _flow = follower.poll(&mut |item| {
            match item {
                FollowItem::Event { id, json } => {
                    if n > 0 {
                        if newest.len() == n {
                            newest.pop_front();
                        }
                        newest.push_back(TailEvent {
                            id,
                            json: json.to_vec(),
                        });
                    }
                }
                FollowItem::Damage(d) => damage.push(d),
            }
            ControlFlow::Continue(())
        })?;
        // Not enough in the newest segment: walk back through older ones.
        let last_seg = segments.len().saturating_sub(1);
        for seg in segments[..last_seg].iter().rev() {
            if newest.len() >= n {
                break;
            }
            let below = newest.front().map_or(u64::MAX, |e| e.id);
            let want = n - newest.len();
            let mut older: VecDeque<TailEvent> = VecDeque::new();
            let _flow = scan_segment(seg, false, &mut |item| {
                match item {
                    ScanItem::Line { line, .. } => {
                        if let Some(id) = line.id().filter(|id| *id < below) {
                            if older.len() == want {
                                older.pop_front();
                            }
                            older.push_back(TailEvent {
                                id,
                                json: line.event_json(),
                            });
                        }
                    }
                    ScanItem::Damage(d) => damage.push(d),
                }
                ControlFlow::Continue(())
            })?;
            while let Some(e) = older.pop_back() {
                newest.push_front(e);
            }
        }
        // The newest segment may have held nothing valid yet: the follower must still skip
        // everything already in the store.
        if follower.last_id == 0 {
            follower.last_id = newest.back().map_or(0, |e| e.id);
            if follower.last_id == 0 && segments.len() > 1 {
                follower.last_id = self.last_id()?;
            }
        }
        Ok(Tail {
            events: newest.into(),
            damage,
            follower,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::line::{encode_line, ChainHash};

    fn line(id: u64) -> Vec<u8> {
        let ev = format!(r#"{{"id":{id},"ts":"2026-01-01T00:00:00Z"}}"#);
        let mut out = Vec::new();
        let _chain = encode_line(ev.as_bytes(), &ChainHash::GENESIS, &mut out);
        out
    }

    fn append(path: &Path, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    fn poll(f: &mut Follower) -> (Vec<u64>, Vec<u64>) {
        let mut ids = Vec::new();
        let mut damaged = Vec::new();
        let _flow = f
            .poll(&mut |item| {
                match item {
                    FollowItem::Event { id, json } => {
                        assert!(json.ends_with(b"}"));
                        ids.push(id);
                    }
                    FollowItem::Damage(d) => damaged.push(d.pos.line),
                }
                ControlFlow::Continue(())
            })
            .unwrap();
        (ids, damaged)
    }

    #[test]
    fn bad_lines_are_held_until_a_valid_line_proves_them_damage() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join("00000000000000000001.jsonl");
        append(&seg, &[line(1), line(2)].concat());
        let mut f = Follower {
            dir: dir.path().to_path_buf(),
            last_id: 0,
            cursor: None,
        };
        assert_eq!(poll(&mut f), (vec![1, 2], vec![]));
        assert_eq!(poll(&mut f), (vec![], vec![]));
        // A complete line failing its CRC at the end of the active segment: maybe a torn tail.
        let mut bad = line(3);
        bad[12] ^= 1;
        append(&seg, &bad);
        append(&seg, &line(4)[..20]);
        assert_eq!(poll(&mut f), (vec![], vec![]));
        assert_eq!(f.cursor.map(|c| c.line), Some(2));
        // The rest of line 4: line 3 was damage after all.
        append(&seg, &line(4)[20..]);
        assert_eq!(poll(&mut f), (vec![4], vec![3]));
        assert_eq!(poll(&mut f), (vec![], vec![]));
        // The file replaced under the same name (a rewrite renames a new file over it): read
        // again, nothing served twice.
        let tmp = dir.path().join("rewrite.tmp");
        append(&tmp, &[line(1), line(2), line(4), line(6)].concat());
        std::fs::rename(&tmp, &seg).unwrap();
        assert_eq!(poll(&mut f), (vec![6], vec![]));
        // Rotation: the next segment is read after the old one is finished.
        append(&seg, &line(7));
        append(&dir.path().join("00000000000000000008.jsonl"), &line(8));
        assert_eq!(poll(&mut f), (vec![7, 8], vec![]));
        assert_eq!(f.last_id(), 8);
    }
}
