//! `prune --older-than DAYS [--category V] [--classification V] [--yes]`: delete events older
//! than now − DAYS (an event exactly at the cutoff is kept). The index (caught up first) says
//! which events match and in which segments; the store deletes whole segments where everything
//! matches and rewrites only the segments that hold some matches, recording the gaps as chain
//! anchors so `verify` still passes. Without `--yes` it only says what it would delete.

use std::collections::BTreeMap;

use clap::Args as ClapArgs;
use serde_json::{Map, Value};

use super::{CliError, Context};
use crate::index::EventIndex;
use crate::query::list::{build_query, ListQuery};
use crate::record::Event;
use crate::store::compact::{Doomed, Removal};

/// Arguments of `prune`.
#[derive(Debug, ClapArgs)]
pub struct PruneArgs {
    /// Delete events older than this many days.
    #[arg(long, value_name = "DAYS", allow_hyphen_values = true)]
    pub older_than: Option<String>,
    /// Only events of this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Only events of this classification.
    #[arg(long)]
    pub classification: Option<String>,
    /// Really delete (otherwise only say what would be deleted).
    #[arg(long)]
    pub yes: bool,
}

/// Parses `--older-than`.
pub fn days(v: &Option<String>, usage: &str) -> Result<u64, CliError> {
    let v = v
        .as_deref()
        .ok_or_else(|| CliError::Usage(usage.to_string()))?;
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CliError::Usage(
            "--older-than must be a positive integer".into(),
        ));
    }
    v.parse::<u64>()
        .ok()
        .filter(|d| *d <= 100_000)
        .ok_or_else(|| CliError::Usage("--older-than must be a positive integer".into()))
}

/// Runs `prune`.
pub fn run(ctx: &Context, a: PruneArgs) -> Result<(), CliError> {
    let days = days(
        &a.older_than,
        "usage: dokku audit:prune --older-than DAYS [--category VALUE] [--classification VALUE] [--yes]",
    )?;
    let now = ctx.clock.now();
    let cutoff = now - chrono::Duration::days(days as i64);
    let store = ctx.store()?;
    store.check_readable()?;
    let index = EventIndex::open_caught_up(&ctx.data_dir, &store)?;
    let q = ListQuery {
        category: a.category.clone(),
        classification: a.classification.clone(),
        // Strictly older than the cutoff.
        until: Some(cutoff.timestamp() - 1),
        limit: 1,
        ..Default::default()
    };
    let query = build_query(&index.index, &index.fields, &q)?;
    let matched = index.matching_ids(query.as_ref())?;
    // Events in the active segment can only be removed once it is sealed.
    let active = store
        .segments()?
        .last()
        .filter(|s| s.is_plain())
        .map(|s| s.first_id);
    if a.yes && active.is_some_and(|first| matched.contains_key(&first)) {
        store.seal_active()?;
    }
    let doomed: BTreeMap<u64, Doomed> = matched
        .into_iter()
        .map(|(seg, ids)| (seg, Doomed::Ids(ids)))
        .collect();
    let append = ctx.maintenance_append("manual");
    let mut base = Map::new();
    base.insert("older_than_days".into(), Value::from(days));
    if let Some(c) = &a.category {
        base.insert("category".into(), Value::from(c.clone()));
    }
    if let Some(c) = &a.classification {
        base.insert("classification".into(), Value::from(c.clone()));
    }
    let record = |r: &Removal| -> Event {
        let mut ev = Event::maintenance(
            "prune",
            "prune completed".into(),
            base.clone(),
            &append.now,
            "manual",
            &append.actor,
        );
        ev.meta.insert("deleted_count".into(), r.deleted.into());
        if let (Some(lo), Some(hi)) = (r.min_id, r.max_id) {
            ev.meta.insert("min_id".into(), lo.into());
            ev.meta.insert("max_id".into(), hi.into());
        }
        ev.meta.insert(
            "bytes_reclaimed".into(),
            r.bytes_before.saturating_sub(r.bytes_after).into(),
        );
        ev.meta.insert("chain_anchors".into(), r.anchors_json());
        // Segments whose first id is gone for good: a lagging index drops their documents.
        let replaced: Vec<u64> = r
            .old_segments
            .iter()
            .copied()
            .filter(|s| !r.new_segments.contains(s))
            .collect();
        ev.meta.insert("removed_segments".into(), replaced.into());
        ev
    };
    if !a.yes {
        let (plan, _) = store.remove_events(&doomed, true, &record, &append)?;
        println!("would delete events: {}", plan.deleted);
        println!(
            "segments: {} deleted whole, {} rewritten; run again with --yes to delete",
            plan.segments_deleted, plan.segments_rewritten
        );
        return Ok(());
    }
    let stale = EventIndex::mark_stale(&ctx.data_dir)?;
    let (removal, _) = store.remove_events(&doomed, false, &record, &append)?;
    // The store's record lists gone segments, but rewritten ones changed offsets: refresh them.
    index.replace_segments(&store, &removal.old_segments, &removal.new_segments)?;
    stale.clear();
    println!("deleted events: {}", removal.deleted);
    Ok(())
}
