//! Corruption, black box: a store with many sealed segments and an active one is damaged in one
//! way at a time (bit flips, truncation, a missing or duplicated segment, garbage files, a
//! foreign or broken index, broken state and settings), then every read and maintenance command
//! runs against it. None may panic or hang; each either answers from the intact part (never
//! serving a damaged or foreign event) or fails with one Dokku-style line naming the damage;
//! `verify` exits non-zero naming the segment for every damage that loses or changes data.
//!
//! `cargo test --test tests corruption:: -- --nocapture` prints the summary line quoted in the docs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util;
use serde_json::Value;

/// How long one command may take before it counts as a hang.
const COMMAND_BUDGET: Duration = Duration::from_secs(20);

/// The undamaged store, built once and copied for every damage.
struct Fixture {
    tmp: tempfile::TempDir,
    template: PathBuf,
    /// Every event of the undamaged store, by id, as exported (canonical JSON).
    events: BTreeMap<u64, Value>,
    /// Sealed segment names, oldest first.
    sealed: Vec<String>,
    /// The active segment's name.
    active: String,
}

fn env_for(data: &Path) -> util::TestEnv {
    // The TempDir inside is a throwaway: commands only use `data`.
    util::TestEnv {
        tmp: tempfile::tempdir().unwrap(),
        data: data.to_path_buf(),
        extra_env: vec![
            ("DOKKU_AUDIT_SEGMENT_MAX_BYTES".into(), "8192".into()),
            ("DOKKU_AUDIT_SEAL_GRACE_SECONDS".into(), "0".into()),
            ("DOKKU_AUDIT_SEGMENT_ROTATE_DAILY".into(), "false".into()),
        ],
    }
}

fn parse_events(text: &str) -> BTreeMap<u64, Value> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            (v["id"].as_u64().expect("id"), v)
        })
        .collect()
}

fn build_fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("template");
    let env = env_for(&template);
    let input = env.file("in.jsonl", &util::demo_jsonl(200, 2));
    env.ok(&["import", input.to_str().unwrap()]);
    // A few more through plain appends, so the active segment has several lines.
    let more = env.file("more.jsonl", &util::demo_jsonl(8, 1));
    env.ok(&["import", more.to_str().unwrap()]);
    // Plain copies of sealed segments are a courtesy to log shippers; drop them so every
    // sealed segment is read from its .zst (as after the grace period).
    let seg = template.join("segments");
    for p in env.segment_files(".jsonl.zst") {
        let plain = PathBuf::from(p.to_string_lossy().trim_end_matches(".zst").to_string());
        let _ = std::fs::remove_file(plain);
    }
    env.ok(&["reindex"]);
    let out = env.run(&["verify"]);
    assert!(
        out.status.success(),
        "fixture verify: {}",
        util::stdout(&out)
    );
    let names = |suffix: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&seg)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(suffix))
            .collect();
        v.sort();
        v
    };
    let sealed = names(".jsonl.zst");
    let active = names(".jsonl");
    assert!(
        sealed.len() >= 6,
        "want several sealed segments: {sealed:?}"
    );
    assert_eq!(active.len(), 1, "one active segment: {active:?}");
    let events = parse_events(&env.ok(&["export", "--format", "jsonl"]));
    assert!(events.len() > 200);
    Fixture {
        tmp,
        template,
        events,
        sealed,
        active: active[0].clone(),
    }
}

impl Fixture {
    fn max_id(&self) -> u64 {
        *self.events.keys().last().unwrap()
    }

    /// A fresh copy of the undamaged store.
    fn copy(&self, name: &str) -> PathBuf {
        let dst = self.tmp.path().join(name);
        let ok = Command::new("cp")
            .arg("-a")
            .arg(&self.template)
            .arg(&dst)
            .status()
            .unwrap();
        assert!(ok.success());
        dst
    }

