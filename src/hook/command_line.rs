//! The `dokku` command line as `user-auth` sees it (reference §7.1–§7.5, §7.7): tokenising,
//! global flags, the subcommand, the app, the arguments, the skip list and the follow-on kinds.
//! Pure parsing over raw tokens; redaction is [`crate::event::redact`]'s job and maps tokens one
//! to one, so the indices found here address the redacted tokens too.

/// Tokenises `user-auth`'s command arguments: a single argument holding spaces (how SSH git
/// commands arrive: `git-receive-pack '/home/dokku/app.git'`) is split on runs of spaces; empty
/// tokens are dropped.
pub fn tokenise(args: &[String]) -> Vec<String> {
    let restored;
    let args = if args.iter().any(|a| a == "run" || a == "run:detached") {
        restored = restore_env_flags(args);
        &restored
    } else {
        args
    };
    if args.len() == 1 && args[0].contains(' ') {
        return args[0]
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
    }
    args.iter().filter(|t| !t.is_empty()).cloned().collect()
}

/// Dokku's `run` argument parsing blanks `-e`/`--env` in place (`run APP "" K=V CMD`): an empty
/// token directly before a `K=V` token is put back as `-e` (the two spellings
/// cannot be told apart; the `DOKKU_PID` command line could, but the flag's meaning is the
/// same). Other empty tokens are left for the caller.
pub fn restore_env_flags(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    for i in 0..out.len().saturating_sub(1) {
        if out[i].is_empty() && out[i + 1].contains('=') && !out[i + 1].starts_with('-') {
            out[i] = "-e".into();
        }
    }
    out
}

/// One parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invocation {
    /// `--app X` (or `DOKKU_APP_NAME`).
    pub global_app: Option<String>,
    /// The subcommand (may be a flag such as `--version`, which is then skipped).
    pub subcommand: String,
    /// Index of the subcommand in the tokens.
    pub sub_index: usize,
    /// The app the command acts on.
    pub app: Option<String>,
    /// The command's arguments are `tokens[args_start..]`.
    pub args_start: usize,
    /// `enter`: the container type.
    pub container_type: Option<String>,
    /// `enter`: the container id.
    pub container_id: Option<String>,
    /// `run`/`enter`: the raw arguments a scheduler trigger will see (correlation).
    pub match_args: Vec<String>,
}

fn is_flag(t: &str) -> bool {
    t.starts_with('-')
}

/// Commands whose first positional argument is the app (reference §7.4).
pub fn is_app_scoped(sub: &str) -> bool {
    const EXACT: &[&str] = &[
        "apps:create",
        "apps:destroy",
        "deploy",
        "git-hook",
        "git-receive-pack",
        "config",
        "domains",
        "logs",
    ];
    const PREFIXES: &[&str] = &[
        "config:",
        "resource:",
        "domains:",
        "ports:",
        "proxy:",
        "ps:",
        "checks:",
        "nginx:",
        "docker-options:",
        "storage:",
        "network:",
        "git:",
        "builder:",
        "certs:",
        "letsencrypt:",
        "tags:",
    ];
    // Global forms take no app (the reference took a domain or network name as the app).
    const NOT: &[&str] = &[
        "config:set-global",
        "config:unset-global",
        "network:create",
        "network:destroy",
    ];
    if NOT.contains(&sub) || sub.ends_with("-global") {
        return false;
    }
    EXACT.contains(&sub) || PREFIXES.iter().any(|p| sub.starts_with(p))
}

/// `git-hook`/`git-receive-pack` path forms → app name (reference §7.5).
pub fn normalise_git_app(token: &str) -> String {
    let mut t = token;
    t = t.strip_prefix('\'').unwrap_or(t);
    t = t.strip_suffix('\'').unwrap_or(t);
    t = t.strip_prefix('"').unwrap_or(t);
    t = t.strip_suffix('"').unwrap_or(t);
    t = t.strip_suffix('/').unwrap_or(t);
    let t = t.rsplit('/').next().unwrap_or(t);
    t.strip_suffix(".git").unwrap_or(t).to_string()
}

