//! `segment_reader`: reading segments (`store::reader::scan_segment`, `store::segment`).
//!
//! The input is split into valid events (encoded with `encode_line`, ids 1.., chained from
//! genesis) and arbitrary trailing bytes. The bytes are written as
//! `segments/00000000000000000001.jsonl` and found again with `segment::list`, then scanned
//!
//! - as the active segment and as a plain non-final one,
//! - sealed (by `segment::seal`, or as several zstd frames plus a `Trailer` written here),
//! - sealed and then damaged by one changed byte.
//!
//! Each undamaged scan is compared item by item with a reference model of the format (split on
//! `\n`, `check_line` each piece, §2 rules for the final piece): every line is either yielded
//! or reported as damage, exactly once, in order, at the right line number and byte offset, so
//! every valid line comes back exactly once and nothing is silently dropped. Every yielded line
//! is checked again with `check_line` on the bytes at its reported offset. For a damaged sealed
//! segment: no panic, no error, line numbers still count up from 1 without gaps, every yielded
//! line is one that was written, and a scan that reports no damage yields exactly the original
//! lines.
//!
//! Arbitrary bytes are also fed to `Trailer::decode_from_end`; a trailer it accepts must
//! survive `encode` → `decode_from_end`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;

use dokku_audit::store::codec::{self as segment, seal, Trailer};
use dokku_audit::store::codec::{check_line, encode_line, scan_segment, ChainHash, LineError};
use dokku_audit::store::{Damage, DamageKind, LinePos, ScanItem, SegmentFiles};
use dokku_audit::store::Ownership;

use crate::Bytes;

const TS: &str = "2026-01-01T00:00:00Z";
const NAME: &str = "00000000000000000001";

/// One scan result, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A yielded line: where, the event bytes without `}`, the stored chain value.
    Line(LinePos, Vec<u8>, ChainHash),
    /// Reported damage.
    Damage(Damage),
}

