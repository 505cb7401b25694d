//! Correlation state: what one trigger leaves for a later one — who ran the command
//! (`user-auth` → follow-on triggers), the deploy in progress (`receive-app`/`post-extract`/
//! `deploy-source-set` → `post-deploy`), the run in progress (`scheduler-run` →
//! `scheduler-post-run`) and a little per-app memory (previous revision, last finish).
//!
//! This module is pure logic over [`CorrelationState`]; `crate::state` loads and saves it under a
//! lock. Matching follows docs/capture.md: by `DOKKU_PID` when the trigger has one (never across
//! `DOKKU_PID`s), otherwise by (app, kind) within the match window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The actor a context carries.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StoredActor {
    /// `user` or `system`.
    pub actor_type: String,
    /// The name, if any.
    pub actor_name: Option<String>,
    /// Identity keys (`ssh_user`, …, `actor_source`), nulls dropped.
    pub meta: Map<String, Value>,
}

/// `user-auth` → follow-on trigger: who ran the command that caused this event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActorContext {
    /// `DOKKU_PID` of the `user-auth` call.
    pub pid: Option<String>,
    /// The app (`""` for global config).
    pub app: String,
    /// `config`, `deploy-finish`, `app-rename`, …
    pub kind: String,
    /// The subcommand (`git:push` for git forms).
    pub source_subcommand: String,
    /// The redacted command text.
    pub command_text: String,
    /// Who.
    pub actor: StoredActor,
    /// When stored (epoch seconds).
    pub at: i64,
    /// Kind-specific detail (`old_app`/`new_app` for renames).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// `user-auth` → `scheduler-run`/`scheduler-enter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandContext {
    /// `DOKKU_PID` of the `user-auth` call.
    pub pid: Option<String>,
    /// The app.
    pub app: String,
    /// `run` or `enter`.
    pub subcommand: String,
    /// The redacted command text.
    pub command_text: String,
    /// The redacted arguments a scheduler trigger will pass (fallback matching).
    pub match_args: Vec<String>,
    /// Who.
    pub actor: StoredActor,
    /// Host name at `user-auth` time.
    pub hostname: String,
    /// When stored (epoch seconds).
    pub at: i64,
}

/// A deploy between its first sighting and `post-deploy`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingDeploy {
    /// `DOKKU_PID` that opened it.
    pub pid: Option<String>,
    /// Correlation id shared by its events.
    pub correlation_id: String,
    /// Deploy source type, when known.
    pub source_type: Option<String>,
    /// Revision, when known.
    pub rev: Option<String>,
    /// Metadata merged in (`received_via`, `deploy_metadata_raw`, …), redacted.
    pub metadata: Map<String, Value>,
    /// First sighting (epoch seconds).
    pub first_seen: i64,
    /// Last update (epoch seconds).
    pub updated: i64,
}

/// A `dokku run` between `scheduler-run` and `scheduler-post-run`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingRun {
    /// `DOKKU_PID` of `scheduler-run`.
    pub pid: Option<String>,
    /// The app.
    pub app: String,
    /// Id of the run event.
    pub event_id: u64,
    /// Its correlation id.
    pub correlation_id: String,
    /// Who ran it.
    pub actor: StoredActor,
    /// The redacted command text.
    pub command_text: String,
    /// Host name.
    pub hostname: String,
    /// When it started (epoch seconds).
    pub at: i64,
}

/// The last deploy finish of an app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishRef {
    /// Event id.
    pub id: u64,
    /// `DOKKU_PID` it was recorded under.
    pub pid: Option<String>,
    /// When (epoch seconds).
    pub at: i64,
    /// Its correlation id.
    pub correlation_id: Option<String>,
    /// Its source type.
    pub source_type: Option<String>,
    /// Its revision.
    pub rev: Option<String>,
    /// Its image tag.
    pub image_tag: Option<String>,
    /// The `user-auth` context it was attributed from (time stored, command text): later
    /// triggers of the same command recognise it without `DOKKU_PID`.
    #[serde(default)]
    pub origin: Option<(i64, String)>,
}

/// A build seen by `builds-record-start`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildRecord {
    /// The app.
    pub app: String,
    /// `DOKKU_BUILD_ID` / `$2`.
    pub build_id: String,
    /// What started it.
    pub source: Option<String>,
    /// A failure was recorded for it already.
    pub failure_recorded: bool,
    /// When seen (epoch seconds).
    pub at: i64,
}

/// A rename or clone in progress (`post-app-rename-setup`), so that the `post-create NEW` /
/// `post-delete OLD` it causes are not recorded as a create and a destroy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenameMarker {
    /// `DOKKU_PID`.
    pub pid: Option<String>,
    /// The old name.
    pub old: String,
    /// The new name.
    pub new: String,
    /// When (epoch seconds).
    pub at: i64,
}

/// Per-app memory.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AppMemory {
    /// The last deploy finish.
    pub last_finish: Option<FinishRef>,
}

