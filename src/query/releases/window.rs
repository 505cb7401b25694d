//! The newest releases of an app without its whole history: the rows listed plus a few more
//! for context, the earliest release of each revision or image among them found apart, and
//! descriptions from the index's columns wherever they say enough.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::*;

/// Deploy finishes read beyond the ones listed, so that the code in effect before the oldest
/// listed one is known (the rollback rule compares with it).
const CONTEXT_ROWS: usize = 64;

/// Deploy finishes read before a release shown by `releases:info`: enough to find the release
/// before it, the failed attempts in between and the code in effect, in nearly every history.
const INFO_ROWS: usize = 256;

/// The newest deploy finishes of the app (at most `want`, up to `until` if given), with the
/// source images of the image deploys among them.
struct Window {
    rows: Vec<Row>,
    images: HashMap<u64, String>,
    /// Fewer than `want` rows: nothing of the app's history comes before them.
    complete: bool,
}

fn window(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
    until: Option<i64>,
    want: usize,
) -> Result<Window, IndexError> {
    let q = ListQuery {
        app: Some(app.to_string()),
        category: Some("deploy".into()),
        action: Some("finish".into()),
        until,
        limit: want,
        ..Default::default()
    };
    let (rows, _) = list::run(store, data_dir, &q)?;
    let images = source_images(store, &rows)?;
    Ok(Window {
        complete: rows.len() < want,
        rows,
        images,
    })
}

/// What identifies the code of a release (see `annotate`).
fn key_of(r: &Row, images: &HashMap<u64, String>) -> Option<String> {
    let image_deploy = r.source_type.as_deref() == Some("docker-image");
    let image = images
        .get(&r.id)
        .map(String::as_str)
        .or(r.image_tag.as_deref().filter(|t| *t != "latest"));
    describe::code_key(r.rev.as_deref(), image, image_deploy)
}

/// The window annotated as if the whole history had been read: the earliest release of each
/// revision among its rows comes from the revisions' index terms ([`list::first_releases`]),
/// that of each image from the app's image deploys (few). Right for every row that has a
/// keyed release of the window below it (or for every row, when the window is complete).
fn annotate_window(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
    w: Window,
) -> Result<Vec<Annotated>, IndexError> {
    let Window {
        rows, mut images, ..
    } = w;
    if w.complete {
        return Ok(annotate(rows, &images, &HashMap::new()));
    }
    let keys: HashSet<String> = rows
        .iter()
        .filter(|r| is_release(r))
        .filter_map(|r| key_of(r, &images))
        .collect();
    let revs: HashSet<String> = keys
        .iter()
        .filter_map(|k| k.strip_prefix("rev:").map(str::to_string))
        .collect();
    let mut firsts: HashMap<String, u64> = list::first_releases(store, data_dir, app, &revs)?
        .into_iter()
        .map(|(rev, n)| (format!("rev:{rev}"), n))
        .collect();
    if keys.iter().any(|k| k.starts_with("image:")) {
        let image_rows = list::run_lean(
            store,
            data_dir,
            &ListQuery {
                app: Some(app.to_string()),
                category: Some("deploy".into()),
                action: Some("finish".into()),
                status: Some("success".into()),
                source_type: Some("docker-image".into()),
                ..Default::default()
            },
        )?;
        images.extend(source_images(store, &image_rows)?);
        for r in &image_rows {
            if let (Some(k), Some(n)) = (key_of(r, &images), r.release) {
                if keys.contains(&k) {
                    firsts
                        .entry(k)
                        .and_modify(|f| *f = (*f).min(n))
                        .or_insert(n);
                }
            }
        }
    }
    Ok(annotate(rows, &images, &firsts))
}

/// The newest `limit + CONTEXT_ROWS` deploy finishes of the app, annotated as if the whole
/// history had been read. `None` when the rows are not enough to decide (no release with a
/// revision or image among the context rows): the caller reads the whole history. The rows at
/// or before the first `limit` are right; the context may be filtered out by `since` only.
pub(super) fn newest_annotated(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
    limit: usize,
) -> Result<Option<Vec<Annotated>>, IndexError> {
    let w = window(
        store,
        data_dir,
        app,
        None,
        limit.saturating_add(CONTEXT_ROWS),
    )?;
    let keyed_context = w
        .rows
        .iter()
        .skip(limit)
        .any(|r| is_release(r) && r.release.is_some() && key_of(r, &w.images).is_some());
    if !w.complete && !keyed_context {
        return Ok(None);
    }
    annotate_window(store, data_dir, app, w).map(Some)
}

/// Release `n` of the app and up to `INFO_ROWS` deploy finishes before it, annotated as if the
/// whole history had been read, and the release's position among them. `None` when the release
/// is unknown or the rows are not enough to decide (no release with a revision below it): the
/// caller reads the whole history.
pub(super) fn around_release(
    store: &Store,
    data_dir: &std::path::Path,
    app: &str,
    n: u64,
) -> Result<Option<Vec<Annotated>>, IndexError> {
    let q = ListQuery {
        app: Some(app.to_string()),
        category: Some("deploy".into()),
        action: Some("finish".into()),
        status: Some("success".into()),
        release: Some(n),
        limit: 1,
        ..Default::default()
    };
    let Some(target) = list::run(store, data_dir, &q)?.0.pop() else {
        return Ok(None);
    };
    let w = window(store, data_dir, app, Some(target.ts), INFO_ROWS)?;
    let Some(at) = w.rows.iter().position(|r| r.id == target.id) else {
        return Ok(None);
    };
    let coded_below = w.rows[at + 1..]
        .iter()
        .any(|r| is_release(r) && r.rev.as_deref().is_some_and(|v| !v.is_empty()));
    if !w.complete && !coded_below {
        return Ok(None);
    }
    // The window ends at the release: which release is current, the app's newest says.
    let newest = ListQuery {
        release: None,
        limit: 1,
        ..q
    };
    let current = list::run(store, data_dir, &newest)?
        .0
        .first()
        .and_then(|r| r.release);
    let mut all = annotate_window(store, data_dir, app, w)?;
    for a in all.iter_mut() {
        a.current = a.row.release.is_some() && a.row.release == current;
    }
    Ok(Some(all))
}

