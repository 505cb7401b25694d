//! `backup [--output PATH]`, `restore <backup> [--yes]` and `prune-backups --older-than DAYS
//! [--yes]`: backups made of files (see `store::backup` for the layout and the guarantees).
//!
//! A backup is a directory, by default `<data dir>/backups/audit-YYYYmmdd-HHMMSS/`; `backup`
//! prints its path as the last stdout line and records a `maintenance`/`backup` event. `restore`
//! verifies a backup before it changes anything and, without `--yes`, only says what it would
//! replace. `prune-backups` deletes the default-named backup directories older than a cutoff and
//! never touches anything else in `backups/` (reference §10.15 texts).

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use clap::Args as ClapArgs;
use serde_json::{Map, Value};

use super::{CliError, Context};
use crate::record::Event;
use crate::store::backup::{self, BackupError};
use crate::store::StoreStats;

/// Arguments of `backup`.
#[derive(Debug, ClapArgs)]
pub struct BackupArgs {
    /// Directory to create (must not exist); default `<data dir>/backups/audit-YYYYmmdd-HHMMSS`.
    #[arg(long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Arguments of `restore`.
#[derive(Debug, ClapArgs)]
pub struct RestoreArgs {
    /// The backup directory.
    #[arg(value_name = "BACKUP")]
    pub backup: Option<PathBuf>,
    /// Replace the data; without it, only say what would be replaced.
    #[arg(long)]
    pub yes: bool,
}

/// Arguments of `prune-backups`.
#[derive(Debug, ClapArgs)]
pub struct PruneBackupsArgs {
    /// Delete backups older than this many days.
    #[arg(long, value_name = "DAYS", allow_hyphen_values = true)]
    pub older_than: Option<String>,
    /// Delete; without it, only say what would be deleted.
    #[arg(long)]
    pub yes: bool,
}

impl From<BackupError> for CliError {
    fn from(e: BackupError) -> CliError {
        match e {
            BackupError::Invalid { .. } => CliError::Usage(format!("{e}; nothing was changed")),
            BackupError::Store(s) => CliError::Store(s),
        }
    }
}

/// Prefix of a default backup name.
const BACKUP_PREFIX: &str = "audit-";
/// Timestamp layout of a default backup name.
const BACKUP_TIME_FORMAT: &str = "%Y%m%d-%H%M%S";

/// `<data dir>/backups`.
fn backups_dir(ctx: &Context) -> PathBuf {
    ctx.layout.backups.clone()
}

/// Runs `backup`.
pub fn run_backup(ctx: &Context, args: BackupArgs) -> Result<(), CliError> {
    let dest = match args.output {
        Some(p) if p.as_os_str().is_empty() => {
            return Err(CliError::Usage("--output must not be empty".into()))
        }
        Some(p) => p,
        None => backups_dir(ctx).join(format!(
            "{BACKUP_PREFIX}{}",
            ctx.clock.now().format(BACKUP_TIME_FORMAT)
        )),
    };
    // Recorded and printed as an absolute path: the event outlives the caller's directory.
    let dest = std::path::absolute(&dest).unwrap_or(dest);
    let store = ctx.store()?;
    let summary = backup::create(&store, &dest, &ctx.clock.now_ts())?;
    let output_path = dest.display().to_string();
    let mut meta = Map::new();
    meta.insert("output_path".into(), Value::from(output_path.clone()));
    let append = ctx.maintenance_append("manual");
    let mut ev = [Event::maintenance(
        "backup",
        "backup created".into(),
        meta,
        &append.now,
        "manual",
        &append.actor,
    )];
    store.append(&mut ev, &append)?;
    let m = &summary.manifest;
    println!(
        "backed up {} event(s) in {} segment(s) ({} hard-linked, {} copied); chain head {}",
        m.event_count, m.segment_count, summary.linked, summary.copied, m.chain_head
    );
    println!("{output_path}");
    Ok(())
}

/// Runs `restore`.
pub fn run_restore(ctx: &Context, args: RestoreArgs) -> Result<(), CliError> {
    let path = args
        .backup
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| CliError::Usage("usage: dokku audit:restore <backup> [--yes]".into()))?;
    let verified = backup::verify_backup(&path)?;
    let path = std::path::absolute(&path).unwrap_or(path);
    let m = &verified.manifest;
    let store = ctx.store()?;
    let now = if store.check_readable().is_ok() {
        store.stats()?
    } else {
        StoreStats::default()
    };
    println!(
        "backup {}: verified, {} event(s) in {} segment(s), {}, chain head {}, created {}",
        path.display(),
        m.event_count,
        m.segment_count,
        id_range(m.first_id, m.last_id),
        m.chain_head,
        m.created_at
    );
    if !args.yes {
        println!(
            "would replace {} event(s) in {} segment(s) (last id {}) with the backup's {} event(s) in {} segment(s)",
            now.events, now.segments, now.last_id, m.event_count, m.segment_count
        );
        println!("nothing changed; run again with --yes to restore");
        return Ok(());
    }
    let mut meta = Map::new();
    meta.insert(
        "backup_path".into(),
        Value::from(path.display().to_string()),
    );
    meta.insert("backup_last_id".into(), Value::from(m.last_id));
    meta.insert("backup_event_count".into(), Value::from(m.event_count));
    meta.insert(
        "backup_chain_head".into(),
        Value::from(m.chain_head.clone()),
    );
    let append = ctx.maintenance_append("manual");
    let mut ev = Event::maintenance(
        "restore",
        format!("restored from {}", path.display()),
        meta,
        &append.now,
        "manual",
        &append.actor,
    );
    store.init()?;
    let owner = ctx.owner;
    // Same order as the hooks (correlation state, then the store), so a hook never writes the
    // replaced history's correlation hints back after the restore.
    let _state =
        crate::state::LockedState::open(&ctx.data_dir, &owner, store.options().lock_timeout)?;
    let outcome = store.with_writer_lock(|guard| -> Result<_, CliError> {
        let outcome = backup::restore_locked(guard, &verified, &mut ev)?;
        // Derived from the replaced history: the next query rebuilds the index.
        crate::index::EventIndex::remove(&ctx.data_dir)?;
        remove_file_if_exists(&ctx.layout.correlation)?;
        Ok(outcome)
    })?;
    if let Some(old) = &outcome.leftover {
        eprintln!(
            " !     warning: could not remove the replaced segments at {}; delete it by hand",
            old.display()
        );
    }
    println!(
        "restored {} event(s) in {} segment(s) from {}, replacing {} event(s) (last id {})",
        m.event_count,
        m.segment_count,
        path.display(),
        now.events,
        outcome.replaced_last_id
    );
    println!(
        "recorded the restore as event {}; chain head {}",
        outcome.event_id, outcome.chain_head
    );
    Ok(())
}

