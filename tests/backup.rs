//! Black-box tests of `backup`, `restore` and `prune-backups` through the binary: a backup taken
//! while four writer processes append restores to a store that verifies and holds every event
//! acknowledged before the backup began; sealed segments are hard links; the manifest matches
//! `sha256sum`; `zstdcat`/`jq` read the backup; a damaged backup is refused without touching the
//! data; `restore --yes` gives exactly the backup's events; `prune-backups` cuts off exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{assert_dokku_error, demo_jsonl, stderr, stdout, TestEnv};
use serde_json::Value;

fn sh(cmd: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("bash")
}

/// A store with a few sealed segments and an active one.
fn seeded() -> TestEnv {
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "16384");
    let path = env.file("seed.jsonl", &demo_jsonl(400, 4));
    env.ok(&["import", path.to_str().unwrap()]);
    assert!(env.segment_files(".jsonl.zst").len() >= 4);
    env
}

/// Makes a backup and returns its path (the last stdout line).
fn backup(env: &TestEnv, extra: &[&str]) -> PathBuf {
    let mut args = vec!["backup"];
    args.extend_from_slice(extra);
    let out = env.ok(&args);
    PathBuf::from(out.lines().last().expect("backup prints its path"))
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn manifest(bk: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(bk.join("MANIFEST.json")).unwrap()).unwrap()
}

/// An independent copy of a backup (no hard links into the store, so damaging it is safe).
fn copy_of(env: &TestEnv, bk: &Path, name: &str) -> PathBuf {
    let dst = env.tmp.path().join(name);
    let o = sh(&format!("cp -r '{}' '{}'", bk.display(), dst.display()));
    assert!(o.status.success(), "{}", stderr(&o));
    dst
}

fn flip_byte(p: &Path, at: usize) {
    let mut b = std::fs::read(p).unwrap();
    b[at] ^= 0x20;
    std::fs::write(p, b).unwrap();
}

