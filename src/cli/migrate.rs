//! `migrate [--dry-run] [--verbose]`: bring the data directory to the current format. Today
//! there is one format, so this initialises a fresh directory (recording one
//! `maintenance`/`migrate` event) and otherwise does nothing; it refuses a newer format.

use clap::Args as ClapArgs;
use serde_json::{Map, Value};

use super::{CliError, Context};
use crate::record::Event;
use crate::safefs;
use crate::store::FORMAT_VERSION;

/// Arguments of `migrate`.
#[derive(Debug, ClapArgs)]
pub struct MigrateArgs {
    /// Only say what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// Say what is being done.
    #[arg(long)]
    pub verbose: bool,
}

/// What `migrate` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Migrated {
    /// The directory was initialised now.
    Initialised,
    /// Already current.
    Current,
}

/// Initialises or checks the data directory; records the migrate event on a fresh one.
pub fn migrate(ctx: &Context, source_trigger: &str) -> Result<Migrated, CliError> {
    let store = ctx.store()?;
    let owner = ctx.owner;
    // The data directory itself is created and secured with the operator's rights (its parent
    // may be root's); everything inside it as the runtime user.
    crate::privilege::as_invoker(|| safefs::secure_data_dir(&ctx.data_dir, &owner)).map_err(
        |e| CliError::Io {
            path: ctx.data_dir.display().to_string(),
            source: e,
        },
    )??;
    let before = store.read_format()?;
    store.init()?;
    safefs::ensure_dir(&ctx.layout.backups, &owner)?;
    safefs::ensure_dir(&ctx.layout.state, &owner)?;
    if before.is_some() || store.stats()?.events > 0 {
        return Ok(Migrated::Current);
    }
    let mut meta = Map::new();
    meta.insert("previous_version".into(), Value::from(0));
    meta.insert("new_version".into(), Value::from(FORMAT_VERSION));
    meta.insert("applied_count".into(), Value::from(1));
    let append = ctx.maintenance_append(source_trigger);
    let mut ev = [Event::maintenance(
        "migrate",
        "applied 1 migration(s)".into(),
        meta,
        &append.now,
        source_trigger,
        &append.actor,
    )];
    store.append(&mut ev, &append)?;
    Ok(Migrated::Initialised)
}

/// Runs `migrate`.
pub fn run(ctx: &Context, args: MigrateArgs) -> Result<(), CliError> {
    if args.dry_run {
        let store = ctx.store()?;
        match store.read_format()? {
            Some(v) => println!("format version {v} is current; nothing to do"),
            None => println!(
                "would initialise {} (format version {FORMAT_VERSION})",
                ctx.data_dir.display()
            ),
        }
        return Ok(());
    }
    let done = migrate(ctx, "manual")?;
    if args.verbose {
        match done {
            Migrated::Initialised => println!("initialised {}", ctx.data_dir.display()),
            Migrated::Current => println!("already current: {}", ctx.data_dir.display()),
        }
    }
    println!("format version: {FORMAT_VERSION}");
    Ok(())
}