    /// The ids a segment holds.
    fn ids_of(&self, name: &str) -> std::ops::RangeInclusive<u64> {
        let first: u64 = name[..20].parse().unwrap();
        let all: Vec<String> = self
            .sealed
            .iter()
            .chain(std::iter::once(&self.active))
            .cloned()
            .collect();
        let i = all.iter().position(|n| n == name).unwrap();
        let last = match all.get(i + 1) {
            Some(next) => next[..20].parse::<u64>().unwrap() - 1,
            None => *self.events.keys().last().unwrap(),
        };
        first..=last
    }
}

/// One way of damaging a store.
struct Damage {
    name: &'static str,
    /// Does it lose or change stored events (so `verify` must fail)?
    loses_data: bool,
    /// Ids that may go missing from answers.
    may_lose: Vec<u64>,
    /// Texts of which an error message (and verify's report) must name at least one.
    names: Vec<String>,
    apply: Box<dyn Fn(&Path)>,
}

fn flip_bit(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x04;
    std::fs::write(path, b).unwrap();
}

fn truncate(path: &Path, len: usize) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.set_len(len as u64).unwrap();
}

/// Byte offset of the middle of line `n` (0-based) of a plain file.
fn mid_of_line(bytes: &[u8], n: usize) -> usize {
    let mut start = 0;
    for _ in 0..n {
        start += bytes[start..].iter().position(|&b| b == b'\n').unwrap() + 1;
    }
    let len = bytes[start..].iter().position(|&b| b == b'\n').unwrap();
    start + len / 2
}

