//! Maintenance defects found while writing a reader from segments-format.md alone (issue 15):
//! the prune dry run over the active segment, an import's plain copies, the one list of
//! leftovers shared by doctor and vacuum, and demo's size figures.

use crate::util::{self, demo_jsonl, stdout, TestEnv};

/// `prune` without `--yes` used to fail with "seal it first" when the cut fell inside the
/// active segment; it must report exactly what `--yes` then does.
#[test]
fn prune_dry_run_reports_what_yes_does_when_the_cut_is_in_the_active_segment() {
    for (args, whole) in [
        // Some of the active segment's events: it is rewritten.
        (&["--older-than", "0", "--category", "app"][..], false),
        // All of them (the import's own maintenance event is older than now too).
        (&["--older-than", "0"][..], true),
    ] {
        // The import's own maintenance event is stamped 23:00, the same UTC day as the events
        // (no rotation); the prune runs half an hour later, so it is older than the cutoff too.
        let env = TestEnv::new().env("DOKKU_AUDIT_NOW", "2026-04-08T23:00:00Z");
        let prune = |args: &[&str]| {
            let o = env
                .command(args)
                .env("DOKKU_AUDIT_NOW", "2026-04-08T23:30:00Z")
                .output()
                .unwrap();
            assert!(o.status.success(), "{args:?}: {}", util::stderr(&o));
            stdout(&o)
        };
        // One day of events: everything is in the active segment.
        let input = env.file("in.jsonl", &one_day(40));
        env.ok(&["import", input.to_str().unwrap()]);
        assert!(
            env.segment_files(".jsonl.zst").is_empty(),
            "all active: {:?}",
            env.segment_files(".jsonl.zst")
        );
        let before = env.export_events().len();
        let mut dry_args = vec!["prune"];
        dry_args.extend_from_slice(args);
        let dry = prune(&dry_args);
        let would: u64 = dry
            .lines()
            .find_map(|l| l.strip_prefix("would delete events: "))
            .unwrap_or_else(|| panic!("{dry}"))
            .parse()
            .unwrap();
        assert!(would > 0, "{dry}");
        assert_eq!(
            dry.contains("1 deleted whole, 0 rewritten"),
            whole,
            "{args:?}: {dry}"
        );
        assert!(
            whole || dry.contains("0 deleted whole, 1 rewritten"),
            "{dry}"
        );
        assert_eq!(
            env.export_events().len(),
            before,
            "a dry run deletes nothing"
        );
        let mut yes_args = dry_args.clone();
        yes_args.push("--yes");
        let done = prune(&yes_args);
        assert_eq!(done, format!("deleted events: {would}\n"), "{args:?}");
        assert!(env.run(&["verify"]).status.success());
    }
}

/// `n` events on 2026-04-08 from 10:00, one a minute, two app events to one config event.
fn one_day(n: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..n {
        let (cat, action, class) = if i % 3 == 0 {
            ("config", "set", "config_change")
        } else {
            ("app", "create", "app_create")
        };
        out.push_str(&format!(
            r#"{{"ts":"2026-04-08T10:{i:02}:00Z","app":"a{i}","category":"{cat}","action":"{action}","status":"success","classification":"{class}","source_trigger":"t","source_type":null,"image_tag":null,"rev":null,"actor_type":"system","actor_name":null,"actor_label":"dokku-system","correlation_id":null,"message":"m{i}","meta":{{}}}}"#
        ));
        out.push('\n');
    }
    out.into_bytes()
}

/// An import seals the segments it creates and drops their plain copies at once; only the
/// segment that was active when it began keeps its plain copy for the grace period.
#[test]
fn import_keeps_plain_copies_only_of_the_segment_active_before_it() {
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "16384");
    let first = env.file("first.jsonl", &demo_jsonl(5, 0));
    env.ok(&["import", first.to_str().unwrap()]);
    let active_before = env.active_segment().unwrap();
    let many = env.file("many.jsonl", &demo_jsonl(400, 3));
    env.ok(&["import", many.to_str().unwrap()]);
    let sealed = env.segment_files(".jsonl.zst");
    let plain = env.segment_files(".jsonl");
    assert!(sealed.len() >= 10, "{sealed:?}");
    let active_now = env.active_segment().unwrap();
    // The segment active before the import (sealed by it, kept for shippers) and the new
    // active segment: nothing else.
    let mut want = vec![active_before, active_now];
    want.sort();
    want.dedup();
    assert_eq!(plain, want);
    assert!(env.run(&["verify"]).status.success());
    assert_eq!(env.export_events().len(), 5 + 1 + 400 + 1);
}

