//! Reading segments: every line of every segment in event order, each CRC-checked. Damage is
//! reported with segment, line number and byte offset and skipped, never panicked on. A torn
//! final line of the active segment is the normal leftover of a crash: it is reported as such
//! and never served.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read};
use std::ops::ControlFlow;
use std::path::Path;

use super::error::{Result, StoreError};
use super::line::{check_line, CheckedLine, LineError};
use super::segment::{file_name, SegmentFiles};

/// Where a line sits: segment file, 1-based line number, byte offset in the plain content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePos {
    /// The segment's data file name (`…jsonl` or `…jsonl.zst`).
    pub segment: String,
    /// 1-based line number within the segment.
    pub line: u64,
    /// Byte offset of the line's first byte in the segment's plain (decompressed) content.
    pub offset: u64,
}

impl std::fmt::Display for LinePos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "segment {} line {}", self.segment, self.line)
    }
}

/// What is wrong at a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DamageKind {
    /// A line failed its integrity check.
    Line(LineError),
    /// The final line of the active segment is incomplete or fails its check: a crash leftover.
    /// Ignored by readers, repaired by the next writer.
    TornTail {
        /// Bytes after the last good line.
        bytes: u64,
    },
    /// A sealed segment ends in bytes that are not a whole line.
    Truncated {
        /// Bytes of the partial line.
        bytes: u64,
    },
    /// The zstd stream cannot be decoded from here on.
    Undecodable(String),
    /// A valid line in a segment whose name it does not fit: the segment's first line is not
    /// the id its name says (a segment copied or renamed by hand; reported once, at line 1, and
    /// the whole segment is skipped), or a later line has a smaller id than the name.
    Misplaced {
        /// The line's id.
        id: u64,
        /// The first id the segment's name says.
        first_id: u64,
    },
}

impl std::fmt::Display for DamageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DamageKind::Line(e) => write!(f, "{e}"),
            DamageKind::TornTail { bytes } => {
                write!(f, "torn final line ({bytes} bytes; a crash leftover, repaired by the next append)")
            }
            DamageKind::Truncated { bytes } => write!(f, "ends in a partial line ({bytes} bytes)"),
            DamageKind::Undecodable(e) => write!(f, "cannot be decompressed: {e}"),
            DamageKind::Misplaced { id, first_id } => write!(
                f,
                "holds event {id} but its name says it starts at {first_id} (a copied or renamed segment; skipped)"
            ),
        }
    }
}

/// Damage found while reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where.
    pub pos: LinePos,
    /// What.
    pub kind: DamageKind,
}

impl Damage {
    /// True for the one kind of damage that is not an integrity failure.
    pub fn is_torn_tail(&self) -> bool {
        matches!(self.kind, DamageKind::TornTail { .. })
    }
}

/// One thing a scan yields.
#[derive(Debug)]
pub enum ScanItem<'a> {
    /// A line that passed its CRC check.
    Line {
        /// Where it is.
        pos: &'a LinePos,
        /// The checked line.
        line: CheckedLine<'a>,
    },
    /// Damage, reported once and skipped.
    Damage(Damage),
}

/// Largest line a reader accepts (a guard against unbounded memory on garbage without newlines).
pub const MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

/// Scans one segment. `is_active` says it is the last segment and plain, where a bad final line
/// is a torn tail rather than damage.
pub fn scan_segment(
    seg: &SegmentFiles,
    is_active: bool,
    f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>> {
    scan_segment_measured(seg, is_active, f, &Cell::new(0))
}

/// Like [`scan_segment`], and adds to `content_bytes` every byte of plain content read (for a
/// sealed segment: the decompressed bytes, up to where decoding stopped). `verify` compares it
/// with the trailer's `plain_bytes`, whatever the lines in it are.
pub fn scan_segment_measured(
    seg: &SegmentFiles,
    is_active: bool,
    f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
    content_bytes: &Cell<u64>,
) -> Result<ControlFlow<()>> {
    let f = &mut guard_ids(seg.first_id, f);
    let path = seg.data_path();
    let name = file_name(path);
    if seg.is_plain() {
        let file = match crate::safefs::open_read(path) {
            Ok(file) => file,
            // Sealed and the plain copy removed between listing and opening: read the sealed one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let sealed = path.with_extension("jsonl.zst");
                if sealed.exists() {
                    return scan_sealed(&sealed, &name, f, content_bytes);
                }
                return Ok(ControlFlow::Continue(()));
            }
            Err(e) => return Err(StoreError::io("open", path)(e)),
        };
        scan_lines(
            BufReader::with_capacity(256 * 1024, Counting(file, content_bytes)),
            &name,
            is_active,
            f,
        )
    } else {
        scan_sealed(path, &name, f, content_bytes)
    }
}

/// A reader that adds the bytes it yields to a counter.
struct Counting<'c, R>(R, &'c Cell<u64>);

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.set(self.1.get() + n as u64);
        Ok(n)
    }
}

