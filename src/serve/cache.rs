//! Segments, decoded, kept in memory for the server's JSON answers. A page of 50 events is read
//! from the segments by location (the index stores no documents); decompressing a sealed
//! segment once per server instead of once per request turns a ~10 ms page into well under a
//! millisecond. Keyed by first id and the data file's inode and size: a sealed segment never
//! changes, a vacuum or prune that rewrites one makes a new file (a new key), and the active
//! segment only grows, so its lines at known offsets never change and it is read again once
//! per append rather than once per request (the newest events, which most pages show, are
//! there). Bounded in bytes, least recently used out first; a location the cache cannot serve
//! goes through [`Store::fetch`].

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::os::unix::fs::MetadataExt;
use std::sync::{Arc, Mutex};

use crate::query::list::Row;
use crate::store::{ScanItem, SegmentFiles, Store, StoreError};

/// Bytes of decoded events kept at most (about 16 daily segments of a busy host).
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

type Key = (u64, u64, u64);
/// (offset of the line, its event JSON), by offset.
/// Shared bytes: growing the active segment's copy clones the list, not every line.
type Lines = Vec<(u64, Arc<[u8]>)>;

#[derive(Default)]
struct Lru {
    entries: HashMap<Key, (Arc<Lines>, usize, u64)>,
    bytes: usize,
    tick: u64,
}

/// The segment listing and the segments directory's mtime it was taken after.
type Listing = ((i64, i64), Arc<Vec<SegmentFiles>>);

/// The cache (shared by the workers).
#[derive(Default)]
pub struct SegmentCache {
    inner: Mutex<Lru>,
    listing: Mutex<Option<Listing>>,
    loading: Mutex<()>,
}

impl SegmentCache {
    /// The segment listing, read again only when the segments directory changed (one `stat`
    /// instead of reading and parsing a directory of hundreds of names per request).
    fn segments(&self, store: &Store) -> Result<Arc<Vec<SegmentFiles>>, StoreError> {
        let stamp = store.segments_dir_stamp()?;
        if let Some((seen, l)) = self.listing.lock().ok().as_deref().and_then(Option::as_ref) {
            if *seen == stamp {
                return Ok(Arc::clone(l));
            }
        }
        // Taken after the stamp: a change in between makes the next stamp differ.
        let fresh = Arc::new(store.segments()?);
        if let Ok(mut g) = self.listing.lock() {
            *g = Some((stamp, Arc::clone(&fresh)));
        }
        Ok(fresh)
    }

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
        // An active segment that grew, or a segment sealed or rewritten since: the older
        // copy is of no more use.
        let stale: Vec<Key> = g
            .entries
            .keys()
            .filter(|k| k.0 == key.0 && **k != key)
            .copied()
            .collect();
        for k in stale {
            if let Some(old) = g.entries.remove(&k) {
                g.bytes -= old.1;
            }
        }
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

    /// The lines of a segment file as it is now (`key`: its first id, inode and size). One
    /// read at a time: requests that miss together (every one right after an append) wait for
    /// the one read instead of each reading the segment. The active segment that grew is read
    /// from its last known line on, not from its start.
    fn lines(&self, store: &Store, key: Key) -> Result<Arc<Lines>, StoreError> {
        if let Some(l) = self.get(key) {
            return Ok(l);
        }
        let _one = self.loading.lock();
        if let Some(l) = self.get(key) {
            return Ok(l);
        }
        let grown = self.inner.lock().ok().and_then(|g| {
            g.entries
                .iter()
                .filter(|(k, _)| k.0 == key.0 && k.1 == key.1 && k.2 < key.2)
                .max_by_key(|(k, _)| k.2)
                .map(|(_, e)| Arc::clone(&e.0))
        });
        let mut lines: Lines = grown.map(|l| l.as_ref().clone()).unwrap_or_default();
        match lines.last().map(|(o, _)| *o) {
            Some(last) => {
                // From the last known line (a plain file only grows); should the segment have
                // been sealed meanwhile, the scan starts at the segment itself instead.
                store.scan_after(Some((key.0, last)), key.0, &mut |item| {
                    if let ScanItem::Line { pos, line } = item {
                        if crate::index::segment_id(&pos.segment) != key.0 {
                            return ControlFlow::Break(());
                        }
                        if pos.offset > last {
                            lines.push((pos.offset, line.event_json().into()));
                        }
                    }
                    ControlFlow::Continue(())
                })?
            }
            None => store.scan_segment_id(key.0, &mut |item| {
                if let ScanItem::Line { pos, line } = item {
                    lines.push((pos.offset, line.event_json().into()));
                }
                ControlFlow::Continue(())
            })?,
        }
        let lines = Arc::new(lines);
        self.put(key, Arc::clone(&lines));
        Ok(lines)
    }

    /// The canonical JSON of the events of rows, in order: the bytes of the stored lines
    /// (what the event stream sends too), without parsing and re-serialising them. Tail rows
    /// carry their event; a location the cache cannot serve is read with [`Store::fetch`].
    pub fn full_json(&self, store: &Store, rows: &[Row]) -> Result<Vec<Arc<[u8]>>, StoreError> {
        let segments = self.segments(store)?;
        let mut keys: HashMap<u64, Option<Key>> = HashMap::new();
        let mut found: HashMap<(u64, u64), Arc<[u8]>> = HashMap::new();
        let mut rest: Vec<(u64, u64)> = Vec::new();
        for (seg, off) in rows.iter().filter_map(|r| r.location) {
            let key = *keys.entry(seg).or_insert_with(|| {
                let s = segments.iter().find(|s| s.first_id == seg)?;
                let m = crate::safefs::metadata(s.data_path()).ok()?;
                Some((seg, m.ino(), m.size()))
            });
            let Some(key) = key else {
                rest.push((seg, off));
                continue;
            };
            let lines = self.lines(store, key)?;
            match lines.binary_search_by_key(&off, |(o, _)| *o) {
                Ok(i) => {
                    found.insert((seg, off), Arc::clone(&lines[i].1));
                }
                Err(_) => rest.push((seg, off)),
            }
        }
        if !rest.is_empty() {
            for (loc, e) in store.fetch(&rest)? {
                found.insert(loc, e.to_json_bytes().into());
            }
        }
        Ok(rows
            .iter()
            .filter_map(|r| match (&r.event, r.location) {
                (Some(e), _) => Some(e.to_json_bytes().into()),
                (None, Some(loc)) => found.get(&loc).cloned(),
                _ => None,
            })
            .collect())
    }
}
