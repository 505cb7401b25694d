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
        if let Some(before) = who.before.get("keys_before").and_then(Value::as_array) {
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
        let meta = if count > 0 {
            obj(vec![
                ("port_mapping_count", count.into()),
                ("details_redacted", true.into()),
            ])
        } else {
            Map::new()
        };
        let spec = Spec::new(
            Some(app),
            "ports",
            action,
            "ports_change",
            format!("ports {action}"),
            meta,
        );
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

/// Cheap reads of Dokku's own files under `DOKKU_ROOT` (names only, never values).
pub(super) mod dokku_files {
    /// Key names of an app's config (`$DOKKU_ROOT/<app>/ENV`; `""` = global `$DOKKU_ROOT/ENV`).
    pub fn config_keys(dokku_root: &str, app: &str) -> Option<Vec<String>> {
        if app.contains('/') || app.starts_with('.') {
            return None;
        }
        let path = if app.is_empty() {
            format!("{dokku_root}/ENV")
        } else {
            format!("{dokku_root}/{app}/ENV")
        };
        let text = std::fs::read_to_string(path).ok()?;
        let mut keys: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
            .filter(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
            })
            .collect();
        keys.sort();
        keys.dedup();
        Some(keys)
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
