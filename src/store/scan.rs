//! Reading the store in event order: every line, from a point, after an id, one segment, and
//! fetching events by location or id. Damage is passed to the visitor and skipped.

use std::ops::ControlFlow;

use super::*;

impl Store {
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
