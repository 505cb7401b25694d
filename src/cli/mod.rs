//! The command line: clap definitions, resolution of the data directory and settings, and the
//! dispatch to one function per command. Errors from every layer end up in [`CliError`], which
//! `main` prints once as a Dokku-style ` !     message` line.

mod backup;
mod demo;
mod deploy_status;
mod doctor;
mod export;
mod fleet_heads;
mod generate;
pub mod hook;
mod import;
mod lifecycle;
mod list;
mod migrate;
mod prune;
mod releases;
mod releases_info;
mod serve;
mod settings_cmd;
mod show;
mod sqlite_import;
mod status;
mod tail;
mod trail;
mod vacuum;
mod verify;
mod verify_heads;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::clock::{Clock, ClockError};
use crate::settings::{Settings, SettingsError};
use crate::store::{AppendContext, Ownership, Store, StoreError};

/// Default data directory on a Dokku host.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/dokku/data/dokku-audit";

/// dokku-audit: a durable, queryable, tamper-evident audit trail for Dokku hosts.
#[derive(Debug, Parser)]
#[command(name = "dokku-audit", version, about, disable_help_subcommand = true)]
pub struct Args {
    /// Data directory (segments, index, state, settings, backups).
    #[arg(long, global = true, env = "DOKKU_AUDIT_DATA_DIR", value_name = "PATH")]
    pub data_dir: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Health: version, data dir, format, events, segments, bytes, last event.
    Status,
    /// Deep checks: permissions, every checksum and the chain, index, stale state, leftovers,
    /// free space, settings, filesystem; exit 1 on any issue.
    Doctor,
    /// Check every checksum and the tamper-evidence chain (and, with --heads, this host's chain
    /// values against a collector's heads file); exit 1 on failure.
    Verify(verify::VerifyArgs),
    /// On a collector: each host's chain heads from the lines it received, for `verify --heads`.
    FleetHeads(fleet_heads::FleetHeadsArgs),
    /// The newest events, oldest first; with --follow, stream new ones as they land.
    Tail(tail::TailArgs),
    /// Append events from another export (new ids, original times kept).
    Import(import::ImportArgs),
    /// Write events oldest first as JSONL, JSON or CSV.
    Export(export::ExportArgs),
    /// Fill a data directory with a realistic history and show it.
    Demo(demo::DemoArgs),
    /// Completed deploys, newest first.
    LastDeploys(list::LastDeploysArgs),
    /// One app's history, newest first.
    Timeline(list::TimelineArgs),
    /// Recent events of all apps, with filters.
    Recent(list::RecentArgs),
    /// Full-text search over message and meta.
    Search(list::SearchArgs),
    /// One app's releases (numbered successful deploys) and failed deploys, newest first.
    Releases(releases::ReleasesArgs),
    /// One release in detail, and the command that deploys its code again.
    #[command(name = "releases:info")]
    ReleasesInfo(releases_info::ReleasesInfoArgs),
    /// Rebuild the search index from the segments.
    Reindex,
    /// Delete events older than DAYS (whole segments, boundary rewritten); dry run without --yes.
    Prune(prune::PruneArgs),
    /// Merge small sealed segments, optimise the index, remove leftovers.
    Vacuum,
    /// Consistent, verifiable backup by file copy (hard links); prints where.
    Backup(backup::BackupArgs),
    /// Replace the data with a backup, after verifying it; dry run without --yes.
    Restore(backup::RestoreArgs),
    /// Delete backups older than DAYS; dry run without --yes.
    PruneBackups(backup::PruneBackupsArgs),
    /// Bring the data directory to the current format (initialises a new one); idempotent.
    Migrate(migrate::MigrateArgs),
    /// One event: every field and the whole meta.
    Show(show::ShowArgs),
    /// Record a failed deploy reported by an outside system.
    ReportDeployStatus(deploy_status::DeployStatusArgs),
    /// Read-only HTTP API and web page (loopback by default; token auth).
    Serve(serve::ServeArgs),
    /// Print a runtime setting.
    Get(settings_cmd::GetArgs),
    /// Store a runtime setting (validated).
    Set(settings_cmd::SetArgs),
    /// Move the history of the old SQLite plugin (audit.db) into segments.
    ImportSqlite(sqlite_import::ImportSqliteArgs),
    /// Print a shell completion script (bash, zsh, fish, …).
    Completions(generate::CompletionsArgs),
    /// Print the man page (roff).
    Man,
    /// What the plugin's install/update/uninstall/dependencies triggers run.
    #[command(hide = true)]
    PluginLifecycle(lifecycle::LifecycleArgs),
}

