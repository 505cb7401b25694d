//! `releases <app>`: the app's releases and failed deploys, newest first (issue 17).

use std::io::{IsTerminal, Write};

use clap::Args as ClapArgs;

use super::{CliError, Context};
use crate::output::releases as out;
use crate::query::releases::{self, ReleasesError};

/// Arguments of `releases`.
#[derive(Debug, ClapArgs)]
pub struct ReleasesArgs {
    /// The app.
    pub app: Option<String>,
    /// At most this many (default 20).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub limit: Option<String>,
    /// Deploys at or after (RFC 3339, date, or age like 7d).
    #[arg(long)]
    pub since: Option<String>,
    /// table (default), json or jsonl.
    #[arg(long, default_value = "table")]
    pub format: String,
}

impl From<ReleasesError> for CliError {
    /// Nothing to show or a bad selector is the user's (a usage error); anything else is the
    /// index's.
    fn from(e: ReleasesError) -> CliError {
        match e {
            ReleasesError::Index(e) => e.into(),
            other => CliError::Usage(other.to_string()),
        }
    }
}

/// The app argument, required and not empty.
pub(super) fn app_arg(app: Option<String>, usage: &str) -> Result<String, CliError> {
    app.filter(|s| !s.is_empty())
        .ok_or_else(|| CliError::Usage(format!("usage: dokku audit:{usage}")))
}

/// Runs `releases`.
pub fn run(ctx: &Context, a: ReleasesArgs) -> Result<(), CliError> {
    let app = app_arg(
        a.app,
        "releases <app> [--limit N] [--since TIME] [--format table|json|jsonl]",
    )?;
    let limit = super::list::limit(&a.limit, 20)?;
    let since = super::list::epoch(ctx, &a.since)?;
    if !["table", "json", "jsonl"].contains(&a.format.as_str()) {
        return Err(CliError::Usage(format!("unsupported format: {}", a.format)));
    }
    let store = ctx.store()?;
    let list = releases::list(&store, &ctx.data_dir, &app, limit, since)?;
    let text = match a.format.as_str() {
        "json" => format!("{}\n", out::json(&app, &list)),
        "jsonl" => list
            .iter()
            .map(|r| format!("{}\n", serde_json::to_string(r).unwrap_or_default()))
            .collect(),
        _ => {
            let now = std::io::stdout().is_terminal().then(|| ctx.clock.now());
            out::table(&list, now)
        }
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::output("stdout"))
}
