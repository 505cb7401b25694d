//! Redaction: secrets never reach a segment, the spool, the state file or the index. Command
//! tokens are redacted one to one (so positions found by parsing still address them), deploy
//! metadata is redacted and truncated (reference §9.3), config events keep key names only. The
//! policy is docs/capture.md, "Redaction policy"; `names` says which names are secret, `words`
//! is the word-level pass over command lines, `url` finds secrets inside longer text.

mod names;
mod url;
mod words;

pub use names::is_sensitive;
pub use url::{redact_inline_secrets, redact_url_credentials};

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Config keys Dokku sets itself; config events leave them out (reference §9.2).
pub const INTERNAL_CONFIG_KEYS: &[&str] = &[
    "GIT_REV",
    "DOKKU_APP_TYPE",
    "DOKKU_APP_RESTORE",
    "DOKKU_PROXY_PORT",
    "DOKKU_PROXY_SSL_PORT",
];

/// The datastore plugins' commands whose `-p`/`-r`/`-c`/`-C` take a password, root password,
/// server options or env (`service_parse_args` maps the long forms onto these).
fn takes_service_flags(subcommand: &str) -> bool {
    matches!(
        subcommand.rsplit_once(':').map(|(_, a)| a),
        Some("create" | "clone" | "upgrade")
    )
}

/// Commands whose positional arguments from the `nth` on (1-based, flags skipped) are
/// secrets, up to `last` (inclusive) when given.
fn positional_secrets(subcommand: &str) -> Option<(usize, Option<usize>)> {
    let action = subcommand.rsplit_once(':').map_or("", |(_, a)| a);
    match subcommand {
        // `registry:login [--global] SERVER USER PASSWORD`, `git:auth HOST USER PASSWORD`,
        // `http-auth:on|enable APP USER PASSWORD`, `http-auth:add-user APP USER PASSWORD`.
        "registry:login" | "git:auth" | "http-auth:on" | "http-auth:enable"
        | "http-auth:add-user" => Some((3, None)),
        // Datastores: `:backup-auth SERVICE KEY_ID SECRET [REGION …]`,
        // `:backup-set-encryption SERVICE PASSPHRASE`.
        _ if action == "backup-auth" => Some((2, Some(3))),
        _ if action == "backup-set-encryption" => Some((2, None)),
        // Any other plugin's `*:login`, `*:auth`, `*:set-password`, …: `TARGET USER SECRET…`.
        _ if action.contains("login") || names::is_sensitive(action) => Some((3, None)),
        _ => None,
    }
}

/// Redacts the tokens of a command line for storage (docs/capture.md, "Redaction policy"):
/// the per-command rules (reference §9.1 `config:set`, `letsencrypt:set`; positional passwords;
/// `*:set` properties whose name says secret), then the word pass of [`words`] (sensitive
/// flags and `K=V`, env and build-arg flags, datastore flags, database clients, nested command
/// lines; every `K=V` of `run`/`enter`), then URL credentials and `name=value` secrets inside
/// any token. Tokens up to and including the subcommand (`sub_index`) are global flags and the
/// subcommand itself and are kept; `app` is the app token, if any. One output token per input
/// token.
///
/// The result is a fixpoint: redacting it again changes nothing (text read back from the state
/// file, or a `run` line seen again by `scheduler-run`, stays as it is). One pass almost always
/// is; hostile lines whose redaction changes how a later pass reads them get up to
/// [`MAX_PASSES`], then every argument is redacted.
pub fn redact_command_tokens(
    tokens: &[String],
    sub_index: usize,
    subcommand: &str,
    app: Option<&str>,
) -> Vec<String> {
    let mut cur = redact_once(tokens, sub_index, subcommand, app);
    if cur == tokens {
        // Nothing to redact (most lines): already a fixpoint.
        return cur;
    }
    for _ in 1..MAX_PASSES {
        let next = redact_once(&cur, sub_index, subcommand, app);
        if next == cur {
            return cur;
        }
        cur = next;
    }
    let after = (sub_index + 1).min(cur.len());
    for t in &mut cur[after..] {
        *t = REDACTED.to_string();
    }
    cur
}

/// Passes of [`redact_command_tokens`] before it gives up and redacts every argument.
const MAX_PASSES: usize = 4;