/// Whether `a`'s description (and list line) needs the event read whole: a failed deploy (its
/// exit code), a release-only deploy, a rebuild or an image deploy (the command's words), or
/// one caused by a subcommand whose words the description uses. A push or a sync that is not a
/// rollback is "Deploy `<rev>`" from the columns alone.
pub(super) fn needs_event(a: &Annotated) -> bool {
    let r = &a.row;
    if !is_release(r) {
        return true;
    }
    if a.rollback_to.is_some() {
        return false;
    }
    r.classification.as_deref() != Some("source_deploy")
        || r.source_type.as_deref() == Some("docker-image")
        || r.rev.as_deref().is_none_or(str::is_empty)
        || r.triggered_by_subcommand
            .as_deref()
            .is_some_and(describe::uses_command_words)
}

/// The event as far as the index row knows it: every field a list line shows, and the one meta
/// key the description reads (`triggered_by_subcommand`).
pub(super) fn event_of_row(r: &Row) -> Event {
    let mut meta = Map::new();
    if let Some(s) = &r.triggered_by_subcommand {
        meta.insert("triggered_by_subcommand".into(), Value::from(s.as_str()));
    }
    let ts = chrono::DateTime::from_timestamp(r.ts, 0)
        .map(crate::timefmt::format_utc)
        .unwrap_or_default();
    Event {
        id: r.id,
        ts: ts.clone(),
        app: r.app.clone(),
        category: r.category.clone(),
        action: r.action.clone(),
        status: r.status.clone(),
        classification: r.classification.clone(),
        source_trigger: String::new(),
        source_type: r.source_type.clone(),
        image_tag: r.image_tag.clone(),
        rev: r.rev.clone(),
        actor_type: String::new(),
        actor_name: None,
        actor_label: r.actor_label.clone(),
        correlation_id: None,
        message: r.message.clone(),
        meta,
        created_at: ts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wherever `needs_event` says the row is enough, the row describes the deploy exactly as
    /// the whole event does.
    #[test]
    fn a_row_describes_what_it_claims_to() {
        let base: Event = serde_json::from_str(
            r#"{"id":9,"ts":"2026-04-01T10:00:00Z","app":"web","category":"deploy","action":"finish","status":"success","classification":"source_deploy","source_trigger":"post-deploy","source_type":"git-push","image_tag":"latest","rev":"aaaaaaa1111","actor_type":"user","actor_name":"alice","actor_label":"ssh-key:alice","correlation_id":"c1","message":"source deploy finished","meta":{"exit_code":1},"created_at":"2026-04-01T10:00:00Z"}"#,
        )
        .unwrap();
        let commands = [
            None,
            Some(("git:sync", "dokku git:sync web https://example.com/web.git")),
            Some(("ps:rebuild", "dokku ps:rebuild web")),
            Some(("ps:restart", "dokku ps:restart web")),
            Some(("ps:start", "dokku ps:start web")),
            Some(("ps:scale", "dokku ps:scale web web=2")),
            Some(("config:set", "dokku config:set web FOO=[REDACTED]")),
            Some(("config:unset", "dokku config:unset web FOO")),
            Some(("git:from-image", "dokku git:from-image web repo/x:1")),
            Some(("apps:rename", "dokku apps:rename old web")),
        ];
        let mut from_rows = 0;
        for status in ["success", "failed"] {
            for class in ["source_deploy", "release_only", "app_rebuild"] {
                for source in [Some("git-push"), Some("docker-image"), None] {
                    for rev in [Some("aaaaaaa1111"), None] {
                        for cmd in commands {
                            let mut e = base.clone();
                            e.status = status.into();
                            e.classification = Some(class.into());
                            e.source_type = source.map(str::to_string);
                            e.rev = rev.map(str::to_string);
                            if let Some((sub, text)) = cmd {
                                e.meta.insert("triggered_by_subcommand".into(), sub.into());
                                e.meta.insert("triggered_by_command".into(), text.into());
                            }
                            if class == "app_rebuild" {
                                e.meta.insert("caused_by".into(), "apps:rename".into());
                            }
                            let a = Annotated {
                                row: Row::from_event(&e),
                                rollback_to: None,
                                current: false,
                            };
                            if !needs_event(&a) {
                                from_rows += 1;
                                let stub = event_of_row(&a.row);
                                assert_eq!(describe(&stub, None), describe(&e, None), "{e:?}");
                                assert_eq!(release_of(&a, &stub), release_of(&a, &e), "{e:?}");
                            }
                        }
                    }
                }
            }
        }
        assert!(from_rows >= 5, "{from_rows}");
    }
}