/// Every way a command can fail. `main` prints the message and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Wrong usage or an invalid value.
    #[error("{0}")]
    Usage(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A setting is invalid.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// `DOKKU_AUDIT_NOW` is invalid.
    #[error(transparent)]
    Clock(#[from] ClockError),
    /// Reading input or writing output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or `-`).
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Import input is invalid; nothing was appended.
    #[error("line {line}: {message}; nothing was imported")]
    ImportLine {
        /// 1-based input line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The command ran and found a failure it already reported on stdout (e.g. `verify`).
    #[error("{0}")]
    Reported(String),
    /// The search index (or the segments behind it) failed: never the user's query, which
    /// is a [`CliError::Usage`] (see the `From<IndexError>` conversion).
    #[error(transparent)]
    Index(crate::index::IndexError),
    /// The correlation state could not be opened or saved.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// A file operation under the data directory failed.
    #[error(transparent)]
    Fs(#[from] crate::safefs::FsError),
    /// Output went to a closed pipe: not an error for the user.
    #[error("broken pipe")]
    BrokenPipe,
}

impl From<crate::index::IndexError> for CliError {
    /// An invalid query is the user's mistake (a usage error); anything else is a fault.
    fn from(e: crate::index::IndexError) -> CliError {
        if e.is_user_error() {
            CliError::Usage(e.to_string())
        } else {
            CliError::Index(e)
        }
    }
}

impl CliError {
    /// Maps an output write error, treating a closed pipe as a quiet stop.
    pub fn output(path: &str) -> impl FnOnce(std::io::Error) -> CliError + '_ {
        move |source| {
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                CliError::BrokenPipe
            } else {
                CliError::Io {
                    path: path.to_string(),
                    source,
                }
            }
        }
    }
}

/// What every command gets: where the data is, the settings, the clock.
pub struct Context {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Settings for it.
    pub settings: Settings,
    /// "Now".
    pub clock: Clock,
    /// Every path of the data directory.
    pub layout: crate::layout::Layout,
    /// Who owns what the command creates there (the runtime user and group).
    pub owner: Ownership,
}

impl Context {
    fn new(data_dir: Option<PathBuf>) -> Result<Context, CliError> {
        let data_dir = data_dir
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        // Symlinks above the data directory are the administrator's; below it none is followed.
        let data_dir = crate::safefs::resolve_data_dir(&data_dir);
        let settings = Settings::load(&data_dir)?;
        Ok(Context {
            layout: crate::layout::Layout::new(&data_dir),
            data_dir,
            settings,
            clock: Clock::from_env()?,
            owner: Ownership::from_env(),
        })
    }

    /// The store over the data directory, with options from the settings.
    pub fn store(&self) -> Result<Store, CliError> {
        Ok(Store::new(
            &self.data_dir,
            crate::store::StoreOptions::from_settings(&self.settings)?,
            self.owner,
        ))
    }

    /// Context for appends made by a maintenance command run by a local user.
    pub fn maintenance_append(&self, source_trigger: &str) -> AppendContext {
        let mut actor = crate::event::actor::LocalIdentity::probe().actor();
        crate::event::host::HostIdentity::for_recording(&self.settings).stamp(&mut actor.meta);
        AppendContext {
            now: self.clock.now_ts(),
            source_trigger: source_trigger.to_string(),
            actor,
        }
    }
}

/// Runs a parsed command line.
pub fn run(args: Args) -> Result<(), CliError> {
    let ctx = Context::new(args.data_dir)?;
    if let Command::Demo(a) = args.command {
        return demo::run(ctx, a);
    }
    let result = run_command(&ctx, args.command);
    // A command that held the writer lock (triggers spool meanwhile) hands the spool off when it
    // is done, so spooled events do not wait for the next trigger. Appends hand off by
    // themselves (`Store::append_raw`).
    if Store::took_writer_lock() {
        hand_off_spool(&ctx);
    }
    result
}

/// Drains the spool if the writer lock is free (`Store::drain_spool_if_free`); a failure only
/// leaves the spool to the next writer.
fn hand_off_spool(ctx: &Context) {
    let Ok(store) = ctx.store() else { return };
    if let Err(e) = store.drain_spool_if_free(&ctx.maintenance_append("manual")) {
        eprintln!(" !     warning: the spool could not be drained (the next write retries): {e}");
    }
}

fn run_command(ctx: &Context, command: Command) -> Result<(), CliError> {
    match command {
        Command::Status => status::run(ctx),
        Command::Doctor => doctor::run(ctx),
        Command::Tail(a) => tail::run(ctx, a),
        Command::Verify(a) => verify::run(ctx, a),
        Command::FleetHeads(a) => fleet_heads::run(ctx, a),
        Command::Import(a) => import::run(ctx, a),
        Command::Export(a) => export::run(ctx, a),
        // Demo takes the context by value: dispatched by `run`.
        Command::Demo(_) => Ok(()),
        Command::Migrate(a) => migrate::run(ctx, a),
        Command::LastDeploys(a) => list::last_deploys(ctx, a),
        Command::Timeline(a) => list::timeline(ctx, a),
        Command::Recent(a) => list::recent(ctx, a),
        Command::Search(a) => list::search(ctx, a),
        Command::Releases(a) => releases::run(ctx, a),
        Command::ReleasesInfo(a) => releases_info::run(ctx, a),
        Command::Reindex => list::reindex(ctx),
        Command::Prune(a) => prune::run(ctx, a),
        Command::Vacuum => vacuum::run(ctx),
        Command::Backup(a) => backup::run_backup(ctx, a),
        Command::Restore(a) => backup::run_restore(ctx, a),
        Command::PruneBackups(a) => backup::run_prune_backups(ctx, a),
        Command::Show(a) => show::run(ctx, a),
        Command::ReportDeployStatus(a) => deploy_status::run(ctx, a),
        Command::Serve(a) => serve::run(ctx, a),
        Command::Get(a) => settings_cmd::get(ctx, a),
        Command::Set(a) => settings_cmd::set(ctx, a),
        Command::PluginLifecycle(a) => lifecycle::run(ctx, a),
        Command::ImportSqlite(a) => sqlite_import::run(ctx, a),
        Command::Completions(a) => generate::completions(a),
        Command::Man => generate::man(),
    }
}

/// Dokku passes `audit:<name>` as a subcommand's first argument: accept it as `<name>`.
pub fn normalize_argv(mut argv: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    if let Some(first) = argv.get(1).and_then(|a| a.to_str()) {
        if let Some(cmd) = first.strip_prefix("audit:") {
            argv[1] = cmd.into();
        }
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn audit_prefix_is_dropped() {
        let v = normalize_argv(vec!["x".into(), "audit:export".into(), "--app".into()]);
        assert_eq!(v[1], "export");
    }
}
