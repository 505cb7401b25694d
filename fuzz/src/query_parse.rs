//! `query_parse`: the text users type into queries — the time arguments (`timefmt`:
//! `parse_time_arg`, `parse_canonical`, `is_canonical_utc`, `format_utc`) and the `search`
//! query (`query::list::build_query`: the tantivy query parser over the full-text field, plus
//! the exact-term, action-glob and time-range clauses), run against a small in-memory index
//! built once per process with the real schema and documents (`index::document`).
//!
//! Input: 8 bytes of "now", 28 bytes that become two strings of canonical timestamp shape
//! (digits where the digits go, so the comparison property is reached), a flag byte, then the
//! rest split on NUL into the time argument, the search text, the action glob, the app and the
//! category.
//!
//! Properties:
//!
//! - nothing panics, and every function is deterministic;
//! - `is_canonical_utc(s)` ⇒ `parse_canonical(s)` is `Some`, `format_utc` of it gives back `s`,
//!   and `parse_time_arg(s)` gives the same instant; for two canonical strings, byte order is
//!   time order (the store and the raw `export` filter rely on it);
//! - a time `parse_time_arg` accepts formats, through `format_utc`, to a canonical string that
//!   parses back to the same second (years 0–9999, which is all a canonical string can name);
//!   a relative age `<N>s|m|h|d|w` gives exactly `now − N·unit`, so never a time after `now`;
//!   a date gives a UTC midnight; anything else it accepts is RFC 3339;
//! - `build_query` never panics: malformed search text is an `Err`, always the
//!   `IndexError::InvalidQuery` variant (the user's fault, never a fault of the index); plain
//!   words (letters and digits) are always accepted, and an action glob is refused only as too
//!   large (`InvalidQuery::Glob`, whose escaped pattern is valid regex syntax); an accepted query runs on the index
//!   without panicking and matches no more documents than there are.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use tantivy::collector::Count;
use tantivy::Index;

use dokku_audit::index::{self, Fields, IndexError, InvalidQuery};
use dokku_audit::query::list::{build_query, ListQuery};
use dokku_audit::timefmt::{
    format_utc, is_canonical_utc, parse_canonical, parse_time_arg, CANONICAL_LEN,
};

use crate::Bytes;

/// The fuzz target body.
pub fn query_parse(data: &[u8]) {
    let mut b = Bytes::new(data);
    let now = now_from(b.take(8));
    let a = canonical_shape(b.take(14));
    let c = canonical_shape(b.take(14));
    let flags = b.u8();
    let rest = b.rest();
    let mut parts = rest.split(|x| *x == 0).map(String::from_utf8_lossy);
    let time_arg = parts.next().unwrap_or_default();
    let text = parts.next().unwrap_or_default();
    let action = parts.next().unwrap_or_default();
    let app = parts.next().unwrap_or_default();
    let category = parts.next().unwrap_or_default();

    check_canonical(&a, now);
    check_canonical(&c, now);
    if is_canonical_utc(&a) && is_canonical_utc(&c) {
        let (ta, tc) = (parse_canonical(&a).unwrap(), parse_canonical(&c).unwrap());
        assert_eq!(
            a.cmp(&c),
            ta.cmp(&tc),
            "byte order is not time order: {a} {c}"
        );
    }
    check_canonical(&time_arg, now);
    let since = check_time_arg(&time_arg, now);

    let q = ListQuery {
        app: (flags & 1 != 0).then(|| app.to_string()),
        category: (flags & 2 != 0).then(|| category.to_string()),
        action: (flags & 4 != 0).then(|| action.to_string()),
        since: since.filter(|_| flags & 8 != 0).map(|t| t.timestamp()),
        until: (flags & 16 != 0).then(|| now.timestamp()),
        text: Some(text.to_string()),
        limit: 20,
        ..Default::default()
    };
    check_query(&q);
    if flags & 32 != 0 {
        // The same text as plain lower-case words only (no `AND`/`OR`/`NOT` operators): always
        // a valid query.
        let words: String = text
            .chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() {
                    ch.to_ascii_lowercase()
                } else {
                    ' '
                }
            })
            .collect();
        let plain = ListQuery {
            text: Some(words),
            action: None,
            ..q
        };
        assert!(check_query(&plain), "plain words refused: {:?}", plain.text);
    }
}

