//! What Dokku passes to a trigger, typed: the trigger's name, its positional arguments and the
//! parts of the environment that matter for auditing. This layer only parses; deciding what to
//! record is [`crate::event`]'s job.
//!
//! Argument shapes follow what Dokku 0.38 really passes (reference `dokku-triggers.md` §1.4), and
//! accept the simpler shapes the old plugin's tests used where they differ.

pub mod command_line;
mod env;

pub use env::HookEnv;

use std::ffi::OsString;

/// Every trigger the plugin implements. `plugin/<name>` exists for each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Runs before every `dokku` command: records intent and who.
    UserAuth,
    /// `apps:create` (and rename/clone for the new name).
    PostCreate,
    /// The old plugin's entry point for app creation.
    AppCreate,
    /// `apps:destroy` (and rename for the old name).
    PostDelete,
    /// The old plugin's entry point for app destruction.
    AppDestroy,
    /// Rename, before the old app is deleted.
    PostAppRenameSetup,
    /// Rename, at the end.
    PostAppRename,
    /// Clone, before the new app is set up.
    PostAppCloneSetup,
    /// Clone, at the end.
    PostAppClone,
    /// `git:sync --build`, `ps:rebuild`.
    ReceiveApp,
    /// After the source was extracted for a build.
    PostExtract,
    /// The deploy source and its metadata.
    DeploySourceSet,
    /// A deploy finished.
    PostDeploy,
    /// A build started (Dokku ≥ 0.38).
    BuildsRecordStart,
    /// A build finished, with its exit code (Dokku ≥ 0.38).
    BuildsRecordFinalize,
    /// Config keys changed.
    PostConfigUpdate,
    /// Domains changed.
    PostDomainsUpdate,
    /// Port mappings changed.
    PostProxyPortsUpdate,
    /// Certificates added or updated.
    PostCertsUpdate,
    /// Certificates removed.
    PostCertsRemove,
    /// `dokku run`.
    SchedulerRun,
    /// `dokku enter`.
    SchedulerEnter,
    /// A `dokku run` container exited.
    SchedulerPostRun,
    /// `dokku report`.
    Report,
}

impl Trigger {
    /// All of them, for the plugin layout test and the docs.
    pub const ALL: &'static [Trigger] = &[
        Trigger::UserAuth,
        Trigger::PostCreate,
        Trigger::AppCreate,
        Trigger::PostDelete,
        Trigger::AppDestroy,
        Trigger::PostAppRenameSetup,
        Trigger::PostAppRename,
        Trigger::PostAppCloneSetup,
        Trigger::PostAppClone,
        Trigger::ReceiveApp,
        Trigger::PostExtract,
        Trigger::DeploySourceSet,
        Trigger::PostDeploy,
        Trigger::BuildsRecordStart,
        Trigger::BuildsRecordFinalize,
        Trigger::PostConfigUpdate,
        Trigger::PostDomainsUpdate,
        Trigger::PostProxyPortsUpdate,
        Trigger::PostCertsUpdate,
        Trigger::PostCertsRemove,
        Trigger::SchedulerRun,
        Trigger::SchedulerEnter,
        Trigger::SchedulerPostRun,
        Trigger::Report,
    ];

    /// The Dokku trigger name.
    pub fn name(self) -> &'static str {
        match self {
            Trigger::UserAuth => "user-auth",
            Trigger::PostCreate => "post-create",
            Trigger::AppCreate => "app-create",
            Trigger::PostDelete => "post-delete",
            Trigger::AppDestroy => "app-destroy",
            Trigger::PostAppRenameSetup => "post-app-rename-setup",
            Trigger::PostAppRename => "post-app-rename",
            Trigger::PostAppCloneSetup => "post-app-clone-setup",
            Trigger::PostAppClone => "post-app-clone",
            Trigger::ReceiveApp => "receive-app",
            Trigger::PostExtract => "post-extract",
            Trigger::DeploySourceSet => "deploy-source-set",
            Trigger::PostDeploy => "post-deploy",
            Trigger::BuildsRecordStart => "builds-record-start",
            Trigger::BuildsRecordFinalize => "builds-record-finalize",
            Trigger::PostConfigUpdate => "post-config-update",
            Trigger::PostDomainsUpdate => "post-domains-update",
            Trigger::PostProxyPortsUpdate => "post-proxy-ports-update",
            Trigger::PostCertsUpdate => "post-certs-update",
            Trigger::PostCertsRemove => "post-certs-remove",
            Trigger::SchedulerRun => "scheduler-run",
            Trigger::SchedulerEnter => "scheduler-enter",
            Trigger::SchedulerPostRun => "scheduler-post-run",
            Trigger::Report => "report",
        }
    }

    /// The trigger with this Dokku name.
    pub fn from_name(name: &str) -> Option<Trigger> {
        Trigger::ALL.iter().copied().find(|t| t.name() == name)
    }
}