fn damages(fx: &Fixture) -> Vec<Damage> {
    let mid = fx.sealed[fx.sealed.len() / 2].clone();
    let mid2 = fx.sealed[fx.sealed.len() / 2 + 1].clone();
    let early = fx.sealed[1].clone();
    let active = fx.active.clone();
    let ids = |n: &str| fx.ids_of(n).collect::<Vec<u64>>();
    let all_ids: Vec<u64> = fx.events.keys().copied().collect();
    let other_index = {
        // A different store with its own index, to be copied over ours.
        let other = fx.tmp.path().join("other");
        let env = env_for(&other);
        let end = dokku_audit::timefmt::parse_canonical("2026-04-08T19:00:00Z").unwrap();
        let mut input = Vec::new();
        for e in dokku_audit::demo::history(150, 3, end, 99) {
            input.extend_from_slice(&e.to_json_bytes());
            input.push(b'\n');
        }
        let p = env.file("other.jsonl", &input);
        env.ok(&["import", p.to_str().unwrap()]);
        env.ok(&["reindex"]);
        other.join("index")
    };
    let seg = |d: &Path, n: &str| d.join("segments").join(n);
    let mut v: Vec<Damage> = Vec::new();
    {
        let a = active.clone();
        v.push(Damage {
            name: "bit flip in a plain (active) segment line",
            loses_data: true,
            may_lose: ids(&active),
            names: vec![active.clone()],
            apply: Box::new(move |d| {
                let p = seg(d, &a);
                let at = mid_of_line(&std::fs::read(&p).unwrap(), 1);
                flip_bit(&p, at);
            }),
        });
    }
    {
        let m = mid.clone();
        v.push(Damage {
            name: "bit flip in a sealed segment's zstd body",
            loses_data: true,
            may_lose: ids(&mid),
            names: vec![mid.clone()],
            apply: Box::new(move |d| {
                let p = seg(d, &m);
                let len = std::fs::metadata(&p).unwrap().len() as usize;
                flip_bit(&p, len / 3);
            }),
        });
    }
    {
        let m = early.clone();
        v.push(Damage {
            name: "bit flip in a sealed segment's trailer",
            loses_data: true,
            may_lose: vec![],
            names: vec![early.clone()],
            apply: Box::new(move |d| {
                let p = seg(d, &m);
                let len = std::fs::metadata(&p).unwrap().len() as usize;
                // Inside the JSON summary (the last 4 bytes are its length).
                flip_bit(&p, len - 30);
            }),
        });
    }
    {
        let m = early.clone();
        v.push(Damage {
            name: "bit flip in a sealed segment's trailer length",
            loses_data: true,
            may_lose: vec![],
            names: vec![early.clone()],
            apply: Box::new(move |d| {
                let p = seg(d, &m);
                let len = std::fs::metadata(&p).unwrap().len() as usize;
                flip_bit(&p, len - 3);
            }),
        });
    }
    {
        let a = active.clone();
        v.push(Damage {
            // A torn tail of the active segment is indistinguishable from a crash during an
            // append (segments-format.md §2): verify exits 0 but must say which segment.
            name: "truncation of the active segment mid-line",
            loses_data: false,
            may_lose: ids(&active),
            names: vec![active.clone()],
            apply: Box::new(move |d| {
                let p = seg(d, &a);
                let at = mid_of_line(&std::fs::read(&p).unwrap(), 2);
                truncate(&p, at);
            }),
        });
    }
    {
        let m = mid2.clone();
        v.push(Damage {
            name: "truncation of a sealed segment mid-frame",
            loses_data: true,
            may_lose: ids(&mid2),
            names: vec![mid2.clone()],
            apply: Box::new(move |d| {
                let p = seg(d, &m);
                let len = std::fs::metadata(&p).unwrap().len() as usize;
                truncate(&p, len / 2);
            }),
        });
    }
    {
        let m = mid.clone();
        let next = mid2.clone();
        v.push(Damage {
            name: "deleted middle segment",
            loses_data: true,
            may_lose: ids(&mid),
            names: vec![mid.clone(), next],
            apply: Box::new(move |d| std::fs::remove_file(seg(d, &m)).unwrap()),
        });
    }
    {
        let m = early.clone();
        // A copy of an early segment under a later name (between `mid` and `mid2`).
        let first: u64 = mid[..20].parse().unwrap();
        let dup = format!("{:020}.jsonl.zst", first + 1);
        let dup2 = dup.clone();
        v.push(Damage {
            name: "duplicated segment under another id-name",
            loses_data: true,
            may_lose: vec![],
            names: vec![dup.clone(), mid.clone()],
            apply: Box::new(move |d| {
                std::fs::copy(seg(d, &m), seg(d, &dup2)).unwrap();
            }),
        });
    }
    {
        let m = mid.clone();
        let last = fx.sealed.last().unwrap().clone();
        v.push(Damage {
            name: "sealed segment replaced by a copy of another",
            loses_data: true,
            may_lose: ids(&mid),
            names: vec![mid.clone()],
            apply: Box::new(move |d| {
                std::fs::copy(seg(d, &last), seg(d, &m)).unwrap();
            }),
        });
    }
    v.push(Damage {
        name: "garbage files and a directory in segments/",
        loses_data: false,
        may_lose: vec![],
        names: vec![],
        apply: Box::new(|d| {
            let s = d.join("segments");
            std::fs::write(s.join("notes.txt"), b"hello\n").unwrap();
            std::fs::write(
                s.join("00000000000000000001.jsonl.bak"),
                b"\x00\xff garbage",
            )
            .unwrap();
            std::fs::write(s.join("99999999999999999999.jsonl"), b"not a u64 stem\n").unwrap();
            std::fs::write(s.join("0001.jsonl"), b"{\"id\":1}\n").unwrap();
            std::fs::create_dir(s.join("subdir.jsonl")).unwrap();
            std::fs::write(
                s.join("00000000000000000001.jsonl.zst.tmp"),
                b"\x28\xb5\x2f",
            )
            .unwrap();
        }),
    });
    // A name inside the middle segment's range, never a segment's own (the fixture's
    // boundaries move with the size of the demo events): it shadows no event.
    let inside = format!(
        "{:020}.jsonl.zst",
        fx.ids_of(&mid)
            .next()
            .expect("events in the middle segment")
            + 1
    );
    v.push(Damage {
        name: "garbage under a valid sealed segment name",
        loses_data: true,
        may_lose: vec![],
        names: vec![inside.clone()],
        apply: Box::new(move |d| {
            std::fs::write(
                d.join("segments").join(&inside),
                b"\x28\xb5\x2f\xfd this is not zstd at all",
            )
            .unwrap();
        }),
    });
    v.push(Damage {
        name: "a directory under a valid segment name",
        loses_data: true,
        may_lose: vec![],
        names: vec!["00000000000000000150.jsonl".into()],
        apply: Box::new(|d| {
            std::fs::create_dir(d.join("segments/00000000000000000150.jsonl")).unwrap();
        }),
    });
    v.push(Damage {
        name: "garbage files in the data dir root",
        loses_data: false,
        may_lose: vec![],
        names: vec![],
        apply: Box::new(|d| {
            std::fs::write(d.join("junk"), b"\x00\x01\x02").unwrap();
            std::fs::write(d.join("segments.old"), b"x").unwrap();
            std::fs::create_dir(d.join("lost+found")).unwrap();
            std::fs::write(d.join("quarantine"), b"a file where a dir belongs").unwrap();
        }),
    });
    {
        let other = other_index.clone();
        v.push(Damage {
            name: "index/ copied from another store",
            loses_data: false,
            may_lose: vec![],
            names: vec!["index".into()],
            apply: Box::new(move |d| {
                std::fs::remove_dir_all(d.join("index")).unwrap();
                let ok = Command::new("cp")
                    .arg("-a")
                    .arg(&other)
                    .arg(d.join("index"))
                    .status()
                    .unwrap();
                assert!(ok.success());
            }),
        });
    }
    v.push(Damage {
        name: "index/ files replaced by garbage",
        loses_data: false,
        may_lose: vec![],
        names: vec!["index".into()],
        apply: Box::new(|d| {
            let idx = d.join("index");
            for e in walk(&idx) {
                if e.is_file() {
                    std::fs::write(&e, b"\xde\xad\xbe\xef garbage").unwrap();
                }
            }
        }),
    });
    v.push(Damage {
        name: "index/ replaced by a regular file",
        loses_data: false,
        may_lose: vec![],
        names: vec!["index".into()],
        apply: Box::new(|d| {
            std::fs::remove_dir_all(d.join("index")).unwrap();
            std::fs::write(d.join("index"), b"garbage").unwrap();
        }),
    });
    v.push(Damage {
        name: "corrupt state/correlation.json",
        loses_data: false,
        may_lose: vec![],
        names: vec!["correlation.json".into(), "state".into()],
        apply: Box::new(|d| {
            std::fs::create_dir_all(d.join("state")).unwrap();
            std::fs::write(d.join("state/correlation.json"), b"{\"pending\": [1,2,\xff").unwrap();
        }),
    });
    v.push(Damage {
        name: "corrupt settings.json",
        loses_data: false,
        may_lose: vec![],
        names: vec!["settings.json".into(), "settings".into()],
        apply: Box::new(|d| {
            std::fs::write(d.join("settings.json"), b"{\"segment_max_bytes\": ").unwrap();
        }),
    });
    v.push(Damage {
        name: "corrupt FORMAT marker",
        loses_data: false,
        may_lose: all_ids.clone(),
        names: vec!["FORMAT".into(), "format".into()],
        apply: Box::new(|d| std::fs::write(d.join("FORMAT"), b"\xff\xfe garbage\n").unwrap()),
    });
    v
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            }
            out.push(p);
        }
    }
    out
}

