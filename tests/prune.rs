//! Prune and retention, black box: exact cutoff, whole-segment deletion plus boundary rewrite,
//! category prune touching only the segments that hold matches, chain still verifiable, ids
//! never reused, the index never returning a removed event, dry runs deleting nothing.

use std::os::unix::fs::MetadataExt;

use crate::util::{self, assert_dokku_error, TestEnv};
use serde_json::Value;

/// One event per hour from 2026-04-01T00:00:00Z, alternating categories.
fn hourly(n: usize) -> Vec<u8> {
    let start = dokku_audit::timefmt::parse_canonical("2026-04-01T00:00:00Z").unwrap();
    let mut out = String::new();
    for i in 0..n {
        let ts = dokku_audit::timefmt::format_utc(start + chrono::Duration::hours(i as i64));
        let (cat, action, class) = if i % 3 == 0 {
            ("config", "set", "config_change")
        } else {
            ("app", "create", "app_create")
        };
        out.push_str(&format!(
            r#"{{"ts":"{ts}","app":"a{i}","category":"{cat}","action":"{action}","status":"success","classification":"{class}","source_trigger":"t","source_type":null,"image_tag":null,"rev":null,"actor_type":"system","actor_name":null,"actor_label":"dokku-system","correlation_id":null,"message":"m{i}","meta":{{}}}}"#
        ));
        out.push('\n');
    }
    out.into_bytes()
}

fn setup(n: usize) -> TestEnv {
    // Daily rotation: one sealed segment per day.
    let env = TestEnv::new().env("DOKKU_AUDIT_NOW", "2026-04-11T00:00:00Z");
    let p = env.file("in.jsonl", &hourly(n));
    env.ok(&["import", p.to_str().unwrap()]);
    env
}

fn events(env: &TestEnv) -> Vec<Value> {
    env.export_events()
}

fn ts_of(env: &TestEnv) -> Vec<String> {
    events(env)
        .iter()
        .filter(|e| e["category"] != "maintenance")
        .map(|e| e["ts"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn age_prune_is_exact_at_the_cutoff_and_keeps_the_chain() {
    let env = setup(240); // 10 days
                          // now = 04-11T00:00Z, 7 days → cutoff 04-04T00:00:00Z: that event is kept.
    let dry = env.ok(&["prune", "--older-than", "7"]);
    assert!(dry.contains("would delete events: 72"), "{dry}");
    assert_eq!(ts_of(&env).len(), 240, "a dry run deletes nothing");
    let out = env.ok(&["prune", "--older-than", "7", "--yes"]);
    assert_eq!(out, "deleted events: 72\n");
    let left = ts_of(&env);
    assert_eq!(left.len(), 168);
    assert_eq!(left[0], "2026-04-04T00:00:00Z");
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", util::stdout(&v));
    let prune = events(&env)
        .into_iter()
        .rev()
        .find(|e| e["action"] == "prune")
        .unwrap();
    assert_eq!(prune["meta"]["deleted_count"], 72);
    assert_eq!(prune["meta"]["min_id"], 1);
    assert_eq!(prune["meta"]["max_id"], 72);
    assert_eq!(prune["meta"]["older_than_days"], 7);
    assert_eq!(prune["classification"], "maintenance_prune");
    // The index forgot them too.
    let recent = env.ok(&["recent", "--limit", "1000", "--format", "jsonl"]);
    assert!(!recent.contains("\"m0\"") && recent.contains("\"m72\""));
    // A boundary that cuts a day in half rewrites that segment only.
    let env2 = TestEnv::new().env("DOKKU_AUDIT_NOW", "2026-04-11T12:00:00Z");
    let p = env2.file("in.jsonl", &hourly(240));
    env2.ok(&["import", p.to_str().unwrap()]);
    assert_eq!(
        env2.ok(&["prune", "--older-than", "7", "--yes"]),
        "deleted events: 84\n"
    );
    assert_eq!(ts_of(&env2)[0], "2026-04-04T12:00:00Z");
    assert!(env2.run(&["verify"]).status.success());
    // JSON output reads the rewritten segment through the refreshed index.
    let j = env2.ok(&["timeline", "a84", "--format", "json"]);
    assert!(j.contains("\"message\":\"m84\""), "{j}");
}

#[test]
fn category_prune_rewrites_only_affected_segments() {
    let env = setup(240);
    let before: Vec<(String, u64)> = env
        .segment_files(".jsonl.zst")
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::metadata(p).unwrap().ino(),
            )
        })
        .collect();
    // Only day 1 (first 24 events) is older than 9 days; of it only config events go.
    let out = env.ok(&[
        "prune",
        "--older-than",
        "9",
        "--category",
        "config",
        "--yes",
    ]);
    assert_eq!(out, "deleted events: 8\n");
    let after: Vec<(String, u64)> = env
        .segment_files(".jsonl.zst")
        .iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::metadata(p).unwrap().ino(),
            )
        })
        .collect();
    let unchanged = before.iter().filter(|b| after.contains(b)).count();
    assert_eq!(
        unchanged,
        before.len() - 1,
        "only the first day's segment changed"
    );
    let evs = events(&env);
    assert_eq!(
        evs.iter()
            .filter(|e| e["category"] == "config" && e["ts"].as_str().unwrap() < "2026-04-02")
            .count(),
        0
    );
    assert_eq!(
        evs.iter().filter(|e| e["category"] == "app").count(),
        160,
        "other categories untouched"
    );
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", util::stdout(&v));
    let prune = evs.iter().rev().find(|e| e["action"] == "prune").unwrap();
    assert_eq!(prune["meta"]["category"], "config");
    assert_eq!(prune["meta"]["chain_anchors"].as_array().unwrap().len(), 8);
    // Tampering is still detected after a prune.
    let plain = env.active_segment().unwrap();
    let text = std::fs::read_to_string(&plain).unwrap();
    std::fs::write(
        &plain,
        text.replacen("prune completed", "prune complete!", 1),
    )
    .unwrap();
    assert!(!env.run(&["verify"]).status.success());
}

