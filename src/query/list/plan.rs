//! From a list query to a tantivy query: filters, globs, full text, and the checks that a
//! query can run.

use std::ops::Bound;

use tantivy::query::{
    AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{Index, Term};

use crate::index::{self, Fields, IndexError, InvalidQuery};

use super::ts_filter::TsBounded;
use super::*;

pub(super) fn glob_to_regex(glob: &str) -> String {
    let mut re = String::new();
    for c in glob.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            // Only the regex syntax's meta characters are escaped: escaping anything else (a
            // control character, `→`, U+FFFD) is itself a syntax error (found by the
            // `query_parse` fuzz target).
            c if "\\.+*?()|[]{}^$#&-~".contains(c) => {
                re.push('\\');
                re.push(c);
            }
            c => re.push(c),
        }
    }
    re
}

/// The tantivy query for a list query.
pub fn build_query(index: &Index, f: &Fields, q: &ListQuery) -> Result<Box<dyn Query>, IndexError> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    let term = |field, v: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(
            Term::from_field_text(field, v),
            IndexRecordOption::Basic,
        ))
    };
    for (field, v) in [
        (f.app, &q.app),
        (f.category, &q.category),
        (f.classification, &q.classification),
        (f.status, &q.status),
        (f.actor, &q.actor),
        (f.source_type, &q.source_type),
    ] {
        if let Some(v) = v {
            clauses.push((Occur::Must, term(field, v)));
        }
    }
    if let Some(n) = q.release {
        let term = Term::from_field_u64(f.release, n);
        clauses.push((
            Occur::Must,
            Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
        ));
    }
    if let Some(a) = &q.action {
        if a.contains(['*', '?']) {
            let pattern = glob_to_regex(a);
            let re = RegexQuery::from_pattern(&pattern, f.action).map_err(|source| {
                InvalidQuery::Glob {
                    glob: a.clone(),
                    pattern,
                    source,
                }
            })?;
            clauses.push((Occur::Must, Box::new(re)));
        } else {
            clauses.push((Occur::Must, term(f.action, a)));
        }
    }
    if let Some(text) = &q.text {
        let mut parser = QueryParser::for_index(index, vec![f.text]);
        parser.set_conjunction_by_default();
        let parsed = parse_text(&parser, text)?;
        // Some queries the parser accepts only fail when run (`<unknown field>:*` becomes an
        // exists query that looks its field up late): check them now, against the schema, so a
        // bad query is always a parse-time error. Found by the query_parse fuzz target.
        check_runnable(&*parsed, &index.schema(), text)?;
        clauses.push((Occur::Must, parsed));
    }
    let bounded = q.since.is_some() || q.until.is_some();
    Ok(match clauses.len() {
        0 if bounded => {
            // Nothing smaller to filter: the range on the `ts` column.
            let lo = q.since.map_or(Bound::Unbounded, |s| {
                Bound::Included(Term::from_field_i64(f.ts, s))
            });
            let hi = q.until.map_or(Bound::Unbounded, |u| {
                Bound::Included(Term::from_field_i64(f.ts, u))
            });
            Box::new(RangeQuery::new(lo, hi))
        }
        0 => Box::new(AllQuery),
        _ if bounded => Box::new(TsBounded {
            inner: Box::new(BooleanQuery::new(clauses)),
            lo: q.since.unwrap_or(i64::MIN),
            hi: q.until.unwrap_or(i64::MAX),
        }),
        _ => Box::new(BooleanQuery::new(clauses)),
    })
}

/// Checks that a list query can run, against the schema alone (no index is read): an
/// invalid query is the user's mistake whatever state the index is in.
pub fn check_query(q: &ListQuery) -> Result<(), IndexError> {
    let (schema, fields) = index::schema();
    build_query(&Index::create_in_ram(schema), &fields, q).map(|_| ())
}

/// Checks a full-text query without running it: the parser's and the schema's verdict.
pub fn check_text(text: &str) -> Result<(), InvalidQuery> {
    let (schema, fields) = index::schema();
    let ram = Index::create_in_ram(schema);
    let mut parser = QueryParser::for_index(&ram, vec![fields.text]);
    parser.set_conjunction_by_default();
    let parsed = parse_text(&parser, text)?;
    check_runnable(&*parsed, &ram.schema(), text)
}

fn parse_text(parser: &QueryParser, text: &str) -> Result<Box<dyn Query>, InvalidQuery> {
    parser
        .parse_query(text)
        .map_err(|source| InvalidQuery::Syntax {
            query: text.to_string(),
            source,
        })
}

/// A parsed query can be turned into a weight without scoring (what running it does first).
fn check_runnable(
    query: &dyn Query,
    schema: &tantivy::schema::Schema,
    text: &str,
) -> Result<(), InvalidQuery> {
    query
        .weight(tantivy::query::EnableScoring::disabled_from_schema(schema))
        .map(|_| ())
        .map_err(|source| InvalidQuery::Unrunnable {
            query: text.to_string(),
            source,
        })
}