/// Scans a plain segment from byte `start` (the start of a line, as an index recorded it).
/// Line numbers in reported damage count from there. A sealed segment is scanned whole.
pub fn scan_segment_from(
    seg: &SegmentFiles,
    is_active: bool,
    start: u64,
    f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>> {
    if start == 0 || !seg.is_plain() {
        return scan_segment(seg, is_active, f);
    }
    let f = &mut guard_ids(seg.first_id, f);
    let path = seg.data_path();
    let name = file_name(path);
    let mut file = match crate::safefs::open_read(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return scan_segment(seg, is_active, f);
        }
        Err(e) => return Err(StoreError::io("open", path)(e)),
    };
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(start))
        .map_err(StoreError::io("seek", path))?;
    scan_lines_at(
        BufReader::with_capacity(256 * 1024, file),
        &name,
        is_active,
        start,
        f,
    )
}

/// Wraps a visitor so that no line is served from a segment it does not belong to: a segment's
/// name is the id of its first line (segments-format.md §3), so a first line (offset 0) with
/// another id means the file is a copy or was renamed, and none of its lines is served; a line
/// with an id below the name is never served either. Found by tests/corruption.rs: a sealed
/// segment copied under another name made `export` serve its events twice, out of order.
fn guard_ids<'f>(
    first_id: u64,
    f: &'f mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
) -> impl FnMut(ScanItem<'_>) -> ControlFlow<()> + 'f {
    let mut misnamed = false;
    move |item| match item {
        ScanItem::Line { pos, line } => {
            let id = line.id().unwrap_or(0);
            if misnamed {
                return ControlFlow::Continue(());
            }
            if (pos.offset == 0 && id != first_id) || id < first_id {
                misnamed = pos.offset == 0;
                return f(ScanItem::Damage(Damage {
                    pos: pos.clone(),
                    kind: DamageKind::Misplaced { id, first_id },
                }));
            }
            f(ScanItem::Line { pos, line })
        }
        other => f(other),
    }
}

#[allow(unsafe_code)]
fn scan_sealed(
    path: &Path,
    name: &str,
    f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
    content_bytes: &Cell<u64>,
) -> Result<ControlFlow<()>> {
    let file = crate::safefs::open_read(path).map_err(StoreError::io("open", path))?;
    // SAFETY: sealed segments are immutable: they come into existence by an atomic rename of a
    // complete, fsynced file and are only ever deleted (or replaced by another rename), never
    // written in place, so the mapped bytes do not change under us. Deleting a mapped file is
    // safe on Linux (the mapping keeps the inode alive).
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(StoreError::io("mmap", path))?;
    let decoder = match zstd::stream::read::Decoder::with_buffer(&map[..]) {
        Ok(d) => d,
        Err(e) => {
            return Ok(f(ScanItem::Damage(Damage {
                pos: LinePos {
                    segment: name.to_string(),
                    line: 1,
                    offset: 0,
                },
                kind: DamageKind::Undecodable(e.to_string()),
            })))
        }
    };
    scan_lines(
        BufReader::with_capacity(256 * 1024, Counting(decoder, content_bytes)),
        name,
        false,
        f,
    )
}

/// The line loop shared by plain and sealed segments.
fn scan_lines<R: Read>(
    reader: BufReader<R>,
    name: &str,
    is_active: bool,
    f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>> {
    scan_lines_at(reader, name, is_active, 0, f)
}

/// The line loop, for a reader positioned at byte `start` of the segment's content.
fn scan_lines_at<R: Read>(
    mut reader: BufReader<R>,
    name: &str,
    is_active: bool,
    start: u64,
    f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
) -> Result<ControlFlow<()>> {
    let mut buf = Vec::with_capacity(4096);
    let mut pos = LinePos {
        segment: name.to_string(),
        line: 0,
        offset: start,
    };
    // A bad line is held back one step: only at the end do we know whether it was the final
    // line of the active segment (a torn tail) or damage in the middle.
    let mut held: Option<(LinePos, LineError, u64)> = None;
    loop {
        buf.clear();
        let n = match (&mut reader)
            .take(MAX_LINE_BYTES as u64)
            .read_until(b'\n', &mut buf)
        {
            Ok(n) => n,
            Err(e) => {
                if let Some((p, err, _)) = held.take() {
                    if f(ScanItem::Damage(Damage {
                        pos: p,
                        kind: DamageKind::Line(err),
                    }))
                    .is_break()
                    {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                let d = Damage {
                    pos: LinePos {
                        line: pos.line + 1,
                        ..pos.clone()
                    },
                    kind: DamageKind::Undecodable(e.to_string()),
                };
                return Ok(f(ScanItem::Damage(d)));
            }
        };
        if n == 0 {
            break;
        }
        pos.line += 1;
        let this_pos = pos.clone();
        pos.offset += n as u64;
        if let Some((p, err, _)) = held.take() {
            if f(ScanItem::Damage(Damage {
                pos: p,
                kind: DamageKind::Line(err),
            }))
            .is_break()
            {
                return Ok(ControlFlow::Break(()));
            }
        }
        if buf.last() != Some(&b'\n') {
            // A final piece without a newline (or an over-long run of bytes).
            let kind = if is_active {
                DamageKind::TornTail { bytes: n as u64 }
            } else {
                DamageKind::Truncated { bytes: n as u64 }
            };
            if n == MAX_LINE_BYTES {
                let d = Damage {
                    pos: this_pos,
                    kind: DamageKind::Line(LineError::Malformed),
                };
                return Ok(f(ScanItem::Damage(d)));
            }
            return Ok(f(ScanItem::Damage(Damage {
                pos: this_pos,
                kind,
            })));
        }
        match check_line(&buf[..n - 1]) {
            Ok(line) => {
                if f(ScanItem::Line {
                    pos: &this_pos,
                    line,
                })
                .is_break()
                {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Err(err) => held = Some((this_pos, err, n as u64)),
        }
    }
    if let Some((p, err, n)) = held {
        let kind = if is_active {
            DamageKind::TornTail { bytes: n }
        } else {
            DamageKind::Line(err)
        };
        return Ok(f(ScanItem::Damage(Damage { pos: p, kind })));
    }
    Ok(ControlFlow::Continue(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::line::{encode_line, ChainHash};

    fn lines(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chain = ChainHash::GENESIS;
        for id in 1..=n {
            let ev = format!(r#"{{"id":{id},"ts":"2026-01-01T00:00:00Z"}}"#);
            chain = encode_line(ev.as_bytes(), &chain, &mut out);
        }
        out
    }

    fn collect(bytes: &[u8], active: bool) -> (Vec<u64>, Vec<Damage>) {
        let mut ids = Vec::new();
        let mut damage = Vec::new();
        let _flow = scan_lines(BufReader::new(bytes), "seg", active, &mut |item| {
            match item {
                ScanItem::Line { line, .. } => ids.push(line.id().unwrap()),
                ScanItem::Damage(d) => damage.push(d),
            }
            ControlFlow::Continue(())
        })
        .unwrap();
        (ids, damage)
    }

    /// Ids served and damage reported when `bytes` is read as a segment named `first_id`.
    fn collect_named(bytes: &[u8], first_id: u64) -> (Vec<u64>, Vec<Damage>) {
        let mut ids = Vec::new();
        let mut damage = Vec::new();
        let mut visit = |item: ScanItem<'_>| {
            match item {
                ScanItem::Line { line, .. } => ids.push(line.id().unwrap()),
                ScanItem::Damage(d) => damage.push(d),
            }
            ControlFlow::Continue(())
        };
        let mut guarded = guard_ids(first_id, &mut visit);
        let _flow = scan_lines(BufReader::new(bytes), "seg", false, &mut guarded).unwrap();
        drop(guarded);
        (ids, damage)
    }

    #[test]
    fn a_segment_under_another_name_serves_nothing() {
        assert_eq!(collect_named(&lines(3), 1).0, vec![1, 2, 3]);
        // Copied under a later (or earlier) name: one report at line 1, nothing served.
        for name in [2, 7] {
            let (ids, damage) = collect_named(&lines(3), name);
            assert!(ids.is_empty(), "{ids:?}");
            assert_eq!(damage.len(), 1);
            assert_eq!(damage[0].pos.line, 1);
            assert_eq!(
                damage[0].kind,
                DamageKind::Misplaced {
                    id: 1,
                    first_id: name
                }
            );
        }
    }

    #[test]
    fn clean_segment() {
        let (ids, damage) = collect(&lines(3), true);
        assert_eq!(ids, vec![1, 2, 3]);
        assert!(damage.is_empty());
    }

    #[test]
    fn torn_tail_only_in_active() {
        let mut b = lines(3);
        b.extend_from_slice(br#"{"id":4,"ts":"2026"#);
        let (ids, damage) = collect(&b, true);
        assert_eq!(ids, vec![1, 2, 3]);
        assert!(damage[0].is_torn_tail());
        assert_eq!(damage[0].pos.line, 4);
        let (_, damage) = collect(&b, false);
        assert!(matches!(damage[0].kind, DamageKind::Truncated { .. }));
    }

    #[test]
    fn bad_middle_line_is_damage_even_in_active() {
        let mut b = lines(3);
        let first_nl = b.iter().position(|c| *c == b'\n').unwrap();
        b[first_nl + 10] ^= 0x20;
        let (ids, damage) = collect(&b, true);
        assert_eq!(ids, vec![1, 3]);
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].pos.line, 2);
        assert!(matches!(
            damage[0].kind,
            DamageKind::Line(LineError::Crc { .. })
        ));
    }

    #[test]
    fn bad_final_complete_line_is_torn_in_active() {
        let mut b = lines(2);
        let n = b.len();
        b[n - 5] ^= 1;
        let (ids, damage) = collect(&b, true);
        assert_eq!(ids, vec![1]);
        assert!(damage[0].is_torn_tail());
    }
}
