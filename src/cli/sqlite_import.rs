//! `import-sqlite <audit.db> [--again]`: moves a host's history from pruvon/dokku-audit's SQLite
//! database (reference §2.3) into segments: every column mapped, times and order kept (by the old
//! id), new ids assigned (the old one kept as `meta.sqlite_id`), one batch with a
//! `maintenance`/`import` marker, refused a second time unless `--again`.
//!
//! The database is read with the `sqlite3` command-line tool in JSON mode rather than a Rust
//! SQLite crate: no C library compiled into the binary (which runs before every `dokku`
//! command), and the tool is present wherever the old plugin ran — it required it.
//!
//! The database may come from a directory others can write to, so it is read as hostile: with
//! `-readonly` and `-safe` (SQLite 3.37+: the shell's `edit()`, which runs a command even on a
//! read-only database, `readfile()`, `writefile()`, `load_extension()`, `ATTACH` … are refused),
//! and only when `events` is a real table (a view could call any of those). The two checks stand
//! apart: the table check is made by one `sqlite3` run and the rows are read by others, so a
//! file swapped in between is still read in safe mode.

use std::ops::ControlFlow;
use std::path::Path;
use std::process::Command;

use clap::Args as ClapArgs;
use serde_json::{Map, Value};

use super::{CliError, Context};
use crate::event::actor::actor_label;
use crate::record::Event;
use crate::store::ScanItem;

/// Arguments of `import-sqlite`.
#[derive(Debug, ClapArgs)]
pub struct ImportSqliteArgs {
    /// The old plugin's database (usually /var/lib/dokku/data/dokku-audit/audit.db).
    #[arg(value_name = "AUDIT_DB")]
    pub path: String,
    /// Import it even though it was imported before.
    #[arg(long)]
    pub again: bool,
}

/// The old plugin's `PRAGMA application_id` ("DAUD").
const APPLICATION_ID: i64 = 1_145_132_356;
/// Rows per `sqlite3` call.
const PAGE: u64 = 50_000;