#[test]
fn backup_under_concurrent_writers_restores_every_acknowledged_event() {
    let env = Arc::new(seeded());
    let done: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (env, done) = (Arc::clone(&env), Arc::clone(&done));
            std::thread::spawn(move || {
                for i in 0..15 {
                    let app = format!("w{w}-{i}");
                    let o = env.run(&["report-deploy-status", &app, "failed"]);
                    assert!(o.status.success(), "{}", stderr(&o));
                    done.lock().unwrap().push((app, Instant::now()));
                }
            })
        })
        .collect();
    while done.lock().unwrap().len() < 12 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    let bk = backup(&env, &[]);
    for w in writers {
        w.join().unwrap();
    }
    assert!(bk.starts_with(env.data.join("backups")), "{}", bk.display());
    assert_eq!(
        bk.file_name().unwrap(),
        "audit-20260408-200000",
        "named after DOKKU_AUDIT_NOW"
    );
    let acknowledged: BTreeSet<String> = done
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, t)| *t < started)
        .map(|(a, _)| a.clone())
        .collect();
    assert!(acknowledged.len() >= 12);
    assert!(
        done.lock().unwrap().len() > acknowledged.len(),
        "writers were still appending while the backup ran"
    );

    // The backup verifies on its own (it has the layout of a data directory).
    let bk_s = bk.to_str().unwrap();
    let v = env.run(&["--data-dir", bk_s, "verify"]);
    assert!(v.status.success(), "{}", stdout(&v));

    // Restore into a fresh data directory.
    let other = env.tmp.path().join("restored");
    let other_s = other.to_str().unwrap();
    env.ok(&["--data-dir", other_s, "restore", bk_s, "--yes"]);
    let v = env.run(&["--data-dir", other_s, "verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
    let restored = env.ok(&["--data-dir", other_s, "export", "--format", "jsonl"]);
    let apps: BTreeSet<String> = restored
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["app"].as_str().map(str::to_string))
        .collect();
    let missing: Vec<_> = acknowledged.difference(&apps).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but not restored: {missing:?}"
    );
    // Nothing in the backup was made up: each restored event is in the live store, same bytes.
    let live: BTreeSet<String> = env
        .ok(&["export", "--format", "jsonl"])
        .lines()
        .map(str::to_string)
        .collect();
    let restored_lines: Vec<&str> = restored.lines().collect();
    let (last, history) = restored_lines.split_last().unwrap();
    for l in history {
        assert!(live.contains(*l), "not in the live store: {l}");
    }
    let last: Value = serde_json::from_str(last).unwrap();
    assert_eq!(last["action"], "restore");

    // Sealed segments are hard links of the store's files; the plain one is a copy.
    let m = manifest(&bk);
    let files = m["files"].as_array().unwrap();
    let mut sealed = 0;
    for f in files {
        let rel = f["path"].as_str().unwrap();
        let p = bk.join(rel);
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.len(), f["size"].as_u64().unwrap(), "{rel}");
        let sum = sh(&format!("sha256sum '{}'", p.display()));
        assert_eq!(
            stdout(&sum).split_whitespace().next().unwrap(),
            f["sha256"].as_str().unwrap(),
            "{rel}"
        );
        if rel.ends_with(".jsonl.zst") {
            sealed += 1;
            let src = env.segments_dir().join(p.file_name().unwrap());
            assert_eq!(meta.ino(), std::fs::metadata(&src).unwrap().ino(), "{rel}");
            let o = sh(&format!(
                "set -o pipefail; zstdcat '{}' | jq -e -c 'select(.id > 0)' | wc -l",
                p.display()
            ));
            assert!(o.status.success(), "{rel}: {}", stderr(&o));
        } else if rel.ends_with(".jsonl") {
            assert_eq!(meta.nlink(), 1, "the active segment is copied, not linked");
            let o = sh(&format!(
                "jq -e -c 'select(.id > 0)' '{}' >/dev/null",
                p.display()
            ));
            assert!(o.status.success(), "{rel}: {}", stderr(&o));
        }
    }
    assert!(sealed >= 4, "{m}");
    assert!(files.iter().any(|f| f["path"] == "FORMAT"));
    for key in ["index", "state", "LOCK", "backups", "quarantine"] {
        assert!(!bk.join(key).exists(), "{key} must not be in a backup");
    }
    assert_eq!(m["format_version"], 1);
    assert_eq!(m["created_at"], "2026-04-08T20:00:00Z");
    assert_eq!(m["first_id"], 1);
    assert!(m["event_count"].as_u64().unwrap() >= 400 + 12);
    assert_eq!(m["chain_head"].as_str().unwrap().len(), 32);
    // No temporary directory is left behind.
    // (`.sha256-cache.json` remembers the hashes of immutable sealed segments.)
    let names: Vec<String> = std::fs::read_dir(env.data.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".sha256-cache.json")
        .collect();
    assert_eq!(names, vec!["audit-20260408-200000".to_string()]);

    // The backup is recorded as an event.
    let events = env.export_events();
    let ev = events
        .iter()
        .find(|e| e["action"] == "backup")
        .expect("backup event");
    assert_eq!(ev["category"], "maintenance");
    assert_eq!(ev["message"], "backup created");
    assert_eq!(ev["meta"]["output_path"], bk_s);
}

#[test]
fn backup_to_output_path_and_existing_target_is_refused() {
    let env = seeded();
    let dest = env.tmp.path().join("elsewhere").join("bk1");
    let bk = backup(&env, &["--output", dest.to_str().unwrap()]);
    assert_eq!(bk, dest);
    assert!(dest.join("MANIFEST.json").is_file());
    let before = snapshot(&env.data);
    let o = env.run(&["backup", "--output", dest.to_str().unwrap()]);
    assert_dokku_error(&o, "already exists");
    assert_eq!(
        before,
        snapshot(&env.data),
        "a refused backup writes nothing"
    );
}

