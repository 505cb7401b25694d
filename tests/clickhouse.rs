//! The fleet in ClickHouse (contrib/clickhouse, docs/fleet-clickhouse.md): a private
//! clickhouse-server (Debian's, 18.16) gets the segment lines of three hosts through
//! `load.sh`, twice and in another order the second time, and every view in `query.sh` gives
//! the CLI's answer on each host: the same events in the same order, with the same fields.
//!
//! The hosts, each with its own `DOKKU_AUDIT_HOST_ID` (as three machines would have): `demo`
//! writes a few thousand events on "gamma"; its export is imported into two more data
//! directories: "alpha", with alpha's host fields and a history changed so that some deploys
//! roll back, and "beta", a part of it with the host fields taken out (lines from before the
//! host fields existed: the loader's `--host-id` gives them their host). Their event ids
//! overlap: only (host_id, id) tells the events apart.
//!
//! Needs `clickhouse-server` and `clickhouse-client` (Debian packages of the same names); without
//! them the test prints "SKIPPED: clickhouse-server not installed" and passes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::serve::free_port;
use crate::util::{stderr, TestEnv};

const ALPHA: &str = "a1fa0000000000000000000000000001";
const BETA: &str = "be7a0000000000000000000000000002";
const GAMMA: &str = "9a3a0000000000000000000000000003";

/// A data directory whose recorded events carry this host identity.
fn host_env(id: &str, name: &str) -> TestEnv {
    TestEnv::new()
        .env("DOKKU_AUDIT_HOST_ID", id)
        .env("DOKKU_AUDIT_HOST_NAME", name)
}

/// A private clickhouse-server in a temp dir, on free ports; killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn installed() -> Option<PathBuf> {
    let server = ["/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())?;
    Command::new("clickhouse-client")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(server)
}

