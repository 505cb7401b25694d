//! `plugin-lifecycle <install|update|uninstall|dependencies>`: what the plugin's lifecycle
//! triggers run (as root, for every enabled plugin, so each is idempotent and cheap).

use std::path::PathBuf;

use clap::Args as ClapArgs;
use serde_json::{Map, Value};

use super::migrate::{migrate, Migrated};
use super::{CliError, Context};
use crate::record::Event;

/// Arguments of `plugin-lifecycle`.
#[derive(Debug, ClapArgs)]
pub struct LifecycleArgs {
    /// install, update, uninstall or dependencies.
    pub stage: String,
    /// The plugin directory (its name is the plugin's name).
    #[arg(long)]
    pub plugin_dir: Option<PathBuf>,
    /// `uninstall`: the plugin being removed.
    pub name: Option<String>,
}

/// Runs a lifecycle stage.
pub fn run(ctx: &Context, args: LifecycleArgs) -> Result<(), CliError> {
    match args.stage.as_str() {
        "install" => {
            let done = migrate(ctx, "install")?;
            if done == Migrated::Initialised {
                println!("dokku-audit: initialized {}", ctx.data_dir.display());
            }
            // The SQLite plugin this one replaces kept its history here.
            let old = ctx.data_dir.join("audit.db");
            if old.is_file() {
                println!(
                    "dokku-audit: found {} from the SQLite audit plugin; import its history with: dokku audit:import-sqlite {}",
                    old.display(),
                    old.display()
                );
            }
            Ok(())
        }
        "update" => {
            migrate(ctx, "update")?;
            let mut meta = Map::new();
            meta.insert("optimize".into(), Value::Bool(true));
            let append = ctx.maintenance_append("update");
            let mut ev = [Event::maintenance(
                "migrate",
                "plugin update maintenance completed".into(),
                meta,
                &append.now,
                "update",
                &append.actor,
            )];
            ctx.store()?.append(&mut ev, &append)?;
            println!("dokku-audit: update maintenance completed");
            Ok(())
        }
        "uninstall" => {
            let own_dir_name = args
                .plugin_dir
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned());
            let ours = match args.name.as_deref() {
                None | Some("") => true,
                Some(n) => n == "audit" || n == "dokku-audit" || Some(n) == own_dir_name.as_deref(),
            };
            if ours {
                println!(
                    "dokku-audit: preserved audit data at {} (remove it by hand if you no longer need it)",
                    ctx.data_dir.display()
                );
            }
            Ok(())
        }
        "dependencies" => {
            println!("dokku-audit: dependencies ok");
            Ok(())
        }
        other => Err(CliError::Usage(format!("unknown lifecycle stage: {other}"))),
    }
}
