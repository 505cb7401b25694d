//! `verify`: every CRC, id order, every sealed trailer, and the hash chain across all segments.
//! The chain may legitimately restart only where a `maintenance` event names the cut with a
//! chain anchor (segments-format.md §5.3); anything else is reported with segment and line.

use std::cell::Cell;
use std::collections::HashMap;
use std::ops::ControlFlow;

use super::error::Result;
use super::line::ChainHash;
use super::reader::{scan_segment_measured, Damage, LinePos, ScanItem};
use super::segment::{SegmentFiles, Trailer};

/// One integrity failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub pos: LinePos,
    /// What, in one sentence.
    pub message: String,
}

/// The outcome of `verify`.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Segments checked.
    pub segments: u64,
    /// Valid events read.
    pub events: u64,
    /// Id of the last event.
    pub last_id: u64,
    /// The chain value of the last event: keep it off the host to detect a rewrite later.
    pub chain_head: String,
    /// A torn final line of the active segment (not a failure).
    pub torn_tail: Option<Damage>,
    /// Everything else that is wrong. Empty means the store verifies.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing but (at most) a torn tail was found.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A place where the stored chain value does not follow from the previous line.
struct Break {
    pos: LinePos,
    id: u64,
    event_open: Vec<u8>,
    stored: ChainHash,
}

/// Verifies the given segments (in order).
pub fn verify(segments: &[SegmentFiles]) -> Result<VerifyReport> {
    let mut report = VerifyReport {
        segments: segments.len() as u64,
        ..Default::default()
    };
    let mut prev = ChainHash::GENESIS;
    let mut prev_id = 0u64;
    let mut breaks: Vec<Break> = Vec::new();
    let mut anchors: HashMap<u64, Vec<ChainHash>> = HashMap::new();
    for (i, seg) in segments.iter().enumerate() {
        let is_active = i + 1 == segments.len() && seg.is_plain();
        let mut seg_stats = SegStats::default();
        let content_bytes = Cell::new(0u64);
        let _flow = scan_segment_measured(
            seg,
            is_active,
            &mut |item| {
                match item {
                    ScanItem::Line { pos, line } => {
                        let id = line.id().unwrap_or(0);
                        if id <= prev_id {
                            report.problems.push(Problem {
                            pos: pos.clone(),
                            message: format!(
                                "event id {id} does not follow {prev_id} (duplicated or reordered events)"
                            ),
                        });
                        }
                        prev_id = prev_id.max(id);
                        if line.expected_chain(&prev) != line.chain {
                            breaks.push(Break {
                                pos: pos.clone(),
                                id,
                                event_open: line.event_open.to_vec(),
                                stored: line.chain,
                            });
                        }
                        prev = line.chain;
                        collect_anchors(line.event_open, &mut anchors);
                        seg_stats.add(id, &line);
                        report.events += 1;
                        report.last_id = id;
                    }
                    ScanItem::Damage(d) if d.is_torn_tail() => report.torn_tail = Some(d),
                    ScanItem::Damage(d) => report.problems.push(Problem {
                        message: d.kind.to_string(),
                        pos: d.pos,
                    }),
                }
                ControlFlow::Continue(())
            },
            &content_bytes,
        )?;
        seg_stats.plain_bytes = content_bytes.get();
        if let Some(sealed) = &seg.sealed {
            check_frames(seg, sealed, &mut report.problems)?;
            check_trailer(seg, sealed, &seg_stats, &mut report.problems)?;
        }
    }
    for b in breaks {
        let justified = anchors.get(&b.id).is_some_and(|prevs| {
            prevs
                .iter()
                .any(|p| ChainHash::next(p, &b.event_open) == b.stored)
        });
        if !justified {
            report.problems.push(Problem {
                message: format!(
                    "hash chain broken at event id {}: an event before it was removed, changed or reordered",
                    b.id
                ),
                pos: b.pos,
            });
        }
    }
    report.problems.sort_by(|a, b| {
        (&a.pos.segment, a.pos.offset, a.pos.line).cmp(&(&b.pos.segment, b.pos.offset, b.pos.line))
    });
    report.chain_head = prev.to_hex();
    Ok(report)
}

