//! Store-level checks: segments, index, correlation state, interrupted work, leftovers.

use std::path::PathBuf;

use super::*;
use crate::event::correlate::CorrelationState;
use crate::index::{high_water_mark, EventIndex};
use crate::store::Store;

/// Every CRC, id order, trailer and the chain (`verify`), and the segment count.
pub(super) fn check_segments(store: &Store, r: &mut Report) {
    let report = match store.verify() {
        Ok(v) => v,
        Err(e) => {
            r.issue(format!(
                "segments cannot be read: {e} (run: dokku audit:verify)"
            ));
            return;
        }
    };
    match store.listing() {
        Ok(l) => {
            let sealed = l.segments.iter().filter(|s| !s.is_plain()).count();
            let copies = l
                .segments
                .iter()
                .filter(|s| s.sealed.is_some() && s.plain.is_some())
                .count();
            r.ok(format!(
                "segments: {} ({sealed} sealed, {copies} plain copies in their grace period)",
                l.segments.len()
            ));
        }
        Err(e) => r.issue(format!("segments directory cannot be listed: {e}")),
    }
    if report.ok() {
        r.ok(format!(
            "every checksum, id and the hash chain verify: {} events, last id {}, chain head {}",
            report.events, report.last_id, report.chain_head
        ));
    }
    if let Some(t) = &report.torn_tail {
        r.ok(format!(
            "torn final line of the active segment at {} ignored: {} (the next append repairs it)",
            t.pos, t.kind
        ));
    }
    let lines = report
        .problems
        .iter()
        .map(|p| {
            format!(
                "{}: {} (run: dokku audit:verify; restore a good copy with dokku audit:restore <backup>)",
                p.pos, p.message
            )
        })
        .collect();
    r.issues_capped(lines, "integrity problem(s)");
}

/// The index opens with the expected schema and is not ahead of the segments; its lag is fine.
pub(super) fn check_index(ctx: &Context, store: &Store, r: &mut Report) {
    let index = match EventIndex::open_existing(&ctx.data_dir) {
        Ok(Some(i)) => i,
        Ok(None) => {
            r.ok("no search index yet (the next query builds it)");
            return;
        }
        Err(e) => {
            r.issue(format!(
                "search index cannot be opened: {e} (run: dokku audit:reindex)"
            ));
            return;
        }
    };
    if let Err(e) = index.index.load_metas() {
        r.issue(format!(
            "search index metadata cannot be read: {e} (run: dokku audit:reindex)"
        ));
        return;
    }
    // Every file the committed segments need is there (checked without opening a reader,
    // which would create tantivy's lock file: doctor writes nothing).
    match index.index.searchable_segment_metas() {
        Ok(metas) => {
            use tantivy::index::SegmentComponent;
            let mut missing = Vec::new();
            for m in &metas {
                let mut parts = vec![
                    SegmentComponent::Postings,
                    SegmentComponent::Terms,
                    SegmentComponent::Store,
                    SegmentComponent::FastFields,
                ];
                if m.has_deletes() {
                    parts.push(SegmentComponent::Delete);
                }
                for c in parts {
                    let p = m.relative_path(c);
                    if !index.dir().join(&p).exists() {
                        missing.push(p.display().to_string());
                    }
                }
            }
            if let Some(first) = missing.first() {
                r.issue(format!(
                    "search index is missing {} file(s), e.g. index/{first} (run: dokku audit:reindex)",
                    missing.len()
                ));
                return;
            }
        }
        Err(e) => {
            r.issue(format!(
                "search index cannot be read: {e} (run: dokku audit:reindex)"
            ));
            return;
        }
    }
    let mark = high_water_mark(&index.index);
    let segments = index.segment_count();
    let last = match store.last_id() {
        Ok(l) => l,
        Err(e) => {
            r.issue(format!(
                "cannot compare the index with the segments: {e} (run: dokku audit:verify)"
            ));
            return;
        }
    };
    if mark.hwm > last {
        r.issue(format!(
            "search index is ahead of the segments: it has events up to id {}, the segments end at {last} (run: dokku audit:reindex)",
            mark.hwm
        ));
        return;
    }
    let lag = last - mark.hwm;
    if lag == 0 {
        r.ok(format!(
            "search index opens, schema ok, up to date ({segments} index segments)"
        ));
    } else {
        r.ok(format!(
            "search index opens, schema ok, {lag} event(s) behind the segments (the next query catches up; {segments} index segments)"
        ));
    }
}