/// Everything, as kept in `<data dir>/state/correlation.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CorrelationState {
    /// Actor contexts.
    #[serde(default)]
    pub contexts: Vec<ActorContext>,
    /// Run/enter contexts.
    #[serde(default)]
    pub commands: Vec<CommandContext>,
    /// Pending deploys by [`deploy_key`] (app, and the `DOKKU_PID` that opened it).
    #[serde(default)]
    pub deploys: BTreeMap<String, PendingDeploy>,
    /// Runs awaiting completion.
    #[serde(default)]
    pub runs: Vec<PendingRun>,
    /// Builds.
    #[serde(default)]
    pub builds: Vec<BuildRecord>,
    /// Renames/clones in progress.
    #[serde(default)]
    pub renames: Vec<RenameMarker>,
    /// Per-app memory.
    #[serde(default)]
    pub apps: BTreeMap<String, AppMemory>,
    /// The `dokku` commands in flight, by `DOKKU_PID` (crate::event::command).
    #[serde(default)]
    pub dokku_commands: BTreeMap<String, super::command::DokkuCommand>,
}

/// Key of a pending deploy: the app and the `DOKKU_PID` that opened it, so that deploys of one
/// app by two `dokku` commands at once (a git push racing a `ps:rebuild`) never overwrite each
/// other's pending row. App names cannot contain `#` (Dokku allows `[a-z0-9-]`).
pub fn deploy_key(app: &str, pid: Option<&str>) -> String {
    match pid {
        Some(p) => format!("{app}#{p}"),
        None => app.to_string(),
    }
}

/// The app of a [`deploy_key`].
pub fn deploy_key_app(key: &str) -> &str {
    key.split('#').next().unwrap_or(key)
}

/// The time parameters of matching.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// Now (epoch seconds).
    pub now: i64,
    /// Fallback match window without `DOKKU_PID` (seconds).
    pub match_window: i64,
    /// Age after which contexts, runs and builds are dropped (seconds).
    pub stale: i64,
    /// Age after which a pending deploy is dropped (seconds).
    pub deploy_expiry: i64,
}

/// Does something stored under `stored_pid` at `at` belong to a trigger running under `pid`?
/// With a `DOKKU_PID`: exactly the same one, any age. Without: anything within the window.
pub fn same_operation(pid: Option<&str>, stored_pid: Option<&str>, at: i64, w: &Windows) -> bool {
    match pid {
        Some(p) => stored_pid == Some(p),
        None => at >= w.now - w.match_window,
    }
}

impl CorrelationState {
    /// Drops everything stale or expired (every load does this).
    pub fn expire(&mut self, w: &Windows) {
        let cut = w.now - w.stale;
        self.contexts.retain(|c| c.at >= cut);
        self.commands.retain(|c| c.at >= cut);
        self.runs.retain(|r| r.at >= cut);
        self.builds.retain(|b| b.at >= cut);
        self.renames.retain(|r| r.at >= cut);
        self.dokku_commands.retain(|_, c| c.started >= cut);
        let deploy_cut = w.now - w.deploy_expiry;
        self.deploys.retain(|_, d| d.first_seen >= deploy_cut);
    }

    /// Stores (or replaces) the context for (pid, app, kind).
    pub fn store_context(&mut self, ctx: ActorContext) {
        self.contexts
            .retain(|c| !(c.app == ctx.app && c.kind == ctx.kind && c.pid == ctx.pid));
        self.contexts.push(ctx);
    }

