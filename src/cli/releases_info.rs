//! `releases:info <app> <vN|N|id:N>`: one release in detail, with the command that deploys its
//! code again (printed, never run).

use std::io::{IsTerminal, Write};

use clap::Args as ClapArgs;

use super::releases::app_arg;
use super::{CliError, Context};
use crate::query::releases::{self, Selector};

/// Arguments of `releases:info`.
#[derive(Debug, ClapArgs)]
pub struct ReleasesInfoArgs {
    /// The app.
    pub app: Option<String>,
    /// `vN` or `N` (a release number), `id:N` (the deploy event's id).
    #[arg(value_name = "RELEASE")]
    pub release: Option<String>,
    /// table (default) or json.
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// Runs `releases:info`.
pub fn run(ctx: &Context, a: ReleasesInfoArgs) -> Result<(), CliError> {
    let usage = "releases:info <app> <vN|id:N> [--format table|json]";
    let app = app_arg(a.app, usage)?;
    let selector: Selector = app_arg(a.release, usage)?.parse()?;
    let json = match a.format.as_str() {
        "json" => true,
        "table" => false,
        other => return Err(CliError::Usage(format!("unsupported format: {other}"))),
    };
    let store = ctx.store()?;
    let info = releases::info(&store, &ctx.data_dir, &app, selector)?;
    let text = if json {
        format!("{}\n", serde_json::to_string(&info).unwrap_or_default())
    } else {
        let now = std::io::stdout().is_terminal().then(|| ctx.clock.now());
        crate::output::releases::info_block(&app, &info, now)
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(CliError::output("stdout"))
}
