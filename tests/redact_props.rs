//! Property tests for redaction (`src/event/redact/`): a secret put where secrets go — a
//! `config:set` value, a `run --env`/`-e`/positional `K=V` value, `docker-options` `-e` flags
//! (also quoted values holding a space), URL credentials (also passwords holding `#?/@` or a
//! space), `registry:login`/`git:auth`/`http-auth` passwords, `letsencrypt:set` values, the
//! datastore plugins' password/root-password/custom-env/config-options flags, flags and `K=V`
//! whose name says secret, database clients and shell scripts inside `dokku run`, sensitive
//! deploy metadata — never comes out; redaction is idempotent and keeps one token per token;
//! the structure around the secret (keys, app, hosts, paths, command words) is kept.
//!
//! Two layers: the public redaction functions on many generated command lines, and the real
//! binary (`dokku-audit hook <trigger> …`, as `plugin/<trigger>` runs it) on fewer, after which
//! the whole data directory (segments, state, the index `search` builds), `export` output and a
//! `search` for the secret are checked for the secret's bytes.

use crate::util::{self, TestEnv};
use dokku_audit::event::redact::{
    deploy_metadata, redact_command_tokens, redact_url_credentials, REDACTED,
};
use dokku_audit::hook::command_line;
use proptest::prelude::*;

/// Secrets are `qq…qq` with lower-case letters and digits: nothing else generated here
/// contains `qq` (keys are upper case, apps and words use `a`–`k`), so finding `qq…qq` anywhere
/// means the secret leaked, and the tokenizer keeps it as one searchable word.
fn secret() -> impl Strategy<Value = String> {
    "[a-z0-9]{8,20}".prop_map(|s| format!("qq{s}qq"))
}

fn key() -> impl Strategy<Value = String> {
    "[A-Z][A-Z0-9_]{0,10}"
}

fn app() -> impl Strategy<Value = String> {
    "[a-k][a-k0-9-]{0,12}"
}

fn word() -> impl Strategy<Value = String> {
    "[a-k][a-k0-9./:-]{0,10}"
}

