//! `hook_args`: what Dokku passes to a trigger (`hook::Hook::parse` for every trigger,
//! `hook::lossy_args`, `Hook::warning_app`) and the `user-auth` command line
//! (`hook::command_line`), plus the one-to-one token redaction that runs on its output.
//!
//! Input: byte 0 is a flag byte, the rest is split on NUL into the arguments (argv can never
//! hold a NUL, so this is every argv there is). Arguments are raw bytes, so invalid UTF-8 goes
//! through `lossy_args` as it does in the binary. When the low six flag bits are `001001`, a
//! huge argument built from the first one is inserted at position `flags >> 6`: 64 KiB in the
//! fuzz target (rare and not larger on purpose: a 1 MiB input costs ~0.1 s instrumented), 1 MiB
//! in the smoke test ([`hook_args_sized`]); flag bit 1 passes the second argument as
//! `DOKKU_APP_NAME`.
//!
//! Properties (reference `docs/capture.md` makes no promise about the *content* of app names —
//! control characters are kept and escaped by the JSON encoder — so none is asserted here; what
//! is asserted is what the parsers promise):
//!
//! - nothing panics, and parsing is deterministic;
//! - `lossy_args` is the identity on valid UTF-8 and never loses an argument;
//! - `Hook::parse` accepts exactly when the arguments its trigger requires are non-empty, and an
//!   accepted app, old/new name, build id, … is exactly the argument at its position;
//!   `warning_app` names that same argument (and nothing for `user-auth`/`report`);
//! - values never reach the fields that only keep names: config keys and `scheduler-run` env
//!   names hold no `=`, and each is the part before the first `=` of an argument;
//! - `tokenise` drops exactly the empty tokens (or splits one argument with spaces on spaces);
//! - `command_line::parse` keeps its indices in range and ordered, names the token at
//!   `sub_index` as the subcommand, never returns an empty app, takes the app of a git path form
//!   from the last path component (no `/`), and its `match_args` are a suffix of the tokens;
//! - `redact_command_tokens` gives one output token per input token, leaves the subcommand and
//!   everything before it alone, and is idempotent.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use dokku_audit::event::redact::{redact_command_tokens, REDACTED};
use dokku_audit::hook::command_line::{self, Invocation};
use dokku_audit::hook::{lossy_args, Hook, HookError, Trigger};

/// The size of the huge argument (low flag bits `001001`) in the fuzz target.
pub const HUGE_ARG: usize = 1 << 16;

/// The fuzz target body.
pub fn hook_args(data: &[u8]) {
    hook_args_sized(data, HUGE_ARG);
}

/// The body, with the huge argument `huge_len` bytes long.
pub fn hook_args_sized(data: &[u8], huge_len: usize) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut raw: Vec<Vec<u8>> = if rest.is_empty() {
        Vec::new()
    } else {
        rest.split(|b| *b == 0).map(<[u8]>::to_vec).collect()
    };
    if flags & 0b11_1111 == 0b00_1001 {
        let seed = raw.first().filter(|a| !a.is_empty()).cloned();
        let seed = seed.unwrap_or_else(|| b"x".to_vec());
        let mut huge = seed.repeat(huge_len / seed.len() + 1);
        huge.truncate(huge_len);
        let at = usize::from(flags >> 6).min(raw.len());
        raw.insert(at, huge);
    }
    let args = check_lossy(&raw);
    for &trigger in Trigger::ALL {
        check_trigger(trigger, &args);
    }
    let env_app = (flags & 2 != 0)
        .then(|| args.get(1).map(String::as_str))
        .flatten();
    // What `user-auth` does: tokenise `$3…`, then parse.
    let cmd = args.get(2..).unwrap_or(&[]);
    let tokens = check_tokenise(cmd);
    check_command_line(&tokens, env_app, true);
    // And the parser alone on untokenised input (empty tokens included): no panic, indices sane.
    check_command_line(&args, env_app, false);
}

fn check_lossy(raw: &[Vec<u8>]) -> Vec<String> {
    let os: Vec<OsString> = raw.iter().cloned().map(OsString::from_vec).collect();
    let args = lossy_args(os);
    assert_eq!(args.len(), raw.len(), "lossy_args lost an argument");
    for (r, a) in raw.iter().zip(&args) {
        match std::str::from_utf8(r) {
            Ok(s) => assert_eq!(s, a, "lossy_args changed valid UTF-8"),
            Err(_) => assert!(a.contains('\u{FFFD}'), "invalid UTF-8 not replaced: {a:?}"),
        }
    }
    args
}

