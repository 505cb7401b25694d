//! Redaction: secrets never reach a segment, the state file or the index. Command tokens are
//! redacted one to one (so positions found by parsing still address them), deploy metadata is
//! redacted and truncated (reference §9.3), config events keep key names only.

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

/// `https://user:token@host/…` → `https://[REDACTED]@host/…`, for every URL in `text`.
/// Returns `None` when nothing changed.
pub fn redact_url_credentials(text: &str) -> Option<String> {
    if !text.contains("://") || !text.contains('@') {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(pos) = rest.find("://") {
        let (head, tail) = rest.split_at(pos + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) if at > 0 && authority[..at] != *REDACTED => {
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
                changed = true;
            }
            _ => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

fn key_of(kv: &str) -> &str {
    kv.split('=').next().unwrap_or("")
}

fn redact_value(kv: &str) -> String {
    format!("{}={REDACTED}", key_of(kv))
}

/// Redacts `-e K=V`, `--env K=V`, `--env=K=V` and `-eK=V` among whitespace-separated words (the
/// form `docker-options:add APP PHASE "-e SECRET=x"` passes them in).
fn redact_env_flags_in_words(words: &mut [String]) -> bool {
    let mut changed = false;
    let mut i = 0;
    while i < words.len() {
        let w = words[i].clone();
        if (w == "-e" || w == "--env" || w == "--build-arg") && i + 1 < words.len() {
            if words[i + 1].contains('=') && !words[i + 1].ends_with(REDACTED) {
                words[i + 1] = redact_value(&words[i + 1]);
                changed = true;
            }
            i += 2;
            continue;
        }
        if w.contains(char::is_whitespace) {
            i += 1;
            continue;
        }
        for prefix in ["--env=", "-e"] {
            if let Some(kv) = w.strip_prefix(prefix) {
                if kv.contains('=') && !kv.ends_with(REDACTED) && w != "-e" {
                    words[i] = format!("{prefix}{}", redact_value(kv));
                    changed = true;
                    break;
                }
            }
        }
        i += 1;
    }
    changed
}

/// Redacts env flags inside a single token that holds several words (`"-e A=1 -e B=2"`).
fn redact_env_flags_in_token(token: &str) -> Option<String> {
    if !token.contains(char::is_whitespace) {
        return None;
    }
    let mut words: Vec<String> = token.split_whitespace().map(str::to_string).collect();
    redact_env_flags_in_words(&mut words).then(|| words.join(" "))
}

/// Redacts the tokens of a command line for storage (reference §9.1, plus URL credentials
/// everywhere, `-e` inside `docker-options:*`, positional `K=V` of `run`). Tokens up to and
/// including the subcommand (`sub_index`) are global flags and the subcommand itself; `app_index`
/// is where the app token sits, if any. One output token per input token.
pub fn redact_command_tokens(
    tokens: &[String],
    sub_index: usize,
    subcommand: &str,
    app: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = tokens.to_vec();
    let after = (sub_index + 1).min(out.len());
    match subcommand {
        "config:set" | "config:set-global" => {
            for t in &mut out[after..] {
                if t.contains('=') {
                    *t = redact_value(t);
                }
            }
        }
        "letsencrypt:set" => {
            let mut app_kept = false;
            let mut property_kept = false;
            for t in &mut out[after..] {
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
        "run" | "run:detached" => {
            let mut words = out[after..].to_vec();
            redact_env_flags_in_words(&mut words);
            for (i, w) in words.iter_mut().enumerate() {
                let prev = i.checked_sub(1).map(|p| out[after + p].as_str());
                let is_flag_value = matches!(prev, Some("-e" | "--env"));
                // Positional `K=V` (e.g. `dokku run app env FOO=bar`): the value may be a secret.
                if !is_flag_value
                    && !w.starts_with('-')
                    && w.contains('=')
                    && !w.ends_with(REDACTED)
                    && key_of(w)
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !key_of(w).is_empty()
                {
                    *w = redact_value(w);
                }
            }
            out[after..].clone_from_slice(&words);
        }
        // `registry:login [--global] SERVER USER PASSWORD`, `git:auth HOST USER PASSWORD`: the
        // third positional argument is a password.
        "registry:login" | "git:auth" => {
            let mut positional = 0;
            for t in &mut out[after..] {
                if t.starts_with('-') {
                    continue;
                }
                positional += 1;
                if positional >= 3 {
                    *t = REDACTED.to_string();
                }
            }
        }
        s if s.starts_with("docker-options:") => {
            let mut words = out[after..].to_vec();
            redact_env_flags_in_words(&mut words);
            for w in &mut words {
                if let Some(r) = redact_env_flags_in_token(w) {
                    *w = r;
                }
            }
            out[after..].clone_from_slice(&words);
        }
        _ => {}
    }
    for t in &mut out[after..] {
        if let Some(r) = redact_url_credentials(t) {
            *t = r;
        }
    }
    out
}

/// Substrings that mark a deploy-metadata key as secret (reference §9.3, lower-cased match).
const SENSITIVE_KEY_PARTS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "credential",
    "auth",
    "private-key",
    "private_key",
    "privatekey",
    "access-key",
    "access_key",
    "accesskey",
    "api-key",
    "api_key",
    "apikey",
    "passphrase",
    "client_secret",
    "auth_token",
    "bearer",
    "session",
];

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

/// Redacts and truncates deploy metadata (reference §9.3, plus URL credentials). `None` when
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
            let t = match redact_url_credentials(t) {
                Some(r) => {
                    redacted = true;
                    r
                }
                None => t.to_string(),
            };
            if let Some((k, _)) = t.split_once('=') {
                let lower = k.to_lowercase();
                if SENSITIVE_KEY_PARTS.iter().any(|p| lower.contains(p)) {
                    redacted = true;
                    return format!("{k}={REDACTED}");
                }
            }
            t
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
