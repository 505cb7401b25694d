//! Secrets on real command-line shapes never reach the data directory (issue 13, finding 2).
//!
//! Black box: every case is a `dokku` command as real Dokku hands it to the audit plugin
//! (`plugin/user-auth dokku alice …`, then the triggers the command fires: `scheduler-run`,
//! `scheduler-enter`, `post-config-update`, `deploy-source-set`, …), run through the plugin
//! shims and the built binary against one temporary data directory — first with the writer lock held (so the events
//! go to `spool/`), then again with the lock free (so they are drained and appended), with
//! segments small enough that most are sealed. Afterwards every file under the data dir
//! (sealed segments decompressed, the index `search` builds, `state/`, `spool/`, `quarantine/`)
//! and the output of `export` and `search` are searched for every secret. A case also names
//! text that must survive (the structure an auditor needs: the flag, the key, the host).
//!
//! The policy these cases pin is docs/capture.md, "Redaction policy".

use std::path::{Path, PathBuf};

use crate::util::{self, TestEnv};

/// One command with its secrets.
struct Case {
    name: &'static str,
    /// Hook calls: the trigger, then its arguments.
    calls: Vec<Vec<String>>,
    /// Must not appear anywhere.
    secrets: Vec<String>,
    /// Must appear in the export (redaction kept the structure).
    kept: Vec<String>,
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `user-auth dokku alice <command…>`.
fn ua(cmd: &[&str]) -> Vec<String> {
    let mut a = v(&["user-auth", "dokku", "alice"]);
    a.extend(v(cmd));
    a
}

fn case(name: &'static str, calls: Vec<Vec<String>>, secrets: &[&str], kept: &[&str]) -> Case {
    Case {
        name,
        calls,
        secrets: v(secrets),
        kept: v(kept),
    }
}

/// `dokku run APP CMD…` with the scheduler triggers real Dokku fires for it.
fn run_case(name: &'static str, cmd: &[&str], secrets: &[&str], kept: &[&str]) -> Case {
    let app = "runapp";
    let mut user = vec!["run", app];
    user.extend_from_slice(cmd);
    let mut sched = v(&["scheduler-run", "docker-local", app, "0", "--"]);
    sched.extend(v(cmd).into_iter().filter(|a| a != "--"));
    case(
        name,
        vec![
            ua(&user),
            sched,
            v(&["scheduler-post-run", "docker-local", app, "c0ffee", "0"]),
        ],
        secrets,
        kept,
    )
}

/// The deploy finish that shows a `git:sync` context (`triggered_by_command`).
fn finish() -> Vec<String> {
    v(&["post-deploy", "myapp", "", "", "dokku/myapp:latest"])
}

/// The official datastore plugins (same command set, generated from one template).
const SERVICES: &[&str] = &[
    "postgres",
    "mysql",
    "mariadb",
    "redis",
    "mongo",
    "rabbitmq",
    "elasticsearch",
    "couchdb",
    "clickhouse",
];

fn cases() -> Vec<Case> {
    let mut out = vec![
        // ---- the reproductions of issue 13, finding 2 ----
        case(
            "docker-options --build-arg NPM_TOKEN",
            vec![ua(&[
                "docker-options:add",
                "myapp",
                "build",
                "--build-arg NPM_TOKEN=sx01npm",
            ])],
            &["sx01npm"],
            &["--build-arg NPM_TOKEN=[REDACTED]"],
        ),
        case(
            "postgres:create --password",
            vec![ua(&["postgres:create", "db", "--password", "sx02pg"])],
            &["sx02pg"],
            &["postgres:create db --password [REDACTED]"],
        ),
        case(
            "redis:create --custom-env",
            vec![ua(&[
                "redis:create",
                "r",
                "--custom-env",
                "REDIS_PASSWORD=sx03rd",
            ])],
            &["sx03rd"],
            &["REDIS_PASSWORD=[REDACTED]"],
        ),
        case(
            "http-auth:on APP USER PASSWORD",
            vec![ua(&["http-auth:on", "myapp", "admin", "sx04ha"])],
            &["sx04ha"],
            &["http-auth:on myapp admin [REDACTED]"],
        ),
        run_case(
            "run mysql -pPASSWORD",
            &["mysql", "-psx05my"],
            &["sx05my"],
            &["mysql -p[REDACTED]"],
        ),
        run_case(
            "run -- bash -c 'export K=V'",
            &["--", "bash", "-c", "export K=sx06sh"],
            &["sx06sh"],
            &["export K=[REDACTED]"],
        ),
        case(
            "docker-options -e 'K=value with space'",
            vec![ua(&[
                "docker-options:add",
                "myapp",
                "deploy",
                "-e 'DB_PASS=sx07a sx07b'",
            ])],
            &["sx07a", "sx07b"],
            &["DB_PASS=[REDACTED]"],
        ),
        case(
            "URL password holding #",
            vec![
                ua(&["git:sync", "myapp", "https://user:sx08#frag@github.com/x"]),
                finish(),
            ],
            &["sx08"],
            &["https://[REDACTED]@github.com/x"],
        ),
        // ---- core commands with positional passwords ----
        case(
            "http-auth:add-user",
            vec![ua(&["http-auth:add-user", "myapp", "bob", "sx10ha"])],
            &["sx10ha"],
            &["http-auth:add-user myapp bob [REDACTED]"],
        ),
        case(
            "http-auth:enable (alias)",
            vec![ua(&["http-auth:enable", "myapp", "admin", "sx11ha"])],
            &["sx11ha"],
            &["admin [REDACTED]"],
        ),
        case(
            "registry:login SERVER USER PASSWORD",
            vec![ua(&["registry:login", "ghcr.io", "alice", "sx12rl"])],
            &["sx12rl"],
            &["registry:login ghcr.io alice [REDACTED]"],
        ),
        case(
            "registry:login --global",
            vec![ua(&[
                "registry:login",
                "--global",
                "docker.io",
                "alice",
                "sx13rl",
            ])],
            &["sx13rl"],
            &["docker.io alice [REDACTED]"],
        ),
        case(
            "registry:login --password-stdin keeps the server",
            vec![ua(&[
                "registry:login",
                "--password-stdin",
                "ghcr.io",
                "alice",
            ])],
            &[],
            &["registry:login --password-stdin ghcr.io alice"],
        ),
        case(
            "git:auth HOST USER PASSWORD",
            vec![ua(&["git:auth", "github.com", "alice", "sx14ga"])],
            &["sx14ga"],
            &["git:auth github.com alice [REDACTED]"],
        ),
        // ---- docker-options and env flags ----
        case(
            "docker-options --env=K=V, --build-arg=K=V, -eK=V",
            vec![ua(&[
                "docker-options:add",
                "myapp",
                "deploy,run",
                "--env=SESSION=sx15a --build-arg=GITHUB_TOKEN=sx15b -eAPI=sx15c --link db",
            ])],
            &["sx15a", "sx15b", "sx15c"],
            &["--link db"],
        ),
        case(
            "docker-options -e \"K=V W\" (double quotes)",
            vec![ua(&[
                "docker-options:add",
                "myapp",
                "deploy",
                "-e \"SECRET_KEY_BASE=sx16a sx16b\" -v /data:/data",
            ])],
            &["sx16a", "sx16b"],
            &["SECRET_KEY_BASE=[REDACTED]", "-v /data:/data"],
        ),
        case(
            "docker-options --build-arg as separate tokens",
            vec![ua(&[
                "docker-options:add",
                "myapp",
                "build",
                "--build-arg",
                "NPM_TOKEN=sx17 with space",
            ])],
            &["sx17"],
            &["NPM_TOKEN=[REDACTED]"],
        ),
        case(
            "single-argument command line split on spaces (quotes kept)",
            vec![v(&[
                "user-auth",
                "dokku",
                "alice",
                "docker-options:add myapp deploy -e 'DB_PASS=sx18a sx18b'",
            ])],
            &["sx18a", "sx18b"],
            &["DB_PASS=[REDACTED]"],
        ),
        // ---- sensitive names anywhere ----
        case(
            "--token VALUE on any command",
            vec![ua(&["foo:bar", "myapp", "--token", "sx20tk", "--verbose"])],
            &["sx20tk"],
            &["--token [REDACTED] --verbose"],
        ),
        case(
            "--api-key=VALUE, --db-pass VALUE, --client-secret VALUE",
            vec![ua(&[
                "foo:bar",
                "--api-key=sx21a",
                "--db-pass",
                "sx21b",
                "--client-secret",
                "sx21c",
            ])],
            &["sx21a", "sx21b", "sx21c"],
            &["--api-key=[REDACTED]"],
        ),
        case(
            "K=V whose name says secret, on any command",
            vec![ua(&[
                "foo:bar",
                "myapp",
                "SECRET_KEY_BASE=sx22a",
                "aws_access_key=sx22b",
                "PLAIN=visible22",
            ])],
            &["sx22a", "sx22b"],
            &["SECRET_KEY_BASE=[REDACTED]", "PLAIN=visible22"],
        ),
        case(
            "a *:set property whose name says secret",
            vec![ua(&["foo:set", "myapp", "api-token", "sx23st"])],
            &["sx23st"],
            &["foo:set myapp api-token [REDACTED]"],
        ),
        case(
            "one token holding flags",
            vec![ua(&["foo:bar", "myapp", "--password sx24a --user bob"])],
            &["sx24a"],
            &["--user bob"],
        ),
        // ---- run: database clients, shells, HTTP clients ----
        run_case(
            "run mysql --password=X",
            &["mysql", "-u", "root", "--password=sx30my", "app"],
            &["sx30my"],
            &["--password=[REDACTED]"],
        ),
        run_case(
            "run mysqldump -pX",
            &["mysqldump", "-uroot", "-psx31my", "app"],
            &["sx31my"],
            &["-p[REDACTED]"],
        ),
        run_case(
            "run env PGPASSWORD=X psql",
            &["env", "PGPASSWORD=sx32pg", "psql", "-h", "db"],
            &["sx32pg"],
            &["PGPASSWORD=[REDACTED]"],
        ),
        run_case(
            "run MYSQL_PWD=X mysql",
            &["MYSQL_PWD=sx33my", "mysql"],
            &["sx33my"],
            &["MYSQL_PWD=[REDACTED]"],
        ),
        run_case(
            "run redis-cli -a X",
            &["redis-cli", "-h", "redis", "-a", "sx34rd", "ping"],
            &["sx34rd"],
            &["-a [REDACTED] ping"],
        ),
        run_case(
            "run psql postgres://u:p@h/db",
            &["psql", "postgres://app:sx35pg@db:5432/app"],
            &["sx35pg"],
            &["postgres://[REDACTED]@db:5432/app"],
        ),
        run_case(
            "run mongosh -p X",
            &["mongosh", "-u", "admin", "-p", "sx36mg"],
            &["sx36mg"],
            &["-p [REDACTED]"],
        ),
        run_case(
            "run bash -c \"export A=… && …\"",
            &[
                "bash",
                "-c",
                "export API_TOKEN=sx37a && PGPASSWORD='sx37b' psql",
            ],
            &["sx37a", "sx37b"],
            &["API_TOKEN=[REDACTED]"],
        ),
        run_case(
            "run sh -c 'mysql -pX'",
            &["sh", "-c", "mysql -uroot -psx38my app < dump.sql"],
            &["sx38my"],
            &["dump.sql"],
        ),
        run_case(
            "run curl -u user:pass and a bearer header",
            &[
                "curl",
                "-u",
                "admin:sx39a",
                "-H",
                "Authorization: Bearer sx39b",
                "https://api.example.com/x?access_token=sx39c&page=2",
            ],
            &["sx39a", "sx39b", "sx39c"],
            &["admin:[REDACTED]", "page=2"],
        ),
        run_case(
            "run rails runner with password: 'X'",
            &["rails", "runner", "User.create!(password: 'sx40rr')"],
            &["sx40rr"],
            &["rails runner"],
        ),
        run_case(
            "run ./manage --secret=X and --api-key X",
            &["./manage", "--secret=sx41a", "--api-key", "sx41b"],
            &["sx41a", "sx41b"],
            &["./manage"],
        ),
        run_case(
            "run -e K=V before the app, positional K=V",
            &["env", "DB_URL=sx42a", "printenv"],
            &["sx42a"],
            &["DB_URL=[REDACTED]"],
        ),
        case(
            "run --env 'K=V W' (real shape: the scheduler gets the env entry)",
            vec![
                ua(&[
                    "run",
                    "--env",
                    "API_TOKEN=sx43a sx43b",
                    "runapp",
                    "printenv",
                ]),
                v(&[
                    "scheduler-run",
                    "docker-local",
                    "runapp",
                    "1",
                    "API_TOKEN=sx43a sx43b",
                    "--",
                    "printenv",
                ]),
            ],
            &["sx43a", "sx43b"],
            &["API_TOKEN=[REDACTED]"],
        ),
        case(
            "run:detached ./worker --token X",
            vec![
                ua(&["run:detached", "runapp", "./worker", "--token", "sx44wk"]),
                v(&[
                    "scheduler-run",
                    "docker-local",
                    "runapp",
                    "0",
                    "--",
                    "./worker",
                    "--token",
                    "sx44wk",
                ]),
            ],
            &["sx44wk"],
            &["--token [REDACTED]"],
        ),
        case(
            "enter APP TYPE mysql -pX",
            vec![
                ua(&["enter", "runapp", "web.1", "mysql", "-psx45en"]),
                v(&[
                    "scheduler-enter",
                    "docker-local",
                    "runapp",
                    "web.1",
                    "--",
                    "mysql",
                    "-psx45en",
                ]),
            ],
            &["sx45en"],
            &["-p[REDACTED]"],
        ),
        case(
            "single-argument run with K='a b'",
            vec![v(&[
                "user-auth",
                "dokku",
                "alice",
                "run runapp -- sh -c export K='sx46a sx46b'",
            ])],
            &["sx46a", "sx46b"],
            &[],
        ),
        // ---- URLs: userinfo with reserved characters ----
        case(
            "URL password holding ? / @ and a space",
            vec![
                ua(&["git:sync", "myapp", "https://u:sx50a?q@github.com/x"]),
                ua(&["git:sync", "myapp", "https://u:p/sx50b@github.com/x"]),
                ua(&["git:sync", "myapp", "https://u:p@sx50c@github.com/x"]),
                ua(&["git:sync", "myapp", "https://u:p sx50d@github.com/x"]),
                finish(),
            ],
            &["sx50a", "sx50b", "sx50c", "sx50d"],
            &["https://[REDACTED]@github.com/x"],
        ),
        case(
            "URL password holding @ and a space, inside one argument",
            vec![ua(&[
                "foo:bar",
                "myapp",
                "DATABASE_URL=postgres://user:sx55a@ss sx55b@db:5432/app --verbose",
            ])],
            &["sx55a", "sx55b"],
            &["DATABASE_URL=postgres://[REDACTED]@db:5432/app --verbose"],
        ),
        case(
            "URL token without user, holding #",
            vec![
                ua(&["git:sync", "myapp", "https://ghpsx51#x@github.com/r.git"]),
                finish(),
            ],
            &["sx51"],
            &["https://[REDACTED]@github.com/r.git"],
        ),
        case(
            "plugin:install URL with credentials",
            vec![ua(&[
                "plugin:install",
                "https://deploy:sx52pi@git.example.com/p.git",
                "--name",
                "p",
            ])],
            &["sx52pi"],
            &["https://[REDACTED]@git.example.com/p.git"],
        ),
        case(
            "deploy metadata: URL with #, api_key=, ?access_token=",
            vec![
                ua(&["git:sync", "myapp", "https://x:sx53a#f@github.com/r.git"]),
                v(&[
                    "deploy-source-set",
                    "myapp",
                    "git-sync",
                    "https://x:sx53a#f@github.com/r.git#0123abc",
                ]),
                v(&[
                    "deploy-source-set",
                    "myapp",
                    "git-push",
                    "api_key=sx53b https://h/r?access_token=sx53c&x=1",
                ]),
                finish(),
            ],
            &["sx53a", "sx53b", "sx53c"],
            &["github.com/r.git"],
        ),
        case(
            "builds-record-start SOURCE with credentials",
            vec![
                v(&[
                    "builds-record-start",
                    "myapp",
                    "b-54",
                    "99",
                    "https://u:sx54bs#x@github.com/r",
                ]),
                v(&["builds-record-finalize", "myapp", "b-54", "1"]),
            ],
            &["sx54bs"],
            &[],
        ),
        // ---- config (values never stored) ----
        case(
            "config:set value with spaces and an URL password",
            vec![
                ua(&[
                    "config:set",
                    "cfg",
                    "DB_URL=postgres://user:sx60a w0rd@db:5432/app",
                    "QUOTED=it's a \"quoted\" sx60b",
                ]),
                v(&["post-config-update", "cfg", "set", "DB_URL", "QUOTED=sx60b"]),
            ],
            &["sx60a", "sx60b"],
            &["DB_URL=[REDACTED]"],
        ),
    ];
    // The datastore plugins: long and short flags, clone, backup credentials.
    for (i, s) in SERVICES.iter().enumerate() {
        let name: &'static str = Box::leak(format!("{s}:create long flags").into_boxed_str());
        let sec = |k: &str| format!("sx7{i}{k}");
        let (a, b, c, d) = (sec("a"), sec("b"), sec("c"), sec("d"));
        let custom = format!("{}=foo;OTHER=1;PASS={d}", s.to_uppercase());
        let create = format!("{s}:create");
        out.push(case(
            name,
            vec![ua(&[
                &create,
                "svc",
                "--password",
                &a,
                "--root-password",
                &b,
                "--config-options",
                &format!("--requirepass {c} --maxmemory 64mb"),
                "--custom-env",
                &custom,
                "--image-version",
                "16.2",
            ])],
            &[&a, &b, &c, &d],
            &["--password [REDACTED]", "--image-version 16.2"],
        ));
        let name: &'static str = Box::leak(format!("{s}:create short flags").into_boxed_str());
        let (a, b, c, d, e) = (sec("e"), sec("f"), sec("g"), sec("h"), sec("i"));
        out.push(case(
            name,
            vec![ua(&[
                &create,
                "svc2",
                "-p",
                &a,
                &format!("-r{b}"),
                "-c",
                &format!("--auth {c}"),
                "-C",
                &format!("TOKEN={d};X={e}"),
                "-i",
                "postgres",
            ])],
            &[&a, &b, &c, &d, &e],
            &["-p [REDACTED]", "-i postgres"],
        ));
        let name: &'static str = Box::leak(format!("{s}:clone/backup").into_boxed_str());
        let (a, b, c) = (sec("j"), sec("k"), sec("l"));
        out.push(case(
            name,
            vec![
                ua(&[&format!("{s}:clone"), "svc", "svc3", "--password", &a]),
                ua(&[
                    &format!("{s}:backup-auth"),
                    "svc",
                    "AKIAKEYID",
                    &b,
                    "eu-west-1",
                ]),
                ua(&[&format!("{s}:backup-set-encryption"), "svc", &c]),
            ],
            &[&a, &b, &c],
            &["eu-west-1"],
        ));
    }
    out
}

/// `plugin/<trigger> ARGS…` (the shim Dokku runs, which execs the binary), with the test
/// environment of `util::TestEnv`.
fn plugin_call(env: &TestEnv, call: &[String], extra: &[(&str, &str)]) -> std::process::Output {
    let shim = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("plugin")
        .join(&call[0]);
    let mut p = std::process::Command::new(shim);
    for (k, v) in env.command(&[]).get_envs() {
        match v {
            Some(v) => p.env(k, v),
            None => p.env_remove(k),
        };
    }
    p.env("DOKKU_AUDIT_BIN", util::bin());
    for (k, v) in extra {
        p.env(k, v);
    }
    p.args(&call[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run plugin shim")
}

fn run_calls(env: &TestEnv, cases: &[Case], extra: &[(&str, &str)], leaks: &mut Vec<String>) {
    for c in cases {
        for call in &c.calls {
            let o = plugin_call(env, call, extra);
            assert!(
                o.status.success(),
                "{}: {call:?}: {}",
                c.name,
                util::stderr(&o)
            );
            for s in &c.secrets {
                if util::contains(&o.stdout, s.as_bytes())
                    || util::contains(&o.stderr, s.as_bytes())
                {
                    leaks.push(format!("{}: {s} printed by {call:?}", c.name));
                }
            }
        }
    }
}

#[test]
fn real_command_shapes_leave_no_secret_in_the_data_dir() {
    use fs4::fs_std::FileExt;
    let cases = cases();
    let mut all: Vec<&String> = cases.iter().flat_map(|c| &c.secrets).collect();
    all.sort();
    let n = all.len();
    all.dedup();
    assert_eq!(all.len(), n, "secrets must be unique per case");
    let env = TestEnv::new()
        .env("DOKKU_PID", "4242")
        .env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "4096");
    let mut leaks = Vec::new();
    // The layout (and the writer lock file) exists after a first event.
    env.ok(&["hook", "post-create", "myapp"]);
    // 1. Writer lock held: every event goes to spool/ (the state is still written).
    let lock = std::fs::File::open(env.data.join("LOCK")).expect("LOCK");
    assert!(FileExt::try_lock_exclusive(&lock).expect("lock"));
    run_calls(
        &env,
        &cases,
        &[("DOKKU_AUDIT_HOOK_TIMEOUT_MS", "20")],
        &mut leaks,
    );
    let spool = util::files_as_read(&env.data.join("spool"));
    assert!(!spool.is_empty(), "nothing spooled");
    let mut in_spool = Vec::new();
    for (p, b) in &spool {
        for c in &cases {
            for s in &c.secrets {
                if util::contains(b, s.as_bytes()) {
                    in_spool.push(format!("{}: {s} in {}", c.name, p.display()));
                }
            }
        }
    }
    leaks.extend(in_spool);
    FileExt::unlock(&lock).expect("unlock");
    // 2. Lock free: the spool is drained, the commands run again and are appended.
    run_calls(&env, &cases, &[], &mut leaks);
    // 3. Queries build the index; export and search must not show a secret either.
    let export = env.ok(&["export", "--format", "jsonl"]);
    for c in &cases {
        for s in &c.secrets {
            if export.contains(s.as_str()) {
                leaks.push(format!("{}: {s} exported", c.name));
            }
            let found = env.ok(&["search", "--query", s, "--format", "jsonl"]);
            if !found.trim().is_empty() {
                leaks.push(format!("{}: the index finds {s}", c.name));
            }
        }
    }
    // 4. Every file of the data dir.
    let all = util::files_as_read(&env.data);
    let paths: Vec<&PathBuf> = all.iter().map(|(p, _)| p).collect();
    assert!(
        paths
            .iter()
            .any(|p| p.to_string_lossy().ends_with(".jsonl.zst")),
        "no sealed segment: {paths:?}"
    );
    assert!(paths.iter().any(|p| p.starts_with(env.data.join("state"))));
    assert!(paths.iter().any(|p| p.starts_with(env.data.join("index"))));
    for (p, b) in &all {
        for c in &cases {
            for s in &c.secrets {
                if util::contains(b, s.as_bytes()) {
                    leaks.push(format!(
                        "{}: {s} in {}",
                        c.name,
                        p.strip_prefix(&env.data).unwrap_or(p).display()
                    ));
                }
            }
        }
    }
    // 5. The structure an auditor needs is kept.
    let mut lost = Vec::new();
    for c in &cases {
        for k in &c.kept {
            if !export.contains(k.as_str()) {
                lost.push(format!("{}: {k:?} not in the export", c.name));
            }
        }
    }
    leaks.sort();
    leaks.dedup();
    let failed: std::collections::BTreeSet<&str> = cases
        .iter()
        .filter(|c| {
            leaks
                .iter()
                .any(|l| l.starts_with(&format!("{}: ", c.name)))
        })
        .map(|c| c.name)
        .collect();
    assert!(
        leaks.is_empty() && lost.is_empty(),
        "{} of {} cases leak:\n  {}\nleaks:\n  {}\nstructure lost:\n  {}",
        failed.len(),
        cases.len(),
        failed.iter().copied().collect::<Vec<_>>().join("\n  "),
        leaks.join("\n  "),
        lost.join("\n  ")
    );
}

/// Without `DOKKU_PID`, `scheduler-run`/`scheduler-enter` find their `user-auth` context by
/// app and *redacted* arguments: both sides must redact the command the same way, or the run
/// loses its actor.
#[test]
fn runs_are_still_attributed_without_dokku_pid() {
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| {
            c.calls.len() >= 2
                && c.calls[0]
                    .get(3)
                    .is_some_and(|s| s.starts_with("run") || s == "enter")
                && c.calls[1][0].starts_with("scheduler-")
        })
        .collect();
    assert!(cases.len() >= 15, "{}", cases.len());
    for c in &cases {
        let env = TestEnv::new();
        for call in &c.calls {
            let o = plugin_call(&env, call, &[]);
            assert!(o.status.success(), "{}: {}", c.name, util::stderr(&o));
        }
        let evs = env.export_events();
        let run = evs
            .iter()
            .find(|e| {
                matches!(
                    e["classification"].as_str(),
                    Some("dokku_run" | "dokku_enter")
                )
            })
            .unwrap_or_else(|| panic!("{}: no run event", c.name));
        assert_eq!(run["actor_name"], "alice", "{}: {run}", c.name);
        let command = run["meta"]["command"].as_str().unwrap_or_default();
        assert!(command.starts_with("dokku run") || command.starts_with("dokku enter"));
        for s in &c.secrets {
            assert!(!command.contains(s.as_str()), "{}: {command}", c.name);
        }
    }
}
