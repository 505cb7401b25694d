//! A realistic, deterministic event history for the `demo` command, benchmarks and tests: the
//! mix of a busy Dokku host (commands, source deploys and restarts, config, domains, ports,
//! certificates, `run`/`enter`, app lifecycle), with the reference's message texts, meta keys
//! and actor identities (reference §3, §16).

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::record::Event;
use crate::timefmt::format_utc;

mod rng;
pub use rng::Rng;

const APPS: &[&str] = &[
    "api",
    "web",
    "worker",
    "billing",
    "auth",
    "search",
    "admin",
    "reports",
    "mailer",
    "cdn-proxy",
    "metrics",
    "blog",
];
const CONFIG_KEYS: &[&str] = &[
    "DATABASE_URL",
    "REDIS_URL",
    "SECRET_KEY_BASE",
    "RAILS_ENV",
    "LOG_LEVEL",
    "SENTRY_DSN",
    "FEATURE_FLAGS",
    "WEB_CONCURRENCY",
    "SMTP_PASSWORD",
    "S3_BUCKET",
    "API_TOKEN",
    "TZ",
];
const COMMANDS: &[&str] = &[
    "ps:report",
    "logs",
    "config:show",
    "ps:scale",
    "resource:limit",
    "domains:report",
    "proxy:report",
    "checks:report",
    "letsencrypt:list",
    "ps:inspect",
    "network:report",
    "storage:list",
    "git:report",
    "nginx:show-config",
];

/// A person (or Dokku itself) and how they reach the host.
struct Actor {
    actor_type: &'static str,
    name: Option<&'static str>,
    label: &'static str,
    meta: Value,
}

fn actors() -> Vec<Actor> {
    vec![
        Actor {
            actor_type: "user",
            name: Some("alice"),
            label: "ssh-key:alice",
            meta: json!({"ssh_user":"dokku","ssh_name":"alice","ssh_key_fingerprint":"SHA256:Qm9c1a7fXgK2yq6m0fV3p8tH5rJ4wL9sD2eN7bC1aZk","actor_source":"SSH_NAME","client_address":"203.0.113.24"}),
        },
        Actor {
            actor_type: "user",
            name: Some("ci-deploy"),
            label: "ssh-key:ci-deploy",
            meta: json!({"ssh_user":"dokku","ssh_name":"ci-deploy","ssh_key_fingerprint":"SHA256:7Hq2Lm4nB8vC5xZ1aS3dF6gJ9kP0oI2uY4tR7eW5qAs","actor_source":"SSH_NAME","client_address":"198.51.100.7"}),
        },
        Actor {
            actor_type: "user",
            name: Some("bob"),
            label: "sudo-user:bob",
            meta: json!({"actor_source":"SUDO_USER","sudo_user":"bob","local_user":"root","effective_user":"root"}),
        },
        Actor {
            actor_type: "user",
            name: Some("carol"),
            label: "unix-user:carol",
            meta: json!({"ssh_user":"dokku","ssh_name":"default","local_user":"carol","effective_user":"dokku","process_tree_user":"carol","actor_source":"PROCESS_TREE_USER"}),
        },
        Actor {
            actor_type: "system",
            name: None,
            label: "dokku-system",
            meta: json!({}),
        },
    ]
}

/// Generates `count` events spread evenly over `days` days ending at `end`, from `seed`.
pub fn history(count: usize, days: u32, end: DateTime<Utc>, seed: u64) -> Vec<Event> {
    let mut g = Gen {
        rng: Rng::new(seed),
        actors: actors(),
        out: Vec::with_capacity(count + 4),
        revs: Map::new(),
    };
    let span = Duration::days(days.max(1) as i64).num_seconds().max(1);
    let start = end - Duration::seconds(span);
    let step = (span as f64 / count.max(1) as f64).max(0.0);
    let mut t = 0f64;
    while g.out.len() < count {
        let ts = start + Duration::seconds(t as i64);
        let before = g.out.len();
        g.operation(ts);
        let added = (g.out.len() - before) as f64;
        t += step * added * (0.5 + g.rng.below(100) as f64 / 100.0);
        if t > span as f64 {
            t = span as f64;
        }
    }
    g.out.truncate(count);
    // Events reach the store in the order they happen.
    g.out.sort_by(|a, b| a.ts.cmp(&b.ts));
    // Successful deploys carry their release number, as the store gives it (store::releases).
    let mut releases: std::collections::HashMap<String, u64> = Default::default();
    for e in &mut g.out {
        if let (Some(app), "deploy", "finish", "success") = (
            &e.app,
            e.category.as_str(),
            e.action.as_str(),
            e.status.as_str(),
        ) {
            let n = releases.entry(app.clone()).or_insert(0);
            *n += 1;
            e.meta.insert("release".into(), Value::from(*n));
        }
    }
    g.out
}

