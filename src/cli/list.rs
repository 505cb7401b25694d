//! The list commands — `last-deploys`, `timeline`, `recent`, `search` — and `reindex`.

use std::io::{IsTerminal, Write};

use clap::Args as ClapArgs;

use super::{CliError, Context};
use crate::index::EventIndex;
use crate::output::list::{render_events, render_rows, Columns, ListFormat};
use crate::query::list::{self, ListQuery};

/// Output options shared by the list commands.
#[derive(Debug, ClapArgs)]
pub struct OutputArgs {
    /// At most this many events.
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub limit: Option<String>,
    /// table (default), json or jsonl.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Raw tab-separated rows, no header (table format).
    #[arg(long)]
    pub quiet: bool,
}

/// Arguments of `last-deploys`.
#[derive(Debug, ClapArgs)]
pub struct LastDeploysArgs {
    /// Only this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Only this classification (`source_deploy`, `release_only`, `deploy_failed`,
    /// `app_rebuild`).
    #[arg(long)]
    pub classification: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

/// Arguments of `timeline`.
#[derive(Debug, ClapArgs)]
pub struct TimelineArgs {
    /// The app.
    pub app: Option<String>,
    /// Events at or after (RFC 3339, date, or age like 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// Events at or before.
    #[arg(long)]
    pub until: Option<String>,
    /// Only this category.
    #[arg(long)]
    pub category: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

/// Arguments of `recent`.
#[derive(Debug, ClapArgs)]
pub struct RecentArgs {
    /// Only this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Only this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Only this classification.
    #[arg(long)]
    pub classification: Option<String>,
    /// Only this status.
    #[arg(long)]
    pub status: Option<String>,
    /// Only this actor (label like `ssh-key:alice`, or name).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only actions matching this glob (`set`, `cron-job*`).
    #[arg(long)]
    pub action: Option<String>,
    /// Events at or after.
    #[arg(long)]
    pub since: Option<String>,
    /// Events at or before.
    #[arg(long)]
    pub until: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

/// Arguments of `search`.
#[derive(Debug, ClapArgs)]
pub struct SearchArgs {
    /// Full-text query over message and meta (phrases, AND/OR, field:value).
    #[arg(long)]
    pub query: Option<String>,
    /// Only this app.
    #[arg(long)]
    pub app: Option<String>,
    /// Only this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Events at or after.
    #[arg(long)]
    pub since: Option<String>,
    /// Events at or before.
    #[arg(long)]
    pub until: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

pub(super) fn limit(v: &Option<String>, default: usize) -> Result<usize, CliError> {
    match v {
        None => Ok(default),
        Some(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse()
            .map_err(|_| CliError::Usage("--limit must be a positive integer".into())),
        Some(_) => Err(CliError::Usage("--limit must be a positive integer".into())),
    }
}

pub(super) fn epoch(ctx: &Context, v: &Option<String>) -> Result<Option<i64>, CliError> {
    v.as_deref()
        .map(|s| {
            crate::timefmt::parse_time_arg(s, ctx.clock.now())
                .map(|t| t.timestamp())
                .map_err(|e| CliError::Usage(e.to_string()))
        })
        .transpose()
}

fn run_list(ctx: &Context, q: ListQuery, cols: Columns, out: &OutputArgs) -> Result<(), CliError> {
    let format: ListFormat = out.format.parse().map_err(CliError::Usage)?;
    let store = ctx.store()?;
    let (rows, _answer) = list::run(&store, &ctx.data_dir, &q)?;
    let text = match format {
        ListFormat::Table => render_rows(cols, &rows, out.quiet),
        f => render_events(f, &list::full_events(&store, &rows)?),
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::output("stdout"))
}

/// `last-deploys`: completed deploys (including failed ones), newest first.
pub fn last_deploys(ctx: &Context, a: LastDeploysArgs) -> Result<(), CliError> {
    let q = ListQuery {
        app: a.app,
        classification: a.classification,
        category: Some("deploy".into()),
        action: Some("finish".into()),
        limit: limit(&a.out.limit, 20)?,
        ..Default::default()
    };
    run_list(ctx, q, Columns::Deploys, &a.out)
}

/// `timeline <app>`: one app's history.
pub fn timeline(ctx: &Context, a: TimelineArgs) -> Result<(), CliError> {
    let app = a
        .app
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CliError::Usage("usage: dokku audit:timeline <app> [options]".into()))?;
    let q = ListQuery {
        app: Some(app),
        category: a.category,
        since: epoch(ctx, &a.since)?,
        until: epoch(ctx, &a.until)?,
        limit: limit(&a.out.limit, 50)?,
        ..Default::default()
    };
    run_list(ctx, q, Columns::Timeline, &a.out)
}

/// `recent`: all apps, newest first.
pub fn recent(ctx: &Context, a: RecentArgs) -> Result<(), CliError> {
    let q = ListQuery {
        app: a.app,
        category: a.category,
        classification: a.classification,
        status: a.status,
        actor: a.actor,
        action: a.action,
        since: epoch(ctx, &a.since)?,
        until: epoch(ctx, &a.until)?,
        limit: limit(&a.out.limit, 20)?,
        ..Default::default()
    };
    run_list(ctx, q, Columns::Recent, &a.out)
}

/// `search --query TEXT`.
pub fn search(ctx: &Context, a: SearchArgs) -> Result<(), CliError> {
    let text = a
        .query
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| CliError::Usage("--query is required".into()))?;
    let q = ListQuery {
        app: a.app,
        category: a.category,
        since: epoch(ctx, &a.since)?,
        until: epoch(ctx, &a.until)?,
        text: Some(text),
        limit: limit(&a.out.limit, 20)?,
        ..Default::default()
    };
    run_list(ctx, q, Columns::Recent, &a.out)
}

/// `reindex`: rebuild the index from the segments (progress on a terminal). Built aside and
/// swapped in, so queries keep working meanwhile.
pub fn reindex(ctx: &Context) -> Result<(), CliError> {
    let store = ctx.store()?;
    store.check_readable()?;
    let total = store.last_id()?;
    let tty = std::io::stderr().is_terminal();
    let mut last_shown = u64::MAX;
    let started = std::time::Instant::now();
    let result = EventIndex::rebuild(&ctx.data_dir, &store, &mut |id| {
        let pct = (id * 100).checked_div(total).unwrap_or(100);
        if tty && pct != last_shown {
            last_shown = pct;
            eprint!("\rindexing: {pct}% ({id}/{total})");
        }
    })?;
    if tty {
        eprintln!();
    }
    println!(
        "reindexed events: {} in {:.1} s",
        result.indexed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
