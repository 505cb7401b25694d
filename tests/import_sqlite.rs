//! `import-sqlite`: a real SQLite database with pruvon/dokku-audit's schema (reference §2.3),
//! built with the `sqlite3` CLI and holding a few thousand rows with NULLs, unicode and odd meta
//! JSON, moves into segments: every row arrives in order, `verify` passes, `last-deploys` shows
//! the same deploys, a second import is refused, bad input is refused without appending.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util::{self, assert_dokku_error, TestEnv};
use serde_json::Value;

const SCHEMA: &str = "
PRAGMA application_id = 1145132356; PRAGMA user_version = 5;
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, app TEXT NULL,
  category TEXT NOT NULL, action TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'success',
  classification TEXT NULL, source_trigger TEXT NOT NULL, source_type TEXT NULL, image_tag TEXT NULL,
  rev TEXT NULL, actor_type TEXT NOT NULL DEFAULT 'system', actor_name TEXT NULL,
  correlation_id TEXT NULL, message TEXT NULL, meta_json TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE TABLE pending_deploys (app TEXT PRIMARY KEY, correlation_id TEXT NOT NULL, source_type TEXT,
  rev TEXT, metadata_json TEXT NOT NULL DEFAULT '{}', first_seen_ts TEXT NOT NULL, updated_ts TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE pending_command_contexts (id INTEGER PRIMARY KEY AUTOINCREMENT, app TEXT,
  subcommand TEXT NOT NULL, command_text TEXT NOT NULL, args_json TEXT NOT NULL DEFAULT '[]',
  actor_type TEXT NOT NULL DEFAULT 'system', actor_name TEXT, actor_source TEXT, hostname TEXT,
  created_at TEXT NOT NULL, actor_meta_json TEXT NOT NULL DEFAULT '{}');
CREATE TABLE pending_runtime_events (id INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id INTEGER NOT NULL REFERENCES events(id) ON DELETE CASCADE, app TEXT NOT NULL,
  subcommand TEXT NOT NULL, args_json TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL);
CREATE TABLE pending_event_actor_contexts (app TEXT NOT NULL, event_kind TEXT NOT NULL,
  source_subcommand TEXT NOT NULL, command_text TEXT NOT NULL,
  actor_type TEXT NOT NULL DEFAULT 'system', actor_name TEXT,
  actor_meta_json TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  PRIMARY KEY (app, event_kind));
CREATE INDEX idx_events_ts ON events(ts DESC);
CREATE INDEX idx_events_deploy ON events(ts DESC) WHERE category = 'deploy';
INSERT INTO meta (key, value) VALUES ('plugin_version', '0.1.0'), ('db_initialized_at', '2026-03-01T00:00:00Z');
";

pub(crate) fn have_sqlite() -> bool {
    Command::new("sqlite3").arg("-version").output().is_ok()
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn opt(s: Option<&str>) -> String {
    s.map_or("NULL".into(), q)
}

/// `n` rows cycling through every kind of oddity.
pub(crate) fn build_db(dir: &Path, n: usize) -> PathBuf {
    let db = dir.join("audit.db");
    let mut sql = String::from(SCHEMA);
    sql.push_str("BEGIN;\n");
    let apps = ["api", "ünïcødé", "日本語-app", "web🚀"];
    let metas = [
        r#"{}"#,
        r#"{"keys":["A","B"],"value_redacted":true}"#,
        r#"{"nested":{"deep":[1,2,{"x":null}]},"ssh_name":"alice","actor_source":"SSH_NAME"}"#,
        "not json",
        "",
        r#"[1,2,3]"#,
        r#"{"note":"ünïcødé 🚀 日本語","list":[{"a":"b"}]}"#,
    ];
    for i in 0..n {
        let ts = format!(
            "2026-03-{:02}T{:02}:{:02}:{:02}Z",
            1 + (i / 3600) % 28,
            (i / 60) % 24,
            i % 60,
            (i * 7) % 60
        );
        let app = if i % 10 == 0 { None } else { Some(apps[i % 4]) };
        let (cat, action, class, trig) = match i % 5 {
            0 => ("deploy", "finish", Some("source_deploy"), "post-deploy"),
            1 => ("deploy", "finish", Some("release_only"), "post-deploy"),
            2 => (
                "deploy",
                "finish",
                Some("deploy_failed"),
                "report-deploy-status",
            ),
            3 => ("config", "set", Some("config_change"), "post-config-update"),
            _ => (
                "command",
                "invoke",
                (i % 3 != 0).then_some("dokku_command"),
                "user-auth",
            ),
        };
        let status = if class == Some("deploy_failed") {
            "error"
        } else {
            "success"
        };
        let rev = (cat == "deploy").then(|| format!("{i:040x}"));
        let actor = if i % 3 == 0 { Some("alice") } else { None };
        let msg = if i % 7 == 0 {
            None
        } else {
            Some(format!("message {i} ✓ «quoted» 'single' 🚀 日本語 ünïcødé"))
        };
        sql.push_str(&format!(
            "INSERT INTO events (ts, app, category, action, status, classification, source_trigger, source_type, image_tag, rev, actor_type, actor_name, correlation_id, message, meta_json, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {});\n",
            q(&ts),
            opt(app),
            q(cat),
            q(action),
            q(status),
            opt(class),
            q(trig),
            opt((cat == "deploy").then_some("git-push")),
            opt((cat == "deploy" && i % 4 != 0).then_some("dokku/api:latest")),
            opt(rev.as_deref()),
            q(if actor.is_some() { "user" } else { "system" }),
            opt(actor),
            opt((i % 2 == 0).then_some("aud_1712606520000_deadbeef")),
            opt(msg.as_deref()),
            q(metas[i % metas.len()]),
            q(&ts),
        ));
    }
    sql.push_str("COMMIT;\n");
    let mut child = Command::new("sqlite3")
        .arg(&db)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    db
}

fn sqlite_json(db: &Path, sql: &str) -> Vec<Value> {
    let out = Command::new("sqlite3")
        .arg("-json")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_default()
}

#[test]
fn every_row_arrives_and_deploys_match() {
    if !have_sqlite() {
        eprintln!("SKIPPED: sqlite3 not installed");
        return;
    }
    let env = TestEnv::new();
    let db = build_db(env.tmp.path(), 3000);
    let out = env.ok(&["import-sqlite", db.to_str().unwrap()]);
    assert!(out.contains("imported events: 3000"), "{out}");
    let rows = sqlite_json(&db, "SELECT * FROM events ORDER BY id");
    let events: Vec<Value> = env
        .export_events()
        .into_iter()
        .filter(|e| e["category"] != "maintenance")
        .collect();
    assert_eq!(events.len(), rows.len());
    for (row, ev) in rows.iter().zip(&events) {
        assert_eq!(ev["meta"]["sqlite_id"], row["id"]);
        for k in [
            "ts",
            "app",
            "category",
            "action",
            "status",
            "classification",
            "source_trigger",
            "source_type",
            "image_tag",
            "rev",
            "actor_type",
            "actor_name",
            "correlation_id",
            "created_at",
        ] {
            assert_eq!(ev[k], row[k], "{k} of row {}", row["id"]);
        }
        assert_eq!(
            ev["message"],
            row["message"].as_str().map_or(Value::from(""), Value::from)
        );
        let raw = row["meta_json"].as_str().unwrap();
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(m)) => {
                for (k, v) in m {
                    assert_eq!(ev["meta"][&k], v);
                }
            }
            _ => assert_eq!(ev["meta"]["sqlite_meta_raw"], raw),
        }
    }
    let marker = env.export_events().pop().unwrap();
    assert_eq!(marker["action"], "import");
    assert_eq!(marker["meta"]["source"], "sqlite");
    assert_eq!(marker["meta"]["imported_count"], 3000);
    let odd = rows
        .iter()
        .filter(|r| {
            !matches!(
                serde_json::from_str::<Value>(r["meta_json"].as_str().unwrap()),
                Ok(Value::Object(_))
            )
        })
        .count();
    assert!(odd > 1000, "{odd}");
    assert_eq!(marker["meta"]["meta_unparsable"], odd);
    assert_eq!(marker["meta"]["sqlite_first_id"], 1);
    assert_eq!(marker["meta"]["sqlite_last_id"], 3000);
    assert_eq!(marker["meta"]["first_ts"], rows[0]["ts"]);
    assert_eq!(marker["meta"]["last_ts"], rows[2999]["ts"]);
    let canonical = std::fs::canonicalize(&db).unwrap();
    assert_eq!(marker["meta"]["path"], canonical.to_str().unwrap());
    // NULLs really occurred in every nullable column, and unicode survived byte for byte.
    for k in [
        "app",
        "classification",
        "source_type",
        "image_tag",
        "rev",
        "actor_name",
        "correlation_id",
        "message",
    ] {
        assert!(rows.iter().any(|r| r[k].is_null()), "no NULL {k}");
    }
    let apps: Vec<&str> = events.iter().filter_map(|e| e["app"].as_str()).collect();
    for want in ["ünïcødé", "日本語-app", "web🚀"] {
        assert!(apps.contains(&want), "{want} missing");
    }
    assert!(events
        .iter()
        .any(|e| e["meta"]["note"] == "ünïcødé 🚀 日本語"));
    assert!(events.iter().all(|e| e["actor_label"].is_string()));
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", util::stdout(&v));
    // last-deploys shows the same deploys as the old database.
    let key = |r: &Value| {
        (
            r["ts"].clone(),
            r["app"].clone(),
            r["classification"].clone(),
            r["rev"].clone(),
        )
    };
    let want: Vec<_> = sqlite_json(
        &db,
        "SELECT ts, app, classification, rev FROM events WHERE category='deploy' AND action='finish' ORDER BY ts DESC, id DESC LIMIT 1000",
    )
    .iter()
    .map(key)
    .collect();
    let got: Vec<_> = env
        .ok(&["last-deploys", "--limit", "1000", "--format", "jsonl"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| key(&e))
        .collect();
    assert_eq!(want.len(), 1000);
    assert_eq!(got, want);

    // Twice by accident: refused, nothing appended; --again does it.
    let before = env.ok(&["export"]);
    assert_dokku_error(
        &env.run(&["import-sqlite", db.to_str().unwrap()]),
        "already imported",
    );
    assert_eq!(before, env.ok(&["export"]));
    // The same database copied elsewhere is recognised by its ids and count.
    let copy = env.tmp.path().join("copy-of-audit.db");
    std::fs::copy(&db, &copy).unwrap();
    assert_dokku_error(
        &env.run(&["import-sqlite", copy.to_str().unwrap()]),
        "was already imported (events 1..3000); pass --again",
    );
    assert_eq!(before, env.ok(&["export"]));
    assert!(env
        .ok(&["import-sqlite", "--again", db.to_str().unwrap()])
        .contains("imported events: 3000"));
}

#[test]
fn bad_databases_are_refused_without_appending() {
    if !have_sqlite() {
        eprintln!("SKIPPED: sqlite3 not installed");
        return;
    }
    let env = TestEnv::new();
    let not_db = env.file("x.db", b"this is not sqlite");
    assert_dokku_error(
        &env.run(&["import-sqlite", "/nonexistent/audit.db"]),
        "no such file",
    );
    assert_dokku_error(
        &env.run(&["import-sqlite", not_db.to_str().unwrap()]),
        "x.db",
    );
    let other = env.tmp.path().join("other.db");
    let ok = Command::new("sqlite3")
        .arg(&other)
        .arg("CREATE TABLE events (id INTEGER);")
        .status()
        .unwrap();
    assert!(ok.success());
    assert_dokku_error(
        &env.run(&["import-sqlite", other.to_str().unwrap()]),
        "not a dokku-audit SQLite database",
    );
    let db = build_db(env.tmp.path(), 10);
    let out = env
        .command(&["import-sqlite", db.to_str().unwrap()])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_dokku_error(&out, "sqlite3");
    // Wrong application_id on an otherwise right schema; right id without an events table.
    let wrong = env.tmp.path().join("wrong.db");
    sqlite_exec(&wrong, &SCHEMA.replace("1145132356", "42"));
    assert_dokku_error(
        &env.run(&["import-sqlite", wrong.to_str().unwrap()]),
        "not a dokku-audit SQLite database",
    );
    let empty = env.tmp.path().join("empty.db");
    sqlite_exec(
        &empty,
        "PRAGMA application_id = 1145132356; CREATE TABLE meta (key TEXT);",
    );
    assert_dokku_error(
        &env.run(&["import-sqlite", empty.to_str().unwrap()]),
        "not a dokku-audit SQLite database",
    );
    assert!(!env.data.join("segments").exists(), "nothing appended");
}

fn sqlite_exec(db: &Path, sql: &str) {
    let ok = Command::new("sqlite3").arg(db).arg(sql).status().unwrap();
    assert!(ok.success());
}

#[test]
fn bad_timestamp_is_refused_with_its_row_id() {
    if !have_sqlite() {
        eprintln!("SKIPPED: sqlite3 not installed");
        return;
    }
    let env = TestEnv::new();
    let db = build_db(env.tmp.path(), 20);
    sqlite_exec(
        &db,
        "UPDATE events SET ts = '2026-03-01 10:00:00' WHERE id = 17;",
    );
    assert_dokku_error(
        &env.run(&["import-sqlite", db.to_str().unwrap()]),
        "row id 17",
    );
    assert!(!env.data.join("segments").exists(), "nothing appended");
    // created_at is checked too.
    sqlite_exec(
        &db,
        "UPDATE events SET ts = created_at WHERE id = 17; UPDATE events SET created_at = 'yesterday' WHERE id = 3;",
    );
    assert_dokku_error(
        &env.run(&["import-sqlite", db.to_str().unwrap()]),
        "row id 3",
    );
    assert!(!env.data.join("segments").exists(), "nothing appended");
}

#[test]
fn more_rows_than_one_page_arrive_in_order() {
    if !have_sqlite() {
        eprintln!("SKIPPED: sqlite3 not installed");
        return;
    }
    let env = TestEnv::new();
    let db = env.tmp.path().join("big.db");
    // 60,000 rows (more than one 50,000-row page), then holes in the ids.
    let sql = format!(
        "{SCHEMA}
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
        INSERT INTO events (id, ts, app, category, action, source_trigger, message, meta_json, created_at)
        SELECT i, strftime('%Y-%m-%dT%H:%M:%SZ', 1767225600 + i, 'unixepoch'), 'app-' || (i % 7),
          'command', 'invoke', 'user-auth', 'row ' || i, '{{\"i\":' || i || '}}',
          strftime('%Y-%m-%dT%H:%M:%SZ', 1767225600 + i, 'unixepoch') FROM n;
        DELETE FROM events WHERE id % 1000 = 0 OR id = 50001;"
    );
    sqlite_exec(&db, &sql);
    let out = env.ok(&["import-sqlite", db.to_str().unwrap()]);
    assert!(out.contains("imported events: 59939"), "{out}");
    let events = env.export_events();
    let marker = events.last().unwrap();
    assert_eq!(marker["meta"]["sqlite_first_id"], 1);
    assert_eq!(marker["meta"]["sqlite_last_id"], 59999);
    let old_ids: Vec<u64> = events[..events.len() - 1]
        .iter()
        .map(|e| e["meta"]["sqlite_id"].as_u64().unwrap())
        .collect();
    let want: Vec<u64> = (1..=60000u64)
        .filter(|i| i % 1000 != 0 && *i != 50001)
        .collect();
    assert_eq!(old_ids, want);
    assert!(events
        .windows(2)
        .all(|w| w[0]["ts"].as_str() <= w[1]["ts"].as_str() || w[1]["category"] == "maintenance"));
    for e in &events[..events.len() - 1] {
        assert_eq!(e["meta"]["i"], e["meta"]["sqlite_id"]);
    }
}
