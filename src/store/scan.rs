//! Reading the store in event order: every line, from a point, after an id, one segment, and
//! fetching events by location or id. Damage is passed to the visitor and skipped.

use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;

use super::*;

/// Where the store ends, cheaply fingerprinted: the segments directory (a segment created or
/// removed changes its mtime) and the active segment's inode and length (an append grows it).
/// Two equal stamps taken at different times mean no event was appended in between; the
/// appending path is not involved (this only looks at files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadStamp {
    dir: (i64, i64),
    active: Option<(PathBuf, u64, u64)>,
}

impl Store {
    /// The stamp of the store's head now (lists the segments once).
    pub fn head_stamp(&self) -> Result<HeadStamp> {
        let dir = self.dir_mtime()?;
        let active = match self.segments()?.pop() {
            Some(SegmentFiles {
                plain: Some(p),
                sealed: None,
                ..
            }) => {
                let m = safefs::metadata(&p).map_err(StoreError::io("stat", &p))?;
                Some((p, m.ino(), m.len()))
            }
            _ => None,
        };
        Ok(HeadStamp { dir, active })
    }

    /// The stamp of the head now, found from an earlier one: while the segments directory did
    /// not change, the active segment is the same file and two `stat`s do (no listing).
    pub fn head_stamp_after(&self, prev: &HeadStamp) -> Result<HeadStamp> {
        let dir = self.dir_mtime()?;
        if dir != prev.dir {
            return self.head_stamp();
        }
        let active = match &prev.active {
            Some((p, _, _)) => {
                let m = safefs::metadata(p).map_err(StoreError::io("stat", p))?;
                Some((p.clone(), m.ino(), m.len()))
            }
            None => None,
        };
        Ok(HeadStamp { dir, active })
    }

    /// Whether the head is still where `stamp` saw it: two `stat`s, no listing, no read.
    /// Any doubt (a file gone, an error) is "no".
    pub fn head_unchanged(&self, stamp: &HeadStamp) -> bool {
        if self.dir_mtime().ok() != Some(stamp.dir) {
            return false;
        }
        match &stamp.active {
            None => true,
            Some((p, ino, len)) => {
                safefs::metadata(p).is_ok_and(|m| m.ino() == *ino && m.len() == *len)
            }
        }
    }

    /// The segments directory's modification time: changes whenever a segment file is
    /// created, renamed or removed (not when one grows), so a listing taken after it stays
    /// valid while it does not change.
    pub fn segments_dir_stamp(&self) -> Result<(i64, i64)> {
        self.dir_mtime()
    }

    fn dir_mtime(&self) -> Result<(i64, i64)> {
        let dir = &self.paths.segments;
        let m = safefs::metadata(dir).map_err(StoreError::io("stat", dir))?;
        Ok((m.mtime(), m.mtime_nsec()))
    }