/// The `segment_reader` target body.
pub fn segment_reader(data: &[u8]) {
    trailer_round_trip(data);

    let mut input = Bytes::new(data);
    let flags = input.u8();
    let chunk = 1 + usize::from(input.u8() % 24);
    let split = usize::from(input.u16());
    let corrupt_at = usize::from(input.u16());
    let corrupt_mask = input.u8().max(1);
    let rest = input.rest();
    let (events, garbage) = rest.split_at(split.min(rest.len()));

    // Valid lines from the input.
    let mut valid = Vec::new();
    let mut want = Vec::new();
    let mut chain = ChainHash::GENESIS;
    for (i, piece) in events.chunks(chunk).enumerate() {
        let json = serde_json::to_vec(&serde_json::json!({
            "id": i + 1, "ts": TS, "message": String::from_utf8_lossy(piece)
        }))
        .expect("serialise");
        chain = encode_line(&json, &chain, &mut valid);
        want.push((json[..json.len() - 1].to_vec(), chain));
    }
    let mut content = valid.clone();
    content.extend_from_slice(garbage);

    let dir = tempfile::tempdir().expect("tempdir");
    let segments = dir.path().join("segments");
    std::fs::create_dir(&segments).expect("mkdir");
    let plain = segments.join(format!("{NAME}.jsonl"));
    std::fs::write(&plain, &content).expect("write");

    // Plain: as the active segment, then as a plain segment that is not the last one.
    let seg = only_segment(&segments);
    assert!(seg.is_plain());
    assert_eq!(seg.plain.as_deref(), Some(plain.as_path()));
    for active in [true, false] {
        let got = scan(&seg);
        let model = model(&content, active, &seg.name());
        let got = got(active);
        assert_eq!(got, model, "plain segment, active={active}");
        recheck(&got, &content);
        assert_prefix(&got, &want);
        if garbage.is_empty() {
            assert!(!got.iter().any(|i| matches!(i, Item::Damage(_))));
        }
    }

    // Sealed: the same content, compressed. The plain copy stays (as in the grace period); the
    // sealed one is what readers use.
    let trailer = Trailer {
        format: 1,
        first_id: 1,
        last_id: want.len() as u64,
        count: want.len() as u64,
        first_ts: TS.into(),
        last_ts: TS.into(),
        chain_head: chain,
        plain_bytes: content.len() as u64,
    };
    let sealed_path = if flags & 1 == 0 {
        seal(
            &plain,
            content.len() as u64,
            &trailer,
            1 + i32::from(flags >> 4),
            &Ownership::default(),
        )
        .expect("seal")
    } else {
        let at = if content.is_empty() {
            0
        } else {
            corrupt_at % (content.len() + 1)
        };
        write_frames(
            &segments.join(format!("{NAME}.jsonl.zst")),
            &[&content[..at], &content[at..]],
            &trailer,
        )
    };
    assert_eq!(
        Trailer::read(&sealed_path).expect("read trailer"),
        Some(trailer.clone())
    );
    let seg = only_segment(&segments);
    assert!(!seg.is_plain());
    assert_eq!(seg.data_path(), sealed_path);
    let got = scan(&seg)(false);
    assert_eq!(got, model(&content, false, &seg.name()), "sealed segment");
    recheck(&got, &content);
    assert_prefix(&got, &want);

    // Sealed, then one byte changed: whatever the decoder makes of it, nothing panics, nothing
    // is skipped silently.
    if flags & 2 != 0 {
        let mut raw = std::fs::read(&sealed_path).expect("read");
        let at = corrupt_at % raw.len();
        raw[at] ^= corrupt_mask;
        std::fs::write(&sealed_path, &raw).expect("write");
        let got = scan(&seg)(false);
        let clean = model(&content, false, &seg.name());
        for (i, item) in got.iter().enumerate() {
            let pos = match item {
                // A CRC-checked line can only be one of the lines that were written (a damaged
                // stream may repeat one, but cannot make up a new one).
                Item::Line(pos, event_open, chain) => {
                    assert!(
                        clean.iter().any(|c| matches!(c,
                            Item::Line(_, e, ch) if e == event_open && ch == chain)),
                        "a line that was never written was yielded"
                    );
                    pos
                }
                Item::Damage(d) => &d.pos,
            };
            assert_eq!(pos.segment, seg.name());
            assert_eq!(pos.line, i as u64 + 1, "line numbers count up without gaps");
        }
        if !got.iter().any(|i| matches!(i, Item::Damage(_))) {
            assert_eq!(got, clean, "changed without any damage reported");
        }
    }
}

/// Lists `segments` and returns its one segment.
fn only_segment(segments: &Path) -> SegmentFiles {
    let listing = segment::list(segments).expect("list");
    assert!(listing.temp_files.is_empty() && listing.foreign_files.is_empty());
    assert_eq!(listing.segments.len(), 1);
    let seg = listing.segments.into_iter().next().expect("one segment");
    assert_eq!(seg.first_id, 1);
    seg
}

/// Scans `seg` (to be called with `is_active`) and collects what it yields.
fn scan(seg: &SegmentFiles) -> impl Fn(bool) -> Vec<Item> + '_ {
    move |active| {
        let mut got = Vec::new();
        let flow = scan_segment(seg, active, &mut |item| {
            got.push(match item {
                ScanItem::Line { pos, line } => {
                    Item::Line(pos.clone(), line.event_open.to_vec(), line.chain)
                }
                ScanItem::Damage(d) => Item::Damage(d),
            });
            ControlFlow::Continue(())
        })
        .expect("scan_segment");
        assert_eq!(flow, ControlFlow::Continue(()));
        got
    }
}

