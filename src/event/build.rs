//! Building the events of one trigger call: the record fields, the message texts and `meta`
//! keys of reference §3, the actor (§5), redaction (§9) and correlation (§8, with the changes of
//! docs/capture.md). Input: a parsed [`Hook`], the correlation state, the environment. Output:
//! the events to append; the state is updated in place.

use std::cell::OnceCell;

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

/// Things a trigger may need that cost a file read: probed at most once, only when needed.
#[derive(Default)]
pub struct Probes {
    local: OnceCell<LocalIdentity>,
    hostname: OnceCell<String>,
    dokku_version: OnceCell<Option<String>>,
}

impl Probes {
    fn local(&self) -> &LocalIdentity {
        self.local.get_or_init(LocalIdentity::probe)
    }

    /// Whether the `dokku` command with this `DOKKU_PID` is still running (`/proc/<pid>`).
    /// A PID that is not a number counts as gone. A reused PID only keeps a stale pending
    /// deploy until it expires; it never lends it to another operation.
    fn process_alive(&self, pid: &str) -> bool {
        pid.parse::<u32>()
            .is_ok_and(|p| p > 0 && std::path::Path::new(&format!("/proc/{p}")).exists())
    }

    fn hostname(&self) -> &str {
        self.hostname.get_or_init(|| {
            std::env::var("DOKKU_AUDIT_HOSTNAME")
                .ok()
                .filter(|h| !h.is_empty())
                .or_else(|| {
                    std::fs::read_to_string("/proc/sys/kernel/hostname")
                        .ok()
                        .map(|h| h.trim().to_string())
                })
                .unwrap_or_default()
        })
    }

