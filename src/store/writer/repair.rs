//! What the writer records about itself: the torn-tail repair (quarantine, truncate) and the
//! `maintenance` events for a repair and for recovered interrupted work.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use serde_json::{Map, Value};

use super::*;

pub(super) fn repair_torn_tail(
    paths: &Layout,
    owner: &Ownership,
    active: &ActiveTail,
    torn: &Torn,
    file: &File,
) -> Result<Repair> {
    let mut removed = Vec::with_capacity(torn.bytes as usize);
    let mut f = file;
    f.seek(SeekFrom::Start(active.valid_len))
        .map_err(StoreError::io("seek", &active.path))?;
    f.take(torn.bytes)
        .read_to_end(&mut removed)
        .map_err(StoreError::io("read", &active.path))?;
    safefs::ensure_dir(&paths.quarantine, owner)?;
    let name = format!("{}.{}.torn", file_name(&active.path), active.valid_len);
    let qpath = paths.quarantine.join(&name);
    // The removed bytes are kept, so a repair never destroys evidence.
    safefs::atomic_write(&qpath, &removed, owner)?;
    file.set_len(active.valid_len)
        .map_err(StoreError::io("truncate", &active.path))?;
    file.sync_all()
        .map_err(StoreError::io("fsync", &active.path))?;
    Ok(Repair {
        segment: file_name(&active.path),
        offset: active.valid_len,
        removed_bytes: removed.len() as u64,
        removed_lines: torn.pieces,
        quarantine: format!("quarantine/{name}"),
    })
}

pub(super) fn recovery_event(r: &Recovered, paths: &Layout, ctx: &AppendContext) -> Event {
    let mut meta = Map::new();
    let mut what = Vec::new();
    if r.compaction {
        meta.insert("compaction_completed".into(), Value::from(true));
        what.push("completed an interrupted prune/vacuum".to_string());
    }
    if let Some(old) = &r.restore_rolled_back {
        let name = old
            .strip_prefix(&paths.root)
            .unwrap_or(old)
            .to_string_lossy()
            .into_owned();
        what.push(format!("rolled back an interrupted restore (kept {name})"));
        meta.insert("restore_rolled_back_from".into(), Value::from(name));
    }
    Event::maintenance(
        "recover",
        format!("recovered after a crash: {}", what.join("; ")),
        meta,
        &ctx.now,
        &ctx.source_trigger,
        &ctx.actor,
    )
}

pub(super) fn repair_event(repair: &Repair, ctx: &AppendContext) -> Event {
    let mut meta = Map::new();
    meta.insert("segment".into(), Value::from(repair.segment.clone()));
    meta.insert("offset".into(), Value::from(repair.offset));
    meta.insert("removed_bytes".into(), Value::from(repair.removed_bytes));
    meta.insert("removed_lines".into(), Value::from(repair.removed_lines));
    meta.insert("quarantine".into(), Value::from(repair.quarantine.clone()));
    Event::maintenance(
        "repair",
        format!(
            "repaired torn tail of segment {}: removed {} byte(s)",
            repair.segment, repair.removed_bytes
        ),
        meta,
        &ctx.now,
        &ctx.source_trigger,
        &ctx.actor,
    )
}
