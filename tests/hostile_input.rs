//! Hostile input, black box through `plugin/` and the binary: app names and arguments with
//! `../`, newlines, control characters, quotes, backslashes, invalid UTF-8 and 1 MB; `--output`
//! paths; oversized deploy metadata; CSV injection. Triggers exit 0 silently, nothing is written
//! outside the data dir, every stored line verifies, tables carry no raw control characters,
//! JSON round-trips through `jq`, CSV cells never start a formula.
//!
//! `cargo test --test tests hostile_input:: -- --nocapture` prints how many inputs were tried.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util;

fn plugin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugin")
        .join(name)
}

fn trigger(env: &util::TestEnv, name: &str, args: &[OsString]) -> Output {
    let mut c = env.command(&[]);
    // Same scrubbed environment, but the plugin shim as the program.
    let mut p = Command::new(plugin(name));
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => p.env(k, v),
            None => p.env_remove(k),
        };
    }
    util::scrub_env(&mut p);
    p.env("DOKKU_AUDIT_BIN", util::bin())
        .env("DOKKU_AUDIT_DATA_DIR", &env.data)
        .args(args)
        .stdin(Stdio::null());
    let _ = &mut c;
    p.output().expect("run trigger")
}

/// The hostile values: (label, bytes).
fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let mut v: Vec<(&'static str, Vec<u8>)> = vec![
        ("dot-dot", b"../../../../tmp/escape".to_vec()),
        ("dot-dot-slash-end", b"../".to_vec()),
        ("newline", b"app\nINJECTED 2026-01-01 fake line".to_vec()),
        ("carriage return", b"app\rover".to_vec()),
        (
            "escape sequence",
            b"\x1b[31mred\x1b[0m\x1b]0;title\x07".to_vec(),
        ),
        ("control chars", (1u8..32).chain([127u8]).collect()),
        ("quotes", b"it's \"quoted\" `tick`".to_vec()),
        ("backslashes", b"back\\slash\\\\n \\u0000".to_vec()),
        ("json-ish", br#"{"id":1,"crc":"00000000"}"#.to_vec()),
        ("formula =", b"=HYPERLINK(\"http://x\",\"y\")".to_vec()),
        ("formula +", b"+1+1".to_vec()),
        ("formula -", b"-2+3".to_vec()),
        ("formula @", b"@SUM(A1)".to_vec()),
        ("invalid utf-8", b"app\xff\xfe\xc3(".to_vec()),
        ("overlong utf-8 nul", b"a\xc0\x80b".to_vec()),
        (
            "C1 controls",
            "a\u{9b}31mred\u{85}next\u{90}".as_bytes().to_vec(),
        ),
        ("unicode bidi", "app\u{202e}gnp.exe".as_bytes().to_vec()),
        ("empty", Vec::new()),
        ("spaces", b"   ".to_vec()),
    ];
    // Linux caps one argv string at 128 KiB (MAX_ARG_STRLEN): the largest single argument a
    // trigger can ever get. 1 MB in total is sent by `one_megabyte_of_arguments`.
    v.push(("120 kB", vec![b'x'; 120 * 1024]));
    v
}

/// Trigger calls that carry a hostile value `h` in every position that reaches the store.
fn calls(h: &OsStr) -> Vec<(&'static str, Vec<OsString>)> {
    let s = |x: &str| OsString::from(x);
    let mut kv = OsString::from("KEY=");
    kv.push(h);
    vec![
        (
            "user-auth",
            vec![
                s("dokku"),
                s("alice"),
                s("config:set"),
                h.into(),
                kv.clone(),
            ],
        ),
        ("post-config-update", vec![h.into(), s("set"), h.into()]),
        ("post-create", vec![h.into()]),
        (
            "user-auth",
            vec![s("dokku"), h.into(), s("domains:add"), h.into(), h.into()],
        ),
        ("post-domains-update", vec![h.into(), s("add"), h.into()]),
        ("receive-app", vec![h.into(), h.into()]),
        ("deploy-source-set", vec![h.into(), s("git-push"), h.into()]),
        ("post-deploy", vec![h.into(), s(""), s(""), h.into()]),
        (
            "builds-record-start",
            vec![h.into(), h.into(), s("123"), h.into()],
        ),
        ("builds-record-finalize", vec![h.into(), h.into(), s("1")]),
        (
            "scheduler-run",
            vec![s("docker-local"), h.into(), s("1"), kv, s("--"), h.into()],
        ),
        (
            "scheduler-post-run",
            vec![s("docker-local"), h.into(), h.into(), s("0")],
        ),
        ("post-app-rename", vec![h.into(), h.into()]),
        ("post-certs-update", vec![h.into()]),
        ("app-destroy", vec![h.into()]),
    ]
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                out.extend(all_files(&p));
            }
            out.push(p);
        }
    }
    out
}

