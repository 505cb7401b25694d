//! Configuration changes: config keys, domains, ports, certificates (before → after from
//! Dokku's own files, never values).

use super::*;

impl Capture<'_> {
    pub(super) fn config_update(
        &mut self,
        app: Option<&str>,
        action: &str,
        keys: &[String],
    ) -> Built {
        let keys: Vec<&String> = keys
            .iter()
            .filter(|k| !redact::INTERNAL_CONFIG_KEYS.contains(&k.as_str()))
            .collect();
        if action != "clear" && keys.is_empty() {
            return Built::default();
        }
        let who = self.follow_on(app.unwrap_or(""), "config");
        let names: Vec<&str> = keys.iter().map(|k| k.as_str()).collect();
        let message = if action == "clear" {
            "config cleared".to_string()
        } else {
            format!("config keys {action}: {}", names.join(", "))
        };
        let mut meta = obj(vec![
            ("keys", Value::from(names.clone())),
            ("value_redacted", true.into()),
        ]);
        if app.is_none() {
            meta.insert("scope".into(), "global".into());
        }
        if let Some(plan) = who.before.get("key_plan").and_then(Value::as_object) {
            let changes: Map<String, Value> = if action == "clear" {
                plan.clone()
            } else {
                names
                    .iter()
                    .filter_map(|k| plan.get(*k).map(|v| (k.to_string(), v.clone())))
                    .collect()
            };
            if !changes.is_empty() {
                meta.insert("key_changes".into(), Value::Object(changes));
            }
        } else if let Some(before) = who.before.get("keys_before").and_then(Value::as_array) {
            let before: Vec<&str> = before.iter().filter_map(Value::as_str).collect();
            let changes = key_changes(action, &names, &before);
            if !changes.is_empty() {
                meta.insert("key_changes".into(), Value::Object(changes));
            }
        }
        let spec = Spec::new(app, "config", action, "config_change", message, meta);
        Built::one(self.event(spec, &who))
    }

    pub(super) fn domains_update(&mut self, app: &str, action: &str, domains: &[String]) -> Built {
        let who = self.follow_on(app, "domains");
        let message = if domains.is_empty() {
            format!("domains {action}")
        } else {
            format!("domains {action}: {}", domains.join(", "))
        };
        let mut meta = obj(vec![("domains", Value::from(domains.to_vec()))]);
        if let Some(before) = who.before.get("domains_before") {
            meta.insert("domains_before".into(), before.clone());
        }
        if let Some(after) = dokku_files::app_domains(&self.env.dokku_root, app) {
            meta.insert("domains_after".into(), Value::from(after));
        }
        let spec = Spec::new(
            Some(app),
            "domains",
            action,
            "domains_change",
            message,
            meta,
        );
        Built::one(self.event(spec, &who))
    }

    pub(super) fn ports_update(&mut self, app: &str, action: &str, count: usize) -> Built {
        let who = self.follow_on(app, "ports");
        let before: Option<Vec<String>> = who.before.get("ports_before").and_then(|v| {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
        });
        let after = dokku_files::port_map(&self.env.dokku_lib_root, app);
        let mut meta = Map::new();
        if count > 0 {
            meta.insert("port_mapping_count".into(), count.into());
        }
        if let Some(b) = &before {
            meta.insert("ports_before".into(), Value::from(b.clone()));
        }
        if let Some(a) = &after {
            meta.insert("ports_after".into(), Value::from(a.clone()));
        }
        let message = match (&before, &after) {
            _ if action == "clear" => "ports clear".to_string(),
            (_, Some(a)) if a.is_empty() => format!("ports {action}: none left"),
            (Some(b), Some(a)) if action == "remove" => {
                let gone: Vec<&str> = b
                    .iter()
                    .filter(|m| !a.contains(m))
                    .map(String::as_str)
                    .collect();
                format!("ports remove: {} (now {})", gone.join(" "), a.join(" "))
            }
            (Some(b), Some(a)) if action == "add" => {
                let new: Vec<&str> = a
                    .iter()
                    .filter(|m| !b.contains(m))
                    .map(String::as_str)
                    .collect();
                format!("ports add: {} (now {})", new.join(" "), a.join(" "))
            }
            (_, Some(a)) => format!("ports {action}: {}", a.join(" ")),
            _ => format!("ports {action}"),
        };
        let spec = Spec::new(Some(app), "ports", action, "ports_change", message, meta);
        Built::one(self.event(spec, &who))
    }

    pub(super) fn certs(&mut self, app: &str, removed: bool) -> Built {
        let who = self.follow_on(app, "certs");
        let manager = match who.via.as_deref() {
            Some(s) if s.starts_with("letsencrypt:") => Some("letsencrypt"),
            Some(s) if s.starts_with("certs:") => Some("manual"),
            _ => None,
        };
        let what = if removed { "removed" } else { "updated" };
        let message = match manager {
            Some("letsencrypt") => format!("letsencrypt certificates {what}"),
            _ => format!("certificates {what}"),
        };
        let meta = obj(vec![
            ("certs_present", (!removed).into()),
            ("material_redacted", true.into()),
            ("manager", opt(manager)),
        ]);
        let action = if removed { "remove" } else { "update" };
        let spec = Spec::new(Some(app), "certs", action, "certs_change", message, meta);
        Built::one(self.event(spec, &who))
    }
}