/// An instant from 8 bytes, within chrono's range and mostly within years 0–9999.
fn now_from(bytes: &[u8]) -> DateTime<Utc> {
    let mut buf = [0u8; 8];
    buf[..bytes.len()].copy_from_slice(bytes);
    let v = u64::from_le_bytes(buf);
    // 0 .. 253402300799 is 0000-01-01 .. 9999-12-31 (shifted from the Unix epoch).
    let secs = (v % 253_402_300_800) as i64 - 62_167_219_200;
    Utc.timestamp_opt(secs, 0).single().expect("in range")
}

/// `YYYY-MM-DDTHH:MM:SSZ` with each digit from one input byte (and a byte's high bit sometimes
/// breaking the shape), so that both well-formed and near-miss strings are common.
fn canonical_shape(bytes: &[u8]) -> String {
    let mut it = bytes.iter().copied().chain(std::iter::repeat(0));
    let mut s = String::with_capacity(CANONICAL_LEN);
    for (i, sep) in "####-##-##T##:##:##Z".chars().enumerate() {
        if sep != '#' {
            s.push(sep);
            continue;
        }
        let x = it.next().unwrap_or(0);
        s.push(if x >= 0xF8 && i > 0 {
            ['x', ' ', '-', '9'][usize::from(x & 3)]
        } else {
            char::from(b'0' + x % 10)
        });
    }
    s
}

fn check_canonical(s: &str, now: DateTime<Utc>) {
    let canonical = is_canonical_utc(s);
    assert_eq!(canonical, is_canonical_utc(s));
    let parsed = parse_canonical(s);
    assert_eq!(parsed, parse_canonical(s));
    if canonical {
        let t = parsed.expect("canonical but unparseable");
        assert_eq!(format_utc(t), s, "canonical string does not round-trip");
        assert_eq!(parse_time_arg(s, now), Ok(t));
    }
    if let Some(t) = parsed {
        // Anything parse_canonical reads is an instant format_utc can write back (maybe not
        // the same bytes: an offset, a fraction).
        let f = format_utc(t);
        if (0..=9999).contains(&chrono::Datelike::year(&t)) {
            assert!(is_canonical_utc(&f), "{s:?} formats as {f:?}");
            let back = parse_canonical(&f).expect("canonical parses");
            assert_eq!(
                back.timestamp(),
                t.timestamp(),
                "{s:?} → {f:?}: second lost"
            );
        }
    }
}

fn check_time_arg(s: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let r = parse_time_arg(s, now);
    assert_eq!(r, parse_time_arg(s, now), "not deterministic");
    let t = match r {
        Ok(t) => t,
        Err(e) => {
            assert_eq!(e.0, s, "the error does not name the argument");
            return None;
        }
    };
    let f = format_utc(t);
    if (0..=9999).contains(&chrono::Datelike::year(&t)) {
        assert!(is_canonical_utc(&f), "{s:?} → {f:?} is not canonical");
        let back = parse_canonical(&f).expect("canonical parses");
        assert_eq!(back.timestamp(), t.timestamp(), "{s:?}: second lost");
    }
    let trimmed = s.trim();
    if let Some(age) = relative_age(trimmed) {
        assert!(t <= now, "{s:?}: age in the future");
        assert_eq!(now - t, age, "{s:?}: wrong age");
    } else if let Ok(d) = NaiveDate::parse_from_str(trimmed, "%Y-%m-%d") {
        assert_eq!(t, Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap()));
    } else {
        let rfc = DateTime::parse_from_rfc3339(trimmed).expect("accepted, so RFC 3339");
        assert_eq!(t, rfc.with_timezone(&Utc));
    }
    Some(t)
}

