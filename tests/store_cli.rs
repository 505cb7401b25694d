//! Black-box tests of the segment store through the binary: import/export round trips,
//! rotation and sealing checked with the real `zstdcat` and `jq`, torn-tail repair, tamper
//! detection by `verify`, and refusal of bad input.

use std::path::Path;
use std::process::Command;

use crate::util::{self, assert_dokku_error, demo_jsonl, stderr, stdout, TestEnv};

/// Text of a JSON event line after its `"id":N,` prefix.
fn after_id(line: &str) -> &str {
    let rest = line.strip_prefix("{\"id\":").expect("line starts with id");
    &rest[rest.find(',').expect("comma after id")..]
}

fn sh(cmd: &str) -> std::process::Output {
    Command::new("bash")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("bash")
}

#[test]
fn twenty_thousand_imported_events_export_back_identical() {
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "1048576");
    let input = demo_jsonl(20_000, 45);
    let path = env.file("in.jsonl", &input);
    let out = env.ok(&["import", path.to_str().unwrap()]);
    assert!(out.contains("imported events: 20000"), "{out}");

    let exported = env.ok(&["export", "--format", "jsonl"]);
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(lines.len(), 20_001, "20000 events plus the import record");
    let input_text = String::from_utf8(input).unwrap();
    for (i, (got, want)) in lines.iter().zip(input_text.lines()).enumerate() {
        assert_eq!(
            after_id(got),
            after_id(want),
            "event {i} differs (fields or order)"
        );
    }
    let mut last = 0u64;
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let id = v["id"].as_u64().unwrap();
        assert!(id > last, "ids must strictly increase: {id} after {last}");
        last = id;
    }
    let marker: serde_json::Value = serde_json::from_str(lines[20_000]).unwrap();
    assert_eq!(marker["category"], "maintenance");
    assert_eq!(marker["action"], "import");
    assert_eq!(marker["meta"]["imported_count"], 20_000);
    // Both rotation rules fired: many segments, all but the active one sealed.
    assert!(env.segment_files(".jsonl.zst").len() >= 45);
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}

#[test]
fn sealed_segments_decode_with_zstdcat_and_every_line_parses_with_jq() {
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "262144");
    let path = env.file("in.jsonl", &demo_jsonl(6_000, 8));
    env.ok(&["import", path.to_str().unwrap()]);
    let sealed = env.segment_files(".jsonl.zst");
    assert!(sealed.len() >= 8, "expected rotation, got {sealed:?}");
    let mut total = 0usize;
    for seg in &sealed {
        let s = seg.display();
        let lines = sh(&format!("zstdcat '{s}' | wc -l"));
        assert!(lines.status.success());
        let n: usize = stdout(&lines).trim().parse().unwrap();
        let parsed = sh(&format!(
            "set -o pipefail; zstdcat '{s}' | jq -c 'select(.id > 0 and (.chain|length) == 32 and (.crc|length) == 8)' | wc -l"
        ));
        assert!(
            parsed.status.success(),
            "jq failed on {s}: {}",
            stderr(&parsed)
        );
        assert_eq!(stdout(&parsed).trim().parse::<usize>().unwrap(), n, "{s}");
        let t = sh(&format!("zstd -t -q '{s}'"));
        assert!(t.status.success(), "zstd -t {s}: {}", stderr(&t));
        total += n;
    }
    let active = env.active_segment().expect("an active segment");
    let first = std::fs::read(&active).unwrap();
    assert_eq!(first.first(), Some(&b'{'), "active segment is plain JSONL");
    let jq = sh(&format!("jq -c .id '{}' | wc -l", active.display()));
    assert!(jq.status.success());
    total += stdout(&jq).trim().parse::<usize>().unwrap();
    assert_eq!(total, 6_001);
}

