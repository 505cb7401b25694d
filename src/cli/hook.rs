//! `dokku-audit hook <trigger> [args…]`: what every trigger shim execs.
//!
//! Posture (capture.md): nothing on stdout (except `report`, whose output Dokku shows), never a
//! read of stdin, a failure is one warning line on stderr and exit 0 — exit 1 only with
//! `strict_mode=true`, and never for `user-auth` (a failing `user-auth` denies every Dokku
//! command). Locks are waited for at most `hook_timeout_ms`, so a held lock costs under a second.
//!
//! This path does not go through clap: trigger arguments are whatever Dokku passes, including
//! things that look like flags, and the process should start and finish in a few milliseconds.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::event::build::{Capture, Probes};
use crate::event::correlate::Windows;
use crate::event::host::HostIdentity;
use crate::hook::{lossy_args, Hook, HookEnv, Trigger};
use crate::record::ActorStamp;
use crate::settings::Settings;
use crate::state::{self, LockedState};
use crate::store::{AppendContext, Ownership, Store, StoreError, StoreOptions};

use super::DEFAULT_DATA_DIR;

/// Runs a trigger. `argv` is everything after `hook`.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let mut args = lossy_args(argv);
    if args.is_empty() {
        eprintln!(" !     usage: dokku-audit hook <trigger> [args…]");
        return ExitCode::from(1);
    }
    let name = args.remove(0);
    let data_dir = data_dir_from_env();
    let settings = Settings::load(&data_dir).unwrap_or_default();
    let strict = settings.bool("strict_mode").unwrap_or(false);
    let Some(trigger) = Trigger::from_name(&name) else {
        return failed(&name, None, "unknown trigger", strict, false);
    };
    if trigger == Trigger::Report {
        report(&data_dir, &settings);
        return ExitCode::SUCCESS;
    }
    match record(trigger, &args, &data_dir, &settings) {
        Ok(None) => ExitCode::SUCCESS,
        Ok(Some(partial)) => {
            // The events are durable; only the correlation state could not be saved.
            eprintln!(" !     dokku-audit: warning: {}: {partial}", trigger.name());
            ExitCode::SUCCESS
        }
        Err(why) => failed(
            trigger.name(),
            Hook::warning_app(trigger, &args),
            &why,
            strict,
            trigger == Trigger::UserAuth,
        ),
    }
}

