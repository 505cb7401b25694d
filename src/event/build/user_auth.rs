//! `user-auth`: the actor context every later trigger of the same `dokku` command uses, and
//! the command-level events (`certs`/`letsencrypt` commands) only it can see.

use super::changes::dokku_files;
use super::*;

impl Capture<'_> {
    pub(super) fn user_auth(&mut self, ssh_user: &str, ssh_name: &str, tokens: &[String]) -> Built {
        if tokens.is_empty() {
            return Built::default();
        }
        let inv = command_line::parse(tokens, self.env.app_name.as_deref());
        let args_raw = &tokens[inv.args_start.min(tokens.len())..];
        if !inv.is_recorded(args_raw) {
            return Built::default();
        }
        let sub = inv.subcommand.clone();
        // An app slot holding a URL with credentials (a forgotten app name) is redacted too.
        let app = inv
            .app
            .clone()
            .map(|a| redact::redact_url_credentials(&a).unwrap_or(a));
        let w = self.windows;
        let pid = self.env.dokku_pid.clone();
        if sub == "certs:add" {
            if let Some(a) = &app {
                let internal = self
                    .state
                    .peek_context(pid.as_deref(), a, "certs", &w)
                    .is_some_and(|c| c.source_subcommand.starts_with("letsencrypt:"));
                if internal {
                    // The letsencrypt plugin's own certs:add: its enable/renew event says it all.
                    return Built::default();
                }
            }
        }
        let fingerprint = if ssh_name.is_empty() {
            None
        } else {
            self.env
                .fingerprint
                .clone()
                .or_else(|| actor::fingerprint_from_authorized_keys(&self.env.dokku_root, ssh_name))
        };
        let ssh = SshIdentity {
            ssh_user: ssh_user.to_string(),
            ssh_name: ssh_name.to_string(),
            fingerprint,
            client_address: self.env.client_address.clone(),
        };
        // Root and people behind sudo from the identity rules; SSH keys (and the rest) as
        // before, with the whole SSH identity in meta.
        let own = self
            .own_actor(Some(ssh_name))
            .filter(|a| a.meta.get("actor_source").and_then(Value::as_str) != Some("SSH_NAME"));
        let actor = match own {
            Some(a) => a,
            None => {
                let (actor_type, actor_name, identity) =
                    actor::user_auth_actor(&ssh, self.probes.local());
                StoredActor {
                    actor_type,
                    actor_name,
                    meta: identity,
                }
            }
        };
        let identity = actor.meta.clone();
        let who = Who {
            actor: actor.clone(),
            meta: identity,
            via: None,
            before: Map::new(),
            origin: None,
        };
        let redacted = redact::redact_command_tokens(tokens, inv.sub_index, &sub, app.as_deref());
        let command_text = format!("dokku {}", redacted.join(" "));
        let args: Vec<String> = redacted[inv.args_start.min(redacted.len())..].to_vec();
        let trailing = &tokens[(inv.sub_index + 1).min(tokens.len())..];
        // The command record: the first user-auth of a DOKKU_PID names the command (a nested
        // one, git-receive-pack → git-hook, keeps it).
        if let Some(c) = self.dokku_command(Some(&actor)) {
            if c.command_text.is_none() {
                c.actor = actor.clone();
                c.subcommand = sub.clone();
                c.app = app.clone();
                c.command_text = Some(command_text.clone());
                c.args = args.clone();
            }
        }

        // 1. Follow-on contexts.
        let mut stored_follow_on = false;
        let follow_app: Option<(String, Map<String, Value>)> = if inv.is_global_config(tokens) {
            Some((String::new(), Map::new()))
        } else if matches!(sub.as_str(), "apps:rename" | "apps:clone") {
            // The redacted arguments: a name slot holding a URL with credentials must not take
            // them into the state file (found by tests/redact_props.rs).
            command_line::rename_pair(&args).map(|(old, new)| {
                (
                    new.clone(),
                    obj(vec![("old_app", old.into()), ("new_app", new.into())]),
                )
            })
        } else {
            app.clone().map(|a| (a, Map::new()))
        };
        if let Some((fapp, extra)) = follow_app {
            let kinds: &[&str] = if inv.is_global_config(tokens) {
                &["config"]
            } else {
                command_line::follow_on_kinds(&sub, trailing)
            };
            let source_subcommand = inv.follow_on_subcommand().to_string();
            let text = if source_subcommand == "git:push" {
                format!("git push {fapp}")
            } else {
                command_text.clone()
            };
            let mut extra = extra;
            if kinds.contains(&"config") {
                let before =
                    dokku_files::config_env(&self.env.dokku_root, &self.env.dokku_lib_root, &fapp)
                        .unwrap_or_default();
                let encoded = trailing.iter().any(|t| t == "--encoded");
                let plan = dokku_files::key_plan(&before, &sub, args_raw, encoded);
                extra.insert("key_plan".into(), Value::Object(plan));
            }
            for kind in kinds {
                let mut extra = extra.clone();
                if *kind == "domains" {
                    if let Some(d) = dokku_files::app_domains(&self.env.dokku_root, &fapp) {
                        extra.insert("domains_before".into(), Value::from(d));
                    }
                }
                if *kind == "ports" {
                    if let Some(p) = dokku_files::port_map(&self.env.dokku_lib_root, &fapp) {
                        extra.insert("ports_before".into(), Value::from(p));
                    }
                }
                if *kind != "config" {
                    extra.remove("key_plan");
                }
                self.state.store_context(ActorContext {
                    pid: pid.clone(),
                    app: fapp.clone(),
                    kind: kind.to_string(),
                    source_subcommand: source_subcommand.clone(),
                    command_text: text.clone(),
                    actor: actor.clone(),
                    at: w.now,
                    extra,
                });
                stored_follow_on = true;
            }
        }

        // 2. run/enter: a command context for the scheduler trigger, no event.
        if matches!(sub.as_str(), "run" | "run:detached" | "enter") {
            if let Some(a) = &app {
                let n = inv.match_args.len().min(redacted.len());
                let match_args = redacted[redacted.len() - n..].to_vec();
                self.state.commands.push(CommandContext {
                    pid: pid.clone(),
                    app: a.clone(),
                    subcommand: if sub == "enter" { "enter" } else { "run" }.into(),
                    command_text,
                    match_args,
                    actor,
                    hostname: self.probes.hostname().to_string(),
                    at: w.now,
                });
                return Built::default();
            }
            if sub != "run:detached" {
                return Built::default();
            }
        }

        let hostname = self.probes.hostname().to_string();
        // 3. Certificate commands.
        if command_line::is_certs_command(&sub) {
            return Built::one(self.certs_command(&inv, &who, command_text, &args, &hostname));
        }
        // 4. A follow-on event will represent the command.
        if stored_follow_on {
            return Built::default();
        }
        // 5. The command itself.
        let meta = Self::command_meta(
            &who,
            command_text.clone(),
            &sub,
            &args,
            (None, None),
            &hostname,
            "authorized",
        );
        let spec = Spec::new(
            app.as_deref(),
            "command",
            "invoke",
            "dokku_command",
            command_text,
            meta,
        );
        Built::one(self.event(spec, &who))
    }

    pub(super) fn certs_command(
        &self,
        inv: &Invocation,
        who: &Who,
        command_text: String,
        args: &[String],
        hostname: &str,
    ) -> Event {
        let sub = inv.subcommand.as_str();
        let (manager, rest) = sub.split_once(':').unwrap_or(("certs", sub));
        let action = if sub == "letsencrypt:cron-job" {
            if args.iter().any(|a| a == "--add") {
                "cron-job-add"
            } else if args.iter().any(|a| a == "--remove") {
                "cron-job-remove"
            } else {
                "cron-job"
            }
        } else {
            rest
        };
        let mut scope = None;
        let mut property = None;
        let mut value_redacted = false;
        let message = match sub {
            "letsencrypt:set" => {
                let global = args.first().map(String::as_str) == Some("--global");
                let (key_at, needed) = if global { (1, 3) } else { (0, 2) };
                let has_value = args.len() >= needed;
                value_redacted = has_value;
                scope = Some(if global { "global" } else { "app" });
                property = args.get(key_at).filter(|k| !k.is_empty()).cloned();
                let mut m = if has_value {
                    "letsencrypt property set".to_string()
                } else {
                    "letsencrypt property unset".to_string()
                };
                if let Some(p) = &property {
                    m.push_str(&format!(": {p}"));
                }
                if global {
                    m.push_str(" (global)");
                }
                m
            }
            "letsencrypt:cron-job" => match action {
                "cron-job-add" => "letsencrypt auto-renew cron job enabled".into(),
                "cron-job-remove" => "letsencrypt auto-renew cron job disabled".into(),
                _ => "letsencrypt cron job requested".into(),
            },
            _ => format!("{manager} {action} requested"),
        };
        let mut meta = Self::command_meta(
            who,
            command_text,
            sub,
            args,
            (None, None),
            hostname,
            "authorized",
        );
        merge(&mut meta, &who.meta);
        meta.insert("manager".into(), manager.into());
        if let Some(s) = scope {
            meta.insert("scope".into(), s.into());
        }
        if let Some(p) = property {
            meta.insert("property".into(), p.into());
        }
        meta.insert("value_redacted".into(), value_redacted.into());
        let app = match sub {
            "letsencrypt:cron-job" => None,
            _ => inv.app.as_deref(),
        };
        let who_no_extra = Who {
            actor: who.actor.clone(),
            meta: Map::new(),
            via: None,
            before: Map::new(),
            origin: None,
        };
        self.event(
            Spec::new(app, "certs", action, "certs_command", message, meta),
            &who_no_extra,
        )
    }
}