/// Parses tokens (reference §7.2). `env_app` is `DOKKU_APP_NAME`, used when the tokens carry no
/// `--app` (Dokku strips a leading `--app X` before `user-auth`).
pub fn parse(tokens: &[String], env_app: Option<&str>) -> Invocation {
    let mut inv = Invocation::default();
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        match t {
            "--app" => {
                inv.global_app = tokens.get(i + 1).cloned();
                i += 2;
            }
            "--label" | "--remote" => i += 2,
            "--quiet" | "--trace" | "--force" | "--global" => i += 1,
            _ if t.starts_with("--app=") => {
                inv.global_app = Some(t["--app=".len()..].to_string());
                i += 1;
            }
            _ if t.starts_with("--label=") || t.starts_with("--remote=") => i += 1,
            _ => break,
        }
    }
    if inv.global_app.is_none() {
        inv.global_app = env_app.filter(|a| !a.is_empty()).map(str::to_string);
    }
    inv.global_app = inv.global_app.filter(|a| !a.is_empty());
    let Some(sub) = tokens.get(i) else {
        inv.sub_index = tokens.len();
        inv.args_start = tokens.len();
        return inv;
    };
    inv.subcommand = sub.clone();
    inv.sub_index = i;
    let start = i + 1;
    let trailing = &tokens[start.min(tokens.len())..];
    match sub.as_str() {
        "run" | "run:detached" => parse_run(&mut inv, trailing, start),
        "enter" => parse_enter(&mut inv, trailing, start),
        _ => parse_generic(&mut inv, trailing, start),
    }
    inv
}

fn parse_run(inv: &mut Invocation, t: &[String], start: usize) {
    inv.app = inv.global_app.clone();
    let mut i = 0;
    while i < t.len() {
        let tok = t[i].as_str();
        match tok {
            "-e" | "--env" | "--ttl-seconds" => i += 2,
            "--no-tty" | "--force-tty" => i += 1,
            "--" => {
                i += 1;
                break;
            }
            _ if tok.starts_with("--env=") || tok.starts_with("--ttl-seconds=") => i += 1,
            _ if is_flag(tok) => i += 1,
            _ if inv.app.is_none() => {
                inv.app = Some(tok.to_string());
                i += 1;
            }
            _ => break,
        }
    }
    let i = i.min(t.len());
    inv.args_start = start + i;
    inv.match_args = t[i..].to_vec();
}

fn parse_enter(inv: &mut Invocation, t: &[String], start: usize) {
    let mut i = 0;
    inv.app = match &inv.global_app {
        Some(a) => Some(a.clone()),
        None => {
            i = 1;
            t.first().cloned()
        }
    };
    let i = i.min(t.len());
    inv.match_args = t[i..].to_vec();
    let (ctype, cid, consumed) = parse_enter_target(&t[i..]);
    inv.container_type = ctype;
    inv.container_id = cid;
    inv.args_start = start + i + consumed;
}

/// The first token after an `enter` app: `--container-id ID`, `--container-id=ID`, `--`, another
/// flag, or the container type. Returns (type, id, tokens consumed).
pub fn parse_enter_target(t: &[String]) -> (Option<String>, Option<String>, usize) {
    match t.first().map(String::as_str) {
        None => (None, None, 0),
        Some("--container-id") => (None, t.get(1).cloned(), t.len().min(2)),
        Some(x) if x.starts_with("--container-id=") => {
            (None, Some(x["--container-id=".len()..].to_string()), 1)
        }
        Some("--") => (None, None, 1),
        Some(x) if is_flag(x) => (None, None, 1),
        Some(x) => (Some(x.to_string()), None, 1),
    }
}

