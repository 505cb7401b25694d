//! Deploys: pending deploys opened by `receive-app`/`deploy-source-set`/`post-extract`,
//! finished by `post-deploy` (source deploy or release-only), failures and build records.

use super::*;

impl Capture<'_> {
    /// The source type a `user-auth` context implies (reference: git push; extended per
    /// docs/capture.md).
    pub(super) fn inferred_source_type(via: Option<&str>) -> Option<String> {
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
    pub(super) fn take_pending(&mut self, app: &str) -> Option<PendingDeploy> {
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

    pub(super) fn upsert_pending(
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

    /// The command whose rebuild this deploy is (`apps:rename`, `apps:clone`), if any.
    fn rebuild_cause(&self) -> Option<String> {
        self.command_subcommand()
            .filter(|s| matches!(*s, "apps:rename" | "apps:clone"))
            .map(str::to_string)
    }

    pub(super) fn receive_app(&mut self, app: &str, rev: Option<&str>) -> Built {
        if let Some(cause) = self.rebuild_cause() {
            // Not received source: the renamed/cloned app is rebuilt from what it had.
            self.upsert_pending(
                app,
                None,
                false,
                rev,
                obj(vec![("rebuild_of", cause.into())]),
            );
            return Built::default();
        }
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

    pub(super) fn post_extract(&mut self, app: &str, rev: Option<&str>) {
        let who = self.follow_on(app, "deploy-extract");
        let inferred = Self::inferred_source_type(who.via.as_deref());
        // The context's actor is not lost: a later post-deploy of the same operation takes the
        // `deploy-finish` context, stored by the same command.
        // An inferred type only fills a gap: deploy-source-set's explicit type wins.
        self.upsert_pending(app, inferred, false, rev, Map::new());
    }

    pub(super) fn deploy_source_set(
        &mut self,
        app: &str,
        source_type: &str,
        metadata: &[String],
    ) -> Built {
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

    pub(super) fn post_deploy(
        &mut self,
        app: &str,
        port: Option<&str>,
        ip: Option<&str>,
        image_tag: Option<&str>,
    ) -> Built {
        let who = self.follow_on(app, "deploy-finish");
        let pending = self.take_pending(app);
        let previous = self.state.apps.get(app).and_then(|m| m.last_finish.clone());
        let cause = self.rebuild_cause();
        let rebuild_message;
        let (classification, message) = match (&pending, &cause) {
            (_, Some(c)) => {
                rebuild_message = format!("app rebuilt by {c}");
                ("app_rebuild", rebuild_message.as_str())
            }
            (Some(_), None) => ("source_deploy", "source deploy finished"),
            (None, None) => ("release_only", "release-only deploy finished"),
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
        if let Some(c) = &cause {
            meta.insert("caused_by".into(), c.clone().into());
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

    pub(super) fn build_finalize(&mut self, app: &str, build_id: &str, exit_code: &str) -> Built {
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
}