#[test]
fn torn_tail_is_ignored_then_repaired_with_a_maintenance_event() {
    let env = TestEnv::new();
    let path = env.file("in.jsonl", &demo_jsonl(10, 0));
    env.ok(&["import", path.to_str().unwrap()]);
    let active = env.active_segment().unwrap();
    let torn = br#"{"id":12,"ts":"2026-04-08T20:00:00Z","app":"half"#;
    let mut bytes = std::fs::read(&active).unwrap();
    let good_len = bytes.len();
    bytes.extend_from_slice(torn);
    std::fs::write(&active, &bytes).unwrap();

    // Readers ignore the torn line.
    let events = env.export_events();
    assert_eq!(events.len(), 11);
    assert!(!env.ok(&["export"]).contains("half"));
    let v = env.run(&["verify"]);
    assert!(
        v.status.success(),
        "torn tail alone must verify: {}",
        stdout(&v)
    );
    assert!(stdout(&v).contains("torn final line"), "{}", stdout(&v));

    // The next append repairs it and says so.
    let one = env.file("one.jsonl", &demo_jsonl(1, 0));
    env.ok(&["import", one.to_str().unwrap()]);
    let events = env.export_events();
    let repair = events
        .iter()
        .find(|e| e["action"] == "repair")
        .expect("a repair event");
    assert_eq!(repair["category"], "maintenance");
    assert_eq!(repair["classification"], "maintenance_repair");
    assert_eq!(repair["meta"]["removed_bytes"], torn.len());
    assert_eq!(repair["meta"]["offset"], good_len);
    let q = env
        .data
        .join(repair["meta"]["quarantine"].as_str().unwrap());
    assert_eq!(
        std::fs::read(q).unwrap(),
        torn,
        "cut bytes are kept as evidence"
    );
    // Ids never reuse the torn line's id.
    assert!(events
        .iter()
        .all(|e| e["id"] != 12 || e["action"] == "repair" || e["id"].as_u64() > Some(12)));
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
    assert!(!stdout(&v).contains("torn"));
}

/// Imports events over three days so that two segments are sealed.
fn store_with_sealed_segments() -> TestEnv {
    let env = TestEnv::new();
    let path = env.file("in.jsonl", &demo_jsonl(300, 3));
    env.ok(&["import", path.to_str().unwrap()]);
    // Drop the plain copies kept for shippers so the sealed file is what every reader uses.
    for p in env.segment_files(".jsonl") {
        if Path::new(&format!("{}.zst", p.display())).exists() {
            std::fs::remove_file(p).unwrap();
        }
    }
    assert!(env.segment_files(".jsonl.zst").len() >= 2);
    assert!(env.run(&["verify"]).status.success());
    env
}

/// Rewrites a sealed segment's content with `edit`, recompressing with the real `zstd` and
/// keeping the original trailer frame (so only the content is tampered with).
fn tamper_sealed(seg: &Path, edit: impl FnOnce(Vec<&str>) -> Vec<String>) {
    let raw = std::fs::read(seg).unwrap();
    let frame_len = u32::from_le_bytes(raw[raw.len() - 4..].try_into().unwrap()) as usize;
    let trailer = raw[raw.len() - frame_len..].to_vec();
    let plain = stdout(&sh(&format!("zstdcat '{}'", seg.display())));
    let lines = edit(plain.lines().collect());
    let tmp = seg.with_extension("edit");
    std::fs::write(&tmp, lines.join("\n") + "\n").unwrap();
    let z = sh(&format!(
        "zstd -q -f -3 '{}' -o '{}'",
        tmp.display(),
        seg.display()
    ));
    assert!(z.status.success(), "{}", stderr(&z));
    let mut bytes = std::fs::read(seg).unwrap();
    bytes.extend_from_slice(&trailer);
    std::fs::write(seg, bytes).unwrap();
    std::fs::remove_file(tmp).unwrap();
}

fn seg_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn one_flipped_byte_in_sealed_content_is_named_by_segment_and_line() {
    let env = store_with_sealed_segments();
    let seg = env.segment_files(".jsonl.zst")[0].clone();
    tamper_sealed(&seg, |lines| {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 4 {
                    l.replacen("\"ts\":\"2", "\"ts\":\"3", 1)
                } else {
                    l.to_string()
                }
            })
            .collect()
    });
    let v = env.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1));
    let report = stdout(&v);
    let want = format!("segment {} line 5 (byte ", seg_name(&seg));
    assert!(report.contains(&want), "{report}");
    let want = "): checksum mismatch";
    assert!(report.contains(want), "{report}");
    assert!(
        stderr(&v).starts_with(" !     verify failed"),
        "{}",
        stderr(&v)
    );
    assert!(stderr(&v).contains(&seg_name(&seg)));
    // Export still serves the intact part, and warns.
    let e = env.run(&["export"]);
    assert!(e.status.success());
    assert!(stderr(&e).contains(&seg_name(&seg)), "{}", stderr(&e));
}

