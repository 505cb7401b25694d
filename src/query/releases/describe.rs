//! What a release is called and how to go back to it: decided from the event alone (and, for a
//! rollback, the numbers of the app's earlier releases). Never a config value: key names come
//! from the redacted command line and only names that look like names are kept.

use serde_json::Value;

use crate::record::Event;

/// The subcommand a deploy was caused by, and the words after it in the (redacted) command.
fn command_words(e: &Event) -> Option<(String, Vec<String>)> {
    let sub = e
        .meta
        .get("triggered_by_subcommand")
        .and_then(Value::as_str)?
        .to_string();
    let command = e
        .meta
        .get("triggered_by_command")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    let after = words
        .iter()
        .position(|w| *w == sub)
        .map(|i| words[i + 1..].to_vec())
        .unwrap_or_default();
    Some((sub, after))
}

/// The positional arguments (flags dropped) after the subcommand.
fn positional(words: &[String]) -> Vec<&str> {
    words
        .iter()
        .map(String::as_str)
        .filter(|w| !w.starts_with("--"))
        .collect()
}

/// A config key name: letters, digits, `_` (anything else is not shown).
fn is_key_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 200 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The key names a `config:set`/`config:unset` command names (after the app), never a value.
pub fn config_keys(e: &Event, sub: &str, words: &[String]) -> Vec<String> {
    let args = positional(words);
    let rest = args.get(1..).unwrap_or_default();
    let mut keys: Vec<String> = match sub {
        "config:set" => rest
            .iter()
            .filter_map(|w| w.split_once('=').map(|(k, _)| k))
            .filter(|k| is_key_name(k))
            .map(str::to_string)
            .collect(),
        _ => rest
            .iter()
            .filter(|k| is_key_name(k))
            .map(|k| k.to_string())
            .collect(),
    };
    if keys.is_empty() {
        // The config event's own list, when the deploy carries one.
        keys = meta_keys(e);
    }
    keys
}

/// `meta.keys` of a config event (names only).
pub fn meta_keys(e: &Event) -> Vec<String> {
    e.meta
        .get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|k| is_key_name(k))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The first 7 characters of a revision.
pub fn short(rev: &str) -> String {
    rev.chars().take(7).collect()
}

/// The image a `git:from-image` command named, if any.
pub fn source_image(e: &Event) -> Option<String> {
    let (sub, words) = command_words(e)?;
    (sub == "git:from-image")
        .then(|| positional(&words).get(1).map(|s| s.to_string()))
        .flatten()
}

/// True for a deploy from an image (`git:from-image`, `docker-image` source).
pub fn is_image_deploy(e: &Event) -> bool {
    e.source_type.as_deref() == Some("docker-image") || source_image(e).is_some()
}

/// Whether the description of a deploy caused by `subcommand` reads the command's words, not
/// only the subcommand's name.
pub fn uses_command_words(subcommand: &str) -> bool {
    ["config:set", "config:unset", "ps:scale", "git:from-image"].contains(&subcommand)
}

/// The one-line description of a deploy finish (a release, or a failed deploy).
pub fn describe(e: &Event, rollback_to: Option<u64>) -> String {
    let rev = e.rev.as_deref().filter(|r| !r.is_empty()).map(short);
    if e.status != "success" {
        let mut s = String::from("Failed deploy");
        if let Some(r) = &rev {
            s.push(' ');
            s.push_str(r);
        }
        if let Some(code) = e.meta.get("exit_code").and_then(Value::as_i64) {
            s.push_str(&format!(" (exit {code})"));
        } else if let Some(st) = e.meta.get("deploy_status").and_then(Value::as_str) {
            let st: String = st.chars().take(40).collect();
            s.push_str(&format!(" ({st})"));
        }
        return s;
    }
    if let Some(n) = rollback_to {
        return format!("Rollback to v{n}");
    }
    if e.meta.get("caused_by").and_then(Value::as_str) == Some("apps:rename") {
        return match e.meta.get("renamed_from").and_then(Value::as_str) {
            Some(old) => format!("Rename from {old}"),
            None => "Rename".into(),
        };
    }
    if let Some((sub, words)) = command_words(e) {
        let args = positional(&words);
        match sub.as_str() {
            "config:set" | "config:unset" => {
                let keys = config_keys(e, &sub, &words);
                if !keys.is_empty() {
                    return if sub == "config:set" {
                        format!("Set {} config vars", keys.join(", "))
                    } else {
                        format!("Unset {}", keys.join(", "))
                    };
                }
            }
            "ps:restart" => return "Restart".into(),
            "ps:rebuild" => return "Rebuild".into(),
            "ps:start" => return "Start".into(),
            "ps:scale" => {
                let scale: Vec<&str> = args
                    .iter()
                    .skip(1)
                    .copied()
                    .filter(|w| w.contains('='))
                    .collect();
                if !scale.is_empty() {
                    return format!("Scale {}", scale.join(" "));
                }
                return "Scale".into();
            }
            "git:from-image" => {
                if let Some(img) = args.get(1) {
                    return format!("Deploy image {img}");
                }
            }
            _ => {}
        }
    }
    if e.source_type.as_deref() == Some("docker-image") {
        if let Some(t) = &e.image_tag {
            return format!("Deploy image {t}");
        }
    }
    match rev {
        Some(r) if e.classification.as_deref() != Some("release_only") => format!("Deploy {r}"),
        _ => "Release-only deploy".into(),
    }
}