/// No raw control characters (other than the newline ending each row) in table output.
fn assert_no_controls(what: &str, bytes: &[u8]) {
    for (i, &b) in bytes.iter().enumerate() {
        assert!(
            b == b'\n' || (b >= 0x20 && b != 0x7f),
            "{what}: raw control byte {b:#04x} at {i}: {:?}",
            String::from_utf8_lossy(&bytes[i.saturating_sub(40)..(i + 40).min(bytes.len())])
        );
    }
    // C1 controls (U+0080..U+009F) act as escape sequences on some terminals too.
    let text = String::from_utf8_lossy(bytes);
    assert!(
        !text.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
        "{what}: C1 control character"
    );
}

fn jq_roundtrip(what: &str, bytes: &[u8], slurp: bool) -> usize {
    let mut c = Command::new("jq");
    if slurp {
        c.arg("-c").arg(".[]");
    } else {
        c.arg("-c").arg(".");
    }
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("jq (apt-get install -y jq)");
    let input = bytes.to_vec();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&input).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{what}: jq failed: {}",
        util::stderr(&out)
    );
    // What jq re-encodes must parse to the same values.
    let ours: Vec<serde_json::Value> = if slurp {
        serde_json::from_slice::<Vec<serde_json::Value>>(bytes).unwrap()
    } else {
        bytes
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    };
    let theirs: Vec<serde_json::Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(ours, theirs, "{what}: jq round trip changed the values");
    ours.len()
}