fn parse_generic(inv: &mut Invocation, t: &[String], start: usize) {
    if let Some(app) = &inv.global_app {
        inv.app = Some(app.clone());
        inv.args_start = start;
        return;
    }
    if !is_app_scoped(&inv.subcommand) {
        inv.args_start = start;
        return;
    }
    let skippable: &[&str] = match inv.subcommand.as_str() {
        "config:set" => &["--encoded", "--no-restart"],
        "config:unset" | "config:clear" => &["--no-restart"],
        // `git:sync [--build|--build-if-changes] APP URL [REF]` (real Dokku).
        "git:sync" => &["--build", "--build-if-changes"],
        _ => &[],
    };
    let mut i = 0;
    while i < t.len() && skippable.contains(&t[i].as_str()) {
        i += 1;
    }
    match t.get(i) {
        Some(tok) if !tok.is_empty() && !is_flag(tok) => {
            let app = if matches!(inv.subcommand.as_str(), "git-hook" | "git-receive-pack") {
                normalise_git_app(tok)
            } else {
                tok.clone()
            };
            inv.app = Some(app).filter(|a| !a.is_empty());
            inv.args_start = start + i + 1;
        }
        _ => inv.args_start = start,
    }
}

impl Invocation {
    /// Whether `user-auth` records anything for this command (reference §7.3, except the
    /// letsencrypt-internal `certs:add`, which needs the correlation state).
    pub fn is_recorded(&self, args: &[String]) -> bool {
        let sub = self.subcommand.as_str();
        if sub.is_empty() || is_flag(sub) {
            return false;
        }
        const EXACT: &[&str] = &[
            "audit",
            "help",
            "version",
            "report",
            "logs",
            "config",
            "apps:list",
            "apps:exists",
            "ps:retire",
            "letsencrypt:active",
        ];
        const SUFFIXES: &[&str] = &[
            ":list",
            ":report",
            ":info",
            ":show",
            ":exists",
            ":links",
            ":app-links",
        ];
        if EXACT.contains(&sub)
            || sub.starts_with("audit:")
            || SUFFIXES.iter().any(|s| sub.ends_with(s))
        {
            return false;
        }
        if matches!(sub, "git-hook" | "git-receive-pack") && self.app.is_none() {
            return false;
        }
        if sub == "resource:limit" && (self.app.is_none() || args.is_empty()) {
            return false;
        }
        true
    }

    /// The subcommand follow-on events are attributed to (`git:push` for the git forms).
    pub fn follow_on_subcommand(&self) -> &str {
        match self.subcommand.as_str() {
            "git-hook" | "git-receive-pack" => "git:push",
            s => s,
        }
    }

    /// Whether the command targets global config (`--global`, `*-global`).
    pub fn is_global_config(&self, tokens: &[String]) -> bool {
        match self.subcommand.as_str() {
            "config:set-global" | "config:unset-global" => true,
            "config:set" | "config:unset" | "config:clear" => {
                self.app.is_none()
                    && tokens[self.sub_index.min(tokens.len())..]
                        .iter()
                        .any(|t| t == "--global")
            }
            _ => false,
        }
    }
}

/// The follow-on event kinds a command stores actor contexts for (reference §7.7), plus
/// `app-rename`/`app-clone` for `apps:rename`/`apps:clone`. Only for commands with an app.
pub fn follow_on_kinds(sub: &str, args: &[String]) -> &'static [&'static str] {
    const DEPLOY: &[&str] = &[
        "deploy-receive",
        "deploy-source-set",
        "deploy-extract",
        "deploy-finish",
    ];
    let no_restart = args
        .iter()
        .any(|a| a == "--no-restart" || a.starts_with("--no-restart="));
    match sub {
        "apps:create" => &["app-create"],
        "apps:destroy" => &["app-destroy"],
        "apps:rename" => &["app-rename"],
        "apps:clone" => &["app-clone"],
        "config:set" | "config:unset" | "config:clear" if no_restart => &["config"],
        "config:set" | "config:unset" | "config:clear" => &["config", "deploy-finish"],
        "certs:add"
        | "certs:generate"
        | "certs:remove"
        | "letsencrypt:auto-renew"
        | "letsencrypt:disable"
        | "letsencrypt:enable" => &["certs"],
        "ps:restart" => &["deploy-finish"],
        "git-hook" | "git-receive-pack" | "deploy" | "git:sync" | "git:from-archive"
        | "git:from-directory" | "git:from-image" | "git:load-image" | "ps:rebuild"
        | "tags:deploy" => DEPLOY,
        s if s.starts_with("domains:") => &["domains"],
        s if s.starts_with("ports:") || s.starts_with("proxy:ports") => &["ports"],
        _ => &[],
    }
}