/// Per key, what a config change did, judged against the key names present before (never
/// values): `added`, `changed` or `removed`.
pub(super) fn key_changes(action: &str, keys: &[&str], before: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    match action {
        "set" => {
            for k in keys {
                let what = if before.contains(k) {
                    "changed"
                } else {
                    "added"
                };
                out.insert(k.to_string(), what.into());
            }
        }
        "unset" => {
            for k in keys.iter().filter(|k| before.contains(k)) {
                out.insert(k.to_string(), "removed".into());
            }
        }
        "clear" => {
            for k in before {
                out.insert(k.to_string(), "removed".into());
            }
        }
        _ => {}
    }
    out
}

/// Cheap reads of Dokku's own files. Config values are read only to compare them, in memory,
/// with the values a `config:set` passes; they never leave the process.
pub(super) mod dokku_files {
    use std::collections::BTreeMap;

    use serde_json::{Map, Value};

    fn safe_name(app: &str) -> bool {
        !app.contains('/') && !app.starts_with('.')
    }

    /// An app's config (`""` = global), keys and values: where Dokku 0.38 keeps it,
    /// `$DOKKU_LIB_ROOT/config/<app>/ENV` (`config/--global/ENV`), else the older
    /// `$DOKKU_ROOT/<app>/ENV` (`$DOKKU_ROOT/ENV`). `None` when neither exists.
    pub fn config_env(
        dokku_root: &str,
        lib_root: &str,
        app: &str,
    ) -> Option<BTreeMap<String, String>> {
        if !safe_name(app) {
            return None;
        }
        let scope = if app.is_empty() { "--global" } else { app };
        let old = if app.is_empty() {
            format!("{dokku_root}/ENV")
        } else {
            format!("{dokku_root}/{app}/ENV")
        };
        let text = std::fs::read_to_string(format!("{lib_root}/config/{scope}/ENV"))
            .or_else(|_| std::fs::read_to_string(old))
            .ok()?;
        Some(text.lines().filter_map(parse_env_line).collect())
    }