fn non_empty(args: &[String], i: usize) -> Option<&str> {
    args.get(i).map(String::as_str).filter(|s| !s.is_empty())
}

/// The positions a trigger requires (non-empty), and where its app sits. Spelled out from the
/// argument shapes in `src/hook/mod.rs`'s docs, not derived from the parser.
fn shape(trigger: Trigger) -> (&'static [(usize, &'static str)], Option<usize>) {
    use Trigger::*;
    match trigger {
        UserAuth | Report => (&[], None),
        PostCreate | AppCreate | PostDelete | AppDestroy | ReceiveApp | PostExtract
        | PostDeploy | PostDomainsUpdate | PostCertsUpdate | PostCertsRemove => {
            (&[(0, "app name")], Some(0))
        }
        PostAppRenameSetup | PostAppRename | PostAppCloneSetup | PostAppClone => {
            (&[(0, "old app name"), (1, "new app name")], Some(0))
        }
        DeploySourceSet => (&[(0, "app name"), (1, "source type")], Some(0)),
        BuildsRecordStart => (&[(0, "app name"), (1, "build id")], Some(0)),
        BuildsRecordFinalize => (
            &[(0, "app name"), (1, "build id"), (2, "exit code")],
            Some(0),
        ),
        PostConfigUpdate => (&[(1, "config action")], Some(0)),
        PostProxyPortsUpdate => (&[(0, "app name"), (1, "ports action")], Some(0)),
        SchedulerRun | SchedulerEnter => (&[(1, "app name")], Some(1)),
        SchedulerPostRun => (&[(1, "app name"), (2, "container id")], Some(1)),
    }
}

