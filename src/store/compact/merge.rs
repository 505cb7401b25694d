//! Merging small sealed segments (vacuum): whole segments rewritten into one, through the
//! same journal as prune.

use super::*;

/// What a merge of small sealed segments did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merge {
    /// Groups merged (each became one segment).
    pub groups: u64,
    /// Segment files before the merge that are gone now (first ids), including the group heads
    /// that were replaced in place.
    pub old_segments: Vec<u64>,
    /// First ids of the merged segments.
    pub new_segments: Vec<u64>,
}

impl Store {
    /// Merges runs of consecutive small sealed segments (each under a quarter of
    /// `segment_max_bytes` of plain JSONL) into segments of at most `segment_max_bytes`, lines
    /// copied byte for byte (ids and chain unchanged), then appends `record(&merge)`. The active
    /// segment is never touched.
    pub fn merge_small_segments(
        &self,
        record: &dyn Fn(&Merge) -> Event,
        ctx: &AppendContext,
    ) -> Result<Merge> {
        self.check_readable()?;
        let segments = self.segments()?;
        let max = self.opts.segment_max_bytes;
        let mut groups: Vec<Vec<(SegmentFiles, Trailer)>> = Vec::new();
        let mut current: Vec<(SegmentFiles, Trailer)> = Vec::new();
        let mut current_bytes = 0u64;
        let sealed_count = segments.len().saturating_sub(1);
        for seg in segments.iter().take(sealed_count) {
            let trailer = match &seg.sealed {
                Some(p) => Trailer::read(p)?,
                None => None,
            };
            let small = trailer.as_ref().filter(|t| t.plain_bytes < max / 4);
            match small {
                Some(t) if current_bytes + t.plain_bytes <= max => {
                    current_bytes += t.plain_bytes;
                    current.push((seg.clone(), t.clone()));
                }
                Some(t) => {
                    groups.push(std::mem::take(&mut current));
                    current_bytes = t.plain_bytes;
                    current.push((seg.clone(), t.clone()));
                }
                None => {
                    groups.push(std::mem::take(&mut current));
                    current_bytes = 0;
                }
            }
        }
        groups.push(current);
        groups.retain(|g| g.len() > 1);
        let mut merge = Merge::default();
        if groups.is_empty() {
            return Ok(merge);
        }
        let staging = self.paths.compact_staging();
        safefs::ensure_dir(&staging, &self.owner)?;
        let mut staged: Vec<(u64, PathBuf, Vec<SegmentFiles>)> = Vec::new();
        let built = (|| -> Result<()> {
            for group in &groups {
                let first = &group[0].1;
                let last = &group[group.len() - 1].1;
                let plain = staging.join(format!("{}.merge", first.first_id));
                let file = safefs::create_new(&plain, &self.owner)?;
                let mut out = BufWriter::new(file);
                let mut count = 0u64;
                let mut write_err = None;
                for (seg, _) in group {
                    let _flow = scan_segment(seg, false, &mut |item| {
                        if let ScanItem::Line { line, .. } = item {
                            count += 1;
                            if let Err(e) =
                                out.write_all(line.raw).and_then(|()| out.write_all(b"\n"))
                            {
                                write_err = Some(e);
                                return ControlFlow::Break(());
                            }
                        }
                        ControlFlow::Continue(())
                    })?;
                }
                if let Some(e) = write_err {
                    return Err(StoreError::io("write", &plain)(e));
                }
                out.flush().map_err(StoreError::io("write", &plain))?;
                drop(out);
                let plain_bytes = std::fs::symlink_metadata(&plain)
                    .map_err(StoreError::io("stat", &plain))?
                    .len();
                let trailer = Trailer {
                    format: crate::store::FORMAT_VERSION,
                    first_id: first.first_id,
                    last_id: last.last_id,
                    count,
                    first_ts: first.first_ts.clone(),
                    last_ts: last.last_ts.clone(),
                    chain_head: last.chain_head,
                    plain_bytes,
                };
                let sealed = segment::seal(
                    &plain,
                    plain_bytes,
                    &trailer,
                    self.opts.zstd_level,
                    &self.owner,
                )?;
                let _ = crate::safefs::remove_file(&plain);
                staged.push((
                    first.first_id,
                    sealed,
                    group.iter().map(|(s, _)| s.clone()).collect(),
                ));
            }
            Ok(())
        })();
        if let Err(e) = built {
            let _ = crate::safefs::remove_dir_all(&staging);
            return Err(e);
        }
        for (first, _, olds) in &staged {
            merge.groups += 1;
            merge.new_segments.push(*first);
            merge.old_segments.extend(olds.iter().map(|s| s.first_id));
        }
        let lock = self.lock_writer()?;
        let mut ev = [record(&merge)];
        self.append_locked(&lock, &mut ev, ctx)?;
        crashpoint::hit("compact.after_record");
        let mut journal = CompactionJournal::new(&self.paths, &staging);
        for (first, sealed, olds) in &staged {
            let target = self.paths.segments.join(format!(
                "{}{}",
                segment::stem(*first),
                segment::SEALED_SUFFIX
            ));
            journal.rename(&self.paths, sealed, &target);
            for old in olds {
                if old.first_id == *first {
                    if let Some(p) = &old.plain {
                        journal.remove(&self.paths, p);
                    }
                } else {
                    journal_remove_segment(&mut journal, &self.paths, old);
                }
            }
        }
        journal.write(&self.paths, &self.owner)?;
        crashpoint::hit("compact.after_journal");
        journal.complete(&self.paths)?;
        drop(lock);
        Ok(merge)
    }
}
