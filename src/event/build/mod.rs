//! Building the events of one trigger call: the record fields, the message texts and `meta`
//! keys of reference §3, the actor (§5), redaction (§9) and correlation (§8, with the changes of
//! docs/capture.md). Input: a parsed [`Hook`], the correlation state, the environment. Output:
//! the events to append; the state is updated in place.
//!
//! This file holds the shared pieces (the actor of a trigger, the event skeleton, the dispatch
//! from trigger to builder, app lifecycle); one file per trigger family holds the rest:
//! `deploy` (pending deploys, finishes, failures, builds), `changes` (config, domains, ports,
//! certificates), `commands` (`run`/`enter`), `user_auth` (actor contexts and command-level
//! events).

use serde_json::{Map, Value};

use super::actor::{self, LocalIdentity, SshIdentity};
use super::correlate::{
    same_operation, ActorContext, BuildRecord, CommandContext, CorrelationState, FinishRef,
    PendingDeploy, PendingRun, RenameMarker, StoredActor, Windows,
};
use super::redact;
use crate::hook::command_line::{self, Invocation};
use crate::hook::{Hook, HookEnv};
use crate::record::Event;

mod apps;
pub use apps::records_nothing;
mod changes;
mod commands;
mod deploy;
mod pid;
mod probes;
mod user_auth;

pub use probes::Probes;

/// A new correlation id: `DOKKU_AUDIT_CORRELATION_ID`, else `aud_<epoch ms>_<8 hex>`.
pub fn new_correlation_id(now_epoch: i64) -> String {
    if let Ok(id) = std::env::var("DOKKU_AUDIT_CORRELATION_ID") {
        if !id.is_empty() {
            return id;
        }
    }
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_millis() as i64)
        .unwrap_or(0);
    let mut random = [0u8; 4];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .is_ok();
    let random = if ok {
        u32::from_le_bytes(random)
    } else {
        // No /dev/urandom: time and pid still make collisions unlikely.
        (std::process::id() ^ (millis as u32).rotate_left(16)).wrapping_mul(2_654_435_761)
    };
    format!("aud_{}_{random:08x}", now_epoch * 1000 + millis)
}

/// Everything one trigger call works with.
pub struct Capture<'a> {
    /// The trigger (or command) recorded as `source_trigger`.
    pub source_trigger: &'static str,
    /// The correlation state (updated in place).
    pub state: &'a mut CorrelationState,
    /// Dokku's environment.
    pub env: &'a HookEnv,
    /// Now and the windows.
    pub windows: Windows,
    /// Now as an event timestamp.
    pub now_ts: String,
    /// `deploy_metadata_max_bytes`.
    pub deploy_metadata_max: usize,
    /// Lazily probed facts.
    pub probes: &'a Probes,
    /// The state is held under its lock and will be saved: only then are ended commands swept
    /// (from a snapshot, their owed events would be written again by the next trigger).
    pub state_locked: bool,
}

/// The events built, plus which of them the state must learn the ids of after the append.
#[derive(Debug, Default)]
pub struct Built {
    /// Events to append, in order.
    pub events: Vec<Event>,
    finish_of: Option<(usize, String)>,
    run_at: Option<usize>,
}

impl Built {
    fn one(event: Event) -> Built {
        Built {
            events: vec![event],
            ..Default::default()
        }
    }

    /// Puts `events` (which happened earlier) before the built ones.
    fn prepend(&mut self, events: Vec<Event>) {
        let n = events.len();
        if n == 0 {
            return;
        }
        if let Some((i, _)) = &mut self.finish_of {
            *i += n;
        }
        if let Some(i) = &mut self.run_at {
            *i += n;
        }
        let mine = std::mem::replace(&mut self.events, events);
        self.events.extend(mine);
    }

    /// After the append assigned ids: remember them where later triggers look for them.
    pub fn learn_ids(&self, state: &mut CorrelationState) {
        if let Some((i, app)) = &self.finish_of {
            if let (Some(ev), Some(mem)) = (self.events.get(*i), state.apps.get_mut(app)) {
                if let Some(f) = &mut mem.last_finish {
                    f.id = ev.id;
                }
            }
        }
        if let Some(i) = self.run_at {
            if let (Some(ev), Some(run)) = (self.events.get(i), state.runs.last_mut()) {
                run.event_id = ev.id;
            }
        }
    }
}

/// RFC 7396-style merge: a `null` in the patch removes the key; a key already present keeps its
/// position.
fn merge(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            base.remove(k);
        } else {
            base.insert(k.clone(), v.clone());
        }
    }
}

