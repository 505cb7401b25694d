//! Finding the head of the store under the writer lock: the last id and chain value, the active
//! segment and its UTC day, and the torn tail a crash may have left after its last valid line.
//! The active segment is read backwards from its end, so the cost does not grow with its size.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};
use super::line::{check_line, ChainHash};
use super::reader::{scan_segment, ScanItem};
use super::segment::{SegmentFiles, Trailer};

/// The head of the store as found under the lock.
pub(super) struct Tail {
    pub(super) next_id: u64,
    pub(super) chain: ChainHash,
    pub(super) active: Option<ActiveTail>,
    /// Plain segments before the last one that have no sealed copy (a crash between rotation
    /// and sealing): sealed by this append.
    pub(super) unsealed: Vec<SegmentFiles>,
}

pub(super) struct ActiveTail {
    pub(super) path: PathBuf,
    pub(super) valid_len: u64,
    pub(super) first_day: Option<String>,
    pub(super) torn: Option<Torn>,
}

pub(super) struct Torn {
    pub(super) bytes: u64,
    pub(super) pieces: u64,
}

impl Tail {
    pub(super) fn load(segments: &[SegmentFiles]) -> Result<Tail> {
        let unsealed = segments
            .iter()
            .take(segments.len().saturating_sub(1))
            .filter(|s| s.is_plain())
            .cloned()
            .collect();
        let Some(last) = segments.last() else {
            return Ok(Tail {
                next_id: 1,
                chain: ChainHash::GENESIS,
                active: None,
                unsealed,
            });
        };
        if !last.is_plain() {
            let (last_id, chain) = head_of(segments)?;
            return Ok(Tail {
                next_id: last_id + 1,
                chain,
                active: None,
                unsealed,
            });
        }
        let path = last.plain.clone().unwrap_or_default();
        let plain = analyze_plain(&path)?;
        let (mut last_id, chain) = match plain.last {
            Some(head) => head,
            None => head_of(&segments[..segments.len() - 1])?,
        };
        let mut torn = None;
        if plain.torn_bytes > 0 {
            // Never reuse an id a torn line may have carried.
            if let Some(max) = plain.torn_max_id {
                if max > last_id && max - last_id <= plain.torn_pieces {
                    last_id = max;
                }
            }
            torn = Some(Torn {
                bytes: plain.torn_bytes,
                pieces: plain.torn_pieces,
            });
        }
        Ok(Tail {
            next_id: last_id + 1,
            chain,
            active: Some(ActiveTail {
                path,
                valid_len: plain.valid_len,
                first_day: plain.first_day,
                torn,
            }),
            unsealed,
        })
    }
}

/// Last id and chain value of the newest segment in `segments` that has a valid line.
fn head_of(segments: &[SegmentFiles]) -> Result<(u64, ChainHash)> {
    for seg in segments.iter().rev() {
        if let Some(sealed) = &seg.sealed {
            if let Some(t) = Trailer::read(sealed)? {
                return Ok((t.last_id, t.chain_head));
            }
            // No usable trailer: read the whole segment.
            let mut last = None;
            let _flow = scan_segment(seg, false, &mut |item| {
                if let ScanItem::Line { line, .. } = item {
                    last = line.id().map(|id| (id, line.chain));
                }
                std::ops::ControlFlow::Continue(())
            })?;
            if let Some(h) = last {
                return Ok(h);
            }
        } else if let Some(plain) = &seg.plain {
            if let Some(h) = analyze_plain(plain)?.last {
                return Ok(h);
            }
        }
    }
    Ok((0, ChainHash::GENESIS))
}

/// What the end and the start of a plain segment look like.
struct PlainTail {
    valid_len: u64,
    last: Option<(u64, ChainHash)>,
    first_day: Option<String>,
    torn_bytes: u64,
    torn_pieces: u64,
    torn_max_id: Option<u64>,
}

/// Reads a plain segment backwards from its end, in growing chunks, until the last valid line.
fn analyze_plain(path: &Path) -> Result<PlainTail> {
    let mut f = crate::safefs::open_read(path).map_err(StoreError::io("open", path))?;
    let len = f.metadata().map_err(StoreError::io("stat", path))?.len();
    let mut chunk = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(chunk);
        let mut buf = Vec::with_capacity((len - start) as usize);
        f.seek(SeekFrom::Start(start))
            .map_err(StoreError::io("seek", path))?;
        (&mut f)
            .take(len - start)
            .read_to_end(&mut buf)
            .map_err(StoreError::io("read", path))?;
        if let Some(mut t) = find_last_valid(&buf, start, len) {
            t.first_day = if t.valid_len == 0 {
                None
            } else {
                first_day(&mut f, path)?
            };
            return Ok(t);
        }
        chunk *= 4;
    }
}