/// Correlation state entries older than `pending_stale_threshold_seconds`, by "now" (which
/// honours `DOKKU_AUDIT_NOW`).
pub(super) fn check_state(ctx: &Context, r: &mut Report) {
    let path = ctx.layout.correlation.clone();
    let state: CorrelationState = match crate::safefs::read(&path) {
        // No state file: no operation in progress.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => CorrelationState::default(),
        Err(e) => {
            r.issue(format!(
                "correlation state {} cannot be read: {e} (run doctor as root or as the dokku user)",
                rel(&ctx.data_dir, &path)
            ));
            return;
        }
        Ok(bytes) => match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                r.issue(format!(
                    "correlation state {} does not parse ({e}); triggers treat it as empty (run: dokku audit:vacuum)",
                    rel(&ctx.data_dir, &path)
                ));
                return;
            }
        },
    };
    let threshold = ctx
        .settings
        .int("pending_stale_threshold_seconds", 0, 365 * 86_400)
        .unwrap_or(86_400) as i64;
    let cut = ctx.clock.now().timestamp() - threshold;
    let counts: [(&str, usize); 6] = [
        (
            "pending deploy",
            state
                .deploys
                .values()
                .filter(|d| d.first_seen < cut)
                .count(),
        ),
        (
            "pending command context",
            state.commands.iter().filter(|c| c.at < cut).count(),
        ),
        (
            "pending runtime event",
            state.runs.iter().filter(|c| c.at < cut).count(),
        ),
        (
            "pending event actor context",
            state.contexts.iter().filter(|c| c.at < cut).count(),
        ),
        (
            "pending build",
            state.builds.iter().filter(|c| c.at < cut).count(),
        ),
        (
            "pending rename",
            state.renames.iter().filter(|c| c.at < cut).count(),
        ),
    ];
    for (what, n) in counts {
        if n == 0 {
            r.ok(format!("no stale {what} entries"));
        } else {
            r.issue(format!(
                "stale {what} entries detected: {n}, older than {threshold} s (run: dokku audit:vacuum)"
            ));
        }
    }
}

/// Temporary files and directories left by interrupted seals, reindexes, restores, state and
/// marker writes; foreign files in `segments/`.
/// Work a crash interrupted that the next writer finishes (segments-format.md §8).
pub(super) fn check_interrupted(store: &Store, r: &mut Report) {
    use crate::store::recover;
    let paths = store.paths();
    let mut found = false;
    match recover::pending_journal(paths) {
        Ok(Some(_)) => {
            found = true;
            r.issue(format!(
                "an interrupted prune/vacuum is pending ({}): readers already see its result; the next write completes it (or run: dokku audit:vacuum)",
                crate::layout::COMPACT_JOURNAL
            ));
        }
        Ok(None) => {}
        Err(e) => {
            found = true;
            r.issue(format!("{e}"));
        }
    }
    if let Some(old) = recover::interrupted_restore(paths) {
        found = true;
        r.issue(format!(
            "an interrupted restore left the live history in {}: the next write moves it back (or run: dokku audit:vacuum); do not delete it",
            rel(&paths.root, &old)
        ));
    }
    let stale = crate::index::EventIndex::stale_marks(&paths.root);
    if !stale.is_empty() {
        found = true;
        r.issue(format!(
            "the index may be stale after an interrupted prune/vacuum ({}): the next query rebuilds it (or run: dokku audit:reindex)",
            rel(&paths.root, &stale[0])
        ));
    }
    if !found {
        r.ok("no interrupted prune, vacuum or restore");
    }
}

/// Events waiting in the spool. A spool is normal while triggers are busy (it is drained when
/// the writer lock is released, segments-format.md §7.7); one older than a minute was left by a
/// writer that died holding the lock, and waits for the next write.
pub(super) fn check_spool(store: &Store, r: &mut Report) {
    let w = crate::store::spool::waiting(store.paths());
    if w.files == 0 {
        r.ok("spool: empty");
        return;
    }
    // Spool names carry the system time they were written at (not the command clock).
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let age_s = w
        .oldest_ns
        .map_or(0, |oldest| now_ns.saturating_sub(oldest) / 1_000_000_000);
    let since = w
        .oldest_ns
        .and_then(crate::timefmt::format_unix_ns)
        .unwrap_or_else(|| "-".into());
    let what = format!(
        "{} spooled event(s) in {} file(s), the oldest spooled at {since}",
        w.events, w.files
    );
    if age_s > 60 {
        r.issue(format!(
            "{what}: not yet in the segments, so no query shows them; the next write appends them (or run: dokku audit:vacuum)"
        ));
    } else {
        r.ok(format!("{what} (being drained)"));
    }
}

pub(super) fn check_leftovers(store: &Store, r: &mut Report) {
    let data = &store.paths().root;
    let mut foreign: Vec<PathBuf> = Vec::new();
    match store.listing() {
        Ok(l) => foreign.extend(l.foreign_files),
        Err(e) => r.issue(format!("segments directory cannot be listed: {e}")),
    }
    // The same list `vacuum` removes (Store::leftover_scan), so every leftover reported here
    // is one that `vacuum` deletes.
    let (mut leftovers, in_progress) = match store.leftover_scan() {
        Ok(found) => found,
        Err(e) => {
            r.issue(format!("leftovers cannot be listed: {e}"));
            (Vec::new(), 0)
        }
    };
    leftovers.sort();
    if leftovers.is_empty() {
        let mut line = "no leftover temporary files".to_string();
        if in_progress > 0 {
            line.push_str(&format!(
                " ({in_progress} temporary file(s) of running processes)"
            ));
        }
        r.ok(line);
    } else {
        let lines = leftovers
            .iter()
            .map(|p| {
                format!(
                    "leftover temporary file: {} (run: dokku audit:vacuum)",
                    rel(data, p)
                )
            })
            .collect();
        r.issues_capped(lines, "leftover temporary file(s)");
    }
    foreign.sort();
    if foreign.is_empty() {
        r.ok("no foreign files in segments/");
    } else {
        let lines = foreign
            .iter()
            .map(|p| {
                format!(
                    "foreign file in segments/: {} is not a segment and is ignored by every reader (run: mv {} <somewhere outside the data directory>)",
                    rel(data, p),
                    p.display()
                )
            })
            .collect();
        r.issues_capped(lines, "foreign file(s)");
    }
}