/// A trigger's arguments could not be understood; nothing is recorded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HookError {
    /// Not a trigger this plugin implements.
    #[error("unknown trigger: {0}")]
    UnknownTrigger(String),
    /// A required argument is missing or empty.
    #[error("missing {0}")]
    Missing(&'static str),
}

/// A trigger call, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// `user-auth SSH_USER SSH_NAME [command tokens…]`.
    UserAuth {
        /// `$1`.
        ssh_user: String,
        /// `$2`.
        ssh_name: String,
        /// The command line, tokenised (reference §7.1).
        tokens: Vec<String>,
    },
    /// `post-create APP` / `app-create APP`.
    AppCreated {
        /// The app.
        app: String,
    },
    /// `post-delete APP [IMAGE_TAG]` / `app-destroy APP`.
    AppDestroyed {
        /// The app.
        app: String,
    },
    /// `post-app-rename-setup OLD NEW` / `post-app-clone-setup OLD NEW`.
    RenameSetup {
        /// The old name.
        old: String,
        /// The new name.
        new: String,
        /// Clone rather than rename.
        clone: bool,
    },
    /// `post-app-rename OLD NEW` / `post-app-clone OLD NEW`.
    Renamed {
        /// The old name.
        old: String,
        /// The new name.
        new: String,
        /// Clone rather than rename.
        clone: bool,
    },
    /// `receive-app APP [REV]`.
    ReceiveApp {
        /// The app.
        app: String,
        /// The revision, if given.
        rev: Option<String>,
    },
    /// `post-extract APP TMP_WORK_DIR [REV]`.
    PostExtract {
        /// The app.
        app: String,
        /// The revision, if given.
        rev: Option<String>,
    },
    /// `deploy-source-set APP SOURCE_TYPE [METADATA…]`.
    DeploySourceSet {
        /// The app.
        app: String,
        /// `git-push`, `git-sync`, `docker-image`, `tar`, …
        source_type: String,
        /// Raw metadata arguments (redacted by the event layer).
        metadata: Vec<String>,
    },
    /// `post-deploy APP [INTERNAL_PORT] [INTERNAL_IP] [IMAGE_TAG]`.
    PostDeploy {
        /// The app.
        app: String,
        /// `$2` (empty in Dokku ≥ 0.3x).
        port: Option<String>,
        /// `$3` (empty in Dokku ≥ 0.3x).
        ip: Option<String>,
        /// `$4`.
        image_tag: Option<String>,
    },
    /// `builds-record-start APP BUILD_ID PID SOURCE`.
    BuildStart {
        /// The app.
        app: String,
        /// The build id.
        build_id: String,
        /// What started it (`git-hook`, `ps:rebuild`, …).
        source: Option<String>,
    },
    /// `builds-record-finalize APP BUILD_ID EXIT_CODE`.
    BuildFinalize {
        /// The app.
        app: String,
        /// The build id.
        build_id: String,
        /// The exit code as passed (usually an integer).
        exit_code: String,
    },
    /// `post-config-update APP ACTION [KEY…]`; `APP` empty or `--global` for global config.
    ConfigUpdate {
        /// The app, `None` for global config.
        app: Option<String>,
        /// `set`, `unset`, `clear`.
        action: String,
        /// Key names (anything after the first `=` is dropped here, never stored).
        keys: Vec<String>,
    },
    /// `post-domains-update APP [ACTION] [DOMAIN…]`.
    DomainsUpdate {
        /// The app.
        app: String,
        /// The action; `None` when Dokku passes none (after certs changes).
        action: Option<String>,
        /// The domains.
        domains: Vec<String>,
    },
    /// `post-proxy-ports-update APP ACTION [MAPPING…]`.
    PortsUpdate {
        /// The app.
        app: String,
        /// `add`, `clear`, `remove`, `set`.
        action: String,
        /// How many mappings were passed (never stored themselves).
        mapping_count: usize,
    },
    /// `post-certs-update APP` / `post-certs-remove APP`.
    Certs {
        /// The app.
        app: String,
        /// Removed rather than updated.
        removed: bool,
    },
    /// `scheduler-run SCHED APP ENV_COUNT [K=V…] -- CMD…` (or the old `SCHED APP CMD…`).
    SchedulerRun {
        /// The app.
        app: String,
        /// Names of the env entries (values are dropped here).
        env_keys: Vec<String>,
        /// The command.
        args: Vec<String>,
    },
    /// `scheduler-enter SCHED APP [TYPE | --container-id ID] [--] [CMD…]`.
    SchedulerEnter {
        /// The app.
        app: String,
        /// Everything after the app.
        args: Vec<String>,
    },
    /// `scheduler-post-run SCHED APP CONTAINER_ID [EXIT_CODE]`.
    SchedulerPostRun {
        /// The app.
        app: String,
        /// The container.
        container_id: String,
        /// `$4`, when Dokku passes it.
        exit_code: Option<String>,
    },
    /// `report [APP]`.
    Report,
}