impl Server {
    fn start(bin: &Path) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let port = free_port();
        let http = free_port();
        let config = format!(
            r#"<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>
  <http_port>{http}</http_port>
  <tcp_port>{port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <timezone>UTC</timezone>
</yandex>
"#
        );
        let users = r#"<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
"#;
        std::fs::write(dir.path().join("config.xml"), config).unwrap();
        std::fs::write(dir.path().join("users.xml"), users).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config-file={d}/config.xml"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clickhouse-server");
        let server = Server {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if server.sql("SELECT 1").is_ok() {
                return server;
            }
            let log = std::fs::read_to_string(server._dir.path().join("error.log"));
            assert!(
                Instant::now() < deadline,
                "clickhouse-server did not answer in 30 s: {}",
                log.unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn sql(&self, query: &str) -> Result<String, String> {
        let o = Command::new("clickhouse-client")
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--multiquery", "--query", query])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(stderr(&o));
        }
        Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    fn contrib(&self, script: &str) -> Command {
        let mut c = Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("contrib/clickhouse")
                .join(script),
        );
        c.env("CH_HOST", "127.0.0.1")
            .env("CH_PORT", self.port.to_string())
            .env_remove("CH_USER")
            .env_remove("CH_PASSWORD")
            .env_remove("CLICKHOUSE_CLIENT");
        c
    }

    fn load(&self, host: &Host, files: &[PathBuf]) {
        let mut c = self.contrib("load.sh");
        if !host.id.is_empty() {
            c.args(["--host-id", host.id, "--host-name", host.name]);
        }
        let o = c.args(files).output().unwrap();
        assert!(o.status.success(), "load.sh: {}", stderr(&o));
    }

    /// `query.sh` rows (JSONEachRow).
    fn view(&self, args: &[&str]) -> Vec<Value> {
        let o = self.contrib("query.sh").args(args).output().unwrap();
        assert!(o.status.success(), "query.sh {args:?}: {}", stderr(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_str(l).expect("JSONEachRow"))
            .collect()
    }

    fn count(&self, query: &str) -> u64 {
        self.sql(query).unwrap().parse().unwrap()
    }
}

/// One simulated host: a data dir, and its host id.
struct Host {
    env: TestEnv,
    id: &'static str,
    name: &'static str,
    events: Vec<Value>,
}

impl Host {
    fn segment_files(&self) -> Vec<PathBuf> {
        let mut v = self.env.segment_files(".jsonl");
        v.extend(self.env.segment_files(".jsonl.zst"));
        v
    }

    fn cli(&self, args: &[&str]) -> Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--format", "json"]);
        let o = self.env.run(&all);
        assert!(o.status.success(), "{all:?}: {}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// `export` with every event's meta given the host fields, and `f` applied.
fn with_host(events: &[Value], id: &str, name: &str, f: impl Fn(usize, &mut Value)) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        let meta = e["meta"].as_object_mut().unwrap();
        meta.insert("host_id".into(), id.into());
        meta.insert("host_name".into(), name.into());
        f(i, &mut e);
        out.extend(serde_json::to_vec(&e).unwrap());
        out.push(b'\n');
    }
    out
}

/// The events as lines from before the host fields existed.
fn without_host(events: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let mut e = e.clone();
        let meta = e["meta"].as_object_mut().unwrap();
        meta.remove("host_id");
        meta.remove("host_name");
        out.extend(serde_json::to_vec(&e).unwrap());
        out.push(b'\n');
    }
    out
}

fn import(env: &TestEnv, jsonl: &[u8]) {
    let o = env.run_stdin(&["import", "-"], jsonl);
    assert!(o.status.success(), "import: {}", stderr(&o));
}

/// The fields both sides have, per view, compared as JSON values.
const LIST_FIELDS: &[&str] = &[
    "id",
    "ts",
    "app",
    "category",
    "action",
    "status",
    "classification",
    "actor_label",
    "message",
];
const DEPLOY_FIELDS: &[&str] = &[
    "id",
    "ts",
    "app",
    "status",
    "classification",
    "source_type",
    "rev",
    "image_tag",
    "actor_label",
    "message",
];
const RELEASE_FIELDS: &[&str] = &[
    "version",
    "id",
    "ts",
    "actor",
    "status",
    "current",
    "rollback_to",
    "rev",
    "image_tag",
    "source_type",
    "classification",
];

fn project(rows: &[Value], fields: &[&str]) -> Vec<Vec<Value>> {
    rows.iter()
        .map(|r| {
            fields
                .iter()
                .map(|f| match (*f, &r[*f]) {
                    // ClickHouse has no boolean: `current` is 0 or 1.
                    ("current", Value::Number(n)) => Value::Bool(n.as_u64() == Some(1)),
                    (_, v) => v.clone(),
                })
                .collect()
        })
        .collect()
}

/// Compares one view on one host; returns its rows (the compared fields).
fn same(
    server: &Server,
    host: &Host,
    cli: &[&str],
    sql: &[&str],
    fields: &[&str],
) -> Vec<Vec<Value>> {
    let want = host.cli(cli);
    let want: Vec<Value> = match want {
        Value::Array(a) => a,
        Value::Object(mut o) => match o.remove("releases") {
            Some(Value::Array(a)) => a,
            other => panic!("{cli:?}: {other:?}"),
        },
        other => panic!("{cli:?}: {other:?}"),
    };
    let mut args: Vec<&str> = sql.to_vec();
    args.extend(["--host-id", host.id]);
    let got = server.view(&args);
    let (want, got) = (project(&want, fields), project(&got, fields));
    if want != got {
        let first = want.iter().zip(&got).position(|(a, b)| a != b);
        panic!(
            "host {:?}: {cli:?} / query.sh {sql:?}: {} rows from the CLI, {} from ClickHouse; \
             first difference at {first:?}: {:?} vs {:?}",
            host.id,
            want.len(),
            got.len(),
            first.and_then(|i| want.get(i)),
            first.and_then(|i| got.get(i)),
        );
    }
    want
}

#[test]
fn clickhouse_views_answer_as_the_cli_on_every_host_after_loading_twice() {
    let started = Instant::now();
    let Some(server_bin) = installed() else {
        eprintln!(
            "SKIPPED: clickhouse-server not installed \
             (apt-get install -y clickhouse-server clickhouse-client)"
        );
        return;
    };
    for tool in ["jq", "zstdcat"] {
        assert!(
            Command::new(tool).arg("--version").output().is_ok(),
            "{tool} is needed by load.sh"
        );
    }
    let server = Server::start(&server_bin);
    let schema = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/clickhouse/schema.sql"),
    )
    .unwrap();
    server.sql(&schema).expect("schema.sql");