#[test]
fn hostile_arguments_through_every_trigger() {
    let env = util::TestEnv::new();
    let parent_before = listing(env.tmp.path());
    let mut tried = 0usize;
    for (label, bytes) in hostile() {
        let h = OsStr::from_bytes(&bytes);
        for (name, args) in calls(h) {
            tried += 1;
            let out = trigger(&env, name, &args);
            let err = util::stderr(&out);
            assert_eq!(out.status.code(), Some(0), "{name} with {label}: {err}");
            assert!(
                out.stdout.is_empty(),
                "{name} with {label}: stdout {:?}",
                util::stdout(&out)
            );
            if bytes.iter().all(|b| *b == b' ') {
                // No app name at all: a one-line warning is right (exit 0 all the same).
                assert!(err.is_empty() || err.lines().count() == 1, "{err}");
            } else {
                assert!(
                    err.is_empty(),
                    "{name} with {label}: not silent: {err:.300}"
                );
            }
        }
    }
    // Nothing outside the data dir: the temp dir holds only it, and no path was built from input.
    assert!(parent_before.is_empty());
    assert_eq!(
        listing(env.tmp.path()),
        ["data"],
        "written outside the data dir"
    );
    assert!(!Path::new("/tmp/escape").exists(), "path traversal");
    let allowed = [
        "FORMAT",
        "LOCK",
        "segments",
        "state",
        "index",
        "quarantine",
        "backups",
        "settings.json",
        "releases.json",
    ];
    for f in listing(&env.data) {
        assert!(
            allowed.contains(&f.as_str()),
            "unexpected {f} in the data dir"
        );
    }
    for p in all_files(&env.data) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.is_ascii()
                && !name.contains("..")
                && !name.contains("escape")
                && !name.contains('\n'),
            "a file name built from input: {p:?}"
        );
    }
    // Every stored line verifies.
    let v = env.run(&["verify"]);
    assert!(
        v.status.success(),
        "verify: {}{}",
        util::stdout(&v),
        util::stderr(&v)
    );

    // JSON outputs round-trip through jq, JSONL too.
    let export = env.run(&["export", "--format", "jsonl"]);
    assert!(export.status.success());
    let n = jq_roundtrip("export jsonl", &export.stdout, false);
    assert!(n > 100, "{n} events stored");
    let json = env.run(&["export", "--format", "json"]);
    assert!(json.status.success());
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("export json");
    assert!(parsed.is_array() || parsed.is_object());
    for args in [
        &["recent", "--limit", "1000", "--format", "json"][..],
        &["last-deploys", "--limit", "1000", "--format", "json"],
        &["search", "--query", "escape", "--format", "json"],
    ] {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", util::stderr(&out));
        jq_roundtrip(&format!("{args:?}"), &out.stdout, true);
    }
    for args in [
        &["recent", "--limit", "1000", "--format", "jsonl"][..],
        &["tail", "-n", "1000"],
    ] {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {}", util::stderr(&out));
        jq_roundtrip(&format!("{args:?}"), &out.stdout, false);
    }

    // The 1 MB argument is stored (or cut, with a marker) without breaking anything.
    let big = export
        .stdout
        .split(|&b| b == b'\n')
        .map(|l| l.len())
        .max()
        .unwrap();
    println!("largest stored event: {big} bytes");

    // Tables never carry raw control characters, whatever the events hold.
    let apps: Vec<String> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["app"].as_str().map(String::from))
        .collect();
    let ids: Vec<String> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["id"].to_string())
        .collect();
    for args in [
        vec!["recent".to_string(), "--limit".into(), "1000".into()],
        vec!["last-deploys".into(), "--limit".into(), "1000".into()],
        vec![
            "tail".into(),
            "-n".into(),
            "1000".into(),
            "--format".into(),
            "table".into(),
        ],
        vec!["status".into()],
        vec!["doctor".into()],
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env.run(&a);
        assert!(!util::stderr(&out).contains("panicked"));
        assert_no_controls(&format!("{a:?}"), &out.stdout);
        assert_no_controls(&format!("{a:?} stderr"), &out.stderr);
    }
    let mut shown = 0;
    for app in apps.iter().collect::<std::collections::BTreeSet<_>>() {
        if app.len() > 4096 {
            continue; // one 1 MB argument is enough for argv; it is covered by `recent`
        }
        let out = env.run(&["timeline", "--limit", "1000", "--", app]);
        assert!(
            out.status.success(),
            "timeline {app:?}: {}",
            util::stderr(&out)
        );
        assert_no_controls(&format!("timeline {app:?}"), &out.stdout);
        shown += 1;
    }
    assert!(shown > 5);
    for id in &ids {
        let out = env.run(&["show", id]);
        assert!(out.status.success(), "show {id}: {}", util::stderr(&out));
        assert_no_controls(&format!("show {id}"), &out.stdout);
        let out = env.run(&["show", id, "--format", "json"]);
        assert!(out.status.success());
        jq_roundtrip(&format!("show {id} json"), &out.stdout, false);
    }
    tried += ids.len() * 2;
    println!(
        "hostile input: {} values x {} trigger calls = {tried} calls (with show), 0 failures",
        hostile().len(),
        calls(OsStr::new("x")).len()
    );
}

/// A minimal RFC 4180 reader: rows of cells.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cell.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cell.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == ',' {
            row.push(std::mem::take(&mut cell));
        } else if c == '\r' && chars.peek() == Some(&'\n') {
            chars.next();
            row.push(std::mem::take(&mut cell));
            rows.push(std::mem::take(&mut row));
        } else {
            cell.push(c);
        }
    }
    rows
}

