//! `report-deploy-status <app> <status>`: a deploy failure reported by an outside system (CI, a
//! deploy wrapper). `success` records nothing (reference §10.16).

use clap::Args as ClapArgs;

use super::{CliError, Context};
use crate::hook::HookEnv;

/// Arguments of `report-deploy-status`.
#[derive(Debug, ClapArgs)]
pub struct DeployStatusArgs {
    /// The app.
    pub app: Option<String>,
    /// The status (`success` records nothing).
    pub status: Option<String>,
}

/// Runs `report-deploy-status`.
pub fn run(ctx: &Context, args: DeployStatusArgs) -> Result<(), CliError> {
    let app = args
        .app
        .filter(|a| !a.is_empty())
        .ok_or_else(|| CliError::Usage("missing app name".into()))?;
    let status = args
        .status
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CliError::Usage("missing deploy status".into()))?;
    if status == "success" {
        return Ok(());
    }
    let env = HookEnv::from_process();
    super::hook::record_with(
        "report-deploy-status",
        &env,
        &ctx.data_dir,
        &ctx.settings,
        |c| c.report_deploy_status(&app, &status),
    )
    .map_err(CliError::Usage)?
    .map_or(Ok(()), |w| {
        eprintln!(" !     warning: {w}");
        Ok(())
    })
}