fn check_trigger(trigger: Trigger, args: &[String]) {
    let parsed = Hook::parse(trigger, args);
    assert_eq!(
        parsed,
        Hook::parse(trigger, args),
        "parse is not deterministic"
    );
    let (required, app_at) = shape(trigger);

    // warning_app names the app argument, whatever parse thinks of the rest.
    let warn = Hook::warning_app(trigger, args);
    let expected_warn = app_at.and_then(|i| non_empty(args, i)).map(str::to_string);
    assert_eq!(warn, expected_warn, "{}: warning_app", trigger.name());

    let missing = required.iter().find(|(i, _)| non_empty(args, *i).is_none());
    let hook = match (parsed, missing) {
        (Err(HookError::Missing(what)), Some((_, expected))) => {
            assert_eq!(
                what,
                *expected,
                "{}: wrong missing argument",
                trigger.name()
            );
            return;
        }
        (Ok(h), None) => h,
        (r, m) => panic!(
            "{}: parse gave {r:?}, but the first missing argument is {m:?} (args {:?})",
            trigger.name(),
            short(args)
        ),
    };
    let at = |i: usize| args[i].clone();
    let opt = |i: usize| non_empty(args, i).map(str::to_string);
    let tail = |i: usize| args.get(i..).unwrap_or(&[]).to_vec();
    match hook {
        Hook::UserAuth {
            ssh_user,
            ssh_name,
            tokens,
        } => {
            assert_eq!(ssh_user, args.first().cloned().unwrap_or_default());
            assert_eq!(ssh_name, args.get(1).cloned().unwrap_or_default());
            assert_eq!(tokens, command_line::tokenise(&tail(2)));
        }
        Hook::AppCreated { app } | Hook::AppDestroyed { app } | Hook::Certs { app, .. } => {
            assert_eq!(app, at(0))
        }
        Hook::RenameSetup { old, new, clone } | Hook::Renamed { old, new, clone } => {
            assert_eq!((old, new), (at(0), at(1)));
            assert_eq!(
                clone,
                matches!(trigger, Trigger::PostAppCloneSetup | Trigger::PostAppClone)
            );
        }
        Hook::ReceiveApp { app, rev } => assert_eq!((app, rev), (at(0), opt(1))),
        Hook::PostExtract { app, rev } => assert_eq!((app, rev), (at(0), opt(2))),
        Hook::DeploySourceSet {
            app,
            source_type,
            metadata,
        } => assert_eq!((app, source_type, metadata), (at(0), at(1), tail(2))),
        Hook::PostDeploy {
            app,
            port,
            ip,
            image_tag,
        } => assert_eq!((app, port, ip, image_tag), (at(0), opt(1), opt(2), opt(3))),
        Hook::BuildStart {
            app,
            build_id,
            source,
        } => assert_eq!((app, build_id, source), (at(0), at(1), opt(3))),
        Hook::BuildFinalize {
            app,
            build_id,
            exit_code,
        } => assert_eq!((app, build_id, exit_code), (at(0), at(1), at(2))),
        Hook::ConfigUpdate { app, action, keys } => {
            let first = args.first().map(String::as_str).unwrap_or("");
            let expected_app = (!first.is_empty() && first != "--global").then(|| at(0));
            assert_eq!((app, action), (expected_app, at(1)));
            check_names_only(&keys, &tail(2), "config key");
        }
        Hook::DomainsUpdate {
            app,
            action,
            domains,
        } => assert_eq!((app, action, domains), (at(0), opt(1), tail(2))),
        Hook::PortsUpdate {
            app,
            action,
            mapping_count,
        } => assert_eq!((app, action, mapping_count), (at(0), at(1), args.len() - 2)),
        Hook::SchedulerRun {
            app,
            env_keys,
            args: cmd,
        } => {
            assert_eq!(app, at(1));
            let rest = tail(2);
            // Dokku blanks `-e` in place (`"" K=V`); the parser puts it back.
            let restored = |v: &[String]| dokku_audit::hook::command_line::restore_env_flags(v);
            if env_keys.is_empty() {
                // Old shape (or a count of 0): the command is the rest, or the rest after
                // `0 --`.
                assert!(
                    cmd == restored(&rest) || (rest.len() >= 2 && restored(&rest[2..]) == cmd),
                    "scheduler-run command {:?} from {:?}",
                    short(&cmd),
                    short(&rest)
                );
            } else {
                // Real shape: COUNT K=V… -- CMD…
                let n = env_keys.len();
                assert_eq!(rest[0].parse::<usize>().ok(), Some(n));
                assert_eq!(rest[n + 1], "--");
                assert_eq!(cmd, restored(&rest[n + 2..]));
                let kvs = &rest[1..=n];
                for (k, kv) in env_keys.iter().zip(kvs) {
                    assert!(!k.contains('='), "env value kept: {k:?}");
                    assert_eq!(Some(k.as_str()), kv.split('=').next());
                }
            }
        }
        Hook::SchedulerEnter { app, args: a } => assert_eq!((app, a), (at(1), tail(2))),
        Hook::SchedulerPostRun {
            app,
            container_id,
            exit_code,
        } => assert_eq!((app, container_id, exit_code), (at(1), at(2), opt(3))),
        Hook::Report => assert_eq!(trigger, Trigger::Report),
    }
}

/// `names` are the non-empty parts before the first `=` of `from`, in order.
fn check_names_only(names: &[String], from: &[String], what: &str) {
    let expected: Vec<&str> = from
        .iter()
        .filter_map(|a| a.split('=').next())
        .filter(|k| !k.is_empty())
        .collect();
    assert_eq!(names, expected, "{what}s");
    for k in names {
        assert!(!k.contains('='), "{what} holds a value: {k:?}");
    }
}

fn check_tokenise(args: &[String]) -> Vec<String> {
    let tokens = command_line::tokenise(args);
    assert_eq!(tokens, command_line::tokenise(args));
    assert!(tokens.iter().all(|t| !t.is_empty()), "empty token kept");
    // In a `run`, Dokku's blanked `-e` (`"" K=V`) is put back before empty tokens are dropped.
    let restored;
    let args = if args.iter().any(|a| a == "run" || a == "run:detached") {
        restored = command_line::restore_env_flags(args);
        &restored[..]
    } else {
        args
    };
    if args.len() == 1 && args[0].contains(' ') {
        assert!(tokens.iter().all(|t| !t.contains(' ')));
        let expected: Vec<&str> = args[0].split(' ').filter(|t| !t.is_empty()).collect();
        assert_eq!(tokens, expected);
    } else {
        let expected: Vec<&String> = args.iter().filter(|t| !t.is_empty()).collect();
        assert_eq!(tokens.iter().collect::<Vec<_>>(), expected);
    }
    tokens
}