    fn find_context(&self, pid: Option<&str>, app: &str, kind: &str, w: &Windows) -> Option<usize> {
        self.contexts
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.app == app && c.kind == kind && same_operation(pid, c.pid.as_deref(), c.at, w)
            })
            .max_by_key(|(i, c)| (c.at, *i))
            .map(|(i, _)| i)
    }

    /// Takes the matching context for (app, kind), removing it.
    pub fn claim_context(
        &mut self,
        pid: Option<&str>,
        app: &str,
        kind: &str,
        w: &Windows,
    ) -> Option<ActorContext> {
        let i = self.find_context(pid, app, kind, w)?;
        Some(self.contexts.remove(i))
    }

    /// Looks at the matching context without taking it.
    pub fn peek_context(
        &self,
        pid: Option<&str>,
        app: &str,
        kind: &str,
        w: &Windows,
    ) -> Option<&ActorContext> {
        self.find_context(pid, app, kind, w)
            .map(|i| &self.contexts[i])
    }

    /// Takes the newest run/enter context matching by `DOKKU_PID`, else by app + arguments
    /// within the window.
    pub fn claim_command(
        &mut self,
        pid: Option<&str>,
        app: &str,
        subcommand: &str,
        match_args: &[String],
        w: &Windows,
    ) -> Option<CommandContext> {
        let i = self
            .commands
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.app == app
                    && c.subcommand == subcommand
                    && same_operation(pid, c.pid.as_deref(), c.at, w)
                    && (pid.is_some() || c.match_args == match_args)
            })
            .max_by_key(|(i, c)| (c.at, *i))
            .map(|(i, _)| i)?;
        Some(self.commands.remove(i))
    }

    /// The key of `app`'s pending deploy that belongs to this operation: with a `DOKKU_PID`,
    /// the one opened under the same `DOKKU_PID` (or one opened without any); without, the
    /// newest of the app's unexpired ones.
    pub fn pending_deploy_key(&self, pid: Option<&str>, app: &str) -> Option<String> {
        match pid {
            Some(p) => {
                let key = deploy_key(app, Some(p));
                if self.deploys.contains_key(&key) {
                    return Some(key);
                }
                // Opened without a DOKKU_PID (or kept in a state file from before keys
                // carried the PID).
                self.deploys
                    .get(app)
                    .filter(|d| d.pid.is_none() || d.pid.as_deref() == Some(p))
                    .map(|_| app.to_string())
            }
            None => self
                .deploys
                .iter()
                .filter(|(k, _)| deploy_key_app(k) == app)
                .max_by_key(|(_, d)| d.updated)
                .map(|(k, _)| k.clone()),
        }
    }

    /// The pending deploy of `app` if it belongs to this operation (see
    /// [`CorrelationState::pending_deploy_key`]).
    pub fn pending_deploy(&self, pid: Option<&str>, app: &str) -> Option<&PendingDeploy> {
        self.pending_deploy_key(pid, app)
            .and_then(|k| self.deploys.get(&k))
    }

    /// Takes the run a `scheduler-post-run` completes: same `DOKKU_PID`, else the newest of the app.
    pub fn claim_run(&mut self, pid: Option<&str>, app: &str) -> Option<PendingRun> {
        let i = self
            .runs
            .iter()
            .enumerate()
            .filter(|(_, r)| r.app == app && (pid.is_none() || r.pid.as_deref() == pid))
            .max_by_key(|(i, r)| (r.at, *i))
            .map(|(i, _)| i)?;
        Some(self.runs.remove(i))
    }

    /// A rename/clone in progress that explains a `post-create`/`post-delete` of `app`.
    pub fn renaming(&self, pid: Option<&str>, app: &str, new_side: bool, w: &Windows) -> bool {
        let marker = self.renames.iter().any(|r| {
            (if new_side { &r.new } else { &r.old }) == app
                && same_operation(pid, r.pid.as_deref(), r.at, w)
        });
        let context = self.contexts.iter().any(|c| {
            (c.kind == "app-rename" || c.kind == "app-clone")
                && same_operation(pid, c.pid.as_deref(), c.at, w)
                && if new_side {
                    c.app == app
                } else {
                    c.kind == "app-rename"
                        && c.extra.get("old_app").and_then(Value::as_str) == Some(app)
                }
        });
        marker || context
    }

    /// Counts for `status`.
    pub fn counts(&self) -> [(&'static str, usize); 4] {
        [
            ("pending deploy count", self.deploys.len()),
            ("pending actor contexts", self.contexts.len()),
            ("pending command contexts", self.commands.len()),
            ("pending runs", self.runs.len()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(now: i64) -> Windows {
        Windows {
            now,
            match_window: 120,
            stale: 86_400,
            deploy_expiry: 21_600,
        }
    }

    fn ctx(pid: Option<&str>, app: &str, kind: &str, at: i64) -> ActorContext {
        ActorContext {
            pid: pid.map(str::to_string),
            app: app.into(),
            kind: kind.into(),
            source_subcommand: "config:set".into(),
            command_text: "dokku config:set app A=[REDACTED]".into(),
            actor: StoredActor::default(),
            at,
            extra: Map::new(),
        }
    }

    #[test]
    fn window_is_inclusive_without_pid() {
        let mut s = CorrelationState::default();
        s.store_context(ctx(None, "a", "config", 1000));
        assert!(s.claim_context(None, "a", "config", &w(1121)).is_none());
        assert!(s.claim_context(None, "a", "config", &w(1120)).is_some());
        assert!(s.contexts.is_empty());
    }

    #[test]
    fn pid_matches_only_the_same_pid_at_any_age() {
        let mut s = CorrelationState::default();
        s.store_context(ctx(Some("100"), "a", "config", 1000));
        assert!(s
            .claim_context(Some("200"), "a", "config", &w(1001))
            .is_none());
        assert!(s
            .claim_context(Some("100"), "a", "config", &w(1600))
            .is_some());
    }

    #[test]
    fn expiry_drops_old_state() {
        let mut s = CorrelationState::default();
        s.store_context(ctx(None, "a", "config", 0));
        s.deploys.insert(
            "a".into(),
            PendingDeploy {
                pid: None,
                correlation_id: "c".into(),
                source_type: None,
                rev: None,
                metadata: Map::new(),
                first_seen: 0,
                updated: 0,
            },
        );
        s.expire(&w(21_600));
        assert_eq!(s.deploys.len(), 1);
        s.expire(&w(21_601));
        assert!(s.deploys.is_empty());
        assert_eq!(s.contexts.len(), 1);
        s.expire(&w(86_401));
        assert!(s.contexts.is_empty());
    }
}
