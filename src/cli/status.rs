//! `status`: `key: value` lines (reference §10.3 keys where the concept still exists).

use super::{CliError, Context};
use crate::store::FORMAT_VERSION;

/// Runs `status`.
pub fn run(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.store()?;
    let format = store.read_format().ok().flatten();
    let stats = store.stats()?;
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k}: {v}\n"));
    line("plugin version", env!("CARGO_PKG_VERSION").to_string());
    line("data directory", ctx.data_dir.display().to_string());
    line(
        "format version",
        format.map_or_else(
            || format!("- (binary writes {FORMAT_VERSION})"),
            |v| v.to_string(),
        ),
    );
    line("total events", stats.events.to_string());
    line(
        "segments",
        format!("{} ({} sealed)", stats.segments, stats.sealed_segments),
    );
    line("bytes on disk", stats.bytes_on_disk.to_string());
    line("last event id", stats.last_id.to_string());
    line(
        "last event timestamp",
        stats.last_ts.unwrap_or_else(|| "-".into()),
    );
    let spool = crate::store::spool::waiting(store.paths());
    line(
        "spooled events",
        match spool.oldest_ns.and_then(crate::timefmt::format_unix_ns) {
            Some(oldest) if spool.events > 0 => {
                format!("{} (oldest spooled at {oldest})", spool.events)
            }
            _ => spool.events.to_string(),
        },
    );
    match crate::index::EventIndex::open_existing(&ctx.data_dir) {
        Ok(Some(index)) => {
            let mark = crate::index::high_water_mark(&index.index);
            line(
                "index lag",
                format!("{} events", stats.last_id.saturating_sub(mark.hwm)),
            );
            line("index segments", index.segment_count().to_string());
        }
        Ok(None) => line("index lag", "no index yet (built by the next query)".into()),
        Err(e) => line("index lag", format!("unusable index ({e}); run reindex")),
    }
    for (k, v) in crate::state::snapshot(&ctx.data_dir).counts() {
        line(k, v.to_string());
    }
    print!("{out}");
    Ok(())
}