fn obj(pairs: Vec<(&str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn opt(v: Option<&str>) -> Value {
    v.map_or(Value::Null, Value::from)
}

/// The actor of an event, with the identity keys to merge into its meta.
struct Who {
    actor: StoredActor,
    meta: Map<String, Value>,
    /// The subcommand of the context it came from, if any.
    via: Option<String>,
    /// What `user-auth` saw before the command ran (`keys_before`, `domains_before`).
    before: Map<String, Value>,
    /// The context it came from (time stored, command text), if any.
    origin: Option<(i64, String)>,
}

/// Fields of one event before the record is assembled.
struct Spec<'s> {
    app: Option<&'s str>,
    category: &'s str,
    action: &'s str,
    status: &'s str,
    classification: &'s str,
    message: String,
    meta: Map<String, Value>,
    source_type: Option<String>,
    image_tag: Option<String>,
    rev: Option<String>,
    correlation_id: Option<String>,
    dokku_version: bool,
}

impl<'s> Spec<'s> {
    fn new(
        app: Option<&'s str>,
        category: &'s str,
        action: &'s str,
        classification: &'s str,
        message: String,
        meta: Map<String, Value>,
    ) -> Spec<'s> {
        Spec {
            app,
            category,
            action,
            status: "success",
            classification,
            message,
            meta,
            source_type: None,
            image_tag: None,
            rev: None,
            correlation_id: None,
            dokku_version: true,
        }
    }
}

