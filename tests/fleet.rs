//! A fleet in one place (docs/fleet.md). `relp_fleet_*`: three simulated hosts (separate data
//! directories and host ids), each with its own rsyslogd following `segments/*.jsonl` with
//! imfile and forwarding over RELP (`contrib/rsyslog/sender.conf`), to one collector rsyslogd
//! (`contrib/rsyslog/collector.conf`) writing one JSONL file. The collector is SIGKILLed and
//! restarted mid-stream, and one sender is restarted mid-stream, while the plugin appends and
//! segments rotate. Then: every event of every host arrived, every duplicate is a byte-identical
//! resend, per host the first arrivals are in id order, and `fleet-heads` of the collector's file
//! passes `verify --heads` on every host.
//!
//! `verify_heads_*`: tamper evidence across the fleet without rsyslog (the shipped lines are
//! the hosts' plain segment copies): a host rewritten consistently by its own root passes plain
//! `verify` and fails `verify --heads`; an untouched host passes; a pruned host reports "not
//! held", not a mismatch; a host whose newest events were cut reports them missing.
//! `fleet_heads_*`: an event shipped with two chain values fails `fleet-heads`; ids of a host
//! not received are warned about (how the losses rsyslog can cause are found: docs/fleet.md).
//!
//! The RELP test needs `rsyslogd` and the `rsyslog-relp` modules; without them it prints
//! "SKIPPED: …" and passes (.ci/run installs them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{self, TestEnv};
use serde_json::Value;

const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
const RELP_MODULES: [&str; 2] = [
    "/usr/lib/x86_64-linux-gnu/rsyslog/imrelp.so",
    "/usr/lib/x86_64-linux-gnu/rsyslog/omrelp.so",
];
const HOSTS: usize = 3;
const EVENTS_PER_HOST: usize = 60;

fn host_id(i: usize) -> String {
    format!("{:032x}", 0xf1ee_0000_u64 + i as u64)
}