fn arg(args: &[String], i: usize) -> Option<String> {
    args.get(i).filter(|s| !s.is_empty()).cloned()
}

fn required(args: &[String], i: usize, what: &'static str) -> Result<String, HookError> {
    arg(args, i).ok_or(HookError::Missing(what))
}

/// Converts argv to strings: invalid UTF-8 becomes U+FFFD rather than a failed hook.
pub fn lossy_args(args: impl IntoIterator<Item = OsString>) -> Vec<String> {
    args.into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

impl Hook {
    /// Parses a trigger's positional arguments.
    pub fn parse(trigger: Trigger, args: &[String]) -> Result<Hook, HookError> {
        let app = || required(args, 0, "app name");
        Ok(match trigger {
            Trigger::UserAuth => Hook::UserAuth {
                ssh_user: args.first().cloned().unwrap_or_default(),
                ssh_name: args.get(1).cloned().unwrap_or_default(),
                tokens: command_line::tokenise(args.get(2..).unwrap_or(&[])),
            },
            Trigger::PostCreate | Trigger::AppCreate => Hook::AppCreated { app: app()? },
            Trigger::PostDelete | Trigger::AppDestroy => Hook::AppDestroyed { app: app()? },
            Trigger::PostAppRenameSetup
            | Trigger::PostAppRename
            | Trigger::PostAppCloneSetup
            | Trigger::PostAppClone => {
                let old = required(args, 0, "old app name")?;
                let new = required(args, 1, "new app name")?;
                let clone = matches!(trigger, Trigger::PostAppCloneSetup | Trigger::PostAppClone);
                if matches!(
                    trigger,
                    Trigger::PostAppRenameSetup | Trigger::PostAppCloneSetup
                ) {
                    Hook::RenameSetup { old, new, clone }
                } else {
                    Hook::Renamed { old, new, clone }
                }
            }
            Trigger::ReceiveApp => Hook::ReceiveApp {
                app: app()?,
                rev: arg(args, 1),
            },
            Trigger::PostExtract => Hook::PostExtract {
                app: app()?,
                rev: arg(args, 2),
            },
            Trigger::DeploySourceSet => Hook::DeploySourceSet {
                app: app()?,
                source_type: required(args, 1, "source type")?,
                metadata: args.get(2..).unwrap_or(&[]).to_vec(),
            },
            Trigger::PostDeploy => Hook::PostDeploy {
                app: app()?,
                port: arg(args, 1),
                ip: arg(args, 2),
                image_tag: arg(args, 3),
            },
            Trigger::BuildsRecordStart => Hook::BuildStart {
                app: app()?,
                build_id: required(args, 1, "build id")?,
                source: arg(args, 3),
            },
            Trigger::BuildsRecordFinalize => Hook::BuildFinalize {
                app: app()?,
                build_id: required(args, 1, "build id")?,
                exit_code: required(args, 2, "exit code")?,
            },
            Trigger::PostConfigUpdate => {
                let first = args.first().map(String::as_str).unwrap_or("");
                let app = (!first.is_empty() && first != "--global").then(|| first.to_string());
                let action = required(args, 1, "config action")?;
                let keys = args
                    .get(2..)
                    .unwrap_or(&[])
                    .iter()
                    .map(|k| k.split('=').next().unwrap_or("").to_string())
                    .filter(|k| !k.is_empty())
                    .collect();
                Hook::ConfigUpdate { app, action, keys }
            }
            Trigger::PostDomainsUpdate => Hook::DomainsUpdate {
                app: app()?,
                action: arg(args, 1),
                domains: args.get(2..).unwrap_or(&[]).to_vec(),
            },
            Trigger::PostProxyPortsUpdate => Hook::PortsUpdate {
                app: app()?,
                action: required(args, 1, "ports action")?,
                mapping_count: args.len().saturating_sub(2),
            },
            Trigger::PostCertsUpdate | Trigger::PostCertsRemove => Hook::Certs {
                app: app()?,
                removed: trigger == Trigger::PostCertsRemove,
            },
            Trigger::SchedulerRun => {
                let app = required(args, 1, "app name")?;
                let rest = args.get(2..).unwrap_or(&[]);
                let (env_keys, args) = split_run_args(rest);
                Hook::SchedulerRun {
                    app,
                    env_keys,
                    args: command_line::restore_env_flags(&args),
                }
            }
            Trigger::SchedulerEnter => Hook::SchedulerEnter {
                app: required(args, 1, "app name")?,
                args: args.get(2..).unwrap_or(&[]).to_vec(),
            },
            Trigger::SchedulerPostRun => Hook::SchedulerPostRun {
                app: required(args, 1, "app name")?,
                container_id: required(args, 2, "container id")?,
                exit_code: arg(args, 3),
            },
            Trigger::Report => Hook::Report,
        })
    }

    /// The app a failure warning names (reference §13.1).
    pub fn warning_app(trigger: Trigger, args: &[String]) -> Option<String> {
        let i = match trigger {
            Trigger::UserAuth | Trigger::Report => return None,
            Trigger::SchedulerRun | Trigger::SchedulerEnter | Trigger::SchedulerPostRun => 1,
            _ => 0,
        };
        arg(args, i)
    }
}

/// Splits `scheduler-run`'s arguments after the app. Real Dokku (≥ 0.17) passes
/// `ENV_COUNT [K=V × ENV_COUNT] -- CMD…`: the count is skipped, only the env *names* are kept,
/// and the `--` is dropped. Anything else is the old shape, `CMD…`.
fn split_run_args(rest: &[String]) -> (Vec<String>, Vec<String>) {
    if let Some(n) = rest.first().and_then(|c| c.parse::<usize>().ok()) {
        if rest.len() > n + 1 && rest[n + 1] == "--" {
            let keys = rest[1..=n]
                .iter()
                .map(|kv| kv.split('=').next().unwrap_or("").to_string())
                .collect();
            return (keys, rest[n + 2..].to_vec());
        }
    }
    (Vec::new(), rest.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_round_trip() {
        for t in Trigger::ALL {
            assert_eq!(Trigger::from_name(t.name()), Some(*t));
        }
        assert_eq!(Trigger::from_name("user-auth-app"), None);
    }

    #[test]
    fn scheduler_run_real_shape_drops_count_values_and_separator() {
        let h = Hook::parse(
            Trigger::SchedulerRun,
            &s(&[
                "docker-local",
                "app",
                "2",
                "A=1",
                "B=x=y",
                "--",
                "ls",
                "-la",
            ]),
        )
        .unwrap();
        assert_eq!(
            h,
            Hook::SchedulerRun {
                app: "app".into(),
                env_keys: s(&["A", "B"]),
                args: s(&["ls", "-la"])
            }
        );
        let h = Hook::parse(
            Trigger::SchedulerRun,
            &s(&["docker-local", "app", "ls", "-lah"]),
        )
        .unwrap();
        assert_eq!(
            h,
            Hook::SchedulerRun {
                app: "app".into(),
                env_keys: vec![],
                args: s(&["ls", "-lah"])
            }
        );
        // cron: `SCHED APP 0 -- fields…`
        let h = Hook::parse(Trigger::SchedulerRun, &s(&["d", "app", "0", "--", "rake"])).unwrap();
        assert!(matches!(h, Hook::SchedulerRun { args, .. } if args == s(&["rake"])));
    }

    #[test]
    fn run_env_flags_blanked_by_dokku_are_restored() {
        // user-auth: `run APP "" K=V CMD` (Dokku blanks -e in place).
        let h = Hook::parse(
            Trigger::UserAuth,
            &s(&["dokku", "alice", "run", "app", "", "DB_PASS=x", "env"]),
        )
        .unwrap();
        assert!(matches!(h, Hook::UserAuth { tokens, .. }
            if tokens == s(&["run", "app", "-e", "DB_PASS=x", "env"])));
        let h = Hook::parse(
            Trigger::SchedulerRun,
            &s(&["docker-local", "app", "0", "--", "", "DB_PASS=x", "env"]),
        )
        .unwrap();
        assert!(matches!(h, Hook::SchedulerRun { args, .. }
            if args == s(&["-e", "DB_PASS=x", "env"])));
    }

    #[test]
    fn config_update_global_and_values_dropped() {
        for first in ["", "--global"] {
            let h =
                Hook::parse(Trigger::PostConfigUpdate, &s(&[first, "set", "A=secret"])).unwrap();
            assert_eq!(
                h,
                Hook::ConfigUpdate {
                    app: None,
                    action: "set".into(),
                    keys: s(&["A"])
                }
            );
        }
        assert_eq!(
            Hook::parse(Trigger::PostConfigUpdate, &s(&["app"])),
            Err(HookError::Missing("config action"))
        );
    }

    #[test]
    fn missing_app_is_an_error() {
        assert_eq!(
            Hook::parse(Trigger::PostDeploy, &[]),
            Err(HookError::Missing("app name"))
        );
        assert_eq!(
            Hook::parse(Trigger::PostAppRename, &s(&["old"])),
            Err(HookError::Missing("new app name"))
        );
    }
}