/// `<digits><unit>` as a duration, spelled out independently of `parse_time_arg`.
fn relative_age(s: &str) -> Option<Duration> {
    let unit = s.chars().last()?;
    let digits = &s[..s.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    Duration::try_seconds(n.checked_mul(per)?)
}

struct Fixture {
    index: Index,
    fields: Fields,
    reader: tantivy::IndexReader,
    docs: usize,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let (schema, fields) = index::schema();
        let index = Index::create_in_ram(schema);
        let mut w: tantivy::IndexWriter = index
            .writer_with_num_threads(1, 15_000_000)
            .expect("writer");
        let events = [
            (
                1,
                "2026-04-08T20:00:00Z",
                "myapp",
                "deploy",
                "finish",
                "deployed rev abc123",
            ),
            (
                2,
                "2026-04-08T20:01:00Z",
                "other",
                "config",
                "set",
                "config set: SECRET_KEY",
            ),
            (
                3,
                "1999-12-31T23:59:59Z",
                "my app",
                "app",
                "create",
                "créé l'app « x »",
            ),
        ];
        for (id, ts, app, category, action, message) in events {
            let e: dokku_audit::record::Event = serde_json::from_value(serde_json::json!({
                "id": id, "ts": ts, "app": app, "category": category, "action": action,
                "status": "success", "classification": null, "source_trigger": "post-deploy",
                "source_type": "git-push", "image_tag": null, "rev": "abc123",
                "actor_type": "user", "actor_name": "alice", "actor_label": "ssh-user:alice",
                "correlation_id": null, "message": message,
                "meta": {"keys": ["SECRET_KEY"], "command": "dokku config:set myapp"},
                "created_at": ts,
            }))
            .expect("event");
            w.add_document(index::document(&fields, &e, 1, id * 100))
                .expect("add");
        }
        w.commit().expect("commit");
        let reader = index.reader().expect("reader");
        Fixture {
            index,
            fields,
            reader,
            docs: events.len(),
        }
    })
}

/// Builds and runs the query; whether it was accepted.
fn check_query(q: &ListQuery) -> bool {
    let f = fixture();
    let built = build_query(&f.index, &f.fields, q);
    let again = build_query(&f.index, &f.fields, q);
    match (&built, &again) {
        (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "not deterministic"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "not deterministic"),
        _ => panic!("build_query accepted and refused the same query"),
    }
    match &built {
        // Every refusal is the user's query, never a fault of the index.
        Err(e) => assert!(
            matches!(e, IndexError::InvalidQuery(_)),
            "a refused query is not an InvalidQuery: {e:?}"
        ),
        Ok(_) => {}
    }
    if let (Some(action), Err(IndexError::InvalidQuery(e))) = (&q.action, &built) {
        // An action glob is escaped into a regex: no glob is a syntax error. A glob too large
        // for tantivy's regex automaton (over its state limit) is a fair refusal (a 400 in
        // `serve`): the `Glob` variant, whose pattern the regex parser accepts.
        let only_text_bad = build_query(
            &f.index,
            &f.fields,
            &ListQuery {
                action: None,
                ..q.clone()
            },
        )
        .is_err();
        let too_large = match e {
            InvalidQuery::Glob { glob, pattern, .. } => {
                assert_eq!(glob, action);
                assert!(
                    regex_syntax::Parser::new().parse(pattern).is_ok(),
                    "action glob {action:?} escaped into an invalid pattern {pattern:?}"
                );
                true
            }
            _ => false,
        };
        assert!(
            only_text_bad || too_large,
            "action glob {action:?} refused: {e}"
        );
    }
    match built {
        Ok(query) => {
            let n = f
                .reader
                .searcher()
                .search(&*query, &Count)
                .expect("an accepted query runs");
            assert!(n <= f.docs);
            true
        }
        Err(_) => false,
    }
}