/// Runs a command with a time budget; `None` when it hung (it is killed).
fn run_bounded(env: &util::TestEnv, args: &[&str]) -> Option<Output> {
    let mut child = env
        .command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drain the pipes on threads so a chatty command cannot block on a full pipe.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut b).ok();
        b
    });
    let t2 = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut b).ok();
        b
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > COMMAND_BUDGET {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Some(Output {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    })
}

/// What went wrong, collected so one run reports every problem.
#[derive(Default)]
struct Report {
    problems: Vec<String>,
    panics: usize,
}

impl Report {
    fn fail(&mut self, damage: &str, cmd: &str, what: String) {
        self.problems.push(format!("[{damage}] {cmd}: {what}"));
    }
}

/// Checks the posture shared by every command; returns the output when there is one.
fn check_common(
    rep: &mut Report,
    dmg: &Damage,
    args: &[&str],
    out: Option<Output>,
) -> Option<Output> {
    let cmd = args.join(" ");
    let Some(out) = out else {
        rep.fail(
            dmg.name,
            &cmd,
            format!("hung for more than {COMMAND_BUDGET:?}"),
        );
        return None;
    };
    let err = util::stderr(&out);
    if err.contains("panicked") || out.status.code() == Some(101) {
        rep.panics += 1;
        rep.fail(dmg.name, &cmd, format!("panicked: {err}"));
    }
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = out.status.signal() {
        rep.panics += 1;
        rep.fail(dmg.name, &cmd, format!("killed by signal {sig}"));
    }
    if !out.status.success() && args[0] != "verify" && args[0] != "doctor" {
        // A failure is one Dokku-style line naming the damage.
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(" !     ")).collect();
        if lines.len() != 1
            || !err
                .trim_end()
                .lines()
                .last()
                .unwrap_or("")
                .starts_with(" !     ")
        {
            rep.fail(
                dmg.name,
                &cmd,
                format!("not one Dokku-style error line: {err:?}"),
            );
        } else if (args[0] != "show" || !err.contains("not found"))
            && !dmg.names.is_empty()
            && !dmg.names.iter().any(|n| err.contains(n.as_str()))
        {
            rep.fail(
                dmg.name,
                &cmd,
                format!("error does not name the damage {:?}: {err:?}", dmg.names),
            );
        }
    }
    Some(out)
}