/// What a reader must yield for plain content `bytes` (segments-format.md §2): one item per
/// `\n`-terminated piece, then one for a final piece without `\n`.
pub fn model(bytes: &[u8], active: bool, segment: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut offset = 0usize;
    let mut line = 0u64;
    // A segment's name is the id of its first line (§3): a valid first line with another id
    // makes the whole segment misplaced (reported once, nothing of it served), and a valid line
    // with an id below the name is reported instead of served.
    let first_id: u64 = segment[..20].parse().expect("segment name");
    let mut misnamed = false;
    while offset < bytes.len() {
        line += 1;
        let pos = LinePos {
            segment: segment.to_string(),
            line,
            offset: offset as u64,
        };
        let Some(nl) = bytes[offset..].iter().position(|c| *c == b'\n') else {
            let n = (bytes.len() - offset) as u64;
            let kind = if active {
                DamageKind::TornTail { bytes: n }
            } else {
                DamageKind::Truncated { bytes: n }
            };
            items.push(Item::Damage(Damage { pos, kind }));
            break;
        };
        let piece = &bytes[offset..offset + nl];
        let end = offset + nl + 1;
        items.push(match check_line(piece) {
            Ok(_) if misnamed => {
                offset = end;
                continue;
            }
            Ok(l) => {
                let id = l.id().unwrap_or(0);
                if (offset == 0 && id != first_id) || id < first_id {
                    misnamed = offset == 0;
                    Item::Damage(Damage {
                        pos,
                        kind: DamageKind::Misplaced { id, first_id },
                    })
                } else {
                    Item::Line(pos, l.event_open.to_vec(), l.chain)
                }
            }
            Err(_) if active && end == bytes.len() => Item::Damage(Damage {
                pos,
                kind: DamageKind::TornTail {
                    bytes: (nl + 1) as u64,
                },
            }),
            Err(e) => Item::Damage(Damage {
                pos,
                kind: DamageKind::Line(e),
            }),
        });
        offset = end;
    }
    items
}

/// Every yielded line, read again from the plain content at its reported offset, checks and
/// is the same line.
fn recheck(items: &[Item], content: &[u8]) {
    for item in items {
        if let Item::Line(pos, event_open, chain) = item {
            let at = pos.offset as usize;
            let len = content[at..]
                .iter()
                .position(|c| *c == b'\n')
                .expect("a yielded line ends in \\n");
            let checked = check_line(&content[at..at + len]).expect("a yielded line checks");
            assert_eq!(checked.event_open, &event_open[..]);
            assert_eq!(checked.chain, *chain);
        }
        if let Item::Damage(d) = item {
            if let DamageKind::Line(LineError::Crc { stored, computed }) = d.kind {
                assert_ne!(stored, computed);
            }
        }
    }
}

/// The valid lines written come first, once each, in order.
fn assert_prefix(items: &[Item], want: &[(Vec<u8>, ChainHash)]) {
    assert!(items.len() >= want.len());
    for (i, (item, (event_open, chain))) in items.iter().zip(want).enumerate() {
        match item {
            Item::Line(pos, got, got_chain) => {
                assert_eq!(pos.line, i as u64 + 1);
                assert_eq!(got, event_open);
                assert_eq!(got_chain, chain);
            }
            Item::Damage(d) => panic!("valid line {} reported as {d:?}", i + 1),
        }
    }
}

/// A sealed segment written by hand: one zstd frame per part (content size and checksum on, as
/// §6 requires), then the trailer. No fsync: this is a scratch directory.
fn write_frames(path: &Path, parts: &[&[u8]], trailer: &Trailer) -> std::path::PathBuf {
    let mut out = Vec::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
        enc.include_checksum(true).expect("zstd");
        enc.set_pledged_src_size(Some(part.len() as u64))
            .expect("zstd");
        enc.write_all(part).expect("compress");
        out.extend_from_slice(&enc.finish().expect("compress"));
    }
    out.extend_from_slice(&trailer.encode());
    std::fs::write(path, &out).expect("write");
    path.to_path_buf()
}

/// `Trailer::decode_from_end` on arbitrary bytes: no panic, and an accepted trailer survives
/// `encode` → `decode_from_end` unchanged.
fn trailer_round_trip(data: &[u8]) {
    let Some(t) = Trailer::decode_from_end(data) else {
        return;
    };
    // `Trailer::encode` writes the ts strings without JSON escaping (the writer only ever puts
    // canonical timestamps there), so only those strings round-trip; see fuzz/README.md.
    let plain = |s: &str| !s.chars().any(|c| c == '"' || c == '\\' || c.is_control());
    if plain(&t.first_ts) && plain(&t.last_ts) {
        let bytes = t.encode();
        assert_eq!(Trailer::decode_from_end(&bytes), Some(t.clone()));
        let mut prefixed = data.to_vec();
        prefixed.extend_from_slice(&bytes);
        assert_eq!(Trailer::decode_from_end(&prefixed), Some(t));
    }
}
