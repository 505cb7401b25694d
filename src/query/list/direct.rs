//! A list query's filters applied to events directly, without an index: what the not-yet-indexed
//! tail and a filtered stream need per append. Building even a small in-memory tantivy index per
//! append (a term-dictionary builder per field) was most of `serve`'s cost under appends.
//!
//! Only queries without full text are answered here; they mean exactly what the index makes of
//! them (raw terms: whole-value equality; the actor is its label or its name; an action glob is
//! anchored, `*` and `?` never crossing a newline as the index's regex `.` does not; times are
//! inclusive). A property test checks this against the in-memory index on random events and
//! queries.

use crate::index;
use crate::record::Event;

use super::ListQuery;

/// Whether `q` can be answered without an index (no full text).
pub(super) fn can_match(q: &ListQuery) -> bool {
    q.text.is_none()
}

/// Whether `e` passes every filter of `q` (its full text ignored: see [`can_match`]).
pub(super) fn matches(e: &Event, q: &ListQuery) -> bool {
    let same =
        |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    same(&q.app, e.app.as_deref())
        && same(&q.category, Some(&e.category))
        && same(&q.classification, e.classification.as_deref())
        && same(&q.status, Some(&e.status))
        && same(&q.source_type, e.source_type.as_deref())
        && q.actor
            .as_deref()
            .is_none_or(|a| a == e.actor_label || e.actor_name.as_deref() == Some(a))
        && q.action.as_deref().is_none_or(|a| {
            if a.contains(['*', '?']) {
                glob(a, &e.action)
            } else {
                a == e.action
            }
        })
        && q.release
            .is_none_or(|n| index::release_number(e) == Some(n))
        && {
            let ts = index::epoch(&e.ts);
            q.since.is_none_or(|s| ts >= s) && q.until.is_none_or(|u| ts <= u)
        }
}

/// The positions of the events of `events` that match `q` (up to its limit), newest first by
/// (time, id), as the index orders them.
pub(super) fn search(events: &[Event], q: &ListQuery) -> Vec<usize> {
    let mut hits: Vec<usize> = (0..events.len())
        .filter(|&i| matches(&events[i], q))
        .collect();
    hits.sort_by_key(|&i| std::cmp::Reverse((index::epoch(&events[i].ts), events[i].id)));
    hits.truncate(q.limit);
    hits
}

/// `pattern` (`*`: any run, `?`: any one character, neither matching a newline) matches all of
/// `text`.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Classic two-pointer wildcard matching with one backtrack point.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == t[ti] || (p[pi] == '?' && t[ti] != '\n')) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            // The star takes one more character, unless that is a newline.
            if t[st] == '\n' {
                return false;
            }
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(i: usize, pick: &[u8; 9]) -> Event {
        let of = |k: usize, opts: &[&str]| opts[pick[k] as usize % opts.len()].to_string();
        let actor_label = of(
            5,
            &["ssh-key:alice", "unix-user:root", "dokku-system", "alice"],
        );
        let actor_name = match pick[6] % 3 {
            0 => None,
            1 => Some("alice".to_string()),
            _ => Some(actor_label.clone()),
        };
        let mut meta = serde_json::Map::new();
        if pick[7].is_multiple_of(3) {
            meta.insert("release".into(), (1 + pick[8] as u64 % 4).into());
        }
        let ts = format!("2026-04-08T20:0{}:{:02}Z", pick[8] % 3, pick[4] % 7);
        Event {
            id: i as u64 + 1,
            ts: ts.clone(),
            app: [
                None,
                Some("api".to_string()),
                Some("web".to_string()),
                Some(String::new()),
            ][pick[0] as usize % 4]
                .clone(),
            category: of(1, &["deploy", "config", "command"]),
            action: of(
                2,
                &[
                    "set",
                    "unset",
                    "finish",
                    "set-global",
                    "a\nset",
                    "s.t",
                    "run*",
                ],
            ),
            status: of(3, &["success", "failed"]),
            classification: [None, Some("source_deploy".to_string())][pick[4] as usize % 2].clone(),
            source_trigger: "t".into(),
            source_type: [None, Some("git-push".to_string())][pick[7] as usize % 2].clone(),
            image_tag: None,
            rev: None,
            actor_type: "user".into(),
            actor_name,
            actor_label,
            correlation_id: None,
            message: "m".into(),
            meta,
            created_at: ts,
        }
    }

    fn query(pick: &[u8; 10]) -> ListQuery {
        let opt = |k: usize, opts: &[&str]| -> Option<String> {
            let n = pick[k] as usize % (opts.len() + 1);
            (n < opts.len()).then(|| opts[n].to_string())
        };
        ListQuery {
            app: opt(0, &["api", "web", ""]),
            category: opt(1, &["deploy", "config"]),
            classification: opt(2, &["source_deploy"]),
            status: opt(3, &["success", "failed"]),
            actor: opt(4, &["alice", "ssh-key:alice", "dokku-system"]),
            action: opt(
                5,
                &["set", "*set*", "set*", "?et", "s.t", "*", "run*", "a*"],
            ),
            source_type: opt(6, &["git-push"]),
            release: [None, Some(1), Some(2)][pick[7] as usize % 3],
            since: [None, Some(crate::index::epoch("2026-04-08T20:01:00Z"))][pick[8] as usize % 2],
            until: [None, Some(crate::index::epoch("2026-04-08T20:01:03Z"))][pick[9] as usize % 2],
            text: None,
            limit: 1 + pick[9] as usize % 40,
        }
    }

    proptest! {
        /// The direct matcher answers as the in-memory index does: same events, same order,
        /// same cut at the limit.
        #[test]
        fn answers_as_the_index_does(
            picks in proptest::collection::vec(any::<[u8; 9]>(), 1..40),
            q in any::<[u8; 10]>(),
        ) {
            let events: Vec<Event> = picks.iter().enumerate().map(|(i, p)| event(i, p)).collect();
            let q = query(&q);
            let by_index = super::super::tail::RamIndex::build(&events)
                .unwrap()
                .search(&q, events.len())
                .unwrap();
            prop_assert_eq!(search(&events, &q), by_index, "{:?}", q);
        }
    }

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("*", "", true),
            ("set*", "set", true),
            ("set*", "setx", true),
            ("*set", "unset", true),
            ("?et", "set", true),
            ("?et", "et", false),
            ("s*t", "set", true),
            ("s*t", "sex", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            ("*", "a\nb", false),
            ("a?b", "a\nb", false),
            ("a.b", "axb", false),
            ("a.b", "a.b", true),
        ] {
            assert_eq!(glob(p, t), want, "{p:?} {t:?}");
        }
    }
}