    // Three hosts. Gamma's history is the binary's demo.
    let gamma = host_env(GAMMA, "gamma");
    let o = gamma.run(&["demo", "--events", "3000", "--show", "0"]);
    assert!(o.status.success(), "demo: {}", stderr(&o));
    let events = gamma.export_events();
    assert!(events.iter().all(|e| e["meta"]["host_id"] == GAMMA));
    assert!(events.len() >= 3000, "{}", events.len());
    // alpha: every 7th source deploy of an app deploys again the revision of that app's first
    // source deploy (a rollback, unless it is already the code in effect).
    let alpha = host_env(ALPHA, "alpha");
    let first_rev = |app: &str| {
        events
            .iter()
            .find(|e| e["app"] == app && e["action"] == "finish" && e["source_type"] == "git-push")
            .map(|e| e["rev"].clone())
    };
    let rolled = std::cell::Cell::new(0);
    import(
        &alpha,
        &with_host(&events, ALPHA, "alpha", |i, e| {
            if e["category"] == "deploy"
                && e["action"] == "finish"
                && e["source_type"] == "git-push"
                && i % 7 == 0
            {
                if let Some(rev) = e["app"].as_str().and_then(first_rev) {
                    e["rev"] = rev;
                    rolled.set(rolled.get() + 1);
                }
            }
        }),
    );
    assert!(rolled.get() > 3, "{}", rolled.get());
    let beta = host_env(BETA, "beta");
    import(&beta, &without_host(&events[..1200]));
    let hosts: Vec<Host> = [
        (gamma, GAMMA, "gamma"),
        (alpha, ALPHA, "alpha"),
        (beta, BETA, "beta"),
    ]
    .into_iter()
    .map(|(env, id, name)| {
        let events = env.export_events();
        Host {
            env,
            id,
            name,
            events,
        }
    })
    .collect();
    let built = started.elapsed();