fn host() -> impl Strategy<Value = String> {
    "[a-k]{1,8}\\.[a-k]{2,3}"
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Where a secret can sit on a `dokku` command line.
#[derive(Debug, Clone)]
enum Place {
    ConfigSet {
        no_restart: bool,
        global: bool,
    },
    RunEnv(u8),
    RunPositional,
    DockerOptions {
        one_token: bool,
    },
    Url {
        sub: String,
        user: bool,
    },
    RegistryLogin {
        global: bool,
    },
    GitAuth,
    LetsencryptSet,
    /// A datastore plugin's `:create`/`:clone` with a password, root password, custom env or
    /// server options, long or short flag, separate or attached value.
    Service {
        plugin: &'static str,
        flag: &'static str,
        attached: bool,
    },
    /// `http-auth:on|add-user APP USER PASSWORD`.
    HttpAuth(&'static str),
    /// A flag or `K=V` whose name says secret, on any command.
    SecretName {
        name: String,
        form: u8,
    },
    /// `-e`/`--env`/`--build-arg` with a quoted value holding a space, inside one argument.
    QuotedEnv {
        flag: &'static str,
        quote: char,
    },
    /// A database client or shell inside `dokku run`.
    RunClient(u8),
    /// URL userinfo whose password holds a reserved character.
    UrlReserved(char),
}

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

/// A name that says secret: a sensitive part with other words around it.
fn secret_name() -> impl Strategy<Value = String> {
    (
        "([a-k]{1,4}[_-])?",
        prop::sample::select(vec![
            "password",
            "PASS",
            "pwd",
            "secret",
            "TOKEN",
            "api-key",
            "apikey",
            "credential",
            "auth",
            "private",
            "session",
            "Passphrase",
        ]),
        "([_-][a-k]{1,4})?",
    )
        .prop_map(|(a, b, c)| format!("{a}{b}{c}"))
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        (any::<bool>(), any::<bool>())
            .prop_map(|(no_restart, global)| Place::ConfigSet { no_restart, global }),
        (0u8..4).prop_map(Place::RunEnv),
        Just(Place::RunPositional),
        any::<bool>().prop_map(|one_token| Place::DockerOptions { one_token }),
        (
            prop::sample::select(vec![
                "git:sync",
                "git:from-archive",
                "ps:stop",
                "apps:clone"
            ]),
            any::<bool>()
        )
            .prop_map(|(sub, user)| Place::Url {
                sub: sub.to_string(),
                user
            }),
        any::<bool>().prop_map(|global| Place::RegistryLogin { global }),
        Just(Place::GitAuth),
        Just(Place::LetsencryptSet),
        (
            prop::sample::select(SERVICES.to_vec()),
            prop::sample::select(vec![
                "--password",
                "-p",
                "--root-password",
                "-r",
                "--custom-env",
                "-C",
                "--config-options",
                "-c",
            ]),
            any::<bool>(),
        )
            .prop_map(|(plugin, flag, attached)| Place::Service {
                plugin,
                flag,
                attached,
            }),
        prop::sample::select(vec![
            "http-auth:on",
            "http-auth:add-user",
            "http-auth:enable"
        ])
        .prop_map(Place::HttpAuth),
        (secret_name(), 0u8..4).prop_map(|(name, form)| Place::SecretName { name, form }),
        (
            prop::sample::select(vec!["-e", "--env", "--build-arg"]),
            prop::sample::select(vec!['\'', '"']),
        )
            .prop_map(|(flag, quote)| Place::QuotedEnv { flag, quote }),
        (0u8..8).prop_map(Place::RunClient),
        prop::sample::select(vec!['#', '?', '/', '@', ' ']).prop_map(Place::UrlReserved),
    ]
}

/// A command line (after `user-auth`'s two arguments) with `secret` in `place`, plus words
/// that must survive redaction unchanged.
fn command(
    place: &Place,
    app: &str,
    key: &str,
    secret: &str,
    host: &str,
    extra: &[String],
) -> (Vec<String>, Vec<String>) {
    let kv = format!("{key}={secret}");
    let mut kept = vec![app.to_string()];
    let mut t: Vec<String> = match place {
        Place::ConfigSet { no_restart, global } => {
            let mut t = s(&["config:set"]);
            if *no_restart {
                t.push("--no-restart".into());
            }
            if *global {
                t.push("--global".into());
                kept.clear();
            } else {
                t.push(app.into());
            }
            t.push(kv);
            kept.push(format!("{key}={REDACTED}"));
            t
        }
        Place::RunEnv(form) => {
            let mut t = s(&["run"]);
            match form {
                0 => t.extend(["-e".to_string(), kv]),
                1 => t.extend(["--env".to_string(), kv]),
                2 => t.push(format!("--env={kv}")),
                _ => t.push(format!("-e{kv}")),
            }
            t.push(app.into());
            t.extend(extra.iter().cloned());
            kept.extend(extra.iter().cloned());
            t
        }
        Place::RunPositional => {
            let mut t = s(&["run", app, "env"]);
            t.push(kv);
            kept.push(format!("{key}={REDACTED}"));
            t
        }
        Place::DockerOptions { one_token } => {
            let mut t = s(&["docker-options:add", app, "deploy"]);
            if *one_token {
                t.push(format!("-e {kv} --link db"));
                kept.push(format!("-e {key}={REDACTED} --link db"));
            } else {
                t.extend(["--env".to_string(), kv]);
                kept.push(format!("{key}={REDACTED}"));
            }
            t
        }
        Place::Url { sub, user } => {
            let cred = if *user {
                format!("alice:{secret}")
            } else {
                secret.to_string()
            };
            let mut t = vec![sub.clone(), app.into()];
            t.push(format!("https://{cred}@{host}/{app}.git"));
            kept.push(format!("https://{REDACTED}@{host}/{app}.git"));
            t
        }
        Place::RegistryLogin { global } => {
            let mut t = s(&["registry:login"]);
            if *global {
                t.push("--global".into());
            }
            t.extend([host.to_string(), "alice".into(), secret.into()]);
            kept = vec![host.to_string(), "alice".into(), REDACTED.into()];
            t
        }
        Place::GitAuth => {
            kept = vec![host.to_string(), "alice".into(), REDACTED.into()];
            vec![
                "git:auth".into(),
                host.into(),
                "alice".into(),
                secret.into(),
            ]
        }
        Place::LetsencryptSet => {
            kept.push(REDACTED.into());
            vec![
                "letsencrypt:set".into(),
                app.into(),
                "dns-provider-TOKEN".into(),
                secret.into(),
            ]
        }
        Place::Service {
            plugin,
            flag,
            attached,
        } => {
            let value = match *flag {
                "--custom-env" | "-C" => format!("{key}=x;{key}_2={secret}"),
                "--config-options" | "-c" => format!("--requirepass {secret} --port 1"),
                _ => secret.to_string(),
            };
            let sub = if extra.len() % 3 == 2 {
                "clone"
            } else {
                "create"
            };
            let mut t = vec![format!("{plugin}:{sub}"), app.into()];
            if sub == "clone" {
                t.push(format!("{app}-2"));
            }
            if *attached && flag.len() == 2 {
                t.push(format!("{flag}{value}"));
            } else if *attached {
                t.push(format!("{flag}={value}"));
            } else {
                t.extend([flag.to_string(), value]);
                kept.push(flag.to_string());
            }
            t.extend(["--image-version".to_string(), "16".into()]);
            kept.extend(["--image-version".to_string(), "16".into()]);
            t
        }
        Place::HttpAuth(sub) => {
            kept = vec![app.to_string(), "alice".into(), REDACTED.into()];
            vec![sub.to_string(), app.into(), "alice".into(), secret.into()]
        }
        Place::SecretName { name, form } => {
            let mut t = vec!["foo:bar".to_string(), app.into()];
            match form {
                0 => {
                    t.extend([format!("--{name}"), secret.into()]);
                    kept.extend([format!("--{name}"), REDACTED.into()]);
                }
                1 => {
                    t.push(format!("--{name}={secret}"));
                    kept.push(format!("--{name}={REDACTED}"));
                }
                2 => {
                    t.push(format!("{name}={secret}"));
                    kept.push(format!("{name}={REDACTED}"));
                }
                _ => {
                    t.push(format!("-e {name}=x --{name} {secret} --link db"));
                    kept.push(format!(
                        "-e {name}=[REDACTED] --{name} [REDACTED] --link db"
                    ));
                }
            }
            t.extend(extra.iter().cloned());
            kept.extend(extra.iter().cloned());
            t
        }
        Place::QuotedEnv { flag, quote } => {
            let mut t = s(&["docker-options:add", app, "deploy"]);
            t.push(format!("{flag} {quote}{key}=x {secret}{quote} --link db"));
            kept.push(format!("{flag} {key}={REDACTED} --link db"));
            t
        }
        Place::RunClient(form) => {
            let mut t = s(&["run", app]);
            let cmd: Vec<String> = match form {
                0 => vec!["mysql".into(), "-uroot".into(), format!("-p{secret}")],
                1 => vec!["mysql".into(), format!("--password={secret}"), "db".into()],
                2 => vec![
                    "redis-cli".into(),
                    "-a".into(),
                    secret.into(),
                    "ping".into(),
                ],
                3 => vec!["mongosh".into(), "-p".into(), secret.into()],
                4 => vec![
                    "bash".into(),
                    "-c".into(),
                    format!("export {key}={secret} && ls"),
                ],
                5 => vec![
                    "sh".into(),
                    "-c".into(),
                    format!("PGPASSWORD='{secret}' psql -h {host}"),
                ],
                6 => vec!["env".into(), format!("MYSQL_PWD={secret}"), "mysql".into()],
                _ => vec!["psql".into(), format!("postgres://u:{secret}@{host}/db")],
            };
            kept.push(cmd[0].clone());
            t.extend(cmd);
            t
        }
        Place::UrlReserved(ch) => {
            kept.push(format!("https://{REDACTED}@{host}/{app}.git"));
            vec![
                "git:sync".into(),
                app.into(),
                format!("https://alice:x{ch}{secret}@{host}/{app}.git"),
            ]
        }
    };
    // Global flags in front never change anything.
    if extra.len() % 2 == 1 {
        t.insert(0, "--trace".into());
    }
    (t, kept)
}

/// What `user-auth` does with a command line: tokenise, parse, redact.
fn redact(tokens: &[String]) -> Vec<String> {
    let tokens = command_line::tokenise(tokens);
    let inv = command_line::parse(&tokens, None);
    redact_command_tokens(&tokens, inv.sub_index, &inv.subcommand, inv.app.as_deref())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn command_secrets_never_survive(
        place in place(),
        app in app(),
        key in key(),
        secret in secret(),
        host in host(),
        extra in prop::collection::vec(word(), 0..4),
    ) {
        let (tokens, kept) = command(&place, &app, &key, &secret, &host, &extra);
        let out = redact(&tokens);
        prop_assert_eq!(out.len(), tokens.len(), "one token per token");
        let joined = out.join(" ");
        prop_assert!(!joined.contains(&secret), "secret kept: {:?}", out);
        prop_assert!(!joined.contains("qq"), "part of the secret kept: {:?}", out);
        // Structure kept: the subcommand, the app, keys, hosts, the command words.
        for k in &kept {
            prop_assert!(out.contains(k), "{:?} lost from {:?}", k, out);
        }
        // Idempotent.
        prop_assert_eq!(redact(&out), out.clone());
    }

    /// Tokens from a vocabulary of flags, subcommands and `K=V`s (no secrets planted): the
    /// redaction never changes the token count or anything up to the subcommand, is
    /// idempotent, and only ever replaces values (what it changes ends in `[REDACTED]`, or is
    /// a URL whose credentials became `[REDACTED]`).
    #[test]
    fn redaction_shape(tokens in prop::collection::vec(prop::sample::select(vec![
        "config:set", "config:set-global", "run", "run:detached", "docker-options:add",
        "registry:login", "git:auth", "letsencrypt:set", "git:sync", "--global", "--app", "app",
        "-e", "--env", "--env=A=1", "-eB=2", "A=1", "B=x=y", "=z", "--", "ls", "-e A=1 -e B=2",
        "https://u:p@h/x", "https://h/x@y", "[REDACTED]", "A=[REDACTED]", "-e",
    ]), 0..10)) {
        let tokens: Vec<String> = tokens.into_iter().map(str::to_string).collect();
        let inv = command_line::parse(&tokens, None);
        let out = redact_command_tokens(&tokens, inv.sub_index, &inv.subcommand, inv.app.as_deref());
        prop_assert_eq!(out.len(), tokens.len());
        let keep = (inv.sub_index + 1).min(tokens.len());
        prop_assert_eq!(&out[..keep], &tokens[..keep]);
        for (a, b) in tokens.iter().zip(&out) {
            if a != b {
                prop_assert!(b.contains(REDACTED), "{:?} → {:?}", a, b);
            }
        }
        // Idempotent, when the redacted line is parsed again as a whole (the app itself may
        // have lost URL credentials, and `letsencrypt:set` places its value after the app).
        let inv2 = command_line::parse(&out, None);
        let again = redact_command_tokens(&out, inv2.sub_index, &inv2.subcommand, inv2.app.as_deref());
        prop_assert_eq!(again, out);
    }

    #[test]
    fn url_credentials_never_survive(
        scheme in "(https|http|ssh|git\\+ssh)",
        user in prop::option::of("[a-k]{1,6}"),
        secret in secret(),
        host in host(),
        path in "(/[a-k]{1,6}){0,3}(\\?x=1)?(#[a-k]{1,4})?",
        before in "[a-k ]{0,8}",
        after in "[a-k ]{0,8}",
    ) {
        let cred = match &user { Some(u) => format!("{u}:{secret}"), None => secret.clone() };
        let text = format!("{before}{scheme}://{cred}@{host}{path}{after}");
        let out = redact_url_credentials(&text).expect("credentials found");
        prop_assert!(!out.contains(&secret));
        let expected = format!("{before}{scheme}://{REDACTED}@{host}{path}{after}");
        prop_assert_eq!(&out, &expected);
        prop_assert_eq!(redact_url_credentials(&out), None, "idempotent");
    }

    #[test]
    fn deploy_metadata_secrets_never_survive(
        sensitive in prop::sample::select(vec![
            "token", "GITHUB_TOKEN", "password", "api_key", "Secret", "client_secret",
            "auth", "x-private-key", "session_id", "bearer",
        ]),
        secret in secret(),
        host in host(),
        plain in prop::collection::vec("[a-k]{1,6}=[a-k0-9]{1,8}", 0..4),
        split_args in any::<bool>(),
        max in 16usize..2048,
    ) {
        let mut words = plain.clone();
        words.push(format!("{sensitive}={secret}"));
        words.push(format!("https://alice:{secret}@{host}/r.git#main"));
        let args = if split_args { words.clone() } else { vec![words.join(" ")] };
        let m = deploy_metadata(&args, max).expect("metadata");
        prop_assert!(!m.raw.contains("qq"), "secret kept: {:?}", m.raw);
        prop_assert!(m.redacted);
        prop_assert!(m.raw.chars().count() <= max);
        // Non-secret pairs are kept (when not cut by the size limit).
        if !m.truncated {
            for p in &plain {
                prop_assert!(m.raw.split(' ').any(|w| w == p), "{:?} lost", p);
            }
            let redacted_pair = format!("{sensitive}={REDACTED}");
            prop_assert!(m.raw.contains(&redacted_pair));
            // Idempotent.
            let again = deploy_metadata(std::slice::from_ref(&m.raw), max).expect("metadata");
            prop_assert_eq!(again.raw, m.raw);
        }
    }
}

// ---- the real binary ----

/// One `dokku` command's worth of triggers, with the secret where that command puts it.
fn capture(env: &TestEnv, place: &Place, app: &str, key: &str, secret: &str, host: &str) {
    let (cmd, _) = command(place, app, key, secret, host, &[]);
    let cmd_tail: Vec<String> = cmd.iter().skip(2).cloned().collect();
    let mut args = vec![
        "hook".to_string(),
        "user-auth".into(),
        "dokku".into(),
        "alice".into(),
    ];
    args.extend(cmd);
    let mut calls = vec![args];
    let hook = |v: &[&str]| -> Vec<String> {
        let mut a = s(&["hook"]);
        a.extend(v.iter().map(|x| x.to_string()));
        a
    };
    let kv = format!("{key}={secret}");
    match place {
        Place::ConfigSet { global, .. } => {
            let target = if *global { "--global" } else { app };
            // Dokku passes key names; an old shape passed K=V: both must lose the value.
            calls.push(hook(&["post-config-update", target, "set", &kv]));
        }
        Place::RunEnv(_) | Place::RunPositional => {
            calls.push(hook(&[
                "scheduler-run",
                "docker-local",
                app,
                "1",
                &kv,
                "--",
                "env",
                &kv,
            ]));
            calls.push(hook(&[
                "scheduler-post-run",
                "docker-local",
                app,
                "abc123",
                "0",
            ]));
        }
        Place::RunClient(_) => {
            let mut a = s(&["scheduler-run", "docker-local", app, "0", "--"]);
            a.extend(cmd_tail.iter().cloned());
            calls.push(hook(&a.iter().map(String::as_str).collect::<Vec<_>>()));
            calls.push(hook(&[
                "scheduler-post-run",
                "docker-local",
                app,
                "abc123",
                "0",
            ]));
        }
        Place::Url { .. } | Place::UrlReserved(_) => {
            let url = format!("https://alice:{secret}@{host}/{app}.git#0123abcd");
            calls.push(hook(&["deploy-source-set", app, "git-sync", &url]));
            calls.push(hook(&[
                "deploy-source-set",
                app,
                "git-push",
                &format!("token={secret} branch=main"),
            ]));
            calls.push(hook(&["post-deploy", app, "", "", "dokku/app:latest"]));
        }
        _ => {}
    }
    for a in &calls {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = env.run(&refs);
        assert!(o.status.success(), "{a:?}: {}", util::stderr(&o));
        assert!(
            !util::contains(&o.stderr, secret.as_bytes())
                && !util::contains(&o.stdout, secret.as_bytes()),
            "{a:?} printed the secret"
        );
    }
}

proptest! {
    // Each case runs a handful of processes: few cases, all places covered by the strategy.
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn secrets_never_reach_the_data_dir(
        places in prop::collection::vec(place(), 1..4),
        app in app(),
        key in key(),
        secret in secret(),
        host in host(),
    ) {
        let env = TestEnv::new().env("DOKKU_PID", "4242");
        for p in &places {
            capture(&env, p, &app, &key, &secret, &host);
        }
        // Build the index too (queries catch it up), and look through every output.
        let export = env.run(&["export"]);
        prop_assert!(export.status.success(), "{}", util::stderr(&export));
        prop_assert!(!export.stdout.is_empty(), "nothing recorded");
        prop_assert!(!util::contains(&export.stdout, secret.as_bytes()), "secret exported");
        for v in String::from_utf8_lossy(&export.stdout).lines() {
            let _: serde_json::Value = serde_json::from_str(v).expect("export is JSON lines");
        }
        let search = env.run(&["search", "--query", &secret, "--format", "jsonl"]);
        prop_assert!(search.status.success(), "{}", util::stderr(&search));
        prop_assert!(
            search.stdout.iter().all(|b| b.is_ascii_whitespace()),
            "the index finds the secret: {}",
            util::stdout(&search)
        );
        let all = util::files_as_read(&env.data);
        prop_assert!(all.iter().any(|(p, _)| p.to_string_lossy().contains("segments")));
        for (p, b) in all {
            prop_assert!(!util::contains(&b, secret.as_bytes()), "secret in {}", p.display());
            // Text files: not even a part of it (binary index files may hold `qq` by chance).
            if std::str::from_utf8(&b).is_ok() {
                prop_assert!(!util::contains(&b, b"qq"), "part of the secret in {}", p.display());
            }
        }
    }
}
