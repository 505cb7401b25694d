//! One release in detail: the event, what caused it, how long its build took, what changed in
//! the app's config since the release before, the domains and ports in effect, the failed
//! attempts in between, and how to deploy its code again on the host (printed, never run).

use serde::Serialize;
use serde_json::Value;

use super::describe::{meta_keys, redeploy};
use super::*;

/// How to go back to a release.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Redeploy {
    /// The command to run.
    pub command: String,
    /// What must hold for it to work.
    pub caveat: String,
}

/// One release in detail.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReleaseInfo {
    /// The list line's fields.
    #[serde(flatten)]
    pub release: Release,
    /// The (redacted) command that caused it, when known.
    pub command: Option<String>,
    /// Seconds from the source arriving (the deploy `receive` of the same operation) to the
    /// deploy finishing, when the trail has both.
    pub build_seconds: Option<i64>,
    /// Config key names set, changed or unset between the previous release and this one.
    pub config_keys_changed: Vec<String>,
    /// Domains in effect (the app's latest domains event up to the release), if recorded.
    pub domains: Option<Vec<String>>,
    /// Port mappings in effect (the app's latest ports event up to the release), if recorded.
    pub ports: Option<Vec<String>>,
    /// Failed deploys since the previous release.
    pub failed_attempts: Vec<Release>,
    /// How to deploy this release's code again.
    pub redeploy: Redeploy,
    /// The release event, whole.
    pub event: Value,
}

/// The release `selector` of `app` in detail.
pub fn info(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
    selector: Selector,
) -> Result<ReleaseInfo, ReleasesError> {
    let around = match selector {
        Selector::Version(n) => window::around_release(store, data_dir, app, n)?,
        Selector::Id(_) => None,
    };
    let all = match around {
        Some(all) => all,
        None => {
            let rows = deploy_rows(store, data_dir, app)?;
            if rows.is_empty() {
                return Err(ReleasesError::NoReleases(app.to_string()));
            }
            let images = source_images(store, &rows)?;
            annotate(rows, &images, &std::collections::HashMap::new())
        }
    };
    let at = all
        .iter()
        .position(|a| match selector {
            Selector::Version(n) => a.row.release == Some(n) && is_release(&a.row),
            Selector::Id(id) => a.row.id == id,
        })
        .ok_or_else(|| ReleasesError::UnknownRelease {
            app: app.to_string(),
            selector: match selector {
                Selector::Version(n) => format!("v{n}"),
                Selector::Id(id) => format!("id:{id}"),
            },
        })?;
    // Newest first: the previous release is the first release after `at`.
    let previous = all[at + 1..].iter().find(|a| is_release(&a.row));
    let failed: Vec<Annotated> = all[at + 1..]
        .iter()
        .take_while(|a| !is_release(&a.row))
        .cloned()
        .collect();
    let target = all[at].clone();
    // The code in effect at this release: its own, else the newest release before it with a
    // revision (a restart or a config change deploys the code already there).
    let code_row = all[at..]
        .iter()
        .find(|a| is_release(&a.row) && a.row.rev.as_deref().is_some_and(|r| !r.is_empty()))
        .filter(|a| a.row.id != all[at].row.id)
        .cloned();
    let (lo_id, lo_ts) = previous.map_or((0, None), |p| (p.row.id, Some(p.row.ts)));
    let (hi_id, hi_ts) = (target.row.id, target.row.ts);
    let mut whole = with_events(store, vec![target])?;
    let Some((target, stored)) = whole.pop() else {
        return Err(ReleasesError::UnknownRelease {
            app: app.to_string(),
            selector: format!("id:{hi_id}"),
        });
    };
    let mut enriched = [stored.clone()];
    enrich(store, data_dir, app, &mut enriched)?;
    let [event] = enriched;
    let failed_attempts = with_events(store, failed)?
        .iter()
        .map(|(a, e)| release_of(a, e))
        .collect();
    let near = |category: &str, action: Option<&str>, since: Option<i64>, limit: usize| {
        let q = ListQuery {
            app: Some(app.to_string()),
            category: Some(category.into()),
            action: action.map(str::to_string),
            since,
            until: Some(hi_ts),
            limit,
            ..Default::default()
        };
        let (rows, _) = list::run(store, data_dir, &q)?;
        let rows: Vec<Row> = rows.into_iter().filter(|r| r.id < hi_id).collect();
        list::full_events(store, &rows)
    };
    let mut keys: Vec<String> = near("config", None, lo_ts, 1000)?
        .iter()
        .filter(|e| e.id > lo_id)
        .flat_map(config_key_names)
        .collect();
    keys.sort();
    keys.dedup();
    let latest_list = |category: &str, after: &str, plain: &str| -> Result<_, IndexError> {
        Ok(near(category, None, None, 20)?
            .first()
            .and_then(|e| string_list(e, after, plain)))
    };
    let domains = latest_list("domains", "domains_after", "domains")?;
    let ports = latest_list("ports", "ports_after", "ports_after")?;
    let build_seconds = event.correlation_id.as_ref().and_then(|c| {
        let received = near("deploy", Some("receive"), Some(hi_ts - 86_400), 50).ok()?;
        received
            .iter()
            .find(|e| e.correlation_id.as_ref() == Some(c))
            .map(|e| hi_ts - crate::index::epoch(&e.ts))
    });
    let (command, mut caveat) = match code_row.map(|c| with_events(store, vec![c])).transpose()? {
        Some(mut v) => match v.pop() {
            Some((_, mut code)) => {
                let mut one = [code.clone()];
                enrich(store, data_dir, app, &mut one)?;
                [code] = one;
                redeploy(app, &code)
            }
            None => redeploy(app, &event),
        },
        None => redeploy(app, &event),
    };
    if event.rev.is_none() {
        caveat.push_str("; this release changed no code: the command deploys the code it ran, not its config or scale");
    }
    Ok(ReleaseInfo {
        release: release_of(&target, &event),
        command: event
            .meta
            .get("triggered_by_command")
            .and_then(Value::as_str)
            .map(str::to_string),
        build_seconds,
        config_keys_changed: keys,
        domains,
        ports,
        failed_attempts,
        redeploy: Redeploy { command, caveat },
        event: serde_json::from_slice(&stored.to_json_bytes()).unwrap_or(Value::Null),
    })
}

/// The key names a config event names: `meta.key_changes`'s keys, else `meta.keys`.
fn config_key_names(e: &Event) -> Vec<String> {
    match e.meta.get("key_changes").and_then(Value::as_object) {
        Some(m) if !m.is_empty() => m.keys().cloned().collect(),
        _ => meta_keys(e),
    }
}

/// A list of strings in `meta[after]` (else `meta[plain]`; empty after a `clear`).
fn string_list(e: &Event, after: &str, plain: &str) -> Option<Vec<String>> {
    let list = |k: &str| {
        e.meta.get(k).and_then(Value::as_array).map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
    };
    if e.action == "clear" {
        return Some(Vec::new());
    }
    list(after).or_else(|| list(plain))
}