#[test]
fn csv_export_neutralises_formulas() {
    let env = util::TestEnv::new();
    let mut input = Vec::new();
    let starts = ["=", "+", "-", "@", "\t", "\r"];
    for (i, s) in starts.iter().enumerate() {
        let v = serde_json::json!({
            "id": 0, "ts": format!("2026-04-0{}T10:00:00Z", i + 1),
            "app": format!("{s}cmd|' /C calc'!A0"), "category": "config", "action": format!("{s}set"),
            "status": "success", "classification": "config_change", "source_trigger": format!("{s}trigger"),
            "source_type": format!("{s}SUM(1)"), "image_tag": format!("{s}img"), "rev": format!("{s}rev"),
            "actor_type": "user", "actor_name": format!("{s}alice"), "actor_label": format!("{s}ssh-key:x"),
            "correlation_id": format!("{s}c"), "message": format!("{s}HYPERLINK(\"http://evil\")"),
            "meta": {"k": format!("{s}v")}, "created_at": "2026-04-08T10:00:00Z"
        });
        input.extend_from_slice(v.to_string().as_bytes());
        input.push(b'\n');
    }
    let p = env.file("evil.jsonl", &input);
    env.ok(&["import", p.to_str().unwrap()]);
    let csv = env.ok(&["export", "--format", "csv"]);
    let rows: Vec<Vec<String>> = parse_csv(&csv)
        .into_iter()
        .filter(|r| r.get(3).map(String::as_str) != Some("maintenance"))
        .collect();
    assert_eq!(rows.len(), starts.len() + 1, "{csv}");
    let mut guarded = 0;
    for row in &rows[1..] {
        assert_eq!(row.len(), 18, "{row:?}");
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "formula cell {cell:?}"
            );
            if cell.starts_with('\'') {
                guarded += 1;
            }
        }
    }
    // Every text cell of every row began with a formula character.
    assert!(guarded >= starts.len() * 10, "{guarded} guarded cells");
    println!(
        "csv injection: {} prefixes x 10 text cells, {guarded} cells guarded",
        starts.len()
    );
}