/// One rsyslogd instance: its config, pid file and log; killed when dropped, so a failing
/// assertion never leaves it running.
struct Rsyslogd {
    conf: PathBuf,
    pid_file: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl Rsyslogd {
    fn new(dir: &Path, name: &str, conf_text: String) -> Rsyslogd {
        let conf = dir.join(format!("{name}.conf"));
        std::fs::write(&conf, conf_text).unwrap();
        Rsyslogd {
            conf,
            pid_file: dir.join(format!("{name}.pid")),
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    fn start(&mut self) {
        // A SIGKILLed rsyslogd leaves its pid file behind, and rsyslogd refuses to start over
        // an existing one (a service manager removes it the same way).
        let _ = std::fs::remove_file(&self.pid_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(RSYSLOGD)
            .arg("-n")
            .arg("-f")
            .arg(&self.conf)
            .arg("-i")
            .arg(&self.pid_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start rsyslogd");
        self.child = Some(child);
    }

    fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A clean stop (SIGTERM): imfile saves its positions, the queue its messages.
    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Our own child, not reaped yet: the pid is still its.
            let pid = i32::try_from(c.id())
                .ok()
                .and_then(rustix::process::Pid::from_raw)
                .expect("child pid");
            rustix::process::kill_process(pid, rustix::process::Signal::TERM)
                .expect("SIGTERM rsyslogd");
            let deadline = Instant::now() + Duration::from_secs(20);
            while c.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "rsyslogd ({}) did not stop within 20 s of SIGTERM",
                    self.conf.display()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Some(st) = c.try_wait().unwrap() {
                panic!(
                    "rsyslogd ({}) exited ({st}): {}",
                    self.conf.display(),
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Rsyslogd {
    fn drop(&mut self) {
        self.sigkill();
    }
}

/// A contrib/rsyslog file with its `@NAME@` placeholders filled in; every placeholder must be
/// given (a new one in the file fails here, so docs and test cannot drift).
fn contrib_conf(name: &str, values: &[(&str, String)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/rsyslog")
        .join(name);
    let mut text = std::fs::read_to_string(&path).expect("contrib/rsyslog config");
    for (k, v) in values {
        text = text.replace(&format!("@{k}@"), v);
    }
    let left: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains('@'))
        .collect();
    assert!(left.is_empty(), "{name}: unfilled placeholders: {left:?}");
    text
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

struct Host {
    env: TestEnv,
    id: String,
    sender: Rsyslogd,
}

fn post_create(host: &Host, app: &str, pid: usize) {
    let mut c = util::plugin_trigger(
        "post-create",
        &[app],
        &host.env.data,
        &host.env.tmp.path().join("home"),
        &pid.to_string(),
        "2026-04-08T20:00:00Z",
    );
    for (k, v) in &host.env.extra_env {
        c.env(k, v);
    }
    let o = c.stdin(Stdio::null()).output().unwrap();
    assert!(
        o.status.success() && o.stderr.is_empty(),
        "post-create {app}: {}",
        util::stderr(&o)
    );
}

/// The received lines, each with its host id and id (`None` for a line that is not an event).
fn received(out: &Path) -> Vec<(String, Option<(String, u64)>)> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let key = serde_json::from_str::<Value>(l).ok().and_then(|v| {
                Some((
                    v["meta"]["host_id"].as_str()?.to_string(),
                    v["id"].as_u64()?,
                ))
            });
            (l.to_string(), key)
        })
        .collect()
}

/// Every line of the host's plain segment copies (all still there: grace period), by id.
fn lines_on_disk(env: &TestEnv) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for p in env.segment_files(".jsonl") {
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            let v: Value = serde_json::from_str(line).expect("segment line is JSON");
            out.insert(v["id"].as_u64().unwrap(), line.to_string());
        }
    }
    out
}

#[test]
fn relp_fleet_every_event_of_every_host_arrives_through_collector_and_sender_restarts() {
    let started = Instant::now();
    if !Path::new(RSYSLOGD).exists() {
        eprintln!("SKIPPED: rsyslogd not installed (apt-get install -y rsyslog rsyslog-relp)");
        return;
    }
    if let Some(m) = RELP_MODULES.iter().find(|m| !Path::new(m).exists()) {
        eprintln!("SKIPPED: {m} missing (apt-get install -y rsyslog-relp)");
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let out = top.path().join("fleet.jsonl");
    let port = free_port();
    let cwork = top.path().join("collector-work");
    std::fs::create_dir_all(&cwork).unwrap();
    let mut collector = Rsyslogd::new(
        top.path(),
        "collector",
        contrib_conf(
            "collector.conf",
            &[
                ("WORK_DIR", cwork.display().to_string()),
                ("ADDRESS", "127.0.0.1".into()),
                ("PORT", port.to_string()),
                ("OUTPUT", out.display().to_string()),
            ],
        ),
    );
    collector.start();

    let mut hosts: Vec<Host> = (0..HOSTS)
        .map(|i| {
            let env = TestEnv::new()
                .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "4096")
                .env("DOKKU_AUDIT_HOST_NAME", &format!("host-{i}"))
                .env("DOKKU_AUDIT_HOST_ID", &host_id(i))
                .env("DOKKU_AUDIT_STRICT_MODE", "true");
            let work = env.tmp.path().join("sender-work");
            std::fs::create_dir_all(&work).unwrap();
            std::fs::create_dir_all(env.segments_dir()).unwrap();
            let conf = contrib_conf(
                "sender.conf",
                &[
                    ("WORK_DIR", work.display().to_string()),
                    ("SEGMENTS", env.segments_dir().display().to_string()),
                    ("COLLECTOR", "127.0.0.1".into()),
                    ("PORT", port.to_string()),
                ],
            );
            let mut sender = Rsyslogd::new(env.tmp.path(), "sender", conf);
            sender.start();
            Host {
                id: host_id(i),
                env,
                sender,
            }
        })
        .collect();
    // Let every instance load its config and set up its watches.
    std::thread::sleep(Duration::from_millis(500));
    collector.assert_running();
    for h in &mut hosts {
        h.sender.assert_running();
    }

    // Round robin over the hosts; the collector dies at a third, comes back at a half, and
    // host 1's sender is restarted at two thirds, all while events keep being appended.
    for n in 0..EVENTS_PER_HOST {
        if n == EVENTS_PER_HOST / 3 {
            collector.sigkill();
            // Long enough for every sender to hit the dead collector and suspend its action.
            std::thread::sleep(Duration::from_millis(1500));
        }
        if n == EVENTS_PER_HOST / 2 {
            collector.start();
        }
        if n == 2 * EVENTS_PER_HOST / 3 {
            hosts[1].sender.stop();
            hosts[1].sender.start();
        }
        for h in &hosts {
            post_create(h, &format!("app{n}"), 1000 + n);
        }
    }

    // What each host holds (export) and its lines as stored.
    let mut expected: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut stored: BTreeMap<String, BTreeMap<u64, String>> = BTreeMap::new();
    for h in &hosts {
        let ids: Vec<u64> = h
            .env
            .export_events()
            .iter()
            .map(|e| {
                assert_eq!(
                    e["meta"]["host_id"],
                    h.id.as_str(),
                    "host id on every event"
                );
                e["id"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(
            ids.len(),
            EVENTS_PER_HOST,
            "host {} holds every event",
            h.id
        );
        assert!(
            h.env.segment_files(".jsonl.zst").len() >= 4,
            "segments rotated on host {}",
            h.id
        );
        let disk = lines_on_disk(&h.env);
        assert_eq!(
            disk.keys().copied().collect::<Vec<_>>(),
            ids,
            "plain copies"
        );
        expected.insert(h.id.clone(), ids);
        stored.insert(h.id.clone(), disk);
    }

    // Wait (bounded) until every (host, id) arrived, then a little longer for late resends.
    let want: usize = expected.values().map(Vec::len).sum();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut complete_since: Option<Instant> = None;
    loop {
        let got: BTreeSet<(String, u64)> =
            received(&out).into_iter().filter_map(|(_, k)| k).collect();
        let now = Instant::now();
        if got.len() >= want {
            let since = *complete_since.get_or_insert(now);
            if now.duration_since(since) >= Duration::from_millis(1500) {
                break;
            }
        }
        if now > deadline {
            let missing: Vec<String> = expected
                .iter()
                .flat_map(|(h, ids)| ids.iter().map(move |id| (h.clone(), *id)))
                .filter(|k| !got.contains(k))
                .map(|(h, id)| format!("{h}#{id}"))
                .collect();
            panic!(
                "after 30 s the collector has {} of {want} events; missing {missing:?}\ncollector log: {}\nsender logs: {}",
                got.len(),
                collector.log_text(),
                hosts.iter().map(|h| h.sender.log_text()).collect::<Vec<_>>().join("\n---\n")
            );
        }
        collector.assert_running();
        std::thread::sleep(Duration::from_millis(100));
    }
    for h in &mut hosts {
        h.sender.stop();
    }
    collector.stop();

    // Every received line is an event of one of the hosts, byte for byte as stored; a
    // duplicate is a resend of the same line; per host, first arrivals are in id order.
    let lines = received(&out);
    let mut first_arrivals: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut seen: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut duplicates = 0;
    for (line, key) in &lines {
        let (host, id) = key
            .clone()
            .unwrap_or_else(|| panic!("received a line that is not an event: {line:?}"));
        let on_disk = stored
            .get(&host)
            .and_then(|m| m.get(&id))
            .unwrap_or_else(|| panic!("received {host}#{id}, which no host stores"));
        assert_eq!(line, on_disk, "{host}#{id} arrived byte for byte");
        if seen.insert((host.clone(), id)) {
            first_arrivals.entry(host).or_default().push(id);
        } else {
            duplicates += 1;
        }
    }
    for (host, ids) in &expected {
        let got = first_arrivals.get(host).cloned().unwrap_or_default();
        assert_eq!(
            &got, ids,
            "host {host}: after dropping duplicates by (host_id, id), every event once, in id order"
        );
    }

    // The collector's record of each host's chain passes `verify --heads` on that host.
    let heads = top.path().join("heads.jsonl");
    let o = hosts[0].env.run(&[
        "fleet-heads",
        "--output",
        &heads.display().to_string(),
        &out.display().to_string(),
    ]);
    assert!(o.status.success(), "fleet-heads: {}", util::stderr(&o));
    assert_eq!(util::stderr(&o), "", "no line skipped, no gap, no conflict");
    let text = std::fs::read_to_string(&heads).unwrap();
    assert_eq!(text.lines().count(), HOSTS, "one head per host: {text}");
    for h in &hosts {
        let o = h
            .env
            .run(&["verify", "--heads", &heads.display().to_string()]);
        let report = util::stdout(&o);
        assert!(o.status.success(), "verify --heads on {}: {report}", h.id);
        assert!(
            report.contains(&format!("heads: 1 of host {}", h.id)) && report.contains("1 matched"),
            "{report}"
        );
    }

    let took = started.elapsed();
    eprintln!(
        "relp fleet: {want} events from {HOSTS} hosts, {} lines received ({duplicates} duplicates) in {took:.1?}",
        lines.len()
    );
}

// ---------------------------------------------------------------------------------------------
// verify --heads without rsyslog

/// A host whose events were "shipped": its plain segment copies, concatenated, stand for what
/// the collector received.
fn host_with_events(i: usize, events: &[(&str, &str)], max_bytes: &str) -> TestEnv {
    let env = TestEnv::new()
        .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", max_bytes)
        .env("DOKKU_AUDIT_HOST_NAME", &format!("host-{i}"))
        .env("DOKKU_AUDIT_HOST_ID", &host_id(i));
    for (n, (app, now)) in events.iter().enumerate() {
        let mut c = util::plugin_trigger(
            "post-create",
            &[app],
            &env.data,
            &env.tmp.path().join("home"),
            &(2000 + n).to_string(),
            now,
        );
        for (k, v) in &env.extra_env {
            c.env(k, v);
        }
        let o = c.stdin(Stdio::null()).output().unwrap();
        assert!(o.status.success(), "post-create: {}", util::stderr(&o));
    }
    env
}

fn shipped(envs: &[&TestEnv]) -> Vec<u8> {
    let mut out = Vec::new();
    for env in envs {
        for line in lines_on_disk(env).values() {
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

fn heads_of(env: &TestEnv, shipped: &[u8], args: &[&str]) -> PathBuf {
    let path = env.tmp.path().join("heads.jsonl");
    let mut a = vec!["fleet-heads", "--output"];
    let p = path.display().to_string();
    a.push(&p);
    a.extend_from_slice(args);
    let o = env.run_stdin(&a, shipped);
    assert!(o.status.success(), "fleet-heads: {}", util::stderr(&o));
    path
}

fn verify_heads(env: &TestEnv, heads: &Path) -> Output {
    env.run(&["verify", "--heads", &heads.display().to_string()])
}

/// Rewrites the host's one plain segment the way its root could: `edit` each event JSON (or
/// drop it with `None`), then recompute every CRC and chain value from genesis, so plain
/// `verify` accepts the result.
fn rewrite_consistently(env: &TestEnv, edit: impl Fn(u64, String) -> Option<String>) {
    use dokku_audit::store::codec::{encode_line, ChainHash, TAIL_LEN};
    let seg = env.active_segment().expect("one plain segment");
    assert_eq!(
        env.segment_files(".jsonl").len(),
        1,
        "the host has one segment"
    );
    let text = std::fs::read_to_string(&seg).unwrap();
    let mut prev = ChainHash::GENESIS;
    let mut out = Vec::new();
    for line in text.lines() {
        let id = serde_json::from_str::<Value>(line).unwrap()["id"]
            .as_u64()
            .unwrap();
        let event = format!("{}}}", &line[..line.len() - TAIL_LEN]);
        if let Some(event) = edit(id, event) {
            prev = encode_line(event.as_bytes(), &prev, &mut out);
        }
    }
    std::fs::write(&seg, out).unwrap();
}

const NOW: &str = "2026-04-08T20:00:00Z";

#[test]
fn verify_heads_catches_a_consistent_rewrite_by_the_hosts_root_and_passes_an_untouched_host() {
    let apps = [
        ("alpha", NOW),
        ("beta", NOW),
        ("gamma", NOW),
        ("delta", NOW),
        ("epsilon", NOW),
    ];
    let honest = host_with_events(0, &apps, "16777216");
    let rewritten = host_with_events(1, &apps, "16777216");
    let cut = host_with_events(2, &apps, "16777216");
    let heads = heads_of(&honest, &shipped(&[&honest, &rewritten, &cut]), &[]);
    let text = std::fs::read_to_string(&heads).unwrap();
    assert_eq!(text.lines().count(), 3, "one head per host: {text}");

    let o = verify_heads(&honest, &heads);
    assert!(o.status.success(), "{}", util::stdout(&o));
    assert!(util::stdout(&o).contains("1 matched, 0 not held (removed), 0 mismatched, 0 missing"));

    // The root of host 1 renames an app in event 2 and rechains everything after it.
    rewritten_edit(&rewritten);
    let plain = rewritten.run(&["verify"]);
    assert!(
        plain.status.success(),
        "a consistent rewrite passes plain verify: {}",
        util::stdout(&plain)
    );
    let o = verify_heads(&rewritten, &heads);
    let report = util::stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(
        report.contains("issue: head id 5: chain mismatch"),
        "{report}"
    );
    assert!(report.contains("verify: FAILED"), "{report}");
    util::assert_dokku_error(&o, "do not match the store");
    let json = rewritten.run(&[
        "verify",
        "--heads",
        &heads.display().to_string(),
        "--format",
        "json",
    ]);
    let v: Value = serde_json::from_slice(&json.stdout).expect("verify json");
    assert_eq!(v["ok"], false);
    assert_eq!(v["heads"]["checked"][0]["result"], "mismatch");

    // The root of host 2 drops its two newest events (a shorter chain also verifies).
    rewrite_consistently(&cut, |id, ev| (id <= 3).then_some(ev));
    assert!(cut.run(&["verify"]).status.success());
    let o = verify_heads(&cut, &heads);
    let report = util::stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{report}");
    assert!(
        report.contains("issue: head id 5: missing: the store ends at id 3"),
        "{report}"
    );
}

fn rewritten_edit(env: &TestEnv) {
    rewrite_consistently(env, |id, ev| {
        Some(if id == 2 {
            ev.replace("\"beta\"", "\"harmless\"")
        } else {
            ev
        })
    });
}

#[test]
fn verify_heads_reports_pruned_heads_as_not_held_and_refuses_a_file_without_this_host() {
    // Four old events in their own day's segments, then four of today.
    let mut events = vec![];
    for n in 0..4 {
        events.push((["a0", "a1", "a2", "a3"][n], "2026-01-01T10:00:00Z"));
    }
    for n in 0..4 {
        events.push((["b0", "b1", "b2", "b3"][n], NOW));
    }
    let host = host_with_events(0, &events, "4096");
    // Checkpoints every 2 ids: heads for ids in the old segments too.
    let heads = heads_of(&host, &shipped(&[&host]), &["--every", "2"]);
    let ids: Vec<u64> = std::fs::read_to_string(&heads)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(
        ids,
        vec![1, 3, 5, 7, 8],
        "newest of each block of 2, and the head"
    );
    let o = host.run(&["prune", "--older-than", "30", "--yes"]);
    assert!(o.status.success(), "prune: {}", util::stderr(&o));
    assert!(
        host.run(&["verify"]).status.success(),
        "pruned store verifies"
    );

    let o = verify_heads(&host, &heads);
    let report = util::stdout(&o);
    assert!(o.status.success(), "{report}");
    assert!(
        report.contains("5 of host")
            && report.contains("3 matched, 2 not held (removed), 0 mismatched, 0 missing"),
        "{report}"
    );
    assert!(
        report.contains("notice: head id 1: not held: removed by prune/retention"),
        "{report}"
    );
    assert!(!report.contains("mismatch:"), "{report}");

    // A heads file without this host compares nothing: refused.
    let other = host.tmp.path().join("other.jsonl");
    std::fs::write(
        &other,
        format!(
            "{{\"host_id\":\"{}\",\"host_name\":\"x\",\"id\":1,\"chain\":\"{}\",\"ts\":\"{NOW}\"}}\n",
            host_id(9),
            "0".repeat(32)
        ),
    )
    .unwrap();
    let o = verify_heads(&host, &other);
    assert_eq!(o.status.code(), Some(1));
    util::assert_dokku_error(&o, "has no head of this host");
}

#[test]
fn fleet_heads_fails_when_an_event_was_shipped_with_two_chain_values() {
    let apps = [("alpha", NOW), ("beta", NOW), ("gamma", NOW)];
    let host = host_with_events(0, &apps, "16777216");
    let before = shipped(&[&host]);
    rewritten_edit(&host);
    // The rewritten segment shipped again (a restore, a new file): the head id comes twice.
    let mut both = before.clone();
    both.extend_from_slice(&shipped(&[&host]));
    let o = host.run_stdin(&["fleet-heads"], &both);
    assert_eq!(o.status.code(), Some(1), "{}", util::stderr(&o));
    let issue = format!("issue: host {} event 3: shipped with chain", host_id(0));
    assert!(util::stderr(&o).contains(&issue), "{}", util::stderr(&o));
    let err = util::stderr(&o);
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(
        last.starts_with(" !     ") && last.contains("two different chain values"),
        "{err}"
    );
    // The first value shipped is kept: the honest one.
    let first: Value = serde_json::from_str(
        std::str::from_utf8(&before)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    let kept: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(kept["chain"], first["chain"]);
}

#[test]
fn fleet_heads_warns_about_ids_of_a_host_not_received() {
    let apps = [
        ("alpha", NOW),
        ("beta", NOW),
        ("gamma", NOW),
        ("delta", NOW),
        ("epsilon", NOW),
    ];
    let host = host_with_events(0, &apps, "16777216");
    let all = shipped(&[&host]);
    let without_3: Vec<u8> = std::str::from_utf8(&all)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("{\"id\":3,"))
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let o = host.run_stdin(&["fleet-heads"], &without_3);
    assert!(o.status.success(), "{}", util::stderr(&o));
    let warning = format!(
        "dokku-audit: warning: host {}: events 3..=3 not received",
        host_id(0)
    );
    assert!(util::stderr(&o).contains(&warning), "{}", util::stderr(&o));
    let o = host.run_stdin(&["fleet-heads"], &all);
    assert_eq!(util::stderr(&o), "", "nothing missing, nothing to say");
}

#[test]
fn verify_heads_reports_heads_a_restore_replaced_as_not_held() {
    let host = host_with_events(0, &[("alpha", NOW), ("beta", NOW)], "16777216");
    let backup = host.ok(&["backup"]);
    let backup = backup.lines().last().unwrap().to_string();
    for (n, app) in ["gamma", "delta"].iter().enumerate() {
        let mut c = util::plugin_trigger(
            "post-create",
            &[app],
            &host.data,
            &host.tmp.path().join("home"),
            &(3000 + n).to_string(),
            NOW,
        );
        for (k, v) in &host.extra_env {
            c.env(k, v);
        }
        assert!(c.stdin(Stdio::null()).output().unwrap().status.success());
    }
    let heads = heads_of(&host, &shipped(&[&host]), &[]);
    let head: Value =
        serde_json::from_str(std::fs::read_to_string(&heads).unwrap().trim()).unwrap();
    let head_id = head["id"].as_u64().unwrap();
    let o = host.run(&["restore", &backup, "--yes"]);
    assert!(o.status.success(), "restore: {}", util::stderr(&o));

    let o = verify_heads(&host, &heads);
    let report = util::stdout(&o);
    assert!(o.status.success(), "{report}");
    assert!(
        report.contains(&format!(
            "notice: head id {head_id}: not held: replaced by a restore (maintenance event"
        )),
        "{report}"
    );
    assert!(
        report.contains("0 matched, 1 not held (removed), 0 mismatched, 0 missing"),
        "{report}"
    );
}