impl Capture<'_> {
    fn pid(&self) -> Option<&str> {
        self.env.dokku_pid.as_deref()
    }

    fn event(&self, spec: Spec<'_>, who: &Who) -> Event {
        let mut meta = spec.meta;
        merge(&mut meta, &who.meta);
        if spec.dokku_version {
            if let Some(v) = self.probes.dokku_version(self.env) {
                meta.insert("dokku_version".into(), Value::from(v));
            }
        }
        let label = actor::actor_label(
            &who.actor.actor_type,
            who.actor.actor_name.as_deref(),
            &meta,
        );
        Event {
            id: 0,
            ts: self.now_ts.clone(),
            app: spec.app.map(str::to_string),
            category: spec.category.into(),
            action: spec.action.into(),
            status: spec.status.into(),
            classification: Some(spec.classification.to_string()),
            source_trigger: self.source_trigger.into(),
            source_type: spec.source_type,
            image_tag: spec.image_tag,
            rev: spec.rev,
            actor_type: who.actor.actor_type.clone(),
            actor_name: who.actor.actor_name.clone(),
            actor_label: label,
            correlation_id: spec.correlation_id,
            message: spec.message,
            meta,
            created_at: self.now_ts.clone(),
        }
    }

    /// Without a context: the sudo user if there is one (reference §5.4), else Dokku itself.
    fn fallback_actor(&self) -> Who {
        if let Some(actor) = self.own_actor(None) {
            return Who {
                meta: actor.meta.clone(),
                actor,
                via: None,
                before: Map::new(),
                origin: None,
            };
        }
        // Only a sudo user makes a fallback actor: check that (an env var) before probing
        // /proc and /etc/passwd for the rest of the local identity.
        if !LocalIdentity::has_sudo_user() {
            return Who {
                actor: StoredActor {
                    actor_type: "system".into(),
                    actor_name: None,
                    meta: Map::new(),
                },
                meta: Map::new(),
                via: None,
                before: Map::new(),
                origin: None,
            };
        }
        let local = self.probes.local();
        if local.sudo_user.is_some() {
            let a = local.actor();
            return Who {
                actor: StoredActor {
                    actor_type: a.actor_type,
                    actor_name: a.actor_name,
                    meta: a.meta.clone(),
                },
                meta: a.meta,
                via: None,
                before: Map::new(),
                origin: None,
            };
        }
        Who {
            actor: StoredActor {
                actor_type: "system".into(),
                actor_name: None,
                meta: Map::new(),
            },
            meta: Map::new(),
            via: None,
            before: Map::new(),
            origin: None,
        }
    }

    /// The actor of a follow-on event: the claimed `user-auth` context, else the fallback.
    fn follow_on(&mut self, app: &str, kind: &str) -> Who {
        let w = self.windows;
        let pid = self.env.dokku_pid.clone();
        match self.state.claim_context(pid.as_deref(), app, kind, &w) {
            Some(ctx) => {
                let mut meta = ctx.actor.meta.clone();
                meta.insert(
                    "triggered_by_command".into(),
                    ctx.command_text.clone().into(),
                );
                meta.insert(
                    "triggered_by_subcommand".into(),
                    ctx.source_subcommand.clone().into(),
                );
                Who {
                    actor: ctx.actor,
                    meta,
                    via: Some(ctx.source_subcommand),
                    before: ctx.extra,
                    origin: Some((ctx.at, ctx.command_text)),
                }
            }
            None => self.fallback_actor(),
        }
    }

    /// Builds the events of one trigger call: those owed for `dokku` commands that have exited
    /// (appended last), and the trigger's own, stamped with its command's actor and
    /// correlation id.
    pub fn build(&mut self, hook: &Hook) -> Built {
        let swept = if self.state_locked {
            self.sweep()
        } else {
            Vec::new()
        };
        if !matches!(hook, Hook::UserAuth { .. }) {
            self.dokku_command(None);
        }
        let mut built = self.dispatch(hook);
        self.stamp(&mut built);
        built.prepend(swept);
        built
    }

    fn dispatch(&mut self, hook: &Hook) -> Built {
        match hook {
            Hook::UserAuth {
                ssh_user,
                ssh_name,
                tokens,
            } => self.user_auth(ssh_user, ssh_name, tokens),
            Hook::AppCreated { app } => self.app_lifecycle(app, true),
            Hook::AppDestroyed { app } => self.app_lifecycle(app, false),
            Hook::RenameSetup { old, new, .. } => {
                self.state.renames.push(RenameMarker {
                    pid: self.env.dokku_pid.clone(),
                    old: old.clone(),
                    new: new.clone(),
                    at: self.windows.now,
                });
                Built::default()
            }
            Hook::Renamed { old, new, clone } => self.renamed(old, new, *clone),
            Hook::ReceiveApp { app, rev } => self.receive_app(app, rev.as_deref()),
            Hook::PostExtract { app, rev } => {
                self.post_extract(app, rev.as_deref());
                Built::default()
            }
            Hook::DeploySourceSet {
                app,
                source_type,
                metadata,
            } => {
                let redacted = redact::redact_free_text(source_type);
                self.deploy_source_set(app, redacted.as_deref().unwrap_or(source_type), metadata)
            }
            Hook::PostDeploy {
                app,
                port,
                ip,
                image_tag,
            } => self.post_deploy(app, port.as_deref(), ip.as_deref(), image_tag.as_deref()),
            Hook::BuildStart {
                app,
                build_id,
                source,
            } => {
                self.state.builds.retain(|b| b.build_id != *build_id);
                self.state.builds.push(BuildRecord {
                    app: app.clone(),
                    build_id: build_id.clone(),
                    // A build source may be a URL: credentials never reach the state.
                    source: source
                        .as_deref()
                        .map(|s| redact::redact_free_text(s).unwrap_or_else(|| s.to_string())),
                    failure_recorded: false,
                    at: self.windows.now,
                });
                Built::default()
            }
            Hook::BuildFinalize {
                app,
                build_id,
                exit_code,
            } => self.build_finalize(app, build_id, exit_code),
            Hook::ConfigUpdate { app, action, keys } => {
                self.config_update(app.as_deref(), action, keys)
            }
            Hook::DomainsUpdate {
                app,
                action,
                domains,
            } => match action {
                Some(action) => self.domains_update(app, action, domains),
                None => Built::default(),
            },
            Hook::PortsUpdate {
                app,
                action,
                mapping_count,
            } => self.ports_update(app, action, *mapping_count),
            Hook::Certs { app, removed } => self.certs(app, *removed),
            Hook::SchedulerRun {
                app,
                env_keys,
                args,
            } => self.scheduler_run(app, env_keys, args),
            Hook::SchedulerEnter { app, args } => self.scheduler_enter(app, args),
            Hook::SchedulerPostRun {
                app,
                container_id,
                exit_code,
            } => self.scheduler_post_run(app, container_id, exit_code.as_deref()),
            Hook::Report => Built::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rename_names_holding_url_credentials_are_redacted_in_the_state() {
        for sub in ["apps:clone", "apps:rename"] {
            let mut state = CorrelationState::default();
            let env = HookEnv::default();
            let probes = Probes::default();
            let mut capture = Capture {
                source_trigger: "user-auth",
                state: &mut state,
                env: &env,
                windows: Windows {
                    now: 1_775_678_400,
                    match_window: 120,
                    stale: 86_400,
                    deploy_expiry: 21_600,
                },
                now_ts: "2026-04-08T20:00:00Z".into(),
                deploy_metadata_max: 1024,
                probes: &probes,
                state_locked: true,
            };
            let tokens: Vec<String> = [sub, "a", "https://u:CANARY@h.io/a.git"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let built = capture.build(&Hook::UserAuth {
                ssh_user: "dokku".into(),
                ssh_name: "alice".into(),
                tokens,
            });
            let events = serde_json::to_string(&built.events).unwrap();
            let state = serde_json::to_string(&state).unwrap();
            assert!(!events.contains("CANARY"), "{sub}: {events}");
            assert!(!state.contains("CANARY"), "{sub}: {state}");
            assert!(
                state.contains("https://[REDACTED]@h.io/a.git"),
                "{sub}: {state}"
            );
        }
    }
}
