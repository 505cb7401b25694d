//! `demo`: fills a data directory (a fresh temporary one unless `--data-dir` is given) with a
//! realistic history, seals it into segments, verifies it, and shows the newest events.

use clap::Args as ClapArgs;

use super::{CliError, Context};
use crate::output::list::{self, Columns};
use crate::output::table;
use crate::store::ScanItem;

/// Arguments of `demo`.
#[derive(Debug, ClapArgs)]
pub struct DemoArgs {
    /// How many events to generate.
    #[arg(long, default_value_t = 5000)]
    pub events: usize,
    /// Over how many days (ending now).
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// How many of the newest events to show.
    #[arg(long, default_value_t = 15)]
    pub show: usize,
}

/// Runs `demo`.
pub fn run(mut ctx: Context, args: DemoArgs) -> Result<(), CliError> {
    let explicit = std::env::args_os().any(|a| a == "--data-dir")
        || std::env::var_os("DOKKU_AUDIT_DATA_DIR").is_some();
    if !explicit {
        ctx.data_dir =
            std::env::temp_dir().join(format!("dokku-audit-demo-{}", std::process::id()));
    }
    let store = ctx.store()?;
    if store.paths().segments.is_dir() && !store.segments()?.is_empty() {
        return Err(CliError::Usage(format!(
            "{} already holds events; demo only fills an empty data directory",
            ctx.data_dir.display()
        )));
    }
    let mut events = crate::demo::history(args.events, args.days, ctx.clock.now(), 0x00d0_cc00);
    let host = crate::event::host::HostIdentity::for_recording(&ctx.settings);
    for ev in events.iter_mut() {
        host.stamp(&mut ev.meta);
    }
    let receipt = store.append(&mut events, &ctx.maintenance_append("manual"))?;
    let stats = store.stats()?;
    let report = store.verify()?;
    // One write at the end: `demo | head` closing the pipe is a quiet stop, not a panic.
    let mut out = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(
        out,
        "dokku-audit demo: {} events over {} days in {}",
        events.len(),
        args.days,
        ctx.data_dir.display()
    );
    // Sealed bytes per sealed event is the figure that lasts; the active segment and plain
    // copies in their grace period (§6.5) are transient and shown apart.
    let _ = writeln!(
        out,
        "segments: {} ({} sealed, {} sealed during the append)",
        stats.segments,
        stats.sealed_segments,
        receipt.sealed.len(),
    );
    let _ = writeln!(
        out,
        "sealed: {} bytes for {} events ({:.1} B/event); active segment: {} bytes; plain copies in their grace period: {} bytes",
        stats.sealed_bytes,
        stats.sealed_events,
        stats.sealed_bytes as f64 / stats.sealed_events.max(1) as f64,
        stats.plain_bytes,
        stats.plain_copy_bytes,
    );
    let _ = writeln!(
        out,
        "verify: {} ({} events, chain head {})",
        if report.ok() { "ok" } else { "FAILED" },
        report.events,
        report.chain_head
    );
    let _ = writeln!(out, "\nnewest {} events:", args.show);
    let mut rows: std::collections::VecDeque<Vec<String>> = Default::default();
    store.scan(&mut |item| {
        if let ScanItem::Line { line, .. } = item {
            if let Ok(e) = serde_json::from_slice::<crate::record::Event>(&line.event_json()) {
                rows.push_front(list::event_cells(Columns::Recent, &e));
                rows.truncate(args.show);
            }
        }
        std::ops::ControlFlow::Continue(())
    })?;
    let rows: Vec<Vec<String>> = rows.into();
    let _ = write!(
        out,
        "{}",
        table::render(list::header(Columns::Recent), &rows)
    );
    let dir = ctx.data_dir.display();
    let _ = writeln!(out, "\ntry:");
    let _ = writeln!(out, "  ls -l {dir}/segments");
    let _ =
        writeln!(out,
        "  zstdcat {dir}/segments/*.jsonl.zst | jq -c 'select(.category==\"deploy\")' | head -3"
    );
    let _ = writeln!(
        out,
        "  dokku-audit --data-dir {dir} export --format csv --app api | head"
    );
    let _ = writeln!(out, "  dokku-audit --data-dir {dir} verify");
    use std::io::Write as _;
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(CliError::output("stdout"))?;
    Ok(())
}