/// What identifies the code of a release for rollback detection: the source image of an image
/// deploy, else the revision.
pub fn code_key(rev: Option<&str>, image: Option<&str>, image_deploy: bool) -> Option<String> {
    if image_deploy {
        if let Some(i) = image.filter(|i| !i.is_empty()) {
            return Some(format!("image:{i}"));
        }
    }
    rev.filter(|r| !r.is_empty()).map(|r| format!("rev:{r}"))
}

/// How to deploy this release's code again on the host, and the caveat.
pub fn redeploy(app: &str, e: &Event) -> (String, String) {
    if is_image_deploy(e) {
        let image = source_image(e)
            .or_else(|| e.image_tag.clone())
            .unwrap_or_else(|| "<image>".into());
        return (
            format!("dokku git:from-image {app} {image}"),
            "the image must still exist (on this host or in its registry); this deploys it as a new release".into(),
        );
    }
    let rev = e.rev.clone().unwrap_or_else(|| "<rev>".into());
    if e.source_type.as_deref() == Some("git-sync") {
        let repo = command_words(e)
            .filter(|(s, _)| s == "git:sync")
            .and_then(|(_, w)| positional(&w).get(1).map(|s| s.to_string()))
            .unwrap_or_else(|| "<repository>".into());
        return (
            format!("dokku git:sync --build {app} {repo} {rev}"),
            "the revision must still exist in that repository; this deploys it as a new release"
                .into(),
        );
    }
    (
        format!("git push --force dokku {rev}:refs/heads/main"),
        "run from a clone that has this revision (the remote `dokku` pointing at this app, `main` being its deploy branch); the revision must still exist; this deploys it as a new release".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(status: &str, cmd: Option<(&str, &str)>, rev: Option<&str>) -> Event {
        let mut meta = serde_json::Map::new();
        if let Some((c, s)) = cmd {
            meta.insert("triggered_by_command".into(), c.into());
            meta.insert("triggered_by_subcommand".into(), s.into());
        }
        Event {
            id: 1,
            ts: "2026-04-01T00:00:00Z".into(),
            app: Some("web".into()),
            category: "deploy".into(),
            action: "finish".into(),
            status: status.into(),
            classification: Some("release_only".into()),
            source_trigger: "post-deploy".into(),
            source_type: None,
            image_tag: Some("latest".into()),
            rev: rev.map(str::to_string),
            actor_type: "user".into(),
            actor_name: None,
            actor_label: "ssh-key:alice".into(),
            correlation_id: None,
            message: String::new(),
            meta,
            created_at: "2026-04-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn descriptions() {
        let set = ev(
            "success",
            Some((
                "dokku config:set --no-restart web FOO=[REDACTED] BAR=[REDACTED] x=y=z",
                "config:set",
            )),
            None,
        );
        assert_eq!(describe(&set, None), "Set FOO, BAR, x config vars");
        let unset = ev(
            "success",
            Some(("config:unset web API_KEY", "config:unset")),
            None,
        );
        assert_eq!(describe(&unset, None), "Unset API_KEY");
        let scale = ev(
            "success",
            Some(("ps:scale web web=2 worker=1", "ps:scale")),
            None,
        );
        assert_eq!(describe(&scale, None), "Scale web=2 worker=1");
        let img = ev(
            "success",
            Some(("dokku git:from-image web repo/name:1.2", "git:from-image")),
            None,
        );
        assert_eq!(describe(&img, None), "Deploy image repo/name:1.2");
        assert_eq!(
            redeploy("web", &img).0,
            "dokku git:from-image web repo/name:1.2"
        );
        let mut push = ev("success", None, Some("1a2b3c4d5e6f"));
        push.classification = Some("source_deploy".into());
        assert_eq!(describe(&push, None), "Deploy 1a2b3c4");
        assert_eq!(describe(&push, Some(3)), "Rollback to v3");
        let mut failed = ev("failed", None, Some("9f8e7d6c5b"));
        failed.meta.insert("exit_code".into(), 1.into());
        assert_eq!(describe(&failed, None), "Failed deploy 9f8e7d6 (exit 1)");
        assert_eq!(
            describe(&ev("success", None, None), None),
            "Release-only deploy"
        );
        let mut renamed = ev("success", None, Some("cc21cd9bcc"));
        renamed
            .meta
            .insert("caused_by".into(), "apps:rename".into());
        assert_eq!(describe(&renamed, None), "Rename");
        renamed.meta.insert("renamed_from".into(), "old".into());
        assert_eq!(describe(&renamed, None), "Rename from old");
    }
}