#[derive(Default)]
struct SegStats {
    count: u64,
    first_id: Option<u64>,
    last_id: u64,
    head: ChainHash,
    first_ts: Option<String>,
    last_ts: String,
    plain_bytes: u64,
}

impl SegStats {
    fn add(&mut self, id: u64, line: &super::line::CheckedLine<'_>) {
        self.count += 1;
        self.first_id.get_or_insert(id);
        self.last_id = id;
        self.head = line.chain;
        let ts = line.ts().unwrap_or_default();
        self.first_ts.get_or_insert_with(|| ts.to_string());
        self.last_ts = ts.to_string();
    }
}

/// Every data frame must declare its content size and carry its checksum (§6.2): `verify`
/// reports a frame that does not, as damage of the segment (the lines in it are still served
/// when they pass their CRCs).
fn check_frames(
    seg: &SegmentFiles,
    sealed: &std::path::Path,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let bytes = crate::safefs::read(sealed).map_err(super::StoreError::io("read", sealed))?;
    for message in super::segment::frame_problems(&bytes) {
        problems.push(Problem {
            pos: LinePos {
                segment: seg.name(),
                line: 0,
                offset: 0,
            },
            message,
        });
    }
    Ok(())
}

fn check_trailer(
    seg: &SegmentFiles,
    sealed: &std::path::Path,
    stats: &SegStats,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    // The trailer follows the content: line 0, at the content's end.
    let pos = LinePos {
        segment: seg.name(),
        line: 0,
        offset: stats.plain_bytes,
    };
    let Some(t) = Trailer::read(sealed)? else {
        problems.push(Problem {
            pos,
            message: "sealed segment has no valid trailer".into(),
        });
        return Ok(());
    };
    let matches = t.count == stats.count
        && Some(t.first_id) == stats.first_id
        && t.last_id == stats.last_id
        && t.chain_head == stats.head
        && t.first_id == seg.first_id
        && t.format <= super::FORMAT_VERSION
        && (stats.count == 0
            || (Some(&t.first_ts) == stats.first_ts.as_ref()
                && t.last_ts == stats.last_ts
                && t.plain_bytes == stats.plain_bytes));
    if !matches {
        problems.push(Problem {
            pos,
            message: format!(
                "trailer (format {}) says {} event(s) {}..={} {}..{} {} bytes head {}, content has {} event(s) ending at {} {}..{} {} bytes head {}",
                t.format, t.count, t.first_id, t.last_id, t.first_ts, t.last_ts, t.plain_bytes, t.chain_head,
                stats.count, stats.last_id, stats.first_ts.as_deref().unwrap_or("-"), stats.last_ts, stats.plain_bytes, stats.head
            ),
        });
    }
    Ok(())
}

/// Chain anchors are only ever written by maintenance events: look at those lines only.
fn collect_anchors(event_open: &[u8], anchors: &mut HashMap<u64, Vec<ChainHash>>) {
    if super::line::memfind(event_open, b"\"category\":\"maintenance\"").is_none()
        || super::line::memfind(event_open, b"\"chain_anchors\"").is_none()
    {
        return;
    }
    let mut json = event_open.to_vec();
    json.push(b'}');
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&json) else {
        return;
    };
    let Some(list) = v["meta"]["chain_anchors"].as_array() else {
        return;
    };
    for a in list {
        if let (Some(id), Some(prev)) = (
            a["id"].as_u64(),
            a["prev"]
                .as_str()
                .and_then(|s| ChainHash::from_hex(s.as_bytes())),
        ) {
            anchors.entry(id).or_default().push(prev);
        }
    }
}