fn sqlite(db: &Path, sql: &str) -> Result<Vec<Value>, CliError> {
    let out = Command::new("sqlite3")
        .arg("-readonly")
        .arg("-safe")
        .arg("-json")
        .arg(db)
        .arg(sql)
        .output()
        .map_err(|e| {
            CliError::Usage(format!(
                "cannot run sqlite3 ({e}); install it (apt-get install sqlite3) to import {}",
                db.display()
            ))
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().next().unwrap_or("sqlite3 failed").trim();
        if first.contains("-json") || first.contains("-readonly") || first.contains("-safe") {
            // JSON mode came with SQLite 3.33 (2020), safe mode with 3.37 (2021); older tools
            // reject the options, and reading without safe mode is not an option.
            return Err(CliError::Usage(format!(
                "the installed sqlite3 is too old to read {} safely (needs 3.37 or newer for -json and -safe): {first}",
                db.display()
            )));
        }
        if first.contains("in safe mode") {
            return Err(CliError::Usage(format!(
                "{} was refused: reading it calls what sqlite3 forbids in safe mode ({first}); is it a hostile database? nothing was imported",
                db.display()
            )));
        }
        return Err(CliError::Usage(format!(
            "{} is not a readable SQLite database: {first}",
            db.display()
        )));
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    match serde_json::from_slice(&out.stdout) {
        Ok(Value::Array(rows)) => Ok(rows),
        _ => Err(CliError::Usage(format!(
            "unexpected output from sqlite3 for {}",
            db.display()
        ))),
    }
}

fn text(row: &Value, k: &str) -> Option<String> {
    match row.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// One old row as an event (id 0: assigned at append). `unparsable` counts odd `meta_json`.
fn event_of(row: &Value, unparsable: &mut u64) -> Result<Event, CliError> {
    let old_id = row.get("id").and_then(Value::as_u64).unwrap_or(0);
    let bad = |what: &str| {
        CliError::Usage(format!(
            "events row id {old_id}: {what}; nothing was imported"
        ))
    };
    let ts = text(row, "ts").ok_or_else(|| bad("ts is missing"))?;
    let mut meta = match text(row, "meta_json") {
        Some(raw) => match serde_json::from_str::<Value>(&raw) {
            Ok(Value::Object(m)) => m,
            _ => {
                *unparsable += 1;
                let mut m = Map::new();
                m.insert("sqlite_meta_raw".into(), Value::from(raw));
                m
            }
        },
        None => Map::new(),
    };
    meta.insert("sqlite_id".into(), Value::from(old_id));
    let actor_type = text(row, "actor_type").unwrap_or_else(|| "system".into());
    let actor_name = text(row, "actor_name").filter(|n| !n.is_empty());
    let label = actor_label(&actor_type, actor_name.as_deref(), &meta);
    let nonempty = |k: &str, default: &str| {
        text(row, k)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    };
    let event = Event {
        id: 0,
        created_at: text(row, "created_at").unwrap_or_else(|| ts.clone()),
        ts,
        app: text(row, "app"),
        category: nonempty("category", "unknown"),
        action: nonempty("action", "unknown"),
        status: nonempty("status", "success"),
        classification: text(row, "classification"),
        source_trigger: nonempty("source_trigger", "unknown"),
        source_type: text(row, "source_type"),
        image_tag: text(row, "image_tag"),
        rev: text(row, "rev"),
        actor_type: if actor_type.is_empty() {
            "system".into()
        } else {
            actor_type
        },
        actor_name,
        actor_label: label,
        correlation_id: text(row, "correlation_id"),
        message: text(row, "message").unwrap_or_default(),
        meta,
    };
    event.validate().map_err(|e| bad(&e.to_string()))?;
    Ok(event)
}

/// Whether `ev` is the marker of an earlier import of this database: same path, or same count
/// and first/last old id. (`sqlite_path` is the key an earlier build of this command wrote.)
fn is_marker_of(ev: &Event, abs: &str, total: u64, lo: Option<u64>, hi: Option<u64>) -> bool {
    let m = &ev.meta;
    if ev.category != "maintenance" || m.get("source").and_then(Value::as_str) != Some("sqlite") {
        return false;
    }
    let same_path = ["path", "sqlite_path"]
        .iter()
        .any(|k| m.get(*k).and_then(Value::as_str) == Some(abs));
    let num = |k: &str| m.get(k).and_then(Value::as_u64);
    let same_rows = total > 0
        && num("imported_count") == Some(total)
        && num("sqlite_first_id") == lo
        && num("sqlite_last_id") == hi;
    same_path || same_rows
}

/// Runs `import-sqlite`.
pub fn run(ctx: &Context, a: ImportSqliteArgs) -> Result<(), CliError> {
    let db = Path::new(&a.path);
    if !db.is_file() {
        return Err(CliError::Usage(format!("no such file: {}", db.display())));
    }
    let abs = std::fs::canonicalize(db)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| a.path.clone());
    let id = sqlite(db, "PRAGMA application_id;")?;
    let app_id = id
        .first()
        .and_then(|r| r.get("application_id"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let has_events = !sqlite(
        db,
        "SELECT name FROM sqlite_master WHERE type='table' AND name='events';",
    )?
    .is_empty();
    if app_id != APPLICATION_ID {
        return Err(CliError::Usage(format!(
            "{} is not a dokku-audit SQLite database (application_id {app_id}, expected {APPLICATION_ID})",
            db.display()
        )));
    }
    if !has_events {
        return Err(CliError::Usage(format!(
            "{} is not a dokku-audit SQLite database (it has no events table)",
            db.display()
        )));
    }
    // What this database holds, to recognise an earlier import of it even from another path.
    let summary = sqlite(
        db,
        "SELECT count(*) AS n, min(id) AS lo, max(id) AS hi FROM events;",
    )?;
    let field = |k: &str| {
        summary
            .first()
            .and_then(|r| r.get(k))
            .and_then(Value::as_u64)
    };
    let (total, lo_id, hi_id) = (field("n").unwrap_or(0), field("lo"), field("hi"));
    let store = ctx.store()?;
    if !a.again && store.check_readable().is_ok() {
        let mut earlier: Option<(u64, u64)> = None;
        store.scan(&mut |item| {
            if let ScanItem::Line { line, .. } = item {
                // Only maintenance events are parsed (an import marker is one).
                if line.category() == Some("maintenance") {
                    if let Ok(ev) =
                        Event::from_json_text(&String::from_utf8_lossy(&line.event_json()))
                    {
                        if is_marker_of(&ev, &abs, total, lo_id, hi_id) {
                            let n = ev
                                .meta
                                .get("imported_count")
                                .and_then(Value::as_u64)
                                .unwrap_or(0);
                            earlier = Some((ev.id.saturating_sub(n), ev.id.saturating_sub(1)));
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        })?;
        if let Some((lo, hi)) = earlier {
            return Err(CliError::Usage(format!(
                "{} was already imported (events {lo}..{hi}); pass --again to import it a second time",
                db.display()
            )));
        }
    }
    // Every row is checked and encoded before anything is written; the encoded batch (not the
    // parsed rows) is what stays in memory, one `sqlite3` page of parsed rows at a time.
    let mut bytes: Vec<u8> = Vec::new();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    // (ts, old id) of the first and last row.
    let mut first: Option<(String, u64)> = None;
    let mut last: Option<(String, u64)> = None;
    let mut unparsable = 0u64;
    let mut after = 0u64;
    let host = crate::event::host::HostIdentity::for_recording(&ctx.settings);
    loop {
        let rows = sqlite(
            db,
            &format!(
                "SELECT id, ts, app, category, action, status, classification, source_trigger, \
                 source_type, image_tag, rev, actor_type, actor_name, correlation_id, message, \
                 meta_json, created_at FROM events WHERE id > {after} ORDER BY id LIMIT {PAGE};"
            ),
        )?;
        let page_len = rows.len() as u64;
        for row in rows {
            let Some(id) = row.get("id").and_then(Value::as_u64) else {
                return Err(CliError::Usage(format!(
                    "{}: an events row has no integer id; nothing was imported",
                    db.display()
                )));
            };
            after = id;
            let mut event = event_of(&row, &mut unparsable)?;
            // The old plugin only ever recorded the host it ran on: this one.
            host.stamp(&mut event.meta);
            let start = bytes.len();
            bytes.extend_from_slice(&event.to_json_bytes());
            spans.push((start, bytes.len()));
            if first.is_none() {
                first = Some((event.ts.clone(), id));
            }
            last = Some((event.ts, id));
        }
        if page_len < PAGE {
            break;
        }
    }
    let (Some((first_ts, first_old)), Some((last_ts, last_old))) = (first, last) else {
        println!("imported events: 0");
        return Ok(());
    };
    let count = spans.len();
    let append = ctx.maintenance_append("manual");
    let mut extra = Map::new();
    extra.insert("source".into(), Value::from("sqlite"));
    extra.insert("path".into(), Value::from(abs));
    extra.insert("sqlite_first_id".into(), Value::from(first_old));
    extra.insert("sqlite_last_id".into(), Value::from(last_old));
    extra.insert("meta_unparsable".into(), Value::from(unparsable));
    let marker = super::import::marker(
        &append,
        count,
        "sqlite",
        Some(&first_ts),
        Some(&last_ts),
        extra,
        format!("imported {count} event(s) from the SQLite plugin"),
    );
    let mut batch = spans
        .iter()
        .map(|&(a, b)| &bytes[a..b])
        .chain(std::iter::once(marker.as_slice()));
    let receipt = store.append_raw(&mut batch, &append)?;
    println!("imported events: {count}");
    println!(
        "ids: {}..{}",
        receipt.first_id,
        receipt.last_id.saturating_sub(1)
    );
    Ok(())
}