#[test]
fn one_flipped_byte_in_the_compressed_file_is_detected() {
    let env = store_with_sealed_segments();
    let seg = env.segment_files(".jsonl.zst")[0].clone();
    let mut raw = std::fs::read(&seg).unwrap();
    let mid = raw.len() / 3;
    raw[mid] ^= 0x10;
    std::fs::write(&seg, raw).unwrap();
    let v = env.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1), "{}", stdout(&v));
    assert!(
        stdout(&v).contains(&format!("segment {} line", seg_name(&seg))),
        "{}",
        stdout(&v)
    );
}

#[test]
fn removing_or_reordering_lines_breaks_the_chain() {
    // In a sealed segment: drop line 3.
    let env = store_with_sealed_segments();
    let seg = env.segment_files(".jsonl.zst")[0].clone();
    tamper_sealed(&seg, |lines| {
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, l)| l.to_string())
            .collect()
    });
    let v = env.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1));
    assert!(stdout(&v).contains("hash chain broken"), "{}", stdout(&v));
    assert!(stdout(&v).contains(&seg_name(&seg)));

    // In the active segment: swap two lines, then delete one.
    let env = TestEnv::new();
    let path = env.file("in.jsonl", &demo_jsonl(10, 0));
    env.ok(&["import", path.to_str().unwrap()]);
    assert!(
        env.run(&["verify"]).status.success(),
        "untouched store verifies"
    );
    let active = env.active_segment().unwrap();
    let original = std::fs::read_to_string(&active).unwrap();
    let mut lines: Vec<&str> = original.lines().collect();
    lines.swap(3, 4);
    std::fs::write(&active, lines.join("\n") + "\n").unwrap();
    let v = env.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        stdout(&v).contains(&format!("segment {} line 4", seg_name(&active))),
        "{}",
        stdout(&v)
    );

    let mut lines: Vec<&str> = original.lines().collect();
    lines.remove(5);
    std::fs::write(&active, lines.join("\n") + "\n").unwrap();
    let v = env.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        stdout(&v).contains("line 6 (byte ")
            && stdout(&v).contains("): hash chain broken at event id"),
        "{}",
        stdout(&v)
    );

    std::fs::write(&active, &original).unwrap();
    assert!(env.run(&["verify", "--format", "json"]).status.success());
}

#[test]
fn verify_json_reports_head_and_problems() {
    let env = TestEnv::new();
    let path = env.file("in.jsonl", &demo_jsonl(5, 0));
    env.ok(&["import", path.to_str().unwrap()]);
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["verify", "--format", "json"])).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["events"], 6);
    assert_eq!(v["chain_head"].as_str().unwrap().len(), 32);
    let active = env.active_segment().unwrap();
    let mut b = std::fs::read(&active).unwrap();
    b[20] ^= 1;
    std::fs::write(&active, b).unwrap();
    let out = env.run(&["verify", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["line"], 1);
}

