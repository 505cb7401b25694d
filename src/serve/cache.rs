//! Sealed segments, decoded, kept in memory for the server's JSON answers. A page of 50 events
//! is read from the segments by location (the index stores no documents); a sealed segment is
//! immutable, so decompressing it once per server instead of once per request turns a ~10 ms
//! page into well under a millisecond. Keyed by first id and the sealed file's inode and size
//! (a vacuum or prune that rewrites a segment makes a new file, hence a new key); bounded in
//! bytes, least recently used out first. The active segment and everything not in a sealed
//! file go through [`Store::fetch`] as before.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use crate::query::list::Row;
use crate::record::Event;
use crate::store::{ScanItem, Store, StoreError};

/// Bytes of decoded events kept at most (about 16 daily segments of a busy host).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

type Key = (u64, u64, u64);
/// (offset of the line, its event JSON), by offset.
type Lines = Vec<(u64, Vec<u8>)>;

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, (Arc<Lines>, usize, u64)>,
    bytes: usize,
    tick: u64,
}

/// The cache (shared by the workers).
#[derive(Default)]
pub struct SegmentCache {
    inner: Mutex<Lru>,
}

impl SegmentCache {
    fn get(&self, key: Key) -> Option<Arc<Lines>> {
        let mut g = self.inner.lock().ok()?;
        g.tick += 1;
        let tick = g.tick;
        g.entries.get_mut(&key).map(|e| {
            e.2 = tick;
            Arc::clone(&e.0)
        })
    }

    fn put(&self, key: Key, lines: Arc<Lines>) {
        let size: usize = lines.iter().map(|(_, j)| j.len() + 32).sum();
        if size > MAX_BYTES / 2 {
            return;
        }
        let Ok(mut g) = self.inner.lock() else { return };
        g.tick += 1;
        let tick = g.tick;
        if let Some(old) = g.entries.insert(key, (lines, size, tick)) {
            g.bytes -= old.1;
        }
        g.bytes += size;
        while g.bytes > MAX_BYTES {
            let Some(oldest) = g.entries.iter().min_by_key(|(_, e)| e.2).map(|(k, _)| *k) else {
                break;
            };
            if let Some(e) = g.entries.remove(&oldest) {
                g.bytes -= e.1;
            }
        }
    }

    fn sealed_lines(&self, store: &Store, key: Key) -> Result<Arc<Lines>, StoreError> {
        if let Some(l) = self.get(key) {
            return Ok(l);
        }
        let mut lines: Lines = Vec::new();
        store.scan_segment_id(key.0, &mut |item| {
            if let ScanItem::Line { pos, line } = item {
                lines.push((pos.offset, line.event_json()));
            }
            ControlFlow::Continue(())
        })?;
        let lines = Arc::new(lines);
        self.put(key, Arc::clone(&lines));
        Ok(lines)
    }

    /// The full events of rows, in order (what [`crate::query::list::full_events`] gives).
    pub fn full_events(&self, store: &Store, rows: &[Row]) -> Result<Vec<Event>, StoreError> {
        let segments = store.segments()?;
        let mut keys: HashMap<u64, Option<Key>> = HashMap::new();
        let mut found: HashMap<(u64, u64), Event> = HashMap::new();
        let mut rest: Vec<(u64, u64)> = Vec::new();
        for (seg, off) in rows.iter().filter_map(|r| r.location) {
            let key = *keys.entry(seg).or_insert_with(|| {
                segments
                    .iter()
                    .find(|s| s.first_id == seg)
                    .and_then(|s| s.sealed.as_ref())
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| (seg, m.ino(), m.size()))
            });
            let Some(key) = key else {
                rest.push((seg, off));
                continue;
            };
            let lines = self.sealed_lines(store, key)?;
            match lines.binary_search_by_key(&off, |(o, _)| *o) {
                Ok(i) => {
                    if let Ok(e) = Event::from_json_text(&String::from_utf8_lossy(&lines[i].1)) {
                        found.insert((seg, off), e);
                    }
                }
                Err(_) => rest.push((seg, off)),
            }
        }
        if !rest.is_empty() {
            found.extend(store.fetch(&rest)?);
        }
        Ok(rows
            .iter()
            .filter_map(|r| match (&r.event, r.location) {
                (Some(e), _) => Some((**e).clone()),
                (None, Some(loc)) => found.get(&loc).cloned(),
                _ => None,
            })
            .collect())
    }
}