/// A crashed backup's temp file in `backups/` (name from `safefs::temp_name`, the pid last)
/// is reported by doctor and removed by vacuum: one list.
#[test]
fn doctor_and_vacuum_share_one_list_of_leftovers() {
    let env = TestEnv::new();
    let input = env.file("in.jsonl", &demo_jsonl(5, 0));
    env.ok(&["import", input.to_str().unwrap()]);
    // A pid that is not running: above the kernel's pid_max.
    let dead = 4_194_305u32;
    let backups = env.data.join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let names = [
        format!("backups/.daily.tmp-0a1b2c3d-{dead}"),
        format!("quarantine/.00000000000000000001.jsonl.5.torn.tmp-99ff-{dead}"),
    ];
    std::fs::create_dir_all(env.data.join("quarantine")).unwrap();
    for n in &names {
        std::fs::write(env.data.join(n), b"partial").unwrap();
    }
    let doctor = stdout(&env.run(&["doctor"]));
    for n in &names {
        assert!(
            doctor.contains(&format!(
                "leftover temporary file: {n} (run: dokku audit:vacuum)"
            )),
            "{n}: {doctor}"
        );
    }
    env.ok(&["vacuum"]);
    for n in &names {
        assert!(!env.data.join(n).exists(), "vacuum left {n}");
    }
    let doctor = stdout(&env.run(&["doctor"]));
    assert!(!doctor.contains("leftover temporary file:"), "{doctor}");
}

/// demo's size line counts sealed bytes per sealed event, and shows the active segment and
/// plain copies apart.
#[test]
fn demo_prints_sealed_size_apart_from_plain_copies() {
    let env = TestEnv::new();
    let out = env.ok(&["demo", "--events", "3000", "--days", "10"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("sealed: "))
        .unwrap_or_else(|| panic!("{out}"));
    let per_event: f64 = line
        .split('(')
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (20.0..200.0).contains(&per_event),
        "sealed bytes per event: {line}"
    );
    assert!(line.contains("active segment: "), "{line}");
    // demo's append creates every segment it seals: no plain copy waits for a shipper.
    assert!(
        line.ends_with("plain copies in their grace period: 0 bytes"),
        "{line}"
    );
}

/// A spool left by a writer that died holding the lock (no hand-off happened): `status` counts
/// it, `doctor` reports it once it is over a minute old, and `vacuum` appends it.
#[test]
fn a_spool_left_behind_shows_in_status_and_doctor_and_vacuum_appends_it() {
    use fs4::fs_std::FileExt;
    let env = TestEnv::new();
    env.ok(&["migrate"]);
    let root = env.tmp.path().join("dokku-root");
    std::fs::create_dir_all(&root).unwrap();
    let lock = std::fs::File::open(env.data.join("LOCK")).unwrap();
    assert!(FileExt::try_lock_exclusive(&lock).unwrap());
    let out = crate::util::plugin_trigger(
        "post-create",
        &["left-behind"],
        &env.data,
        &root,
        "4242",
        "2026-04-08T20:00:00Z",
    )
    .env("DOKKU_AUDIT_HOOK_TIMEOUT_MS", "20")
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", util::stderr(&out));
    // The holder dies: its lock goes away, and nothing hands the spool off.
    drop(lock);
    let spool = env.data.join("spool");
    let files: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let status = env.ok(&["status"]);
    assert!(
        status.contains("spooled events: 1 (oldest spooled at 20"),
        "{status}"
    );
    let doctor = env.run(&["doctor"]);
    assert!(
        stdout(&doctor).contains("(being drained)"),
        "{}",
        stdout(&doctor)
    );
    // Spooled two minutes ago (the time is the name's; the events keep their own).
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let old = spool.join(format!(
        "{:024}-4242-0.spool.jsonl",
        now_ns - 120_000_000_000
    ));
    std::fs::rename(&files[0], &old).unwrap();
    let doctor = env.run(&["doctor"]);
    assert!(!doctor.status.success());
    assert!(
        stdout(&doctor).contains("issue: 1 spooled event(s) in 1 file(s), the oldest spooled at")
            && stdout(&doctor).contains("no query shows them"),
        "{}",
        stdout(&doctor)
    );
    assert!(!env
        .ok(&["recent", "--format", "jsonl"])
        .contains("left-behind"));
    env.ok(&["vacuum"]);
    assert_eq!(std::fs::read_dir(&spool).unwrap().count(), 0);
    assert!(env.ok(&["status"]).contains("spooled events: 0\n"));
    assert!(env
        .ok(&["recent", "--format", "jsonl"])
        .contains("left-behind"));
    assert!(stdout(&env.run(&["doctor"])).contains("ok: spool: empty"));
}
