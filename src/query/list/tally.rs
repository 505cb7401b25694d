//! Counting what matches a list query instead of listing it: how many events per app,
//! category, actor and status (the page's filter choices), and per day (its activity chart).
//!
//! One pass over the matching documents of the committed index with a collector that reads
//! the fast columns (term ordinals per segment, turned into strings once per segment), plus the
//! not-yet-indexed tail counted from its rows: the same two halves, cut at the same high-water
//! mark, as [`super::count_matches`], so a tally always adds up to the total of `/api/events`.

use std::collections::BTreeMap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};

use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

use super::*;

/// Events, deploys and failed deploys of one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCount {
    /// Every matching event.
    pub events: u64,
    /// `deploy`/`finish` events (successful or not).
    pub deploys: u64,
    /// `deploy`/`finish` events whose status is not `success`.
    pub failed: u64,
}

/// The counts of the events matching a query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Events per app (events without an app are not counted here).
    pub apps: BTreeMap<String, u64>,
    /// Events per category.
    pub categories: BTreeMap<String, u64>,
    /// Events per actor label.
    pub actors: BTreeMap<String, u64>,
    /// Events per status.
    pub statuses: BTreeMap<String, u64>,
    /// Per UTC day (days since the epoch).
    pub days: BTreeMap<i64, DayCount>,
}

/// The UTC day (days since 1970-01-01) of epoch seconds.
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(86_400)
}

