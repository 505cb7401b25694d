//! `dokku run` and `enter`: the scheduler triggers, their actor and redacted arguments.

use super::*;

impl Capture<'_> {
    /// The actor of a run/enter: the `user-auth` command context, else the fallback.
    pub(super) fn command_actor(
        &mut self,
        app: &str,
        subcommand: &str,
        match_args: &[String],
    ) -> (Who, Option<CommandContext>) {
        let w = self.windows;
        let pid = self.env.dokku_pid.clone();
        match self
            .state
            .claim_command(pid.as_deref(), app, subcommand, match_args, &w)
        {
            Some(ctx) => (
                Who {
                    actor: ctx.actor.clone(),
                    meta: ctx.actor.meta.clone(),
                    via: Some(ctx.subcommand.clone()),
                    before: Map::new(),
                    origin: None,
                },
                Some(ctx),
            ),
            None => (self.fallback_actor(), None),
        }
    }

    pub(super) fn command_meta(
        who: &Who,
        command: String,
        subcommand: &str,
        args: &[String],
        container: (Option<&str>, Option<&str>),
        hostname: &str,
        hint: &str,
    ) -> Map<String, Value> {
        obj(vec![
            (
                "actor_source",
                who.actor
                    .meta
                    .get("actor_source")
                    .cloned()
                    .unwrap_or(Value::Null),
            ),
            ("command", command.into()),
            ("subcommand", subcommand.into()),
            ("args", Value::from(args.to_vec())),
            ("container_type", opt(container.0)),
            ("container_id", opt(container.1)),
            ("hostname", hostname.into()),
            ("success_hint", hint.into()),
        ])
    }

    pub(super) fn scheduler_run(
        &mut self,
        app: &str,
        env_keys: &[String],
        args: &[String],
    ) -> Built {
        let args = redact_run_args(args);
        let (who, ctx) = self.command_actor(app, "run", &args);
        let command = ctx
            .as_ref()
            .map(|c| c.command_text.clone())
            .unwrap_or_else(|| join_command(&["run", app], &args));
        let hostname = ctx
            .as_ref()
            .map(|c| c.hostname.clone())
            .unwrap_or_else(|| self.probes.hostname().to_string());
        let mut meta = Self::command_meta(
            &who,
            command.clone(),
            "run",
            &args,
            (None, None),
            &hostname,
            "scheduled",
        );
        if !env_keys.is_empty() {
            meta.insert("env_keys".into(), Value::from(env_keys.to_vec()));
        }
        let correlation = new_correlation_id(self.windows.now);
        let mut spec = Spec::new(
            Some(app),
            "command",
            "run",
            "dokku_run",
            "dokku run started".into(),
            meta,
        );
        // Not success: that is for the exit event (scheduler-post-run), or the sweep's
        // "ended without an exit status".
        spec.status = "started";
        spec.correlation_id = Some(correlation.clone());
        let event = self.event(spec, &who);
        self.state.runs.push(PendingRun {
            pid: self.env.dokku_pid.clone(),
            app: app.to_string(),
            event_id: 0,
            correlation_id: correlation,
            actor: who.actor,
            command_text: command,
            hostname,
            at: self.windows.now,
        });
        Built {
            events: vec![event],
            finish_of: None,
            run_at: Some(0),
        }
    }

    pub(super) fn scheduler_enter(&mut self, app: &str, args: &[String]) -> Built {
        let (ctype, cid, consumed) = command_line::parse_enter_target(args);
        let mut rest = &args[consumed.min(args.len())..];
        if rest.first().map(String::as_str) == Some("--")
            && args.first().map(String::as_str) != Some("--")
        {
            rest = &rest[1..];
        }
        let mut match_args: Vec<String> = args[..consumed.min(args.len())]
            .iter()
            .filter(|a| *a != "--")
            .cloned()
            .collect();
        match_args.extend(rest.iter().cloned());
        let match_args = redact_run_args(&match_args);
        let rest = redact_run_args(rest);
        let (who, ctx) = self.command_actor(app, "enter", &match_args);
        let command = ctx
            .as_ref()
            .map(|c| c.command_text.clone())
            .unwrap_or_else(|| join_command(&["enter", app], &match_args));
        let hostname = ctx
            .as_ref()
            .map(|c| c.hostname.clone())
            .unwrap_or_else(|| self.probes.hostname().to_string());
        let meta = Self::command_meta(
            &who,
            command,
            "enter",
            &rest,
            (ctype.as_deref(), cid.as_deref()),
            &hostname,
            "enter_requested",
        );
        let spec = Spec::new(
            Some(app),
            "command",
            "enter",
            "dokku_enter",
            "dokku enter requested".into(),
            meta,
        );
        Built::one(self.event(spec, &who))
    }

    pub(super) fn scheduler_post_run(
        &mut self,
        app: &str,
        container_id: &str,
        exit_code: Option<&str>,
    ) -> Built {
        let pid = self.env.dokku_pid.clone();
        let run = self.state.claim_run(pid.as_deref(), app);
        let code = exit_code.and_then(|c| c.trim().parse::<i64>().ok());
        let (status, message) = match code {
            Some(0) => ("success", "dokku run exited: 0".to_string()),
            Some(c) => ("error", format!("dokku run exited: {c}")),
            None => ("unknown", "dokku run finished".to_string()),
        };
        let who = match &run {
            Some(r) => Who {
                actor: r.actor.clone(),
                meta: r.actor.meta.clone(),
                via: None,
                before: Map::new(),
                origin: None,
            },
            None => self.fallback_actor(),
        };
        let mut meta = Map::new();
        if let Some(r) = &run {
            meta.insert("run_event_id".into(), r.event_id.into());
        }
        meta.insert("container_id".into(), container_id.into());
        meta.insert("success_hint".into(), "container_created".into());
        if let Some(c) = code {
            meta.insert("exit_code".into(), c.into());
        }
        meta.insert("status".into(), status.into());
        if let Some(r) = &run {
            meta.insert(
                "duration_seconds".into(),
                (self.windows.now - r.at).max(0).into(),
            );
            meta.insert("command".into(), r.command_text.clone().into());
            meta.insert("hostname".into(), r.hostname.clone().into());
        }
        let mut spec = Spec::new(
            Some(app),
            "command",
            "exit",
            "dokku_run_exit",
            message,
            meta,
        );
        spec.status = status;
        spec.correlation_id = run.map(|r| r.correlation_id);
        Built::one(self.event(spec, &who))
    }
}

/// `run` arguments as stored: `-e K=V` and positional `K=V` redacted.
pub(super) fn redact_run_args(args: &[String]) -> Vec<String> {
    let mut tokens = Vec::with_capacity(args.len() + 1);
    tokens.push("run".to_string());
    tokens.extend(args.iter().cloned());
    redact::redact_command_tokens(&tokens, 0, "run", None).split_off(1)
}

pub(super) fn join_command(head: &[&str], args: &[String]) -> String {
    let mut parts: Vec<&str> = vec!["dokku"];
    parts.extend_from_slice(head);
    parts.extend(args.iter().map(String::as_str));
    parts.join(" ")
}