struct Gen {
    rng: Rng,
    actors: Vec<Actor>,
    out: Vec<Event>,
    revs: Map<String, Value>,
}

impl Gen {
    fn operation(&mut self, ts: DateTime<Utc>) {
        let app = *self.rng.pick(APPS);
        let actor_ix = match self.rng.below(10) {
            0..=3 => 0,
            4..=6 => 1,
            7 => 2,
            8 => 3,
            _ => 4,
        };
        let corr = format!("aud_{}_{}", ts.timestamp_millis(), self.rng.hex(8));
        match self.rng.below(100) {
            0..=34 => self.command(ts, app, actor_ix),
            35..=49 => self.source_deploy(ts, app, actor_ix.min(1), &corr),
            50..=59 => self.release_only(ts, app, actor_ix, &corr),
            60..=69 => self.config(ts, app, actor_ix),
            70..=73 => self.domains(ts, app, actor_ix),
            74..=76 => self.ports(ts, app, actor_ix),
            77..=78 => self.certs(ts, app),
            79..=94 => self.run(ts, app, actor_ix),
            95..=97 => self.lifecycle(ts, app, actor_ix, "create"),
            _ => self.lifecycle(ts, app, actor_ix, "destroy"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        ts: DateTime<Utc>,
        app: Option<&str>,
        (category, action, classification, trigger): (&str, &str, &str, &str),
        actor_ix: usize,
        corr: Option<&str>,
        message: String,
        meta: Value,
        deploy: Option<(&str, Option<String>, Option<String>)>,
    ) {
        let actor = &self.actors[actor_ix];
        let mut m: Map<String, Value> = match meta {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if let Value::Object(am) = &actor.meta {
            for (k, v) in am {
                m.insert(k.clone(), v.clone());
            }
        }
        m.insert("dokku_version".into(), Value::from("0.38.27"));
        let ts_s = format_utc(ts);
        let (source_type, image_tag, rev) = match deploy {
            Some((s, i, r)) => (Some(s.to_string()).filter(|s| !s.is_empty()), i, r),
            None => (None, None, None),
        };
        self.out.push(Event {
            id: 0,
            ts: ts_s.clone(),
            app: app.map(str::to_string),
            category: category.into(),
            action: action.into(),
            status: "success".into(),
            classification: Some(classification.into()),
            source_trigger: trigger.into(),
            source_type,
            image_tag,
            rev,
            actor_type: actor.actor_type.into(),
            actor_name: actor.name.map(str::to_string),
            actor_label: actor.label.into(),
            correlation_id: corr.map(str::to_string),
            message,
            meta: m,
            created_at: ts_s,
        });
    }

    fn command(&mut self, ts: DateTime<Utc>, app: &str, a: usize) {
        let sub = *self.rng.pick(COMMANDS);
        let args: Vec<String> = match sub {
            "ps:scale" => vec![
                format!("web={}", 1 + self.rng.below(4)),
                format!("worker={}", self.rng.below(3)),
            ],
            "resource:limit" => vec!["--memory".into(), format!("{}m", 256 << self.rng.below(3))],
            "logs" => vec!["--tail".into(), "-n".into(), "200".into()],
            _ => vec![],
        };
        let command = format!(
            "dokku {sub} {app}{}{}",
            if args.is_empty() { "" } else { " " },
            args.join(" ")
        );
        let meta = json!({"command":command,"subcommand":sub,"args":args,"container_type":null,"container_id":null,"hostname":"dokku-prod-1","success_hint":"authorized"});
        self.push(
            ts,
            Some(app),
            ("command", "invoke", "dokku_command", "user-auth"),
            a,
            None,
            command,
            meta,
            None,
        );
    }

    fn source_deploy(&mut self, ts: DateTime<Utc>, app: &str, a: usize, corr: &str) {
        let rev = self.rng.hex(40);
        let via = if a == 1 {
            "git-push"
        } else {
            *self
                .rng
                .pick(&["git-push", "git-push", "git-sync", "docker-image"])
        };
        let prev = self.revs.insert(app.to_string(), Value::from(rev.clone()));
        self.push(
            ts,
            Some(app),
            ("deploy", "receive", "source_received", "receive-app"),
            a,
            Some(corr),
            "source received".into(),
            json!({"received_via":"receive-app","rev":rev}),
            None,
        );
        let image = format!("dokku/{app}:latest");
        let port = if self.rng.below(2) == 0 {
            "5000"
        } else {
            "8080"
        };
        let ip = format!("172.17.0.{}", 2 + self.rng.below(200));
        let mut meta = json!({"image_tag":image,"source_type":via,"rev":rev,"internal_port":port,"internal_ip_address":ip,"pending_metadata":{"received_via":"receive-app","deploy_metadata_raw":"branch=main"}});
        if let Some(p) = prev {
            meta["previous_rev"] = p;
            meta["previous_image_tag"] = Value::from(image.clone());
        }
        let ts2 = ts + Duration::seconds(40 + self.rng.below(200) as i64);
        self.push(
            ts2,
            Some(app),
            ("deploy", "finish", "source_deploy", "post-deploy"),
            a,
            Some(corr),
            "source deploy finished".into(),
            meta,
            Some((via, Some(image), Some(rev))),
        );
    }

    fn release_only(&mut self, ts: DateTime<Utc>, app: &str, a: usize, corr: &str) {
        let cmd = format!("dokku ps:restart {app}");
        let meta = json!({"command":cmd,"subcommand":"ps:restart","args":[],"container_type":null,"container_id":null,"hostname":"dokku-prod-1","success_hint":"authorized"});
        self.push(
            ts,
            Some(app),
            ("command", "invoke", "dokku_command", "user-auth"),
            a,
            Some(corr),
            cmd.clone(),
            meta,
            None,
        );
        let image = format!("dokku/{app}:latest");
        let rev = self
            .revs
            .get(app)
            .and_then(Value::as_str)
            .map(str::to_string);
        let meta = json!({"image_tag":image,"source_type":null,"rev":rev,"internal_port":"5000","internal_ip_address":format!("172.17.0.{}", 2 + self.rng.below(200)),"triggered_by_command":cmd,"triggered_by_subcommand":"ps:restart"});
        self.push(
            ts + Duration::seconds(12),
            Some(app),
            ("deploy", "finish", "release_only", "post-deploy"),
            a,
            Some(corr),
            "release-only deploy finished".into(),
            meta,
            Some(("", Some(image), rev)),
        );
    }

    fn config(&mut self, ts: DateTime<Utc>, app: &str, a: usize) {
        let n = 1 + self.rng.below(3) as usize;
        let keys: Vec<&str> = (0..n).map(|_| *self.rng.pick(CONFIG_KEYS)).collect();
        let action = if self.rng.below(5) == 0 {
            "unset"
        } else {
            "set"
        };
        let shown: Vec<String> = keys
            .iter()
            .map(|k| {
                if action == "set" {
                    format!("{k}=[REDACTED]")
                } else {
                    k.to_string()
                }
            })
            .collect();
        let cmd = format!("dokku config:{action} {app} {}", shown.join(" "));
        let changes: Map<String, Value> = keys
            .iter()
            .map(|k| {
                (
                    k.to_string(),
                    Value::from(if action == "set" {
                        "changed"
                    } else {
                        "removed"
                    }),
                )
            })
            .collect();
        let meta = json!({"keys":keys,"value_redacted":true,"key_changes":changes,"triggered_by_command":cmd,"triggered_by_subcommand":format!("config:{action}")});
        self.push(
            ts,
            Some(app),
            ("config", action, "config_change", "post-config-update"),
            a,
            None,
            format!("config keys {action}: {}", keys.join(", ")),
            meta,
            None,
        );
    }

    fn domains(&mut self, ts: DateTime<Utc>, app: &str, a: usize) {
        let d = format!("{app}.example.com");
        let meta = json!({"domains":[d],"domains_before":[format!("{app}.dokku.me")],"domains_after":[format!("{app}.dokku.me"), d]});
        self.push(
            ts,
            Some(app),
            ("domains", "add", "domains_change", "post-domains-update"),
            a,
            None,
            format!("domains add: {d}"),
            meta,
            None,
        );
    }

    fn ports(&mut self, ts: DateTime<Utc>, app: &str, a: usize) {
        self.push(
            ts,
            Some(app),
            ("ports", "set", "ports_change", "post-proxy-ports-update"),
            a,
            None,
            "ports set".into(),
            json!({"port_mapping_count":2,"details_redacted":true}),
            None,
        );
    }

    fn certs(&mut self, ts: DateTime<Utc>, app: &str) {
        self.push(
            ts,
            Some(app),
            ("certs", "update", "certs_change", "post-certs-update"),
            4,
            None,
            "letsencrypt certificates updated".into(),
            json!({"certs_present":true,"material_redacted":true,"manager":"letsencrypt"}),
            None,
        );
    }

    fn run(&mut self, ts: DateTime<Utc>, app: &str, a: usize) {
        let args = match self.rng.below(4) {
            0 => vec!["rails", "console"],
            1 => vec!["bin/rake", "db:migrate"],
            2 => vec!["python", "manage.py", "shell"],
            _ => vec!["bash"],
        };
        let cmd = format!("dokku run {app} {}", args.join(" "));
        let cid = self.rng.hex(12);
        let meta = json!({"actor_source":"SSH_NAME","command":cmd,"subcommand":"run","args":args,"container_type":null,"container_id":cid,"hostname":"dokku-prod-1","success_hint":"container_created","env_keys":[]});
        let corr = format!("aud_{}_{}", ts.timestamp_millis(), self.rng.hex(8));
        self.push(
            ts,
            Some(app),
            ("command", "run", "dokku_run", "scheduler-run"),
            a,
            Some(&corr),
            "dokku run scheduled".into(),
            meta,
            None,
        );
        let code = if self.rng.below(8) == 0 { 1 } else { 0 };
        let dur = 5 + self.rng.below(900);
        let meta = json!({"container_id":cid,"exit_code":code,"status":if code == 0 {"success"} else {"error"},"duration_seconds":dur});
        self.push(
            ts + Duration::seconds(dur as i64),
            Some(app),
            ("command", "exit", "dokku_run_exit", "scheduler-post-run"),
            a,
            Some(&corr),
            format!("dokku run exited: {code}"),
            meta,
            None,
        );
    }

    fn lifecycle(&mut self, ts: DateTime<Utc>, app: &str, a: usize, what: &str) {
        let (class, msg) = if what == "create" {
            ("app_create", "app created")
        } else {
            ("app_destroy", "app destroyed")
        };
        let trigger = if what == "create" {
            "post-create"
        } else {
            "post-delete"
        };
        self.push(
            ts,
            Some(app),
            ("app", what, class, trigger),
            a,
            None,
            msg.into(),
            json!({}),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_valid_and_ordered() {
        let end = crate::timefmt::parse_canonical("2026-04-08T20:00:00Z").unwrap();
        let a = history(500, 10, end, 42);
        let b = history(500, 10, end, 42);
        assert_eq!(a, b);
        assert_eq!(a.len(), 500);
        for e in &a {
            e.validate().unwrap();
        }
        assert!(a.first().unwrap().ts < a.last().unwrap().ts);
        let cats: std::collections::BTreeSet<_> = a.iter().map(|e| e.category.as_str()).collect();
        assert!(cats.len() >= 6, "{cats:?}");
    }
}
