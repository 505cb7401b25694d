//! `tail [--follow] [--format jsonl|table] [--lines N]`: the newest events oldest first, like
//! `tail`; with `--follow`, every event appended afterwards as it lands, like `journalctl -f`.
//!
//! A reader only (never the lock, never a write), so it works on a read-only data directory. In
//! follow mode each event is flushed as soon as it is printed, and a closed stdout (the reader of
//! a pipe went away) ends the command quietly with exit 0.

use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::time::Duration;

use clap::Args as ClapArgs;

use super::{CliError, Context};
use crate::output::list::{self, Columns};
use crate::output::table::{self, clean_cell};
use crate::record::Event;
use crate::store::follow::FollowItem;
use crate::store::{Damage, Store};

/// How often `--follow` looks for new lines.
const POLL_INTERVAL: Duration = Duration::from_millis(150);

/// Arguments of `tail`.
#[derive(Debug, ClapArgs)]
pub struct TailArgs {
    /// Keep printing events as they are appended (stop with Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// jsonl (default) or table.
    #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "table"])]
    pub format: String,
    /// How many of the newest events to print first.
    #[arg(long, short = 'n', default_value_t = 10, value_name = "N")]
    pub lines: usize,
}

/// Runs `tail`.
pub fn run(ctx: &Context, args: TailArgs) -> Result<(), CliError> {
    // Settings only change how segments are written: a reader does not need them to be valid.
    let store = Store::new(
        &ctx.data_dir,
        crate::store::StoreOptions::from_settings(&ctx.settings).unwrap_or_default(),
        ctx.owner,
    );
    let tail = store.tail(args.lines)?;
    for d in &tail.damage {
        warn_damage(d);
    }
    let table_format = args.format == "table";
    let stdout = std::io::stdout();
    if !args.follow {
        let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
        if table_format {
            let rows: Vec<Vec<String>> = tail.events.iter().filter_map(|e| row(&e.json)).collect();
            out.write_all(table::render(list::header(Columns::Recent), &rows).as_bytes())
                .map_err(CliError::output("stdout"))?;
        } else {
            for e in &tail.events {
                out.write_all(&e.json).map_err(CliError::output("stdout"))?;
                out.write_all(b"\n").map_err(CliError::output("stdout"))?;
            }
        }
        return out.flush().map_err(CliError::output("stdout"));
    }

    let mut out = stdout.lock();
    if table_format {
        out.write_all(format!("{}\n", list::header(Columns::Recent).join("  ")).as_bytes())
            .and_then(|()| out.flush())
            .map_err(CliError::output("stdout"))?;
    }
    let mut print = |json: &[u8]| -> Result<(), CliError> {
        if table_format {
            let Some(cells) = row(json) else {
                return Ok(());
            };
            out.write_all(cells.join("  ").as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(CliError::output("stdout"))?;
        } else {
            out.write_all(json)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(CliError::output("stdout"))?;
        }
        out.flush().map_err(CliError::output("stdout"))
    };
    for e in &tail.events {
        print(&e.json)?;
    }
    let mut follower = tail.follower;
    loop {
        if stdout_closed() {
            return Ok(());
        }
        let mut failed: Option<CliError> = None;
        let _flow = follower.poll(&mut |item| match item {
            FollowItem::Event { json, .. } => match print(json) {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    failed = Some(e);
                    ControlFlow::Break(())
                }
            },
            FollowItem::Damage(d) => {
                warn_damage(&d);
                ControlFlow::Continue(())
            }
        })?;
        match failed {
            Some(CliError::BrokenPipe) => return Ok(()),
            Some(e) => return Err(e),
            None => {}
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The table cells of one event (`None`, with a warning, if it does not parse).
fn row(json: &[u8]) -> Option<Vec<String>> {
    match Event::from_json_text(&String::from_utf8_lossy(json)) {
        Ok(e) => Some(
            list::event_cells(Columns::Recent, &e)
                .iter()
                .map(|c| clean_cell(c))
                .collect(),
        ),
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "dokku-audit: warning: skipped an event that does not parse: {err}"
            );
            None
        }
    }
}

fn warn_damage(d: &Damage) {
    // stderr may be closed too: never panic over a warning.
    let _ = writeln!(
        std::io::stderr(),
        "dokku-audit: warning: skipped damaged data at {}: {}",
        d.pos,
        d.kind
    );
}

/// True when stdout can no longer be written: the read end of the pipe was closed (POLLERR),
/// the terminal hung up (POLLHUP), or the descriptor is not open (POLLNVAL). Checked between
/// polls, so `tail --follow | head -n 3` ends even when no event comes after the third.
#[allow(unsafe_code)]
fn stdout_closed() -> bool {
    let mut fds = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: `fds` is one valid, initialised pollfd that lives across the call, the count
    // passed is 1, and a zero timeout makes the call return at once. poll(2) only writes
    // `revents`.
    let n = unsafe { libc::poll(&mut fds, 1, 0) };
    n > 0 && fds.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}