fn id_range(first: u64, last: u64) -> String {
    if last == 0 {
        "no ids".into()
    } else {
        format!("ids {first}..{last}")
    }
}

fn remove_file_if_exists(p: &Path) -> Result<(), CliError> {
    match crate::safefs::remove_file(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CliError::Io {
            path: p.display().to_string(),
            source,
        }),
    }
}

/// `--older-than`: digits only (reference: `^[0-9]+$`).
fn parse_days(v: Option<String>) -> Result<u64, CliError> {
    let v = v.ok_or_else(|| {
        CliError::Usage("usage: dokku audit:prune-backups --older-than DAYS [--yes]".into())
    })?;
    let bad = || CliError::Usage("--older-than must be a positive integer".into());
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    v.parse().map_err(|_| bad())
}

/// The time in a default backup name (`audit-YYYYmmdd-HHMMSS`), `None` for any other name.
fn backup_time(name: &str) -> Option<DateTime<Utc>> {
    let stamp = name.strip_prefix(BACKUP_PREFIX)?;
    let shape_ok = stamp.len() == 15
        && stamp.bytes().enumerate().all(|(i, c)| {
            if i == 8 {
                c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, BACKUP_TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Runs `prune-backups`.
pub fn run_prune_backups(ctx: &Context, args: PruneBackupsArgs) -> Result<(), CliError> {
    let days = parse_days(args.older_than)?;
    let dir = backups_dir(ctx);
    if !dir.is_dir() {
        println!("no backups to prune (directory does not exist)");
        return Ok(());
    }
    // A cutoff before the earliest representable time deletes nothing.
    let cutoff = i64::try_from(days)
        .ok()
        .and_then(TimeDelta::try_days)
        .and_then(|d| ctx.clock.now().checked_sub_signed(d));
    let io = |source| CliError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut old = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(t) = backup_time(&name) else {
            continue;
        };
        // Only real directories: a file or a symlink with a backup's name is not ours.
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir && cutoff.is_some_and(|c| t < c) {
            old.push(name);
        }
    }
    old.sort();
    if !args.yes {
        println!("would delete backups: {}", old.len());
        for name in &old {
            println!("{name}");
        }
        return Ok(());
    }
    for name in &old {
        let p = dir.join(name);
        crate::safefs::remove_dir_all(&p).map_err(|source| CliError::Io {
            path: p.display().to_string(),
            source,
        })?;
    }
    let mut meta = Map::new();
    meta.insert("older_than_days".into(), Value::from(days));
    meta.insert("deleted_count".into(), Value::from(old.len()));
    meta.insert("backup_dir".into(), Value::from(dir.display().to_string()));
    let append = ctx.maintenance_append("manual");
    let mut ev = [Event::maintenance(
        "prune-backups",
        format!("pruned {} backup(s) older than {days} days", old.len()),
        meta,
        &append.now,
        "manual",
        &append.actor,
    )];
    ctx.store()?.append(&mut ev, &append)?;
    println!("deleted backups: {}", old.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names() {
        assert_eq!(
            backup_time("audit-20260401-120000").map(|t| t.to_rfc3339()),
            Some("2026-04-01T12:00:00+00:00".into())
        );
        assert!(backup_time("audit-20260401-120000.db").is_none());
        assert!(backup_time("audit-20261301-120000").is_none());
        assert!(backup_time(".audit-20260401-120000.tmp-1").is_none());
        assert!(backup_time("audit-2026040a-120000").is_none());
    }

    #[test]
    fn days() {
        assert_eq!(parse_days(Some("7".into())).ok(), Some(7));
        assert!(parse_days(Some("-1".into())).is_err());
        assert!(parse_days(Some("7d".into())).is_err());
        assert!(parse_days(None).is_err());
    }
}