#[test]
fn ids_are_never_reused_even_after_pruning_everything() {
    let env = setup(48);
    let last_before = events(&env).last().unwrap()["id"].as_u64().unwrap();
    let mut later = env;
    later
        .extra_env
        .push(("DOKKU_AUDIT_NOW".into(), "2026-05-01T00:00:00Z".into()));
    assert_eq!(
        later.ok(&["prune", "--older-than", "0", "--yes"]),
        "deleted events: 49\n"
    );
    let evs = later.export_events();
    assert_eq!(evs.len(), 1, "only the prune record is left");
    assert_eq!(evs[0]["id"].as_u64().unwrap(), last_before + 1);
    let p = later.file("one.jsonl", &hourly(1));
    later.ok(&["import", p.to_str().unwrap()]);
    let ids: Vec<u64> = later
        .export_events()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [last_before + 1, last_before + 2, last_before + 3]);
    assert!(later.run(&["verify"]).status.success());
}

#[test]
fn retention_deletes_only_expired_segments_when_one_is_sealed() {
    let mut next = setup(240); // 10 daily segments, sealed by the import's rotations
    next.extra_env
        .push(("DOKKU_AUDIT_RETENTION_DAYS".into(), "3".into()));
    // An append on a new day seals the active segment: retention runs then.
    next.extra_env
        .push(("DOKKU_AUDIT_NOW".into(), "2026-04-12T01:00:00Z".into()));
    let line = r#"{"ts":"2026-04-12T01:00:00Z","app":"late","category":"app","action":"create","status":"success","classification":"app_create","source_trigger":"t","source_type":null,"image_tag":null,"rev":null,"actor_type":"system","actor_name":null,"actor_label":"dokku-system","correlation_id":null,"message":"late","meta":{}}"#;
    let p = next.file("late.jsonl", format!("{line}\n").as_bytes());
    next.ok(&["import", p.to_str().unwrap()]);
    let left = ts_of(&next);
    // Cutoff 04-09T01:00Z: whole days before 04-09 went; 04-09 holds events after the cutoff,
    // so its segment stays whole (retention never splits a segment).
    assert_eq!(left[0], "2026-04-09T00:00:00Z", "{:?}", &left[..3]);
    assert!(next.run(&["verify"]).status.success());
    let ret = next
        .export_events()
        .into_iter()
        .find(|e| e["meta"].get("retention_days").is_some())
        .expect("a retention record");
    assert_eq!(ret["meta"]["retention_days"], 3);
    assert_eq!(ret["meta"]["deleted_count"], 192);
    assert!(!next
        .ok(&["recent", "--limit", "1000", "--format", "jsonl"])
        .contains("\"m0\""));
}

#[test]
fn bad_prune_flags_change_nothing() {
    let env = setup(24);
    let before = env.ok(&["export"]);
    for (args, needle) in [
        (&["prune"][..], "usage: dokku audit:prune --older-than DAYS"),
        (
            &["prune", "--older-than", "x", "--yes"],
            "--older-than must be a positive integer",
        ),
        (
            &["prune", "--older-than", "-3", "--yes"],
            "--older-than must be a positive integer",
        ),
        (&["prune", "--older-than", "1", "--bogus"], "--bogus"),
    ] {
        assert_dokku_error(&env.run(args), needle);
    }
    assert_eq!(before, env.ok(&["export"]));
}

#[test]
fn vacuum_merges_small_segments_keeping_ids_and_chain() {
    let env = setup(240); // 10 small daily segments
    env.ok(&["recent", "--limit", "1"]); // build the index on the old layout
    std::fs::create_dir(env.data.join("compact-999999")).unwrap();
    std::fs::write(env.data.join("state-leftover"), b"x").unwrap();
    let before = env.ok(&["export"]);
    let sealed_before = env.segment_files(".jsonl.zst").len();
    assert!(sealed_before >= 9);
    assert_eq!(env.ok(&["vacuum"]), "vacuum completed\n");
    assert_eq!(env.segment_files(".jsonl.zst").len(), 1, "merged into one");
    assert!(
        !env.data.join("compact-999999").exists(),
        "leftover removed"
    );
    assert!(
        env.data.join("state-leftover").exists(),
        "foreign files are not touched"
    );
    let after = env.ok(&["export"]);
    assert!(
        after.starts_with(&before),
        "events, ids and bytes unchanged"
    );
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", util::stdout(&v));
    let last: Value = serde_json::from_str(after.lines().last().unwrap()).unwrap();
    assert_eq!(last["message"], "vacuum completed");
    assert_eq!(last["classification"], "maintenance_vacuum");
    assert_eq!(last["meta"]["optimize"], true);
    // Queries read the merged segment through the refreshed index.
    let j = env.ok(&["timeline", "a5", "--format", "json"]);
    assert!(j.contains("\"message\":\"m5\""), "{j}");
    // zstdcat reads the merged segment.
    let seg = env.segment_files(".jsonl.zst").pop().unwrap();
    let out = std::process::Command::new("zstdcat")
        .arg(&seg)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 240);
    // Again: nothing left to merge, still one record.
    assert_eq!(env.ok(&["vacuum"]), "vacuum completed\n");
    assert!(env.run(&["verify"]).status.success());
}