#[test]
fn backup_on_another_filesystem_copies_instead_of_linking() {
    let env = seeded();
    let shm = Path::new("/dev/shm");
    let other_fs = std::fs::metadata(shm)
        .map(|m| m.is_dir() && m.dev() != std::fs::metadata(&env.data).unwrap().dev())
        .unwrap_or(false);
    if !other_fs {
        eprintln!("skipped: no second filesystem at /dev/shm");
        return;
    }
    let dest = shm.join(format!("dokku-audit-backup-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let out = env.ok(&["backup", "--output", dest.to_str().unwrap()]);
    let result = std::panic::catch_unwind(|| {
        assert!(out.contains("(0 hard-linked,"), "{out}");
        for e in std::fs::read_dir(dest.join("segments")).unwrap() {
            let p = e.unwrap().path();
            assert_eq!(std::fs::metadata(&p).unwrap().nlink(), 1, "{}", p.display());
            let src = env.segments_dir().join(p.file_name().unwrap());
            if p.to_string_lossy().ends_with(".zst") {
                assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&src).unwrap());
            }
        }
        let other = env.tmp.path().join("restored");
        let other_s = other.to_str().unwrap();
        env.ok(&[
            "--data-dir",
            other_s,
            "restore",
            dest.to_str().unwrap(),
            "--yes",
        ]);
        let v = env.run(&["--data-dir", other_s, "verify"]);
        assert!(v.status.success(), "{}", stdout(&v));
    });
    let _ = std::fs::remove_dir_all(&dest);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn restore_refuses_a_damaged_backup_and_changes_nothing() {
    let env = seeded();
    let bk = backup(&env, &[]);
    env.ok(&["report-deploy-status", "after", "failed"]);
    env.ok(&["recent"]); // an index exists
    let before = snapshot(&env.data);

    // A flipped byte in a sealed segment: the manifest checksum catches it.
    let bad = copy_of(&env, &bk, "flipped");
    let seg = std::fs::read_dir(bad.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".jsonl.zst"))
        .unwrap();
    flip_byte(&seg, 40);
    for extra in [&[][..], &["--yes"][..]] {
        let mut args = vec!["restore", bad.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = env.run(&args);
        assert_dokku_error(&o, "does not match its SHA-256");
        assert!(stderr(&o).contains(&seg.file_name().unwrap().to_string_lossy().to_string()));
        assert!(stdout(&o).is_empty());
        assert_eq!(before, snapshot(&env.data));
    }

    // The same damage with a manifest that was "fixed" to match: verify catches it.
    let forged = copy_of(&env, &bk, "forged");
    let plain = std::fs::read_dir(forged.join("segments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".jsonl"))
        .unwrap();
    flip_byte(&plain, 30);
    let rel = format!("segments/{}", plain.file_name().unwrap().to_string_lossy());
    let sum = sh(&format!("sha256sum '{}'", plain.display()));
    let mut m = manifest(&forged);
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == rel.as_str() {
            f["sha256"] = Value::from(stdout(&sum).split_whitespace().next().unwrap());
        }
    }
    std::fs::write(forged.join("MANIFEST.json"), m.to_string()).unwrap();
    let o = env.run(&["restore", forged.to_str().unwrap(), "--yes"]);
    assert_dokku_error(&o, "do not verify");
    assert_eq!(before, snapshot(&env.data));

    // A missing manifest.
    let bare = copy_of(&env, &bk, "bare");
    std::fs::remove_file(bare.join("MANIFEST.json")).unwrap();
    let o = env.run(&["restore", bare.to_str().unwrap(), "--yes"]);
    assert_dokku_error(&o, "MANIFEST.json is missing");
    assert_eq!(before, snapshot(&env.data));

    // A missing segment file.
    let short = copy_of(&env, &bk, "short");
    std::fs::remove_file(short.join(&rel)).unwrap();
    let o = env.run(&["restore", short.to_str().unwrap(), "--yes"]);
    assert_dokku_error(&o, &format!("{rel} is missing"));
    assert_eq!(before, snapshot(&env.data));

    // The real backup was never harmed by any of this, and a dry run changes nothing.
    let o = env.run(&["restore", bk.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("would replace"), "{text}");
    assert!(text.contains("--yes"), "{text}");
    assert_eq!(before, snapshot(&env.data));
}

#[test]
fn restore_yes_gives_exactly_the_backups_events_and_ids_move_on() {
    let env = seeded();
    env.ok(&["report-deploy-status", "before", "failed"]);
    let before = env.ok(&["export", "--format", "jsonl"]);
    let bk = backup(&env, &[]);
    // History after the backup: it is replaced by the restore.
    let path = env.file("more.jsonl", &demo_jsonl(300, 2));
    env.ok(&["import", path.to_str().unwrap()]);
    env.ok(&["recent"]);
    env.ok(&["report-deploy-status", "lost", "failed"]);
    let old_last = env.export_events().last().unwrap()["id"].as_u64().unwrap();
    std::fs::create_dir_all(env.data.join("state")).unwrap();
    std::fs::write(
        env.data.join("state").join("correlation.json"),
        b"{\"stale\":true}",
    )
    .unwrap();

    let out = env.ok(&["restore", bk.to_str().unwrap(), "--yes"]);
    assert!(out.contains("restored"), "{out}");
    assert!(!env.data.join("state/correlation.json").exists());
    let leftovers: Vec<String> = std::fs::read_dir(&env.data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("segments."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let after = env.ok(&["export", "--format", "jsonl"]);
    let mut lines: Vec<&str> = after.lines().collect();
    let restore_line = lines.pop().unwrap();
    assert_eq!(
        lines,
        before.lines().collect::<Vec<_>>(),
        "the backup's events"
    );
    let ev: Value = serde_json::from_str(restore_line).unwrap();
    assert_eq!(ev["category"], "maintenance");
    assert_eq!(ev["action"], "restore");
    assert_eq!(ev["classification"], "maintenance_restore");
    assert_eq!(
        ev["message"],
        format!("restored from {}", bk.display()).as_str()
    );
    assert_eq!(ev["meta"]["backup_path"], bk.to_str().unwrap());
    let backup_last = manifest(&bk)["last_id"].as_u64().unwrap();
    assert_eq!(ev["meta"]["backup_last_id"], backup_last);
    // Ids are never given out twice: the restore event comes after every id the replaced
    // history used, and so does the next append.
    let restore_id = ev["id"].as_u64().unwrap();
    assert_eq!(restore_id, old_last + 1);
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));

    // Queries work: the index was removed and is rebuilt from the restored segments.
    let recent = env.ok(&["recent", "--limit", "500", "--format", "jsonl"]);
    let ids: BTreeSet<u64> = recent
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert!(ids.contains(&restore_id));
    assert!(
        !ids.iter().any(|i| *i > backup_last && *i < restore_id),
        "{ids:?}"
    );
    assert!(
        !recent.contains("\"lost\""),
        "replaced history is gone from queries"
    );
    env.ok(&["report-deploy-status", "next", "failed"]);
    let last = env.export_events().pop().unwrap();
    assert_eq!(last["app"], "next");
    assert_eq!(last["id"].as_u64().unwrap(), restore_id + 1);
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
    let shown = env.ok(&["timeline", "next"]);
    assert!(shown.contains(&(restore_id + 1).to_string()), "{shown}");
}

#[test]
fn prune_backups_cuts_off_exactly_and_keeps_foreign_files() {
    let env = TestEnv::new();
    env.ok(&["migrate"]);
    let at = |now: &str| {
        let o = env
            .command(&["backup"])
            .env("DOKKU_AUDIT_NOW", now)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        PathBuf::from(stdout(&o).lines().last().unwrap())
    };
    // Now is 2026-04-08T20:00:00Z; seven days earlier is the cutoff.
    let old = at("2026-03-20T08:00:00Z");
    let at_cutoff = at("2026-04-01T20:00:00Z");
    let recent = at("2026-04-07T12:00:00Z");
    let dir = env.data.join("backups");
    std::fs::create_dir(dir.join("audit-20260401-195959")).unwrap(); // one second older
    std::fs::write(dir.join("audit-20260101-000000"), b"a file, not a backup").unwrap();
    std::fs::write(dir.join("notes.txt"), b"keep").unwrap();
    std::fs::create_dir(dir.join("manual-copy")).unwrap();
    std::fs::create_dir(dir.join(".audit-20260101-000000.tmp-1")).unwrap();
    std::fs::create_dir(dir.join("audit-20261399-000000")).unwrap(); // not a date
    let listing = || {
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let all = listing();
    let events = env.export_events().len();

    let out = env.ok(&["prune-backups", "--older-than", "7"]);
    assert_eq!(
        out,
        "would delete backups: 2\naudit-20260320-080000\naudit-20260401-195959\n"
    );
    assert_eq!(listing(), all, "a dry run deletes nothing");
    assert_eq!(
        env.export_events().len(),
        events,
        "a dry run records nothing"
    );

    let out = env.ok(&["prune-backups", "--older-than", "7", "--yes"]);
    assert_eq!(out, "deleted backups: 2\n");
    assert!(!old.exists());
    assert!(!dir.join("audit-20260401-195959").exists());
    assert!(at_cutoff.is_dir(), "a backup exactly at the cutoff is kept");
    assert!(recent.is_dir());
    let mut want: Vec<String> = all
        .into_iter()
        .filter(|n| n != "audit-20260320-080000" && n != "audit-20260401-195959")
        .collect();
    want.sort();
    assert_eq!(listing(), want);

    let ev = env.export_events().pop().unwrap();
    assert_eq!(ev["category"], "maintenance");
    assert_eq!(ev["action"], "prune-backups");
    assert_eq!(ev["classification"], "maintenance_prune_backups");
    assert_eq!(ev["message"], "pruned 2 backup(s) older than 7 days");
    let meta = ev["meta"].as_object().unwrap();
    let keys: Vec<&str> = meta.keys().map(String::as_str).take(3).collect();
    assert_eq!(keys, ["older_than_days", "deleted_count", "backup_dir"]);
    assert_eq!(meta["older_than_days"], 7);
    assert_eq!(meta["deleted_count"], 2);
    assert_eq!(meta["backup_dir"], dir.to_str().unwrap());

    // Nothing left to prune: the event is still written, with a count of 0.
    let out = env.ok(&["prune-backups", "--older-than", "7", "--yes"]);
    assert_eq!(out, "deleted backups: 0\n");
    let ev = env.export_events().pop().unwrap();
    assert_eq!(ev["meta"]["deleted_count"], 0);
    assert_eq!(ev["message"], "pruned 0 backup(s) older than 7 days");
}

#[test]
fn prune_backups_without_a_backups_directory() {
    let env = TestEnv::new();
    env.ok(&["report-deploy-status", "x", "failed"]);
    let out = env.ok(&["prune-backups", "--older-than", "1", "--yes"]);
    assert_eq!(out, "no backups to prune (directory does not exist)\n");
    assert_eq!(env.export_events().len(), 1, "no event");
}

#[test]
fn bad_flags_are_one_line_errors_and_write_nothing() {
    let env = seeded();
    let bk = backup(
        &env,
        &["--output", env.tmp.path().join("bk").to_str().unwrap()],
    );
    let bk_s = bk.to_str().unwrap();
    let before = snapshot(&env.data);
    let cases: &[(&[&str], &str)] = &[
        (
            &["prune-backups", "--older-than", "abc"],
            "--older-than must be a positive integer",
        ),
        (
            &["prune-backups", "--older-than", "-3", "--yes"],
            "--older-than must be a positive integer",
        ),
        (
            &["prune-backups", "--older-than", "7d", "--yes"],
            "--older-than must be a positive integer",
        ),
        (
            &["prune-backups", "--yes"],
            "usage: dokku audit:prune-backups --older-than DAYS",
        ),
        (&["prune-backups", "--older-than"], "--older-than"),
        (
            &["prune-backups", "--older-than", "7", "--bogus"],
            "--bogus",
        ),
        (&["restore"], "usage: dokku audit:restore <backup> [--yes]"),
        (&["restore", bk_s, "--bogus"], "--bogus"),
        (&["restore", bk_s, "extra", "--yes"], "extra"),
        (
            &["restore", "/nonexistent/backup", "--yes"],
            "no such directory",
        ),
        (&["backup", "--bogus"], "--bogus"),
        (&["backup", "--output"], "--output"),
        (&["backup", "--output", ""], "--output"),
        (&["backup", "--output", bk_s], "already exists"),
    ];
    for (args, needle) in cases {
        let o = env.run(args);
        assert_dokku_error(&o, needle);
        assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
        assert_eq!(before, snapshot(&env.data), "{args:?} wrote something");
    }
    // `audit:` prefixed forms reach the same commands.
    let o = env.run(&["audit:restore", bk_s]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(before, snapshot(&env.data));
}