fn data_dir_from_env() -> PathBuf {
    std::env::var_os("DOKKU_AUDIT_DATA_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .map(|p| crate::safefs::resolve_data_dir(&p))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

fn failed(
    trigger: &str,
    app: Option<String>,
    why: &str,
    strict: bool,
    never_deny: bool,
) -> ExitCode {
    let app = app.map(|a| format!(" for app '{a}'")).unwrap_or_default();
    let why = why.replace(['\n', '\r'], " ");
    eprintln!(" !     dokku-audit: warning: failed to record {trigger}{app}: {why}");
    if strict && !never_deny {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Parses, correlates, appends, saves the state. Any error is a string for the warning line.
fn record(
    trigger: Trigger,
    args: &[String],
    data_dir: &Path,
    settings: &Settings,
) -> Result<Option<String>, String> {
    let hook = Hook::parse(trigger, args).map_err(|e| e.to_string())?;
    let env = HookEnv::from_process();
    if crate::event::build::records_nothing(&hook, &env) && !state::has_open_commands(data_dir) {
        return Ok(None);
    }
    record_with(trigger.name(), &env, data_dir, settings, |c| c.build(&hook))
}

/// The common path of triggers and `report-deploy-status`: lock the state, build, append, save.
/// `Ok(Some(why))`: the events were appended but the state could not be saved.
pub fn record_with(
    source_trigger: &'static str,
    env: &HookEnv,
    data_dir: &Path,
    settings: &Settings,
    build: impl FnOnce(&mut Capture<'_>) -> crate::event::build::Built,
) -> Result<Option<String>, String> {
    let started = Instant::now();
    let clock = Clock::from_env().map_err(|e| e.to_string())?;
    let int = |key, min, max| settings.int(key, min, max).map_err(|e| e.to_string());
    let budget = Duration::from_millis(int("hook_timeout_ms", 0, 60_000)?);
    let now = clock.now();
    let windows = Windows {
        now: now.timestamp(),
        match_window: int("command_match_window_seconds", 0, 30 * 86_400)? as i64,
        stale: int("pending_stale_threshold_seconds", 0, 365 * 86_400)? as i64,
        deploy_expiry: int("pending_deploy_expiry_seconds", 0, 365 * 86_400)? as i64,
    };
    // Reference §4.1: a non-numeric value means 1024.
    let deploy_metadata_max = settings
        .raw("deploy_metadata_max_bytes")
        .trim()
        .parse::<usize>()
        .unwrap_or(1024);
    let owner = Ownership::from_env();
    // The state lock is only for attribution: when it cannot be had within the budget (other
    // triggers hold it on a loaded host), the event is still recorded — built from a snapshot
    // of the state, marked as such, and spooled if the store is busy too — never dropped.
    let mut locked = match LockedState::open(data_dir, &owner, budget) {
        Ok(l) => Some(l),
        Err(state::StateError::Busy { .. }) => None,
        Err(e) => return Err(e.to_string()),
    };
    let mut snapshot = None;
    let state_locked = locked.is_some();
    let state = match locked.as_mut() {
        Some(l) => &mut l.state,
        None => snapshot.insert(state::snapshot(data_dir)),
    };
    state.expire(&windows);
    let probes = Probes::default();
    let now_ts = crate::timefmt::format_utc(now);
    let mut capture = Capture {
        source_trigger,
        state,
        env,
        windows,
        now_ts: now_ts.clone(),
        deploy_metadata_max,
        probes: &probes,
        state_locked,
    };
    let mut built = build(&mut capture);
    let Some(mut locked) = locked else {
        // Built from a snapshot: say so on every event; the budget is spent, so one try for
        // the writer lock, then the spool. The state is left as it was.
        for ev in built.events.iter_mut() {
            ev.meta.insert(
                "correlation_state".into(),
                serde_json::Value::from("unavailable: built from a snapshot (state lock busy)"),
            );
        }
        let how = match append_or_spool(
            data_dir,
            settings,
            owner,
            source_trigger,
            &mut built,
            now_ts,
            Duration::ZERO,
        )? {
            Stored::Nothing => return Ok(None),
            Stored::Appended => "recorded",
            Stored::Spooled => "spooled (the store was busy)",
        };
        return Ok(Some(format!(
            "{how}; the correlation state was busy, so this event was attributed from a snapshot"
        )));
    };
    let budget_left = budget.saturating_sub(started.elapsed());
    match append_or_spool(
        data_dir,
        settings,
        owner,
        source_trigger,
        &mut built,
        now_ts,
        budget_left,
    )? {
        Stored::Nothing => locked.save().map(|()| None).map_err(|e| e.to_string()),
        // Maintenance held the writer lock for longer than our budget: the events are durable
        // in the spool; the next writer appends them (ids then). The correlation state cannot
        // learn their ids, which only a later deploy-source-set amend would have used.
        Stored::Spooled => Ok(locked.save().err().map(|e| {
            format!("spooled (the store was busy), but correlation state not saved: {e}")
        })),
        Stored::Appended => {
            built.learn_ids(&mut locked.state);
            Ok(locked
                .save()
                .err()
                .map(|e| format!("recorded, but correlation state not saved: {e}")))
        }
    }
}

/// Where a trigger's events went.
enum Stored {
    /// There were none.
    Nothing,
    /// Appended to the segments (ids assigned in `built`).
    Appended,
    /// The writer lock stayed busy: durably in the spool.
    Spooled,
}

/// The one way a trigger stores its events: append, waiting at most `lock_timeout` for the
/// writer lock, else spool. A seal failure after a durable append is only a warning.
fn append_or_spool(
    data_dir: &Path,
    settings: &Settings,
    owner: Ownership,
    source_trigger: &'static str,
    built: &mut crate::event::build::Built,
    now_ts: String,
    lock_timeout: Duration,
) -> Result<Stored, String> {
    if built.events.is_empty() {
        return Ok(Stored::Nothing);
    }
    let mut opts = StoreOptions::from_settings(settings).map_err(|e| e.to_string())?;
    opts.lock_timeout = lock_timeout;
    let store = Store::new(data_dir, opts, owner);
    // Stamped here, the one way every captured event goes to the store or the spool.
    let host = HostIdentity::for_recording(settings);
    for ev in built.events.iter_mut() {
        host.stamp(&mut ev.meta);
    }
    let mut actor = ActorStamp::system();
    host.stamp(&mut actor.meta);
    let ctx = AppendContext {
        now: now_ts,
        source_trigger: source_trigger.to_string(),
        actor,
    };
    match store.append(&mut built.events, &ctx) {
        Ok(receipt) => {
            if !receipt.seal_errors.is_empty() {
                // Recorded (durable); only the compression of a full segment failed.
                eprintln!(
                    " !     dokku-audit: warning: recorded, but sealing failed (the next write retries): {}",
                    receipt.seal_errors.join("; ")
                );
            }
            if let Some(e) = receipt.drain_error {
                eprintln!(
                    " !     dokku-audit: warning: recorded, but the spool could not be drained (the next write retries): {e}"
                );
            }
            Ok(Stored::Appended)
        }
        Err(StoreError::Fs(crate::safefs::FsError::LockBusy { .. })) => {
            let drain_error = store
                .spool(&mut built.events, &ctx)
                .map_err(|e| e.to_string())?;
            if let Some(e) = drain_error {
                eprintln!(
                    " !     dokku-audit: warning: spooled, but the spool could not be drained (the next write retries): {e}"
                );
            }
            Ok(Stored::Spooled)
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The `report` trigger (`dokku report [APP]`): four-space indented lines.
fn report(data_dir: &Path, settings: &Settings) {
    let store = StoreOptions::from_settings(settings)
        .ok()
        .map(|o| Store::new(data_dir, o, Ownership::from_env()));
    let stats = store.as_ref().and_then(|s| s.stats().ok());
    let format = store
        .as_ref()
        .and_then(|s| s.read_format().ok().flatten())
        .map(|v| v.to_string());
    let unavailable = || "unavailable".to_string();
    let pending = state::snapshot(data_dir).deploys.len();
    let lines = [
        ("audit plugin enabled", "true".to_string()),
        ("audit data directory", data_dir.display().to_string()),
        ("audit format version", format.unwrap_or_else(unavailable)),
        (
            "audit total events",
            stats
                .as_ref()
                .map_or_else(unavailable, |s| s.events.to_string()),
        ),
        (
            "audit pending deploys",
            if stats.is_some() {
                pending.to_string()
            } else {
                unavailable()
            },
        ),
        (
            "audit last event",
            stats.as_ref().map_or_else(unavailable, |s| {
                s.last_ts.clone().unwrap_or_else(|| "-".into())
            }),
        ),
    ];
    let mut out = String::new();
    for (k, v) in lines {
        out.push_str(&format!("    {k}: {v}\n"));
    }
    print!("{out}");
}