/// Every event in `text` (JSONL) must be the undamaged event with the same id.
fn check_events(rep: &mut Report, fx: &Fixture, dmg: &Damage, cmd: &str, text: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                rep.fail(
                    dmg.name,
                    cmd,
                    format!("output line is not JSON ({e}): {line:.120}"),
                );
                continue;
            }
        };
        let id = v["id"].as_u64().unwrap_or(0);
        match fx.events.get(&id) {
            Some(orig) if *orig == strip_integrity(&v) => ids.push(id),
            // After a torn tail is cut, the ids of the lost lines are given to the next events
            // (they were never acknowledged): maintenance commands record theirs there.
            Some(_)
                if dmg.may_lose.contains(&id) && dmg.name.contains("active segment mid-line") =>
            {
                ids.push(id)
            }
            Some(_) => rep.fail(
                dmg.name,
                cmd,
                format!("event {id} differs from what was stored"),
            ),
            // Maintenance commands record their own events after the fixture was built.
            None if id > fx.max_id() && v["category"] == "maintenance" => ids.push(id),
            None => rep.fail(
                dmg.name,
                cmd,
                format!("served an event that was never stored: {line:.160}"),
            ),
        }
    }
    ids
}

/// Query outputs may carry extra fields; compare on the event fields.
fn strip_integrity(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("v");
        o.remove("chain");
        o.remove("crc");
    }
    v
}

fn verify_names(out: &Output, names: &[String]) -> bool {
    let all = format!("{}{}", util::stdout(out), util::stderr(out));
    names.iter().any(|n| all.contains(n.as_str()))
}