    /// `DOKKU_AUDIT_DOKKU_VERSION`, else Dokku's version file; never a nested `dokku` call.
    fn dokku_version(&self, env: &HookEnv) -> Option<&str> {
        self.dokku_version
            .get_or_init(|| {
                let valid = |v: &str| {
                    let mut parts = v.split('.');
                    (0..3).all(|_| {
                        parts
                            .next()
                            .is_some_and(|p| p.chars().take_while(char::is_ascii_digit).count() > 0)
                    })
                };
                if let Ok(v) = std::env::var("DOKKU_AUDIT_DOKKU_VERSION") {
                    return Some(v).filter(|v| !v.is_empty());
                }
                [
                    format!("{}/STABLE_VERSION", env.dokku_lib_root),
                    format!("{}/VERSION", env.dokku_root),
                ]
                .iter()
                .filter_map(|p| std::fs::read_to_string(p).ok())
                .map(|t| {
                    let first = t.lines().next().unwrap_or("").trim();
                    first
                        .rsplit(' ')
                        .next()
                        .unwrap_or("")
                        .trim_start_matches('v')
                        .to_string()
                })
                .find(|v| valid(v))
            })
            .as_deref()
    }
}

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

    /// Builds the events of one trigger call.
    pub fn build(&mut self, hook: &Hook) -> Built {
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
            } => self.deploy_source_set(app, source_type, metadata),
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
                    source: source.clone(),
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

    fn app_lifecycle(&mut self, app: &str, create: bool) -> Built {
        let w = self.windows;
        if self.state.renaming(self.pid(), app, create, &w) {
            // The create/delete half of a rename or clone: the rename event says it all.
            return Built::default();
        }
        let (kind, action, message) = if create {
            ("app-create", "create", "app created")
        } else {
            ("app-destroy", "destroy", "app destroyed")
        };
        let who = self.follow_on(app, kind);
        let classification = if create { "app_create" } else { "app_destroy" };
        let spec = Spec::new(
            Some(app),
            "app",
            action,
            classification,
            message.into(),
            Map::new(),
        );
        Built::one(self.event(spec, &who))
    }

    fn renamed(&mut self, old: &str, new: &str, clone: bool) -> Built {
        let (kind, action, classification, verb) = if clone {
            ("app-clone", "clone", "app_clone", "cloned")
        } else {
            ("app-rename", "rename", "app_rename", "renamed")
        };
        let who = self.follow_on(new, kind);
        self.state
            .renames
            .retain(|r| !(r.old == old && r.new == new));
        let meta = obj(vec![("old_app", old.into()), ("new_app", new.into())]);
        let spec = Spec::new(
            Some(new),
            "app",
            action,
            classification,
            format!("app {verb} from {old} to {new}"),
            meta,
        );
        Built::one(self.event(spec, &who))
    }

    /// The source type a `user-auth` context implies (reference: git push; extended per
    /// docs/capture.md).
    fn inferred_source_type(via: Option<&str>) -> Option<String> {
        Some(
            match via? {
                "git:push" | "git-hook" | "git-receive-pack" => "git-push",
                "git:sync" => "git-sync",
                "git:from-image" | "git:load-image" => "docker-image",
                "git:from-archive" => "archive",
                _ => return None,
            }
            .to_string(),
        )
    }

    /// Takes the app's pending deploy of this operation. Rows that other `dokku` commands
    /// opened are dropped once that command has exited (a build that failed before its
    /// deploy); while it still runs, its row stays: two deploys of one app at once must not
    /// take each other's source and revision.
    fn take_pending(&mut self, app: &str) -> Option<PendingDeploy> {
        let pid = self.env.dokku_pid.clone();
        let key = self.state.pending_deploy_key(pid.as_deref(), app);
        let mine = key.as_ref().and_then(|k| self.state.deploys.remove(k));
        self.state.deploys.retain(|k, d| {
            crate::event::correlate::deploy_key_app(k) != app
                || d.pid
                    .as_deref()
                    .is_some_and(|p| self.probes.process_alive(p))
        });
        mine
    }

    fn upsert_pending(
        &mut self,
        app: &str,
        source_type: Option<String>,
        prefer_new_source: bool,
        rev: Option<&str>,
        metadata: Map<String, Value>,
    ) -> String {
        let now = self.windows.now;
        let existing = self.take_pending(app);
        let row = match existing {
            Some(mut row) => {
                if prefer_new_source {
                    row.source_type = source_type.or(row.source_type);
                } else if row.source_type.is_none() {
                    row.source_type = source_type;
                }
                if let Some(r) = rev {
                    row.rev = Some(r.to_string());
                }
                merge(&mut row.metadata, &metadata);
                row.updated = now;
                row.pid = self.env.dokku_pid.clone().or(row.pid);
                row
            }
            None => PendingDeploy {
                pid: self.env.dokku_pid.clone(),
                correlation_id: new_correlation_id(now),
                source_type,
                rev: rev.map(str::to_string),
                metadata,
                first_seen: now,
                updated: now,
            },
        };
        let id = row.correlation_id.clone();
        let key = crate::event::correlate::deploy_key(app, row.pid.as_deref());
        self.state.deploys.insert(key, row);
        id
    }

    fn receive_app(&mut self, app: &str, rev: Option<&str>) -> Built {
        let who = self.follow_on(app, "deploy-receive");
        let inferred = Self::inferred_source_type(who.via.as_deref());
        let correlation = self.upsert_pending(
            app,
            inferred,
            false,
            rev,
            obj(vec![("received_via", "receive-app".into())]),
        );
        let meta = obj(vec![
            ("received_via", "receive-app".into()),
            ("rev", opt(rev)),
        ]);
        let mut spec = Spec::new(
            Some(app),
            "deploy",
            "receive",
            "source_received",
            "source received".into(),
            meta,
        );
        spec.rev = rev.map(str::to_string);
        spec.correlation_id = Some(correlation);
        spec.dokku_version = false;
        Built::one(self.event(spec, &who))
    }

    fn post_extract(&mut self, app: &str, rev: Option<&str>) {
        let who = self.follow_on(app, "deploy-extract");
        let inferred = Self::inferred_source_type(who.via.as_deref());
        // The context's actor is not lost: a later post-deploy of the same operation takes the
        // `deploy-finish` context, stored by the same command.
        // An inferred type only fills a gap: deploy-source-set's explicit type wins.
        self.upsert_pending(app, inferred, false, rev, Map::new());
    }

    fn deploy_source_set(&mut self, app: &str, source_type: &str, metadata: &[String]) -> Built {
        let who = self.follow_on(app, "deploy-source-set");
        let md = redact::deploy_metadata(metadata, self.deploy_metadata_max);
        let md_meta = md.as_ref().map(|m| m.to_meta()).unwrap_or_default();
        let pid = self.env.dokku_pid.clone();
        if self.state.pending_deploy(pid.as_deref(), app).is_some() {
            self.upsert_pending(app, Some(source_type.into()), true, None, md_meta);
            return Built::default();
        }
        let w = self.windows;
        // The finish this call belongs to. With DOKKU_PID: the one recorded under it. Without:
        // one within the window *and* evidently the same deploy — attributed from the same
        // user-auth command, or its revision named in the metadata — so that a second deploy's
        // deploy-source-set never amends the first deploy (reference §15.1 bug 11).
        let finish = self
            .state
            .apps
            .get(app)
            .and_then(|m| m.last_finish.clone())
            .filter(|f| f.id > 0 && same_operation(pid.as_deref(), f.pid.as_deref(), f.at, &w))
            .filter(|f| {
                pid.is_some()
                    || (who.origin.is_some() && who.origin == f.origin)
                    || f.rev
                        .as_deref()
                        .is_some_and(|rev| md.as_ref().is_some_and(|m| m.raw.contains(rev)))
            });
        let Some(finish) = finish else {
            // Before the build (git:from-archive, …): the next post-deploy is a source deploy.
            self.upsert_pending(app, Some(source_type.into()), true, None, md_meta);
            return Built::default();
        };
        // After the finish (git push, git:sync): amend it with a new event, if it adds anything.
        let same_type = finish.source_type.as_deref() == Some(source_type);
        let only_rev = md
            .as_ref()
            .is_none_or(|m| Some(m.raw.as_str()) == finish.rev.as_deref());
        if same_type && only_rev {
            return Built::default();
        }
        let mut meta = obj(vec![
            ("amends_event_id", finish.id.into()),
            ("source_type", source_type.into()),
        ]);
        if !md_meta.is_empty() {
            meta.insert("pending_metadata".into(), Value::Object(md_meta));
        }
        let mut spec = Spec::new(
            Some(app),
            "deploy",
            "source-set",
            "deploy_source_amend",
            format!("deploy source recorded: {source_type}"),
            meta,
        );
        spec.source_type = Some(source_type.into());
        spec.rev = finish.rev.clone();
        spec.correlation_id = finish.correlation_id.clone();
        spec.dokku_version = false;
        Built::one(self.event(spec, &who))
    }

    fn post_deploy(
        &mut self,
        app: &str,
        port: Option<&str>,
        ip: Option<&str>,
        image_tag: Option<&str>,
    ) -> Built {
        let who = self.follow_on(app, "deploy-finish");
        let pending = self.take_pending(app);
        let previous = self.state.apps.get(app).and_then(|m| m.last_finish.clone());
        let (classification, message) = match pending {
            Some(_) => ("source_deploy", "source deploy finished"),
            None => ("release_only", "release-only deploy finished"),
        };
        let source_type = pending.as_ref().and_then(|p| p.source_type.clone());
        let rev = pending.as_ref().and_then(|p| p.rev.clone());
        let mut meta = obj(vec![
            ("image_tag", opt(image_tag)),
            ("source_type", opt(source_type.as_deref())),
            ("rev", opt(rev.as_deref())),
        ]);
        if let Some(p) = port {
            meta.insert("internal_port".into(), p.into());
        }
        if let Some(i) = ip {
            meta.insert("internal_ip_address".into(), i.into());
        }
        if let Some(p) = pending.as_ref().filter(|p| !p.metadata.is_empty()) {
            meta.insert("pending_metadata".into(), Value::Object(p.metadata.clone()));
        }
        if let Some(prev) = &previous {
            if let Some(r) = &prev.rev {
                meta.insert("previous_rev".into(), r.clone().into());
            }
            if let Some(t) = &prev.image_tag {
                meta.insert("previous_image_tag".into(), t.clone().into());
            }
        }
        if let Some(b) = &self.env.build_id {
            meta.insert("build_id".into(), b.clone().into());
        }
        let correlation_id = pending.as_ref().map(|p| p.correlation_id.clone());
        let mut spec = Spec::new(
            Some(app),
            "deploy",
            "finish",
            classification,
            message.into(),
            meta,
        );
        spec.source_type = source_type.clone();
        spec.rev = rev.clone();
        spec.image_tag = image_tag.map(str::to_string);
        spec.correlation_id = correlation_id.clone();
        spec.dokku_version = false;
        let event = self.event(spec, &who);
        self.state
            .apps
            .entry(app.to_string())
            .or_default()
            .last_finish = Some(FinishRef {
            id: 0,
            pid: self.env.dokku_pid.clone(),
            at: self.windows.now,
            correlation_id,
            source_type,
            rev,
            image_tag: image_tag.map(str::to_string),
            origin: who.origin.clone(),
        });
        Built {
            events: vec![event],
            finish_of: Some((0, app.to_string())),
            run_at: None,
        }
    }

    /// `report-deploy-status APP STATUS` with a status other than `success`: a failed deploy
    /// reported by an outside system (reference §10.16).
    pub fn report_deploy_status(&mut self, app: &str, status: &str) -> Built {
        let who = self.follow_on(app, "deploy-finish");
        let pending = self.take_pending(app);
        let meta = obj(vec![("deploy_status", status.into())]);
        let mut spec = Spec::new(
            Some(app),
            "deploy",
            "finish",
            "deploy_failed",
            format!("deploy failed: {status}"),
            meta,
        );
        spec.status = "error";
        spec.source_type = pending.as_ref().and_then(|p| p.source_type.clone());
        spec.rev = pending.as_ref().and_then(|p| p.rev.clone());
        spec.correlation_id = pending.as_ref().map(|p| p.correlation_id.clone());
        spec.dokku_version = false;
        Built::one(self.event(spec, &who))
    }

    fn build_finalize(&mut self, app: &str, build_id: &str, exit_code: &str) -> Built {
        let Ok(code) = exit_code.trim().parse::<i64>() else {
            return Built::default();
        };
        if code == 0 {
            return Built::default();
        }
        let now = self.windows.now;
        let record = match self
            .state
            .builds
            .iter_mut()
            .find(|b| b.build_id == build_id)
        {
            Some(r) if r.failure_recorded => return Built::default(),
            Some(r) => r,
            None => {
                self.state.builds.push(BuildRecord {
                    app: app.to_string(),
                    build_id: build_id.to_string(),
                    source: None,
                    failure_recorded: false,
                    at: now,
                });
                self.state.builds.last_mut().expect("just pushed")
            }
        };
        record.failure_recorded = true;
        let build_source = record.source.clone();
        let who = self.follow_on(app, "deploy-finish");
        let pending = self.take_pending(app);
        let mut meta = obj(vec![
            ("exit_code", code.into()),
            ("build_id", build_id.into()),
            ("build_source", opt(build_source.as_deref())),
        ]);
        meta.retain(|_, v| !v.is_null());
        if let Some(p) = pending.as_ref().filter(|p| !p.metadata.is_empty()) {
            meta.insert("pending_metadata".into(), Value::Object(p.metadata.clone()));
        }
        let mut spec = Spec::new(
            Some(app),
            "deploy",
            "finish",
            "deploy_failed",
            format!("deploy failed: exit code {code}"),
            meta,
        );
        spec.status = "failed";
        spec.source_type = pending.as_ref().and_then(|p| p.source_type.clone());
        spec.rev = pending.as_ref().and_then(|p| p.rev.clone());
        spec.correlation_id = pending.as_ref().map(|p| p.correlation_id.clone());
        spec.dokku_version = false;
        Built::one(self.event(spec, &who))
    }

    fn config_update(&mut self, app: Option<&str>, action: &str, keys: &[String]) -> Built {
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

    fn domains_update(&mut self, app: &str, action: &str, domains: &[String]) -> Built {
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

    fn ports_update(&mut self, app: &str, action: &str, count: usize) -> Built {
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

    fn certs(&mut self, app: &str, removed: bool) -> Built {
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

    /// The actor of a run/enter: the `user-auth` command context, else the fallback.
    fn command_actor(
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

    fn command_meta(
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

    fn scheduler_run(&mut self, app: &str, env_keys: &[String], args: &[String]) -> Built {
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
            "dokku run scheduled".into(),
            meta,
        );
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

    fn scheduler_enter(&mut self, app: &str, args: &[String]) -> Built {
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

    fn scheduler_post_run(
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

    fn user_auth(&mut self, ssh_user: &str, ssh_name: &str, tokens: &[String]) -> Built {
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
        let (actor_type, actor_name, identity) = actor::user_auth_actor(&ssh, self.probes.local());
        let actor = StoredActor {
            actor_type,
            actor_name,
            meta: identity.clone(),
        };
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
                if let Some(keys) = dokku_files::config_keys(&self.env.dokku_root, &fapp) {
                    extra.insert("keys_before".into(), Value::from(keys));
                }
            }
            for kind in kinds {
                let mut extra = extra.clone();
                if *kind == "domains" {
                    if let Some(d) = dokku_files::app_domains(&self.env.dokku_root, &fapp) {
                        extra.insert("domains_before".into(), Value::from(d));
                    }
                }
                if *kind != "config" {
                    extra.remove("keys_before");
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

    fn certs_command(
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

/// Per key, what a config change did, judged against the key names present before (never
/// values): `added`, `changed` or `removed`.
fn key_changes(action: &str, keys: &[&str], before: &[&str]) -> Map<String, Value> {
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
mod dokku_files {
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

/// `run` arguments as stored: `-e K=V` and positional `K=V` redacted.
fn redact_run_args(args: &[String]) -> Vec<String> {
    let mut tokens = Vec::with_capacity(args.len() + 1);
    tokens.push("run".to_string());
    tokens.extend(args.iter().cloned());
    redact::redact_command_tokens(&tokens, 0, "run", None).split_off(1)
}

fn join_command(head: &[&str], args: &[String]) -> String {
    let mut parts: Vec<&str> = vec!["dokku"];
    parts.extend_from_slice(head);
    parts.extend(args.iter().map(String::as_str));
    parts.join(" ")
}

/// Calls that record nothing and change no state: the trigger can return before taking a lock
/// (most `user-auth` calls for read-only commands end here).
pub fn records_nothing(hook: &Hook, env: &HookEnv) -> bool {
    match hook {
        Hook::UserAuth { tokens, .. } => {
            if tokens.is_empty() {
                return true;
            }
            let inv = command_line::parse(tokens, env.app_name.as_deref());
            !inv.is_recorded(&tokens[inv.args_start.min(tokens.len())..])
        }
        Hook::DomainsUpdate { action: None, .. } => true,
        Hook::ConfigUpdate { action, keys, .. } => {
            action != "clear"
                && keys
                    .iter()
                    .all(|k| redact::INTERNAL_CONFIG_KEYS.contains(&k.as_str()))
        }
        _ => false,
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