    // Load every host's segment files (sealed and plain), then again in reverse order (hosts
    // and files), plus a torn line (what a crash leaves at the end of the active segment).
    // Events written before the host fields existed have no meta.host_id: here beta's imported
    // history, given its host by the loader's --host-id.
    for h in &hosts {
        server.load(h, &h.segment_files());
    }
    let total: usize = hosts.iter().map(|h| h.events.len()).sum();
    assert_eq!(
        server.count("SELECT count() FROM dokku_audit.events FINAL"),
        total as u64
    );
    for h in hosts.iter().rev() {
        let mut files = h.segment_files();
        files.reverse();
        files.push(h.env.file("torn.jsonl", br#"{"id":5,"ts":"2026-0"#));
        server.load(h, &files);
    }
    let loaded = started.elapsed() - built;
    // Every line is stored twice until ClickHouse merges; every query sees each event once.
    assert!(server.count("SELECT count() FROM dokku_audit.events") > total as u64);
    assert_eq!(
        server.count("SELECT count() FROM dokku_audit.events FINAL"),
        total as u64
    );
    for h in &hosts {
        let ids: BTreeSet<u64> = h.events.iter().filter_map(|e| e["id"].as_u64()).collect();
        assert_eq!(
            server.count(&format!(
                "SELECT count() FROM dokku_audit.events FINAL WHERE host_id = '{}'",
                h.id
            )),
            ids.len() as u64,
            "host {:?}",
            h.id
        );
        // The events themselves: every field the CLI exports, spot-checked on the newest.
        let newest = h.events.last().unwrap();
        let row = server
            .sql(&format!(
                "SELECT message, meta, chain != '' FROM dokku_audit.events FINAL \
                 WHERE host_id = '{}' AND id = {} FORMAT JSONEachRow",
                h.id, newest["id"]
            ))
            .unwrap();
        let row: Value = serde_json::from_str(&row).unwrap();
        assert_eq!(row["message"], newest["message"]);
        let meta: Value = serde_json::from_str(row["meta"].as_str().unwrap()).unwrap();
        assert_eq!(meta, newest["meta"]);
        assert_eq!(row["notEquals(chain, '')"], 1);
    }
    // The overlapping ids are different events of different hosts.
    assert_eq!(
        server.count(
            "SELECT uniqExact(host_id) FROM dokku_audit.events FINAL WHERE id = 100 \
             AND host_id IN ('9a3a0000000000000000000000000003', \
             'a1fa0000000000000000000000000001', 'be7a0000000000000000000000000002')"
        ),
        3
    );

    // Times inside the history, for --since/--until.
    let ts = |frac: f64| {
        let evs = &hosts[0].events;
        evs[((evs.len() as f64) * frac) as usize]["ts"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (t1, t2) = (ts(0.3), ts(0.6));
    let mut rows = 0;
    let mut cases = 0;
    let mut rollbacks = 0;
    // Every case on alpha (the host with rollbacks); the first of each kind on the others.
    for h in &hosts {
        let n = if h.id == ALPHA { usize::MAX } else { 1 };
        let apps: BTreeSet<String> = h
            .events
            .iter()
            .filter(|e| e["category"] == "deploy" && e["action"] == "finish")
            .filter_map(|e| e["app"].as_str().map(str::to_string))
            .collect();
        assert!(apps.len() >= 3, "{apps:?}");
        let app = apps.iter().next().unwrap().as_str();
        let mut check = |cli: &[&str], sql: &[&str], fields: &[&str]| {
            let got = same(&server, h, cli, sql, fields);
            rows += got.len();
            cases += 1;
            if fields == RELEASE_FIELDS {
                rollbacks += got.iter().filter(|r| !r[6].is_null()).count();
            }
        };
        for extra in [
            vec![],
            vec!["--app", app],
            vec!["--classification", "release_only", "--limit", "7"],
        ]
        .into_iter()
        .take(n)
        {
            let cli: Vec<&str> = ["last-deploys"].into_iter().chain(extra).collect();
            check(&cli, &cli, DEPLOY_FIELDS);
        }
        for extra in [
            vec![],
            vec!["--category", "config"],
            vec!["--since", &t1, "--until", &t2, "--limit", "500"],
        ]
        .into_iter()
        .take(n)
        {
            let cli: Vec<&str> = ["timeline", app].into_iter().chain(extra).collect();
            check(&cli, &cli, LIST_FIELDS);
        }
        for extra in [
            vec![],
            vec!["--app", app, "--limit", "100"],
            vec!["--category", "deploy", "--status", "success"],
            vec!["--status", "failed", "--limit", "50"],
            vec!["--classification", "config_change"],
            vec!["--actor", "alice", "--limit", "60"],
            vec!["--actor", "ssh-key:ci-deploy"],
            vec!["--action", "set*", "--limit", "40"],
            vec!["--action", "fini?h"],
            vec!["--since", &t1, "--until", &t2, "--limit", "1000"],
        ]
        .into_iter()
        .take(n)
        {
            let cli: Vec<&str> = ["recent"].into_iter().chain(extra).collect();
            check(&cli, &cli, LIST_FIELDS);
        }
        for extra in [
            vec!["--query", "DATABASE_URL"],
            vec!["--query", "\"config keys set\"", "--limit", "30"],
            vec!["--query", "deploy finished"],
            // the same words, not as a phrase in this order: (almost) nothing
            vec!["--query", "\"finished deploy\""],
            vec!["--query", "alice", "--app", app],
            vec!["--query", "198.51.100.7", "--limit", "25"],
            vec!["--query", "bash", "--category", "command"],
            vec!["--query", "Redis_URL", "--since", &t1, "--until", &t2],
        ]
        .into_iter()
        .take(n)
        {
            let cli: Vec<&str> = ["search"].into_iter().chain(extra).collect();
            check(&cli, &cli, LIST_FIELDS);
        }
        for a in apps.iter().take(if n == 1 { 2 } else { n }) {
            check(
                &["releases", a, "--limit", "1000"],
                &["releases", a, "--limit", "1000"],
                RELEASE_FIELDS,
            );
        }
        check(
            &["releases", app, "--since", &t1, "--limit", "5"],
            &["releases", app, "--since", &t1, "--limit", "5"],
            RELEASE_FIELDS,
        );
    }
    // Rollbacks were compared, not only absent on both sides.
    assert!(rollbacks > 0, "no rollback in alpha's history");
    assert!(rows > 1000, "{rows} rows compared");
    eprintln!(
        "clickhouse: {cases} views compared ({rows} rows, {rollbacks} rollbacks); history built in \
         {:.1} s, loaded twice in {:.1} s, total {:.1} s",
        built.as_secs_f64(),
        loaded.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}