fn redact_once(
    tokens: &[String],
    sub_index: usize,
    subcommand: &str,
    app: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = tokens.to_vec();
    let after = (sub_index + 1).min(out.len());
    let rest = &mut out[after..];
    match subcommand {
        "config:set" | "config:set-global" => {
            for t in rest.iter_mut() {
                if let Some((k, _)) = t.split_once('=') {
                    *t = format!("{k}={REDACTED}");
                }
            }
        }
        "letsencrypt:set" => {
            let mut app_kept = false;
            let mut property_kept = false;
            for t in rest.iter_mut() {
                if t == "--global" {
                    continue;
                }
                if !app_kept && Some(t.as_str()) == app {
                    app_kept = true;
                    continue;
                }
                if !property_kept {
                    property_kept = true;
                    continue;
                }
                *t = REDACTED.to_string();
            }
        }
        _ => {}
    }
    let ctx = words::Ctx {
        mode: match subcommand {
            "run" | "run:detached" | "enter" => words::Mode::Command,
            _ => words::Mode::Plain,
        },
        service: takes_service_flags(subcommand),
        depth: 0,
    };
    words::redact_tokens(rest, ctx);
    // After the word pass, so that a flag it turned into `[REDACTED]` counts the same way on a
    // second pass (idempotence).
    match subcommand {
        "config:set" | "config:set-global" | "letsencrypt:set" => {}
        // Any other `*:set [--global] [TARGET] PROPERTY VALUE…`: a property whose name says
        // secret has its value redacted.
        // (A value may start with `-`: after the property every token is a value.)
        s if s.ends_with(":set") || s.ends_with(":set-global") => {
            let mut app_seen = false;
            let mut secret = false;
            for t in rest.iter_mut() {
                if secret {
                    *t = REDACTED.to_string();
                    continue;
                }
                if t.starts_with('-') {
                    continue;
                }
                if !app_seen && Some(t.as_str()) == app {
                    app_seen = true;
                    continue;
                }
                secret = names::is_sensitive(t);
            }
        }
        s => {
            if let Some((first, last)) = positional_secrets(s) {
                // Flags are skipped until the first secret slot; from there every token fills
                // a slot (a password may start with `-`).
                let mut n = 0;
                for t in rest.iter_mut() {
                    let secret = n + 1 >= first && last.is_none_or(|l| n < l);
                    if t.starts_with('-') && !secret && n + 1 < first {
                        continue;
                    }
                    if secret {
                        *t = REDACTED.to_string();
                    }
                    n += 1;
                }
            }
        }
    }
    for t in rest.iter_mut() {
        if let Some(r) = redact_free_text(t) {
            *t = r;
        }
    }
    out
}

/// URL credentials and `name=value` secrets in free text (a token, a build source, a source
/// type). `None` when nothing changed.
pub fn redact_free_text(text: &str) -> Option<String> {
    let url = redact_url_credentials(text);
    let t = url.as_deref().unwrap_or(text);
    redact_inline_secrets(t).or(url)
}

/// Deploy metadata after redaction and truncation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployMetadata {
    /// The text kept.
    pub raw: String,
    /// Something was redacted.
    pub redacted: bool,
    /// It was cut to the size limit.
    pub truncated: bool,
}

impl DeployMetadata {
    /// The `pending_metadata` keys.
    pub fn to_meta(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert("deploy_metadata_raw".into(), self.raw.clone().into());
        if self.redacted {
            m.insert("deploy_metadata_redacted".into(), true.into());
        }
        if self.truncated {
            m.insert("deploy_metadata_truncated".into(), true.into());
        }
        m
    }
}