#[test]
fn every_command_survives_every_damage() {
    let fx = build_fixture();
    let mut rep = Report::default();
    let (mut tried, mut detected, mut must_detect) = (0, 0, 0);
    let apps: Vec<String> = {
        let mut a: Vec<String> = fx
            .events
            .values()
            .filter_map(|e| e["app"].as_str().map(String::from))
            .collect();
        a.sort();
        a.dedup();
        a
    };
    let app = apps[0].clone();
    for (i, dmg) in damages(&fx).iter().enumerate() {
        tried += 1;
        let data = fx.copy(&format!("case{i}"));
        (dmg.apply)(&data);
        let env = env_for(&data);
        let before_set = std::fs::read(data.join("settings.json")).ok();

        // verify first: it must report anything that loses or changes data.
        let args = ["verify"];
        if let Some(out) = check_common(&mut rep, dmg, &args, run_bounded(&env, &args)) {
            let failed = !out.status.success();
            if dmg.loses_data {
                must_detect += 1;
                if failed && verify_names(&out, &dmg.names) {
                    detected += 1;
                } else {
                    rep.fail(
                        dmg.name,
                        "verify",
                        format!(
                            "did not report the damage (exit {:?}, wanted one of {:?}): {}{}",
                            out.status.code(),
                            dmg.names,
                            util::stdout(&out),
                            util::stderr(&out)
                        ),
                    );
                }
            } else if failed && dmg.name.starts_with("garbage files") {
                rep.fail(
                    dmg.name,
                    "verify",
                    format!("failed on harmless files: {}", util::stdout(&out)),
                );
            } else if !dmg.names.is_empty() && dmg.name.starts_with("truncation") {
                // Torn tail: exit 0 is right, but it must be mentioned.
                if verify_names(&out, &dmg.names) {
                    detected += 1;
                } else {
                    rep.fail(dmg.name, "verify", "torn tail not mentioned".into());
                }
            }
        }

        // export: the intact part, nothing else, oldest first.
        let args = ["export", "--format", "jsonl"];
        let mut exported: Vec<u64> = Vec::new();
        if let Some(out) = check_common(&mut rep, dmg, &args, run_bounded(&env, &args)) {
            if out.status.success() {
                exported = check_events(&mut rep, &fx, dmg, "export", &util::stdout(&out));
                if exported.windows(2).any(|w| w[0] >= w[1]) {
                    rep.fail(
                        dmg.name,
                        "export",
                        "ids not strictly increasing (duplicates served?)".into(),
                    );
                }
                let lost: Vec<u64> = fx
                    .events
                    .keys()
                    .filter(|id| !exported.contains(id) && !dmg.may_lose.contains(id))
                    .copied()
                    .collect();
                if !lost.is_empty() {
                    rep.fail(
                        dmg.name,
                        "export",
                        format!("lost undamaged events {lost:?}"),
                    );
                }
            }
        }
        let args = ["export", "--format", "csv"];
        check_common(&mut rep, dmg, &args, run_bounded(&env, &args));

        // Queries: only stored events; the same answers as export.
        let limit = "100000";
        let queries: Vec<Vec<&str>> = vec![
            vec!["recent", "--limit", limit, "--format", "jsonl"],
            vec!["last-deploys", "--limit", limit, "--format", "jsonl"],
            vec!["timeline", &app, "--limit", limit, "--format", "jsonl"],
            vec![
                "search", "--query", "deploy", "--limit", limit, "--format", "jsonl",
            ],
            vec!["recent", "--limit", "5"],
            vec!["tail", "-n", "5"],
            vec!["tail", "-n", "3", "--format", "table"],
            vec!["show", "5", "--format", "json"],
            vec!["show", "150"],
            vec!["status"],
        ];
        for args in &queries {
            let Some(out) = check_common(&mut rep, dmg, args, run_bounded(&env, args)) else {
                continue;
            };
            if !out.status.success() {
                continue;
            }
            let text = util::stdout(&out);
            let cmd = args.join(" ");
            if args.contains(&"jsonl") {
                let got = check_events(&mut rep, &fx, dmg, &cmd, &text);
                if args[0] == "recent" && !exported.is_empty() {
                    // Newest first by time, export by id: compare as sets.
                    let mut got = got.clone();
                    got.sort_unstable();
                    if got != exported {
                        rep.fail(
                            dmg.name,
                            &cmd,
                            format!(
                                "answers differ from export ({} vs {} events)",
                                got.len(),
                                exported.len()
                            ),
                        );
                    }
                }
            } else if args[0] == "show" && args.contains(&"json") {
                check_events(&mut rep, &fx, dmg, &cmd, &text.replace('\n', " "));
            }
        }

        // Maintenance.
        for args in [
            vec!["doctor"],
            vec!["prune", "--older-than", "1"],
            vec!["reindex"],
            vec!["vacuum"],
            vec!["backup"],
            vec!["get", "segment_max_bytes"],
            vec!["set", "hook_timeout_ms", "400"],
        ] {
            let out = check_common(&mut rep, dmg, &args, run_bounded(&env, &args));
            if let (Some(out), "doctor") = (out, args[0]) {
                if dmg.loses_data && out.status.success() {
                    rep.fail(dmg.name, "doctor", "exit 0 on a damaged store".into());
                }
            }
        }
        let _ = before_set;

        // After maintenance: nothing intact may have been lost; answers still honest.
        let args = ["export", "--format", "jsonl"];
        if let Some(out) = check_common(&mut rep, dmg, &args, run_bounded(&env, &args)) {
            if out.status.success() && !exported.is_empty() {
                let after = check_events(
                    &mut rep,
                    &fx,
                    dmg,
                    "export after maintenance",
                    &util::stdout(&out),
                );
                let lost: Vec<&u64> = exported.iter().filter(|id| !after.contains(id)).collect();
                if !lost.is_empty() {
                    rep.fail(
                        dmg.name,
                        "maintenance",
                        format!("lost events that export served before: {lost:?}"),
                    );
                }
            }
        }
        let args = ["recent", "--limit", limit, "--format", "jsonl"];
        if let Some(out) = check_common(&mut rep, dmg, &args, run_bounded(&env, &args)) {
            if out.status.success() {
                check_events(
                    &mut rep,
                    &fx,
                    dmg,
                    "recent after maintenance",
                    &util::stdout(&out),
                );
            }
        }
    }
    println!(
        "corruption: {tried} damages tried, {detected} detected by verify ({must_detect} lose or change data), {} panics",
        rep.panics
    );
    assert!(
        rep.problems.is_empty(),
        "{} problem(s):\n{}",
        rep.problems.len(),
        rep.problems.join("\n")
    );
}

/// A FIFO (or any non-regular file) under a segment name: opening it would block until a
/// writer appears, so every reader, and every trigger, would hang for ever (a stalled Dokku).
/// `segment::list` lists only regular files as segments and reports the rest as foreign.
#[test]
fn a_fifo_named_like_a_segment_hangs_nothing() {
    let env = util::TestEnv::new();
    let p = env.file("in.jsonl", &util::demo_jsonl(20, 1));
    env.ok(&["import", p.to_str().unwrap()]);
    for name in [
        "00000000000000000005.jsonl.zst",
        "00000000000000000100.jsonl",
    ] {
        let fifo = env.segments_dir().join(name);
        let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(ok.success());
        for args in [
            &["verify"][..],
            &["export"],
            &["status"],
            &["recent"],
            &["tail"],
            &["doctor"],
            &["hook", "post-create", "x"],
        ] {
            let start = Instant::now();
            let mut child = env
                .command(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let hung = loop {
                if child.try_wait().unwrap().is_some() {
                    break false;
                }
                if start.elapsed() > Duration::from_secs(3) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break true;
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            assert!(!hung, "{args:?} hangs on a FIFO named {name}");
        }
        std::fs::remove_file(&fifo).unwrap();
    }
}