#[test]
fn output_paths_are_refused_or_written_only_where_asked() {
    let env = util::TestEnv::new();
    let p = env.file("in.jsonl", &util::demo_jsonl(30, 1));
    env.ok(&["import", p.to_str().unwrap()]);
    let work = env.tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let run_in = |args: &[&str]| -> Output {
        env.command(args)
            .current_dir(&work)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let before_data = all_files(&env.data).len();
    // `../` is where the user asked: relative to the working directory, nowhere else.
    let out = run_in(&["export", "--output", "../exported.jsonl"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert!(env.tmp.path().join("exported.jsonl").is_file());
    // An existing file is replaced atomically; no temp file is left beside it.
    let out = run_in(&["export", "--output", "../exported.jsonl", "--format", "csv"]);
    assert!(out.status.success());
    let text = std::fs::read_to_string(env.tmp.path().join("exported.jsonl")).unwrap();
    assert!(text.starts_with("id,ts,"), "{text:.80}");
    // A directory, a path under a file, /dev/full, a missing directory: one-line errors.
    std::fs::write(work.join("plain-file"), b"x").unwrap();
    for (target, needle) in [
        (".", ""),
        ("..", ""),
        ("plain-file/x.jsonl", ""),
        ("/dev/full", ""),
    ] {
        eprintln!("export --output {target}");
        let out = run_in(&["export", "--output", target]);
        if target == "/dev/full" && out.status.success() {
            panic!("export to /dev/full reported success");
        }
        util::assert_dokku_error(&out, needle);
    }
    // Nothing left behind: no temp files next to the targets or in /dev.
    let leftovers: Vec<String> = listing(env.tmp.path())
        .into_iter()
        .chain(listing(&work))
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let dev_tmp: Vec<String> = listing(Path::new("/dev"))
        .into_iter()
        .filter(|n| n.starts_with(".full") || n.contains(".tmp-"))
        .collect();
    assert!(dev_tmp.is_empty(), "temp files in /dev: {dev_tmp:?}");

    // backup --output: a new directory only.
    let out = run_in(&["backup", "--output", "../bk1"]);
    assert!(out.status.success(), "{}", util::stderr(&out));
    assert!(env.tmp.path().join("bk1").is_dir());
    for target in ["../bk1", ".", "plain-file", "/dev/full", "/dev/full/x"] {
        eprintln!("backup --output {target}");
        let out = run_in(&["backup", "--output", target]);
        util::assert_dokku_error(&out, "");
    }
    // The store is untouched by all of it (backups record one event each: compare segments).
    let v = env.run(&["verify"]);
    assert!(v.status.success());
    assert!(all_files(&env.data).len() >= before_data);
}

#[test]
fn oversized_deploy_metadata_is_cut() {
    let env = util::TestEnv::new();
    // Each under Linux's 128 KiB limit for one argument.
    let huge = "commit message word ".repeat(6_000); // 120 kB
    let url = format!("https://user:sekrit@example.com/{}", "p/".repeat(10_000));
    let args: Vec<OsString> = [
        "myapp",
        "git-push",
        "0123456789abcdef0123456789abcdef01234567",
    ]
    .iter()
    .map(OsString::from)
    .chain([OsString::from(&huge), OsString::from(&url)])
    .collect();
    let out = trigger(
        &env,
        "post-deploy",
        &[
            OsString::from("myapp"),
            "".into(),
            "".into(),
            "latest".into(),
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        util::stderr(&out)
    );
    let out = trigger(&env, "deploy-source-set", &args);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        util::stderr(&out)
    );
    // And the builds metadata path.
    let out = trigger(
        &env,
        "builds-record-start",
        &[
            "myapp".into(),
            huge.clone().into(),
            "123".into(),
            url.clone().into(),
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        util::stderr(&out)
    );
    let out = trigger(
        &env,
        "post-deploy",
        &[
            OsString::from("myapp"),
            "".into(),
            "".into(),
            "latest".into(),
        ],
    );
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        util::stderr(&out)
    );
    let export = env.ok(&["export"]);
    assert!(!export.contains("sekrit"), "credentials stored");
    for line in export.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for (k, val) in v["meta"].as_object().unwrap() {
            let mut longest = 0;
            longest_string(val, &mut longest);
            assert!(
                longest <= 1024 + 16,
                "meta.{k} holds a {longest}-char string: not cut at deploy_metadata_max_bytes"
            );
        }
    }
    assert!(env.run(&["verify"]).status.success());
}

#[test]
fn one_megabyte_of_arguments() {
    let env = util::TestEnv::new();
    // 9 arguments of 120 kB: what `dokku run myapp …` with a huge command line passes on.
    let chunk = "y".repeat(120 * 1024);
    let mut args: Vec<OsString> = ["dokku", "alice", "run", "myapp"]
        .iter()
        .map(OsString::from)
        .collect();
    args.extend(std::iter::repeat_n(OsString::from(&chunk), 9));
    let out = trigger(&env, "user-auth", &args);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        util::stderr(&out)
    );
    let mut run: Vec<OsString> = ["docker-local", "myapp", "0", "--"]
        .iter()
        .map(OsString::from)
        .collect();
    run.extend(std::iter::repeat_n(OsString::from(&chunk), 9));
    let out = trigger(&env, "scheduler-run", &run);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        util::stderr(&out)
    );
    let v = env.run(&["verify"]);
    assert!(v.status.success(), "{}", util::stdout(&v));
    let export = env.ok(&["export"]);
    let longest = export.lines().map(str::len).max().unwrap();
    println!("1 MB of arguments: stored event of {longest} bytes");
    assert_eq!(export.lines().count(), 1, "one run event: {export:.300}");
    jq_roundtrip("1 MB export", export.as_bytes(), false);
    let out = env.run(&["recent"]);
    assert!(out.status.success());
    assert_no_controls("recent", &out.stdout);
}

fn longest_string(v: &serde_json::Value, max: &mut usize) {
    match v {
        serde_json::Value::String(s) => *max = (*max).max(s.chars().count()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| longest_string(x, max)),
        serde_json::Value::Object(m) => m.values().for_each(|x| longest_string(x, max)),
        _ => {}
    }
}