/// Looks for the last valid line in `buf` (the file's bytes from `start` to `len`). `None` means
/// "read further back".
fn find_last_valid(buf: &[u8], start: u64, len: u64) -> Option<PlainTail> {
    let mut end = buf.len();
    let mut pieces = 0u64;
    let mut max_id = None;
    // A final piece without a newline.
    if let Some(nl) = buf.iter().rposition(|c| *c == b'\n') {
        if nl + 1 < end {
            pieces += 1;
            max_id = max_id.max(piece_id(&buf[nl + 1..]));
            end = nl + 1;
        }
    } else if start > 0 {
        return None;
    } else if !buf.is_empty() {
        pieces += 1;
        max_id = piece_id(buf);
        end = 0;
    }
    while end > 0 {
        let line_end = end - 1; // index of '\n'
        let line_start = match buf[..line_end].iter().rposition(|c| *c == b'\n') {
            Some(p) => p + 1,
            None if start == 0 => 0,
            None => return None,
        };
        let line = &buf[line_start..line_end];
        if let Ok(checked) = check_line(line) {
            if let Some(id) = checked.id() {
                return Some(PlainTail {
                    valid_len: start + end as u64,
                    last: Some((id, checked.chain)),
                    first_day: None,
                    torn_bytes: len - (start + end as u64),
                    torn_pieces: pieces,
                    torn_max_id: max_id,
                });
            }
        }
        pieces += 1;
        max_id = max_id.max(piece_id(line));
        end = line_start;
    }
    Some(PlainTail {
        valid_len: 0,
        last: None,
        first_day: None,
        torn_bytes: len,
        torn_pieces: pieces,
        torn_max_id: max_id,
    })
}

fn piece_id(piece: &[u8]) -> Option<u64> {
    let rest = piece.strip_prefix(b"{\"id\":")?;
    let end = rest.iter().position(|c| !c.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The UTC day of the first line of a plain segment.
fn first_day(f: &mut File, path: &Path) -> Result<Option<String>> {
    f.seek(SeekFrom::Start(0))
        .map_err(StoreError::io("seek", path))?;
    let mut reader = std::io::BufReader::new(f);
    let mut line = Vec::new();
    std::io::BufRead::read_until(&mut reader, b'\n', &mut line)
        .map_err(StoreError::io("read", path))?;
    if line.last() != Some(&b'\n') {
        return Ok(None);
    }
    Ok(check_line(&line[..line.len() - 1])
        .ok()
        .and_then(|l| l.ts())
        .map(|ts| ts[..10].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::line::encode_line;

    fn seg_bytes(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chain = ChainHash::GENESIS;
        for id in 1..=n {
            let ev = format!(r#"{{"id":{id},"ts":"2026-01-01T00:00:00Z"}}"#);
            chain = encode_line(ev.as_bytes(), &chain, &mut out);
        }
        out
    }

    #[test]
    fn last_valid_line_found_through_torn_pieces() {
        let mut b = seg_bytes(3);
        let good = b.len() as u64;
        b.extend_from_slice(b"{\"id\":4,\"ts\":\"2026-01-01T00:00:00Z\",garbage\n{\"id\":5,");
        let t = find_last_valid(&b, 0, b.len() as u64).unwrap();
        assert_eq!(t.valid_len, good);
        assert_eq!(t.last.unwrap().0, 3);
        assert_eq!(t.torn_pieces, 2);
        assert_eq!(t.torn_max_id, Some(5));
        assert_eq!(t.torn_bytes, b.len() as u64 - good);
    }

    #[test]
    fn needs_more_when_chunk_starts_mid_line() {
        let b = seg_bytes(3);
        assert!(find_last_valid(&b[10..], 10, b.len() as u64 + 10).is_some());
        // A chunk holding only part of the last line cannot decide.
        let last_nl = b[..b.len() - 1].iter().rposition(|c| *c == b'\n').unwrap();
        assert!(find_last_valid(&b[last_nl + 5..], (last_nl + 5) as u64, b.len() as u64).is_none());
    }

    #[test]
    fn empty_and_all_garbage() {
        let t = find_last_valid(b"", 0, 0).unwrap();
        assert_eq!((t.valid_len, t.torn_bytes, t.last), (0, 0, None));
        let t = find_last_valid(b"zzz", 0, 3).unwrap();
        assert_eq!((t.valid_len, t.torn_bytes, t.torn_pieces), (0, 3, 1));
    }
}