fn dir_snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (seg_name(&p), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn malformed_import_names_the_line_and_appends_nothing() {
    let env = TestEnv::new();
    let good = env.file("good.jsonl", &demo_jsonl(3, 0));
    env.ok(&["import", good.to_str().unwrap()]);
    let before = dir_snapshot(&env.segments_dir());

    let mut bad = demo_jsonl(4, 0);
    let text = String::from_utf8(bad.clone()).unwrap();
    let second = text.lines().nth(1).unwrap();
    bad = text
        .replacen(second, &second[..second.len() - 5], 1)
        .into_bytes();
    let path = env.file("bad.jsonl", &bad);
    let out = env.run(&["import", path.to_str().unwrap()]);
    assert_dokku_error(&out, "line 2:");
    assert!(stderr(&out).contains("nothing was imported"));

    let missing_field = env.file("m.jsonl", b"{\"ts\":\"2026-04-08T20:00:00Z\"}\n");
    assert_dokku_error(
        &env.run(&["import", missing_field.to_str().unwrap()]),
        "line 1:",
    );
    let bad_ts = text
        .lines()
        .next()
        .unwrap()
        .replace("\"ts\":\"2026-", "\"ts\":\"26-");
    let bad_ts = env.file("t.jsonl", format!("\n{bad_ts}\n").as_bytes());
    assert_dokku_error(
        &env.run(&["import", bad_ts.to_str().unwrap()]),
        "line 2: field `ts`",
    );
    let stdin = env.run_stdin(&["import", "-"], b"[1,2]\n");
    assert_dokku_error(&stdin, "line 1:");
    assert_dokku_error(
        &env.run(&["import", "--format", "csv", "-"]),
        "unsupported format: csv",
    );
    assert_dokku_error(
        &env.run(&["import", "/nonexistent/file.jsonl"]),
        "/nonexistent/file.jsonl",
    );

    assert_eq!(
        dir_snapshot(&env.segments_dir()),
        before,
        "nothing was appended"
    );
}

#[test]
fn import_from_stdin_and_integrity_fields_are_optional() {
    let env = TestEnv::new();
    let input = demo_jsonl(3, 0);
    let out = env.run_stdin(&["import", "-"], &input);
    assert!(out.status.success(), "{}", stderr(&out));
    // A raw segment line (with v/chain/crc) is accepted too: those fields are recomputed.
    let raw = stdout(&sh(&format!(
        "cd '{}' && for f in *; do case $f in *.zst) zstdcat $f;; *) [ -e $f.zst ] || cat $f;; esac; done",
        env.segments_dir().display()
    )));
    assert_eq!(raw.lines().count(), 4);
    let env2 = TestEnv::new();
    let out = env2.run_stdin(&["import", "-"], raw.as_bytes());
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(env2.export_events().len(), 5);
}

#[test]
fn unwritable_or_missing_data_dir_gives_a_clear_error() {
    let env = TestEnv::new();
    let input = env.file("in.jsonl", &demo_jsonl(2, 0));
    // A data directory below a regular file cannot be created, even by root.
    let blocker = env.file("blocker", b"x");
    let under_file = blocker.join("data");
    let out = env
        .command(&["import", input.to_str().unwrap()])
        .env("DOKKU_AUDIT_DATA_DIR", &under_file)
        .output()
        .unwrap();
    assert_dokku_error(&out, &under_file.display().to_string());
    // A read-only location (procfs refuses new directories for everyone).
    let out = env
        .command(&["import", input.to_str().unwrap()])
        .env("DOKKU_AUDIT_DATA_DIR", "/proc/dokku-audit-test")
        .output()
        .unwrap();
    assert_dokku_error(&out, "/proc/dokku-audit-test");
    // Queries never create a data directory.
    let out = env.run(&["export"]);
    assert_dokku_error(&out, "data directory does not exist");
    assert!(!env.data.exists());
    let out = env.run(&["verify"]);
    assert_dokku_error(&out, "data directory does not exist");
}

#[test]
fn newer_format_is_refused_not_misread() {
    let env = TestEnv::new();
    let input = env.file("in.jsonl", &demo_jsonl(2, 0));
    env.ok(&["import", input.to_str().unwrap()]);
    std::fs::write(env.data.join("FORMAT"), "dokku-audit segments 2\n").unwrap();
    for args in [
        vec!["export"],
        vec!["verify"],
        vec!["status"],
        vec!["import", input.to_str().unwrap()],
    ] {
        assert_dokku_error(
            &env.run(&args),
            "format version 2, newer than this dokku-audit supports",
        );
    }
    // A line of a newer version inside a segment is named as such.
    std::fs::write(env.data.join("FORMAT"), "dokku-audit segments 1\n").unwrap();
    let active = env.active_segment().unwrap();
    let mut text = std::fs::read_to_string(&active).unwrap();
    text.push_str("{\"id\":99,\"v\":2,\"whatever\":true}\n{\"id\":100,\"v\":2}\n");
    std::fs::write(&active, text).unwrap();
    let v = env.run(&["verify"]);
    assert_eq!(v.status.code(), Some(1));
    assert!(
        stdout(&v).contains("format version 2 is newer"),
        "{}",
        stdout(&v)
    );
}

#[test]
fn bad_flags_and_values_are_dokku_style_errors() {
    let env = TestEnv::new();
    let input = env.file("in.jsonl", &demo_jsonl(2, 0));
    env.ok(&["import", input.to_str().unwrap()]);
    assert_dokku_error(
        &env.run(&["export", "--format", "xml"]),
        "unsupported format: xml",
    );
    assert_dokku_error(
        &env.run(&["export", "--since", "yesterday"]),
        "invalid time",
    );
    assert_dokku_error(&env.run(&["export", "--bogus"]), "--bogus");
    assert_dokku_error(&env.run(&["export", "--app"]), "--app");
    assert_dokku_error(&env.run(&["import"]), "required");
    assert_dokku_error(&env.run(&["verify", "--format", "yaml"]), "yaml");
    // Dokku's `audit:<name>` first argument is accepted.
    assert!(env.run(&["audit:verify"]).status.success());
}

#[test]
fn export_filters_formats_and_output_file() {
    let env = TestEnv::new();
    let input = env.file("in.jsonl", &demo_jsonl(400, 4));
    env.ok(&["import", input.to_str().unwrap()]);
    let all = env.export_events();
    let api: Vec<_> = all.iter().filter(|e| e["app"] == "api").collect();
    assert!(!api.is_empty());
    let got = env.ok(&["export", "--app", "api"]);
    assert_eq!(got.lines().count(), api.len());
    let since = "2026-04-06T00:00:00Z";
    let until = "2026-04-07";
    let want = all
        .iter()
        .filter(|e| {
            e["ts"].as_str().unwrap() >= since
                && e["ts"].as_str().unwrap() <= "2026-04-07T00:00:00Z"
        })
        .count();
    let got = env.ok(&["export", "--since", since, "--until", until]);
    assert_eq!(got.lines().filter(|l| !l.is_empty()).count(), want);
    // Relative ages count back from DOKKU_AUDIT_NOW (2026-04-08T20:00:00Z).
    let want = all
        .iter()
        .filter(|e| e["ts"].as_str().unwrap() >= "2026-04-07T20:00:00Z")
        .count();
    assert_eq!(env.ok(&["export", "--since", "1d"]).lines().count(), want);
    // No match: an empty JSONL export is empty (docs/decisions.md).
    assert_eq!(env.ok(&["export", "--app", "nope"]), "");

    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["export", "--format", "json"])).unwrap();
    assert_eq!(json["plugin"], "dokku-audit");
    assert_eq!(json["exported_at"], "2026-04-08T20:00:00Z");
    assert_eq!(json["events"].as_array().unwrap().len(), all.len());

    let out = env.tmp.path().join("nested/dir/export.csv");
    let printed = env.ok(&[
        "export",
        "--format",
        "csv",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(printed, "");
    let csv = std::fs::read_to_string(&out).unwrap();
    let header = csv.split('\n').next().unwrap();
    assert_eq!(header, "id,ts,app,category,action,status,classification,source_trigger,source_type,image_tag,rev,actor_type,actor_name,actor_label,correlation_id,message,meta,created_at\r");
    assert!(csv.ends_with("\r\n"));
}

#[test]
fn csv_export_neutralises_formulas() {
    let env = TestEnv::new();
    let mut text = String::from_utf8(demo_jsonl(1, 0)).unwrap();
    text = text.replacen(
        "\"message\":\"",
        "\"message\":\"=HYPERLINK(\\\"http://x\\\"),",
        1,
    );
    let input = env.file("in.jsonl", text.as_bytes());
    env.ok(&["import", input.to_str().unwrap()]);
    let csv = env.ok(&["export", "--format", "csv"]);
    let row = csv.lines().nth(1).unwrap();
    assert!(row.contains(",\"'=HYPERLINK(\"\"http://x\"\"),"), "{row}");
}

#[test]
fn status_reports_counts() {
    let env = TestEnv::new();
    let input = env.file("in.jsonl", &demo_jsonl(300, 3));
    env.ok(&["import", input.to_str().unwrap()]);
    let s = env.ok(&["status"]);
    assert!(s.contains("total events: 301\n"), "{s}");
    assert!(s.contains("format version: 1\n"), "{s}");
    assert!(
        s.contains(&format!("data directory: {}\n", env.data.display())),
        "{s}"
    );
    assert!(
        s.contains("last event timestamp: 2026-04-08T20:00:00Z\n"),
        "{s}"
    );
    assert!(s.contains("segments: "), "{s}");
}

#[test]
fn created_files_have_no_world_access() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let input = env.file("in.jsonl", &demo_jsonl(50, 2));
    env.ok(&["import", input.to_str().unwrap()]);
    for dir in [env.data.clone(), env.segments_dir()] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o2770, "{}", dir.display());
    }
    for f in std::fs::read_dir(env.segments_dir()).unwrap() {
        let p = f.unwrap().path();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660, "{}", p.display());
    }
}

