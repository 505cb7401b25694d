//! One command, one actor, one correlation: the `DOKKU_PID` command record
//! ([`crate::event::command`]) — created on a command's first trigger, stamped on every event the
//! command causes, and swept once the command has exited (an event is owed for a command that
//! ended without effect, and for a run that never reported its exit).

use super::*;
use crate::event::command::{self, DokkuCommand};
use crate::event::{identity, procfs};

/// Meta keys that describe the actor: replaced by the command's when an event is stamped.
const IDENTITY_KEYS: &[&str] = &[
    "actor_source",
    "ssh_user",
    "ssh_name",
    "ssh_key_fingerprint",
    "client_address",
    "sudo_user",
    "local_user",
    "effective_user",
    "process_tree_user",
    "identity_via",
];

impl Capture<'_> {
    /// The actor of this trigger's command from what the trigger itself can see.
    pub(super) fn own_actor(&self, ua_name: Option<&str>) -> Option<StoredActor> {
        identity::command_actor(self.env, ua_name)
    }

    /// The record of this trigger's `dokku` command, created on first sight with `known` as
    /// its actor, else the one the identity rules find.
    pub(super) fn dokku_command(
        &mut self,
        known: Option<&StoredActor>,
    ) -> Option<&mut DokkuCommand> {
        let pid = self.env.dokku_pid.clone()?;
        if !self.state.dokku_commands.contains_key(&pid) {
            let actor = match known {
                Some(a) => a.clone(),
                None => self.fallback_actor().actor,
            };
            let now = self.windows.now;
            self.state.dokku_commands.insert(
                pid.clone(),
                DokkuCommand {
                    correlation_id: command::correlation_id(&pid, now),
                    actor,
                    subcommand: self.env.dokku_command.clone().unwrap_or_default(),
                    app: None,
                    command_text: None,
                    args: Vec::new(),
                    started: now,
                    start_ticks: command::start_ticks(&pid),
                    seen_alive: procfs::alive(&pid),
                    effects: 0,
                },
            );
        }
        self.state.dokku_commands.get_mut(&pid)
    }

    /// The subcommand of this trigger's `dokku` command, if known.
    pub(super) fn command_subcommand(&self) -> Option<&str> {
        let pid = self.env.dokku_pid.as_deref()?;
        self.state
            .dokku_commands
            .get(pid)
            .map(|c| c.subcommand.as_str())
    }

    /// Stamps this trigger's events with its command's actor and correlation id.
    pub(super) fn stamp(&mut self, built: &mut Built) {
        if built.events.is_empty() {
            return;
        }
        let Some(c) = self.dokku_command(None) else {
            return;
        };
        c.effects = c.effects.saturating_add(built.events.len() as u32);
        if c.actor.actor_type != "user" {
            // Nothing identified the command's actor when it was first seen (no user-auth, no
            // identity in the environment): the first event's actor, if it knows one.
            if let Some(ev) = built.events.iter().find(|e| e.actor_type == "user") {
                c.actor = StoredActor {
                    actor_type: ev.actor_type.clone(),
                    actor_name: ev.actor_name.clone(),
                    meta: ev
                        .meta
                        .iter()
                        .filter(|(k, _)| IDENTITY_KEYS.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                };
            }
        }
        let actor = c.actor.clone();
        let cid = c.correlation_id.clone();
        for ev in &mut built.events {
            ev.correlation_id = Some(cid.clone());
            for k in IDENTITY_KEYS {
                ev.meta.remove(*k);
            }
            for (k, v) in &actor.meta {
                ev.meta.insert(k.clone(), v.clone());
            }
            ev.actor_type = actor.actor_type.clone();
            ev.actor_name = actor.actor_name.clone();
            ev.actor_label = actor::actor_label(&ev.actor_type, ev.actor_name.as_deref(), &ev.meta);
        }
    }

    fn ended(&self, pid: &str, c: &DokkuCommand) -> bool {
        let reused = || {
            c.start_ticks
                .is_some_and(|t| command::start_ticks(pid).is_some_and(|now| now != t))
        };
        if self.env.dokku_pid.as_deref() == Some(pid) {
            return reused();
        }
        c.seen_alive && (!procfs::alive(pid) || reused())
    }

    /// Events owed for commands that have exited: a command with no recorded effect, a run
    /// without an exit. The commands are forgotten.
    pub(super) fn sweep(&mut self) -> Vec<Event> {
        let ended: Vec<String> = self
            .state
            .dokku_commands
            .iter()
            .filter(|(pid, c)| self.ended(pid, c))
            .map(|(pid, _)| pid.clone())
            .collect();
        let mut out = Vec::new();
        for pid in ended {
            let Some(c) = self.state.dokku_commands.remove(&pid) else {
                continue;
            };
            let (runs, keep): (Vec<PendingRun>, Vec<PendingRun>) =
                std::mem::take(&mut self.state.runs)
                    .into_iter()
                    .partition(|r| r.pid.as_deref() == Some(pid.as_str()));
            self.state.runs = keep;
            let who = Who {
                actor: c.actor.clone(),
                meta: c.actor.meta.clone(),
                via: None,
                before: Map::new(),
                origin: None,
            };
            let invoked_at = chrono::DateTime::from_timestamp(c.started, 0)
                .map(crate::timefmt::format_utc)
                .unwrap_or_default();
            for r in runs {
                let meta = obj(vec![
                    ("run_event_id", r.event_id.into()),
                    ("command", r.command_text.clone().into()),
                    ("status", "unknown".into()),
                    ("started_at", invoked_at.clone().into()),
                ]);
                let mut spec = Spec::new(
                    Some(&r.app),
                    "command",
                    "exit",
                    "dokku_run_exit",
                    "dokku run ended without an exit status".into(),
                    meta,
                );
                spec.status = "unknown";
                spec.correlation_id = Some(c.correlation_id.clone());
                out.push(self.event(spec, &who));
            }
            let Some(text) = c.command_text.as_ref().filter(|_| c.effects == 0) else {
                continue;
            };
            let meta = obj(vec![
                ("command", text.clone().into()),
                ("subcommand", c.subcommand.clone().into()),
                ("args", Value::from(c.args.clone())),
                ("invoked_at", invoked_at.into()),
                ("outcome", "no_effect".into()),
            ]);
            let mut spec = Spec::new(
                c.app.as_deref(),
                "command",
                "invoke",
                "dokku_command_no_effect",
                format!(
                    "{text}: ended without any recorded effect (refused, or failed before any)"
                ),
                meta,
            );
            // Not "failed": no trigger says so; nothing it changed was seen.
            spec.status = "no_effect";
            spec.correlation_id = Some(c.correlation_id.clone());
            out.push(self.event(spec, &who));
        }
        out
    }
}
