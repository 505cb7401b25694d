//! `vacuum`: remove leftovers of interrupted work, merge small sealed segments (ids and chain
//! unchanged), optimise the index, drop stale correlation state; records one
//! `maintenance`/`vacuum` event and prints `vacuum completed` (reference §10.13).

use serde_json::{Map, Value};

use super::{CliError, Context};
use crate::event::correlate::Windows;
use crate::index::EventIndex;
use crate::record::Event;
use crate::state::LockedState;
use crate::store::compact::Merge;

/// Runs `vacuum`.
pub fn run(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.store()?;
    store.check_readable()?;
    // Finish an interrupted prune/vacuum or undo an interrupted restore first: their files
    // look like leftovers, and one of them may hold the live history.
    let append = ctx.maintenance_append("manual");
    store.recover_interrupted(&append)?;
    let mut removed = 0u64;
    for p in store.leftovers()? {
        let gone = if p.is_dir() {
            crate::safefs::remove_dir_all(&p)
        } else {
            crate::safefs::remove_file(&p)
        };
        if gone.is_ok() {
            removed += 1;
        }
    }
    let record = |m: &Merge| -> Event {
        let mut meta = Map::new();
        meta.insert("optimize".into(), Value::Bool(true));
        meta.insert("merged_groups".into(), m.groups.into());
        meta.insert(
            "merged_segments".into(),
            (m.old_segments.len() as u64).into(),
        );
        meta.insert("removed_leftovers".into(), removed.into());
        // Segments whose first id is gone: a lagging index drops their documents.
        let gone: Vec<u64> = m
            .old_segments
            .iter()
            .copied()
            .filter(|s| !m.new_segments.contains(s))
            .collect();
        meta.insert("removed_segments".into(), gone.into());
        Event::maintenance(
            "vacuum",
            "vacuum completed".into(),
            meta,
            &append.now,
            "manual",
            &append.actor,
        )
    };
    let stale = EventIndex::mark_stale(&ctx.data_dir)?;
    let merge = store.merge_small_segments(&record, &append)?;
    if merge.groups == 0 {
        let mut ev = [record(&merge)];
        store.append(&mut ev, &append)?;
    }
    // Stale correlation state (older than pending_stale_threshold_seconds) goes.
    let int = |k, lo, hi| ctx.settings.int(k, lo, hi);
    let windows = Windows {
        now: ctx.clock.now().timestamp(),
        match_window: int("command_match_window_seconds", 0, 30 * 86_400)? as i64,
        stale: int("pending_stale_threshold_seconds", 0, 365 * 86_400)? as i64,
        deploy_expiry: int("pending_deploy_expiry_seconds", 0, 365 * 86_400)? as i64,
    };
    if ctx.layout.state.is_dir() {
        let mut locked =
            LockedState::open(&ctx.data_dir, &ctx.owner, store.options().lock_timeout)?;
        locked.state.expire(&windows);
        locked.save()?;
    }
    let index = EventIndex::open_caught_up(&ctx.data_dir, &store)?;
    if merge.groups > 0 {
        index.replace_segments(&store, &merge.old_segments, &merge.new_segments)?;
    }
    stale.clear();
    index.merge_all()?;
    println!("vacuum completed");
    Ok(())
}