/// The certificate commands `user-auth` records as `certs_command` events (reference §7.8).
pub fn is_certs_command(sub: &str) -> bool {
    matches!(
        sub,
        "certs:add"
            | "certs:generate"
            | "certs:remove"
            | "letsencrypt:auto-renew"
            | "letsencrypt:cleanup"
            | "letsencrypt:cron-job"
            | "letsencrypt:disable"
            | "letsencrypt:enable"
            | "letsencrypt:revoke"
            | "letsencrypt:set"
    )
}

/// `apps:rename OLD NEW` / `apps:clone OLD NEW`: the two names (flags skipped).
pub fn rename_pair(args: &[String]) -> Option<(String, String)> {
    let mut names = args.iter().filter(|a| !is_flag(a));
    Some((names.next()?.clone(), names.next()?.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn p(v: &[&str]) -> Invocation {
        parse(&tokenise(&s(v)), None)
    }

    fn args(v: &[&str]) -> Vec<String> {
        let t = tokenise(&s(v));
        let inv = parse(&t, None);
        t[inv.args_start..].to_vec()
    }

    #[test]
    fn single_argument_with_spaces_is_split() {
        assert_eq!(
            tokenise(&s(&["git-receive-pack  '/home/dokku/myapp.git'"])),
            s(&["git-receive-pack", "'/home/dokku/myapp.git'"])
        );
        assert_eq!(tokenise(&s(&["a", "", "b c"])), s(&["a", "b c"]));
    }

    #[test]
    fn git_path_forms() {
        for f in [
            "'/home/dokku/myapp.git'",
            "/home/dokku/myapp.git",
            "\"myapp/\"",
            "myapp",
            "'myapp'",
        ] {
            assert_eq!(normalise_git_app(f), "myapp", "{f}");
        }
        assert_eq!(
            p(&["git-hook /home/dokku/myapp.git"]).app.as_deref(),
            Some("myapp")
        );
    }

    #[test]
    fn global_flags_and_app() {
        let i = p(&["--app", "myapp", "config:set", "A=1"]);
        assert_eq!(
            (i.subcommand.as_str(), i.app.as_deref()),
            ("config:set", Some("myapp"))
        );
        assert_eq!(args(&["--app", "myapp", "config:set", "A=1"]), s(&["A=1"]));
        let i = p(&["--trace", "--label=x", "ps:stop", "myapp"]);
        assert_eq!(
            (i.subcommand.as_str(), i.app.as_deref()),
            ("ps:stop", Some("myapp"))
        );
        let i = parse(&s(&["config:set", "A=1"]), Some("envapp"));
        assert_eq!(i.app.as_deref(), Some("envapp"));
        assert_eq!(p(&["ps:restart", "--all"]).app, None);
        assert_eq!(
            args(&["config:set", "--encoded", "--no-restart", "myapp", "A=Yg=="]),
            s(&["A=Yg=="])
        );
        assert_eq!(p(&["domains:set-global", "x.com"]).app, None);
        assert_eq!(
            p(&["git:sync", "--build", "myapp", "https://x/y.git"])
                .app
                .as_deref(),
            Some("myapp")
        );
        assert_eq!(p(&["apps:rename", "a", "b"]).app, None);
        assert_eq!(args(&["apps:rename", "a", "b"]), s(&["a", "b"]));
    }

    #[test]
    fn run_parsing() {
        let i = p(&[
            "run", "--env", "FOO=bar", "-e", "BAZ=qux", "myapp", "printenv", "FOO",
        ]);
        assert_eq!(i.app.as_deref(), Some("myapp"));
        assert_eq!(i.match_args, s(&["printenv", "FOO"]));
        let i = p(&["run", "--no-tty", "--ttl-seconds", "60", "myapp", "ls"]);
        assert_eq!(i.match_args, s(&["ls"]));
        let i = p(&["--app", "myapp", "run", "ls"]);
        assert_eq!(
            (i.app.as_deref(), i.match_args.clone()),
            (Some("myapp"), s(&["ls"]))
        );
        let i = p(&["run", "myapp", "--", "ls", "-e", "X=1"]);
        assert_eq!(i.match_args, s(&["ls", "-e", "X=1"]));
        assert_eq!(p(&["run"]).app, None);
    }

    #[test]
    fn enter_parsing() {
        let i = p(&["enter", "myapp", "--container-id", "abc123", "echo", "hi"]);
        assert_eq!(i.container_id.as_deref(), Some("abc123"));
        assert_eq!(i.match_args, s(&["--container-id", "abc123", "echo", "hi"]));
        assert_eq!(
            args(&["enter", "myapp", "--container-id", "abc123", "echo", "hi"]),
            s(&["echo", "hi"])
        );
        let i = p(&["enter", "myapp", "web.1"]);
        assert_eq!(
            (i.container_type.as_deref(), i.match_args.clone()),
            (Some("web.1"), s(&["web.1"]))
        );
        let i = p(&["enter", "myapp", "--container-id=abc", "ls"]);
        assert_eq!(i.match_args, s(&["--container-id=abc", "ls"]));
        assert_eq!(p(&["enter", "myapp"]).match_args, Vec::<String>::new());
    }

    #[test]
    fn skip_list() {
        for cmd in [
            &["apps:list"][..],
            &["postgres:list"],
            &["config:show", "myapp"],
            &["report", "myapp"],
            &["ps:retire", "myapp", "web.1"],
            &["audit:recent"],
            &["--version"],
            &["postgres:links", "database"],
            &["redis:app-links", "myapp"],
            &["logs", "myapp"],
            &["config", "myapp"],
            &["resource:limit", "myapp"],
            &["letsencrypt:active", "myapp"],
            &["git-receive-pack"],
            &["help"],
        ] {
            let t = s(cmd);
            let inv = parse(&t, None);
            assert!(!inv.is_recorded(&t[inv.args_start..]), "{cmd:?}");
        }
        for cmd in [
            &["postgres:connect", "database"][..],
            &["config:get", "myapp", "A"],
            &["git-upload-pack", "'myapp'"],
            &["resource:limit", "myapp", "--memory", "5m"],
        ] {
            let t = s(cmd);
            let inv = parse(&t, None);
            assert!(inv.is_recorded(&t[inv.args_start..]), "{cmd:?}");
        }
    }

    #[test]
    fn follow_ons() {
        assert_eq!(
            follow_on_kinds("config:set", &s(&["A=1"])),
            &["config", "deploy-finish"]
        );
        assert_eq!(
            follow_on_kinds("config:set", &s(&["--no-restart", "A=1"])),
            &["config"]
        );
        assert_eq!(follow_on_kinds("git-hook", &[]).len(), 4);
        assert_eq!(follow_on_kinds("proxy:ports-add", &[]), &["ports"]);
        assert!(follow_on_kinds("ps:stop", &[]).is_empty());
        assert!(follow_on_kinds("certs:update", &[]).is_empty());
    }
}