    /// One `[export ]KEY=VALUE` line; VALUE bare, `'…'` (shell, `'\''` escapes) or `"…"`
    /// (dotenv: `\\`, `\"`, `\n`, `\$`).
    fn parse_env_line(line: &str) -> Option<(String, String)> {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let (k, v) = line.split_once('=')?;
        let k = k.trim();
        let valid = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !valid {
            return None;
        }
        let v = v.trim_end();
        let value = if let Some(inner) = v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            let mut out = String::new();
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    match chars.next() {
                        Some('n') => out.push('\n'),
                        Some(o) => out.push(o),
                        None => out.push('\\'),
                    }
                } else {
                    out.push(c);
                }
            }
            out
        } else if let Some(inner) = v.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
            inner.replace("'\\''", "'")
        } else {
            v.to_string()
        };
        Some((k.to_string(), value))
    }

    /// What a config command will do to each key, judged against the config before it runs
    /// (values compared in memory, never kept): `added`, `changed`, `unchanged`, `removed`,
    /// `set` (`--encoded`: not compared).
    pub fn key_plan(
        before: &BTreeMap<String, String>,
        sub: &str,
        args: &[String],
        encoded: bool,
    ) -> Map<String, Value> {
        let mut plan = Map::new();
        let internal = |k: &str| super::redact::INTERNAL_CONFIG_KEYS.contains(&k);
        let operands = args.iter().filter(|a| !a.starts_with("--"));
        match sub {
            "config:set" | "config:set-global" => {
                for (k, v) in operands.filter_map(|a| a.split_once('=')) {
                    if internal(k) {
                        continue;
                    }
                    let what = match before.get(k) {
                        None => "added",
                        Some(_) if encoded => "set",
                        Some(old) if old == v => "unchanged",
                        Some(_) => "changed",
                    };
                    plan.insert(k.to_string(), what.into());
                }
            }
            "config:unset" | "config:unset-global" => {
                for k in operands.filter(|k| !internal(k)) {
                    // Unsetting a key that is not there changes nothing.
                    if before.contains_key(k.as_str()) {
                        plan.insert(k.clone(), "removed".into());
                    }
                }
            }
            "config:clear" => {
                for k in before.keys().filter(|k| !internal(k)) {
                    plan.insert(k.clone(), "removed".into());
                }
            }
            _ => {}
        }
        plan
    }

    /// An app's port mappings (`$DOKKU_LIB_ROOT/config/ports/<app>/map`, one per line; no
    /// file: none).
    pub fn port_map(lib_root: &str, app: &str) -> Option<Vec<String>> {
        if app.is_empty() || !safe_name(app) {
            return None;
        }
        let text = match std::fs::read_to_string(format!("{lib_root}/config/ports/{app}/map")) {
            Ok(t) => t,
            // No map in Dokku 0.38's layout: no mappings. No layout at all: unknown.
            Err(_) if std::path::Path::new(&format!("{lib_root}/config")).is_dir() => String::new(),
            Err(_) => return None,
        };
        Some(text.split_whitespace().map(str::to_string).collect())
    }

    /// An app's domains (`$DOKKU_ROOT/<app>/VHOST`, one per line).
    pub fn app_domains(dokku_root: &str, app: &str) -> Option<Vec<String>> {
        if app.is_empty() || app.contains('/') || app.starts_with('.') {
            return None;
        }
        let text = std::fs::read_to_string(format!("{dokku_root}/{app}/VHOST")).ok()?;
        Some(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::dokku_files::*;
    use std::collections::BTreeMap;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn key_plan_compares_values_without_keeping_them() {
        let before: BTreeMap<String, String> = [("A", "1"), ("B", "x y"), ("GIT_REV", "abc")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let plan = key_plan(
            &before,
            "config:set",
            &s(&["A=1", "B=other", "C=new"]),
            false,
        );
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"A":"unchanged","B":"changed","C":"added"}"#
        );
        let plan = key_plan(&before, "config:set", &s(&["--encoded", "A=MQ=="]), true);
        assert_eq!(serde_json::to_string(&plan).unwrap(), r#"{"A":"set"}"#);
        let plan = key_plan(&before, "config:unset", &s(&["A", "Z"]), false);
        assert_eq!(serde_json::to_string(&plan).unwrap(), r#"{"A":"removed"}"#);
        let plan = key_plan(&before, "config:clear", &[], false);
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"A":"removed","B":"removed"}"#
        );
    }

    #[test]
    fn env_files_in_both_layouts_and_quotings() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home");
        let lib = dir.path().join("lib");
        std::fs::create_dir_all(lib.join("config/app")).unwrap();
        std::fs::create_dir_all(root.join("old")).unwrap();
        std::fs::write(
            lib.join("config/app/ENV"),
            "A=\"it's a \\\"q\\\" s\\\\x\"\nexport B='don'\\''t'\nC=plain\n",
        )
        .unwrap();
        std::fs::write(root.join("old/ENV"), "export D='1'\n").unwrap();
        let (r, l) = (root.to_str().unwrap(), lib.to_str().unwrap());
        let env = config_env(r, l, "app").unwrap();
        assert_eq!(env["A"], "it's a \"q\" s\\x");
        assert_eq!(env["B"], "don't");
        assert_eq!(env["C"], "plain");
        assert_eq!(config_env(r, l, "old").unwrap()["D"], "1");
        assert!(config_env(r, l, "../app").is_none());
        assert!(config_env(r, l, "none").is_none());
        assert_eq!(port_map(l, "app"), Some(vec![]));
        std::fs::create_dir_all(lib.join("config/ports/app")).unwrap();
        std::fs::write(
            lib.join("config/ports/app/map"),
            "http:80:5000\nhttps:443:5000\n",
        )
        .unwrap();
        assert_eq!(
            port_map(l, "app"),
            Some(s(&["http:80:5000", "https:443:5000"]))
        );
        assert_eq!(port_map(r, "app"), None);
    }
}