/// Redacts and truncates deploy metadata (reference §9.3, with the generous names of
/// [`is_sensitive`], plus URL credentials and `name=value` secrets inside a token). `None` when
/// there is no metadata.
pub fn deploy_metadata(args: &[String], max_chars: usize) -> Option<DeployMetadata> {
    let joined = args.join(" ");
    if joined.is_empty() {
        return None;
    }
    let mut redacted = false;
    let tokens: Vec<String> = joined
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(|t| {
            if let Some((k, _)) = t.split_once('=') {
                if is_sensitive(k) && !k.contains("://") {
                    redacted = true;
                    return format!("{k}={REDACTED}");
                }
            }
            match redact_free_text(t) {
                Some(r) => {
                    redacted = true;
                    r
                }
                None => t.to_string(),
            }
        })
        .collect();
    let text = tokens.join(" ");
    if text.is_empty() {
        return None;
    }
    let mut truncated = false;
    let mut raw = text.clone();
    if text.chars().count() > max_chars {
        truncated = true;
        raw = text.chars().take(max_chars).collect();
        if raw.contains(' ') && !raw.ends_with(' ') {
            if let Some(pos) = raw.rfind(' ') {
                raw.truncate(pos);
            }
        }
    }
    Some(DeployMetadata {
        raw,
        redacted,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn url_credentials() {
        assert_eq!(
            redact_url_credentials("https://user:TOKEN@github.com/x/y.git").as_deref(),
            Some("https://[REDACTED]@github.com/x/y.git")
        );
        assert_eq!(
            redact_url_credentials("a https://t@h/x and ssh://u:p@h:22#r").as_deref(),
            Some("a https://[REDACTED]@h/x and ssh://[REDACTED]@h:22#r")
        );
        assert_eq!(redact_url_credentials("https://github.com/x@y"), None);
        assert_eq!(redact_url_credentials("git@github.com:x/y"), None);
    }

    #[test]
    fn command_tokens() {
        let t = s(&["config:set", "--no-restart", "myapp", "A=Yg==", "B=c"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "config:set", Some("myapp")),
            s(&[
                "config:set",
                "--no-restart",
                "myapp",
                "A=[REDACTED]",
                "B=[REDACTED]"
            ])
        );
        let t = s(&["letsencrypt:set", "myapp", "dns-provider-KEY", "myapp"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "letsencrypt:set", Some("myapp")),
            s(&["letsencrypt:set", "myapp", "dns-provider-KEY", "[REDACTED]"])
        );
        let t = s(&["letsencrypt:set", "--global", "email", "x@y"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "letsencrypt:set", None),
            s(&["letsencrypt:set", "--global", "email", "[REDACTED]"])
        );
        let t = s(&[
            "run",
            "--env",
            "FOO=bar",
            "-e",
            "BAZ=qux",
            "--env=Q=1",
            "myapp",
            "env",
            "X=secret",
            "--",
            "ls",
            "-e",
            "Y=2",
        ]);
        assert_eq!(
            redact_command_tokens(&t, 0, "run", Some("myapp")),
            s(&[
                "run",
                "--env",
                "FOO=[REDACTED]",
                "-e",
                "BAZ=[REDACTED]",
                "--env=Q=[REDACTED]",
                "myapp",
                "env",
                "X=[REDACTED]",
                "--",
                "ls",
                "-e",
                "Y=[REDACTED]"
            ])
        );
        let t = s(&[
            "docker-options:add",
            "myapp",
            "deploy",
            "-e SECRET=x --link db",
        ]);
        assert_eq!(
            redact_command_tokens(&t, 0, "docker-options:add", Some("myapp"))[3],
            "-e SECRET=[REDACTED] --link db"
        );
        let t = s(&[
            "docker-options:add",
            "myapp",
            "deploy",
            "--env",
            "S=x",
            "-eT=y",
        ]);
        assert_eq!(
            redact_command_tokens(&t, 0, "docker-options:add", Some("myapp"))[4..],
            s(&["S=[REDACTED]", "-eT=[REDACTED]"])
        );
        let t = s(&["registry:login", "--global", "docker.io", "alice", "pw"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "registry:login", None)[4],
            "[REDACTED]"
        );
        let t = s(&["git:auth", "github.com", "alice", "pw"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "git:auth", None)[3],
            "[REDACTED]"
        );
        let t = s(&["registry:login", "--global", "h.io", "alice", "-pw-"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "registry:login", None)[2..],
            s(&["h.io", "alice", "[REDACTED]"])
        );
        let t = s(&["config:set", "myapp", "API_KEY=x", "RAILS_ENV=y"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "config:set", Some("myapp"))[2..],
            s(&["API_KEY=[REDACTED]", "RAILS_ENV=[REDACTED]"])
        );
        let t = s(&["foo:set", "--global", "api-token", "-x-", "y"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "foo:set", None)[1..],
            s(&["--global", "api-token", "[REDACTED]", "[REDACTED]"])
        );
        let t = s(&["postgres:backup-auth", "db", "AKID", "SECRET", "eu-west-1"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "postgres:backup-auth", None)[1..],
            s(&["db", "[REDACTED]", "[REDACTED]", "eu-west-1"])
        );
        let t = s(&["foo:login", "h.io", "alice", "pw"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "foo:login", None)[1..],
            s(&["h.io", "alice", "[REDACTED]"])
        );
        let t = s(&["run", "a", "curl", "--header=Authorization: Bearer x", "u"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "run", Some("a"))[3],
            "--header=Authorization: [REDACTED]"
        );
        let t = s(&["git:sync", "myapp", "https://u:TOKEN@h/r.git", "main"]);
        assert_eq!(
            redact_command_tokens(&t, 0, "git:sync", Some("myapp"))[2],
            "https://[REDACTED]@h/r.git"
        );
    }

    #[test]
    fn deploy_metadata_rules() {
        let m = deploy_metadata(
            &s(&["branch=main token=supersecret password=topsecret"]),
            1024,
        )
        .unwrap();
        assert_eq!(
            m.raw,
            "branch=main token=[REDACTED] password=[REDACTED]".to_string()
        );
        assert!(m.redacted && !m.truncated);
        let long = "value=".repeat(400);
        let m = deploy_metadata(&[long], 64).unwrap();
        assert_eq!(m.raw.len(), 64);
        assert!(m.truncated);
        let m = deploy_metadata(&s(&["branch=main commit=abcdef"]), 20).unwrap();
        assert_eq!(m.raw, "branch=main");
        let m = deploy_metadata(&s(&["https://u:CANARY@host/x#main"]), 1024).unwrap();
        assert_eq!(m.raw, "https://[REDACTED]@host/x#main");
        assert!(m.redacted);
        assert_eq!(deploy_metadata(&[], 10), None);
        assert_eq!(deploy_metadata(&s(&["a b"]), 0).unwrap().raw, "");
    }
}