impl Tally {
    fn add_event(
        &mut self,
        app: Option<&str>,
        category: &str,
        action: &str,
        actor: &str,
        status: &str,
        ts: i64,
    ) {
        let bump = |m: &mut BTreeMap<String, u64>, k: &str| {
            if let Some(n) = m.get_mut(k) {
                *n += 1;
            } else {
                m.insert(k.to_string(), 1);
            }
        };
        if let Some(a) = app {
            bump(&mut self.apps, a);
        }
        bump(&mut self.categories, category);
        bump(&mut self.actors, actor);
        bump(&mut self.statuses, status);
        let d = self.days.entry(day_of(ts)).or_default();
        d.events += 1;
        if category == "deploy" && action == "finish" {
            d.deploys += 1;
            if status != "success" {
                d.failed += 1;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        for (mine, theirs) in [
            (&mut self.apps, other.apps),
            (&mut self.categories, other.categories),
            (&mut self.actors, other.actors),
            (&mut self.statuses, other.statuses),
        ] {
            for (k, n) in theirs {
                *mine.entry(k).or_default() += n;
            }
        }
        for (day, c) in other.days {
            let d = self.days.entry(day).or_default();
            d.events += c.events;
            d.deploys += c.deploys;
            d.failed += c.failed;
        }
    }
}

/// Counts the events matching `q` (its limit unused): the committed index up to its
/// high-water mark, plus the tail after it.
pub fn tally(
    store: &Store,
    data_dir: &std::path::Path,
    q: &ListQuery,
) -> Result<Tally, IndexError> {
    check_query(q)?;
    store.check_readable()?;
    let (mut counted, mark) = match EventIndex::open_for_query(data_dir, store) {
        Ok(Some(index)) => match tally_indexed(&index, q) {
            Ok(t) => t,
            // No reader on a read-only data dir (see `run`): count the segments alone.
            Err(e) if e.is_read_only() => (Tally::default(), index::Mark::default()),
            Err(e) => return Err(e),
        },
        Ok(None) => (Tally::default(), index::Mark::default()),
        Err(e) if e.is_read_only() => (Tally::default(), index::Mark::default()),
        Err(e) => return Err(e),
    };
    let mut all = q.clone();
    all.limit = usize::MAX;
    let (tail, _) = search_tail(store, mark, &all)?;
    for r in &tail {
        counted.add_event(
            r.app.as_deref(),
            &r.category,
            &r.action,
            &r.actor_label,
            &r.status,
            r.ts,
        );
    }
    Ok(counted)
}

fn tally_indexed(index: &EventIndex, q: &ListQuery) -> Result<(Tally, index::Mark), IndexError> {
    let mark = index::high_water_mark(&index.index);
    let reader = manual_reader(index)?;
    let query = up_to_mark(index, q, mark)?;
    let t = reader
        .searcher()
        .search(&query, &TallyCollector)
        .map_err(index.fault())?;
    Ok((t, mark))
}

struct TallyCollector;

/// Per-ordinal counts of one string column of one segment.
struct OrdCounts {
    col: Option<StrColumn>,
    counts: Vec<u64>,
}

impl OrdCounts {
    fn new(col: Option<StrColumn>) -> OrdCounts {
        let n = col.as_ref().map_or(0, |c| c.num_terms());
        OrdCounts {
            col,
            counts: vec![0; n],
        }
    }

    fn ord(&self, doc: DocId) -> Option<u64> {
        self.col.as_ref()?.ords().first(doc)
    }

    fn count(&mut self, doc: DocId) {
        if let Some(o) = self.ord(doc) {
            if let Some(n) = self.counts.get_mut(o as usize) {
                *n += 1;
            }
        }
    }

    /// The ordinal of a value in this segment's dictionary.
    fn ord_of(&self, v: &str) -> Option<u64> {
        self.col.as_ref()?.dictionary().term_ord(v).ok().flatten()
    }

    fn into_map(self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let Some(col) = self.col else { return out };
        let mut buf = String::new();
        for (ord, n) in self.counts.into_iter().enumerate() {
            if n > 0 {
                buf.clear();
                if col.ord_to_str(ord as u64, &mut buf).unwrap_or(false) {
                    out.insert(buf.clone(), n);
                }
            }
        }
        out
    }
}

struct SegmentTally {
    ts: Column<i64>,
    app: OrdCounts,
    category: OrdCounts,
    actor: OrdCounts,
    status: OrdCounts,
    action: Option<Column<u64>>,
    /// Ordinals of `deploy` (category), `finish` (action), `success` (status) in this segment.
    deploy: Option<u64>,
    finish: Option<u64>,
    success: Option<u64>,
    /// Per day, in the order met: documents come mostly in time order, so the day of a
    /// document is nearly always the last one (no hashing per document).
    days: Vec<(i64, DayCount)>,
}

impl Collector for TallyCollector {
    type Fruit = Tally;
    type Child = SegmentTally;

    fn for_segment(
        &self,
        _ord: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentTally> {
        let ff = segment.fast_fields();
        let action = ff.str("action")?;
        let finish = action
            .as_ref()
            .and_then(|c| c.dictionary().term_ord("finish").ok().flatten());
        let category = OrdCounts::new(ff.str("category")?);
        let status = OrdCounts::new(ff.str("status")?);
        Ok(SegmentTally {
            ts: ff.i64("ts")?,
            app: OrdCounts::new(ff.str("app")?),
            deploy: category.ord_of("deploy"),
            success: status.ord_of("success"),
            category,
            actor: OrdCounts::new(ff.str("actor_label")?),
            status,
            action: action.map(|c| c.ords().clone()),
            finish,
            days: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Tally>) -> tantivy::Result<Tally> {
        let mut all = Tally::default();
        for t in fruits {
            all.merge(t);
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentTally {
    type Fruit = Tally;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.app.count(doc);
        self.category.count(doc);
        self.actor.count(doc);
        self.status.count(doc);
        let day = day_of(self.ts.first(doc).unwrap_or(0));
        let at = match self.days.iter().rposition(|(d, _)| *d == day) {
            Some(i) => i,
            None => {
                self.days.push((day, DayCount::default()));
                self.days.len() - 1
            }
        };
        let d = &mut self.days[at].1;
        d.events += 1;
        let is = |want: Option<u64>, got: Option<u64>| want.is_some() && want == got;
        let action = self.action.as_ref().and_then(|c| c.first(doc));
        if is(self.deploy, self.category.ord(doc)) && is(self.finish, action) {
            d.deploys += 1;
            if !is(self.success, self.status.ord(doc)) {
                d.failed += 1;
            }
        }
    }

    fn harvest(self) -> Tally {
        Tally {
            apps: self.app.into_map(),
            categories: self.category.into_map(),
            actors: self.actor.into_map(),
            statuses: self.status.into_map(),
            days: self
                .days
                .into_iter()
                .fold(BTreeMap::new(), |mut m, (day, c)| {
                    let d: &mut DayCount = m.entry(day).or_default();
                    d.events += c.events;
                    d.deploys += c.deploys;
                    d.failed += c.failed;
                    m
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_days_before_and_after_the_epoch() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(86_399), 0);
        assert_eq!(day_of(86_400), 1);
        assert_eq!(day_of(-1), -1);
    }

    #[test]
    fn a_tally_adds_and_merges() {
        let mut a = Tally::default();
        a.add_event(Some("web"), "deploy", "finish", "alice", "failed", 10);
        a.add_event(None, "deploy", "finish", "alice", "success", 86_400);
        let mut b = Tally::default();
        b.add_event(Some("web"), "config", "set", "bob", "success", 20);
        a.merge(b);
        assert_eq!(a.apps.get("web"), Some(&2));
        assert_eq!(a.actors.get("alice"), Some(&2));
        assert_eq!(
            a.days.get(&0),
            Some(&DayCount {
                events: 2,
                deploys: 1,
                failed: 1
            })
        );
        assert_eq!(a.days.get(&1).map(|d| (d.deploys, d.failed)), Some((1, 0)));
    }
}