    /// Visits every line of every segment in event order. Damage is passed to `f` and skipped.
    pub fn scan(&self, f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>) -> Result<()> {
        self.check_readable()?;
        let segments = self.segments()?;
        for (i, seg) in segments.iter().enumerate() {
            let is_active = i + 1 == segments.len() && seg.is_plain();
            if reader::scan_segment(seg, is_active, f)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Visits the lines of the segments that can hold ids `>= min_id` (earlier segments are
    /// skipped by name), in event order. Lines with smaller ids in the first segment visited are
    /// passed too; callers filter by id.
    pub fn scan_from(
        &self,
        min_id: u64,
        f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        self.check_readable()?;
        let segments = self.segments()?;
        let start = segments
            .iter()
            .rposition(|s| s.first_id <= min_id)
            .unwrap_or(0);
        for (i, seg) in segments.iter().enumerate().skip(start) {
            let is_active = i + 1 == segments.len() && seg.is_plain();
            if reader::scan_segment(seg, is_active, f)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Like [`Store::scan_from`], starting at a known line (segment first id, byte offset) when
    /// that segment is still plain: an index catching up reads only what was appended since.
    pub fn scan_after(
        &self,
        resume: Option<(u64, u64)>,
        min_id: u64,
        f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        self.check_readable()?;
        let segments = self.segments()?;
        let found = resume.and_then(|(seg, off)| {
            segments
                .iter()
                .position(|s| s.first_id == seg && s.is_plain())
                .map(|i| (i, off))
        });
        let Some((start, offset)) = found else {
            return self.scan_from(min_id, f);
        };
        for (i, seg) in segments.iter().enumerate().skip(start) {
            let is_active = i + 1 == segments.len() && seg.is_plain();
            let from = if i == start { offset } else { 0 };
            if reader::scan_segment_from(seg, is_active, from, f)?.is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Visits the lines of the one segment whose first id is `first_id` (if it exists).
    pub fn scan_segment_id(
        &self,
        first_id: u64,
        f: &mut dyn FnMut(ScanItem<'_>) -> ControlFlow<()>,
    ) -> Result<()> {
        let segments = self.segments()?;
        if let Some(i) = segments.iter().position(|s| s.first_id == first_id) {
            let is_active = i + 1 == segments.len() && segments[i].is_plain();
            let _flow = reader::scan_segment(&segments[i], is_active, f)?;
        }
        Ok(())
    }

    /// The id of the newest event, found cheaply (trailers and the end of the active segment).
    pub fn last_id(&self) -> Result<u64> {
        self.check_readable()?;
        let segments = self.segments()?;
        Ok(head::Tail::load(&segments)?.next_id.saturating_sub(1))
    }

    /// Reads the events at these locations (segment first id, byte offset in its plain
    /// content), as the index records them. Each segment involved is read once, up to the last
    /// offset needed. Locations that hold no intact line are missing from the result.
    pub fn fetch(
        &self,
        locations: &[(u64, u64)],
    ) -> Result<std::collections::HashMap<(u64, u64), Event>> {
        use std::collections::{BTreeMap, BTreeSet, HashMap};
        let mut by_segment: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
        for (seg, off) in locations {
            by_segment.entry(*seg).or_default().insert(*off);
        }
        let segments = self.segments()?;
        let mut out = HashMap::new();
        for (first_id, offsets) in by_segment {
            let Some(i) = segments.iter().position(|s| s.first_id == first_id) else {
                continue;
            };
            let seg = &segments[i];
            let is_active = i + 1 == segments.len() && seg.is_plain();
            let last = offsets.last().copied().unwrap_or(0);
            let _flow = reader::scan_segment(seg, is_active, &mut |item| {
                if let ScanItem::Line { pos, line } = item {
                    if offsets.contains(&pos.offset) {
                        let json = line.event_json();
                        if let Ok(ev) = Event::from_json_text(&String::from_utf8_lossy(&json)) {
                            out.insert((first_id, pos.offset), ev);
                        }
                    }
                    if pos.offset >= last {
                        return ControlFlow::Break(());
                    }
                }
                ControlFlow::Continue(())
            })?;
        }
        Ok(out)
    }

    /// The event with this id, read from the one segment that can hold it (segments are named
    /// by their first id). `None` if no intact line has it.
    pub fn find_event(&self, id: u64) -> Result<Option<Event>> {
        self.check_readable()?;
        let segments = self.segments()?;
        let Some(i) = segments.iter().rposition(|s| s.first_id <= id) else {
            return Ok(None);
        };
        let seg = &segments[i];
        let is_active = i + 1 == segments.len() && seg.is_plain();
        let mut found = None;
        let _flow = reader::scan_segment(seg, is_active, &mut |item| match item {
            ScanItem::Line { line, .. } if line.id() == Some(id) => {
                found = Some(line.event_json());
                ControlFlow::Break(())
            }
            ScanItem::Line { line, .. } if line.id().is_some_and(|l| l > id) => {
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        })?;
        let Some(json) = found else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&json);
        Event::from_json_text(&text)
            .map(Some)
            .map_err(|source| StoreError::BadEvent { index: 1, source })
    }
}