fn check_command_line(tokens: &[String], env_app: Option<&str>, tokenised: bool) {
    let inv = command_line::parse(tokens, env_app);
    assert_eq!(
        inv,
        command_line::parse(tokens, env_app),
        "not deterministic"
    );
    let n = tokens.len();
    assert!(
        inv.sub_index <= inv.args_start && inv.args_start <= n,
        "indices out of order: sub {} args {} len {n}",
        inv.sub_index,
        inv.args_start
    );
    if inv.sub_index < n {
        assert_eq!(inv.subcommand, tokens[inv.sub_index]);
        assert!(inv.args_start > inv.sub_index);
    } else {
        assert_eq!(inv.subcommand, "");
        assert_eq!(inv.args_start, n);
    }
    assert!(inv.global_app.as_deref() != Some(""), "empty global app");
    if tokenised {
        assert!(inv.app.as_deref() != Some(""), "empty app: {inv:?}");
    }
    if inv.global_app.is_some() && !matches!(inv.subcommand.as_str(), "") {
        assert_eq!(inv.app, inv.global_app, "--app not used");
    }
    assert!(
        tokens.ends_with(&inv.match_args),
        "match_args not a suffix of the tokens"
    );
    if matches!(inv.subcommand.as_str(), "run" | "run:detached") {
        assert_eq!(inv.match_args, tokens[inv.args_start..]);
    }
    if matches!(inv.subcommand.as_str(), "git-hook" | "git-receive-pack")
        && inv.global_app.is_none()
    {
        if let Some(app) = &inv.app {
            assert!(!app.contains('/'), "git app with a path: {app:?}");
        }
    }
    let args = &tokens[inv.args_start..];
    check_invocation_helpers(&inv, tokens, args);
    check_redaction(tokens, &inv, env_app);
}

fn check_invocation_helpers(inv: &Invocation, tokens: &[String], args: &[String]) {
    let recorded = inv.is_recorded(args);
    if inv.subcommand.is_empty() || inv.subcommand.starts_with('-') {
        assert!(!recorded);
    }
    let _ = inv.follow_on_subcommand();
    let _ = inv.is_global_config(tokens);
    let _ = command_line::follow_on_kinds(&inv.subcommand, args);
    let _ = command_line::is_certs_command(&inv.subcommand);
    let _ = command_line::is_app_scoped(&inv.subcommand);
    if let Some((a, b)) = command_line::rename_pair(args) {
        assert!(args.contains(&a) && args.contains(&b));
    }
    let _ = command_line::parse_enter_target(args);
    for t in tokens.iter().take(4) {
        let app = command_line::normalise_git_app(t);
        assert!(!app.contains('/'), "normalise_git_app kept a path: {app:?}");
    }
}

fn check_redaction(tokens: &[String], inv: &Invocation, env_app: Option<&str>) {
    let sub = inv.subcommand.as_str();
    let app = inv.app.as_deref();
    let once = redact_command_tokens(tokens, inv.sub_index, sub, app);
    assert_eq!(
        once.len(),
        tokens.len(),
        "redaction changed the token count"
    );
    let keep = (inv.sub_index + 1).min(tokens.len());
    assert_eq!(
        once[..keep],
        tokens[..keep],
        "redaction touched the subcommand"
    );
    // Idempotent when the redacted line is parsed again (the app itself may have lost URL
    // credentials, and `letsencrypt:set` finds its value by position after the app).
    let inv2 = command_line::parse(&once, env_app);
    let twice = redact_command_tokens(&once, inv2.sub_index, &inv2.subcommand, inv2.app.as_deref());
    assert_eq!(
        twice,
        once,
        "redaction is not idempotent for {:?} (app {app:?})",
        short(tokens)
    );
    // Config values: every `K=V` after a config:set is `K=[REDACTED]`.
    if matches!(sub, "config:set" | "config:set-global") {
        for t in &once[keep..] {
            if let Some((_, v)) = t.split_once('=') {
                assert_eq!(v, REDACTED, "config value kept: {t:?}");
            }
        }
    }
}

/// Arguments for a panic message, without megabytes of text.
fn short(args: &[String]) -> Vec<String> {
    args.iter()
        .map(|a| match a.char_indices().nth(80) {
            Some((i, _)) => format!("{}…({} bytes)", &a[..i], a.len()),
            None => a.clone(),
        })
        .collect()
}