#[test]
fn concurrent_writers_never_interleave_or_reuse_ids() {
    // Default durability (fsync on every append), four processes, single-event appends.
    let env = TestEnv::new();
    let one = env.file("one.jsonl", &demo_jsonl(1, 0));
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut c = env.command(&[]);
            c.env_remove("DOKKU_AUDIT_DURABILITY");
            let script = format!(
                "for i in $(seq 1 25); do '{}' import '{}' >/dev/null || exit 1; done",
                util::bin().display(),
                one.display()
            );
            Command::new("bash")
                .arg("-c")
                .arg(script)
                .envs(
                    c.get_envs()
                        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
                )
                .env_remove("DOKKU_AUDIT_DURABILITY")
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let events = env.export_events();
    assert_eq!(
        events.len(),
        4 * 25 * 2,
        "each import appends its event and an import record"
    );
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(
        ids,
        (1..=200).collect::<Vec<u64>>(),
        "ids unique and contiguous"
    );
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", stdout(&v));
}

#[test]
fn import_error_line_numbers_hold_across_parallel_chunks() {
    // Over 1 MiB, so staging is split across threads: the line number must still be global.
    let env = TestEnv::new();
    let text = String::from_utf8(demo_jsonl(5_000, 2)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[4_321] = "{not json".into();
    let path = env.file("bad.jsonl", (lines.join("\n") + "\n").as_bytes());
    assert!(std::fs::metadata(&path).unwrap().len() > 1 << 20);
    assert_dokku_error(&env.run(&["import", path.to_str().unwrap()]), "line 4322:");
    assert!(!env.data.join("segments").exists() || env.segment_files(".jsonl").is_empty());
}

#[test]
fn a_trailer_that_lies_about_times_or_size_is_reported() {
    use dokku_audit::store::Trailer;
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "65536");
    let input = demo_jsonl(2_000, 3);
    let path = env.file("in.jsonl", &input);
    env.ok(&["import", path.to_str().unwrap()]);
    assert!(env.run(&["verify"]).status.success());
    let seg = env.segment_files(".jsonl.zst").remove(0);
    let bytes = std::fs::read(&seg).unwrap();
    let t = Trailer::decode_from_end(&bytes).unwrap();
    let frame_len = t.encode().len();
    for forge in [
        |t: &mut Trailer| t.last_ts = "2000-01-01T00:00:00Z".into(),
        |t: &mut Trailer| t.plain_bytes += 1,
        |t: &mut Trailer| t.format = 9,
    ] {
        let mut bad = t.clone();
        forge(&mut bad);
        let mut forged = bytes[..bytes.len() - frame_len].to_vec();
        forged.extend_from_slice(&bad.encode());
        std::fs::write(&seg, &forged).unwrap();
        let out = env.run(&["verify"]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(stdout(&out).contains("trailer"), "{}", stdout(&out));
    }
    std::fs::write(&seg, &bytes).unwrap();
    assert!(env.run(&["verify"]).status.success());
}
