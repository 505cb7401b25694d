//! The index schema and how an event becomes a document.

use serde_json::Value;
use tantivy::schema::{
    Field, IndexRecordOption, NumericOptions, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::{doc, TantivyDocument};

use crate::record::Event;

/// The schema's fields.
#[derive(Debug, Clone, Copy)]
pub struct Fields {
    /// Event id (indexed, fast).
    pub id: Field,
    /// `ts` as epoch seconds (indexed, fast).
    pub ts: Field,
    /// Segment (first id) holding the event.
    pub seg: Field,
    /// Byte offset of its line in the segment's plain content.
    pub off: Field,
    /// Raw terms, filterable and shown.
    pub app: Field,
    /// Raw.
    pub category: Field,
    /// Raw.
    pub action: Field,
    /// Raw.
    pub status: Field,
    /// Raw.
    pub classification: Field,
    /// Raw.
    pub source_type: Field,
    /// Raw terms: the actor label and the actor name (filter only).
    pub actor: Field,
    /// Shown only (fast).
    pub actor_label: Field,
    /// Shown only (fast).
    pub message: Field,
    /// Raw terms (the releases view looks revisions up), shown.
    pub rev: Field,
    /// Shown only (fast).
    pub image_tag: Field,
    /// Full text: message and every meta value.
    pub text: Field,
    /// The release number (`meta.release`) of a release event (indexed, fast).
    pub release: Field,
    /// Shown only (fast): `meta.triggered_by_subcommand`, the `dokku` subcommand behind a
    /// follow-on event, so the releases view describes a deploy without reading it whole.
    pub triggered_by_subcommand: Field,
}

/// The schema and its fields.
pub fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let raw = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer("raw")
                .set_index_option(IndexRecordOption::Basic)
                .set_fieldnorms(false),
        )
        .set_fast("raw");
    let shown = TextOptions::default().set_fast("raw");
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("default")
            .set_index_option(IndexRecordOption::WithFreqsAndPositions)
            .set_fieldnorms(false),
    );
    let actor = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    );
    // No field norms anywhere: results are ordered by time, never by relevance.
    // Ids and times are fast fields only: range queries and deletes run on the columns, and a
    // term per event (nearly every id and second is unique) would double the index.
    let fast = NumericOptions::default().set_fast();
    let fields = Fields {
        id: b.add_u64_field("id", fast.clone()),
        ts: b.add_i64_field("ts", fast.clone()),
        // Indexed too (a few hundred distinct values: tiny postings) so prune and vacuum delete a
        // segment's documents by term instead of scanning a column per segment.
        seg: b.add_u64_field("seg", NumericOptions::default().set_indexed().set_fast()),
        off: b.add_u64_field("off", fast),
        app: b.add_text_field("app", raw.clone()),
        category: b.add_text_field("category", raw.clone()),
        action: b.add_text_field("action", raw.clone()),
        status: b.add_text_field("status", raw.clone()),
        classification: b.add_text_field("classification", raw.clone()),
        source_type: b.add_text_field("source_type", raw.clone()),
        actor: b.add_text_field("actor", actor),
        actor_label: b.add_text_field("actor_label", shown.clone()),
        message: b.add_text_field("message", shown.clone()),
        // Indexed too: the releases view finds the first release of a revision by its term.
        rev: b.add_text_field("rev", raw),
        image_tag: b.add_text_field("image_tag", shown),
        text: b.add_text_field("text", text),
        // Few documents have one (successful deploys): indexed too, so a release is found by
        // its number without a column scan.
        release: b.add_u64_field(
            "release",
            NumericOptions::default().set_indexed().set_fast(),
        ),
        triggered_by_subcommand: b.add_text_field(
            "triggered_by_subcommand",
            TextOptions::default().set_fast("raw"),
        ),
    };
    (b.build(), fields)
}

/// `meta.triggered_by_subcommand`, if it is a string.
pub fn triggered_by_subcommand(e: &Event) -> Option<&str> {
    e.meta
        .get("triggered_by_subcommand")
        .and_then(serde_json::Value::as_str)
}

/// `ts` as epoch seconds (0 if unparseable, which validated events never are).
pub fn epoch(ts: &str) -> i64 {
    crate::timefmt::parse_canonical(ts).map_or(0, |t| t.timestamp())
}

/// Meta keys left out of the full text (their values are enumerations or duplicates).
pub const UNSEARCHED_META_KEYS: &[&str] = &[
    "actor_source",
    "success_hint",
    "subcommand",
    "triggered_by_subcommand",
    "container_type",
    "dokku_version",
    "host_id",
    "hostname",
    "value_redacted",
];

fn push_meta_text(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push(' ');
            out.push_str(s);
        }
        Value::Number(n) => {
            out.push(' ');
            out.push_str(&n.to_string());
        }
        Value::Array(a) => a.iter().for_each(|x| push_meta_text(x, out)),
        Value::Object(m) => m.values().for_each(|x| push_meta_text(x, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// The document of an event at (segment, offset).
pub fn document(f: &Fields, e: &Event, seg: u64, off: u64) -> TantivyDocument {
    let ts = epoch(&e.ts);
    let mut text = e.message.clone();
    for (k, v) in &e.meta {
        // Bookkeeping keys repeat on every event and say nothing an operator searches for;
        // a value equal to the message (`command`) is already there.
        if UNSEARCHED_META_KEYS.contains(&k.as_str()) || v.as_str() == Some(e.message.as_str()) {
            continue;
        }
        push_meta_text(v, &mut text);
    }
    let mut d = doc!(
        f.id => e.id,
        f.ts => ts,
        f.seg => seg,
        f.off => off,
        f.category => e.category.as_str(),
        f.action => e.action.as_str(),
        f.status => e.status.as_str(),
        f.actor => e.actor_label.as_str(),
        f.actor_label => e.actor_label.as_str(),
        f.message => e.message.as_str(),
        f.text => text,
    );
    let mut opt = |field: Field, v: &Option<String>| {
        if let Some(v) = v {
            d.add_text(field, v);
        }
    };
    opt(f.app, &e.app);
    opt(f.classification, &e.classification);
    opt(f.source_type, &e.source_type);
    opt(f.rev, &e.rev);
    opt(f.image_tag, &e.image_tag);
    if let Some(n) = release_number(e) {
        d.add_u64(f.release, n);
    }
    if let Some(sub) = triggered_by_subcommand(e) {
        d.add_text(f.triggered_by_subcommand, sub);
    }
    if let Some(name) = &e.actor_name {
        if *name != e.actor_label {
            d.add_text(f.actor, name);
        }
    }
    d
}

/// The release number an event carries (`meta.release`), if any.
pub fn release_number(e: &Event) -> Option<u64> {
    e.meta
        .get(crate::store::releases::RELEASE_KEY)
        .and_then(Value::as_u64)
}

/// The segment first id from a segment file name.
pub fn segment_id(file_name: &str) -> u64 {
    file_name
        .get(..20)
        .and_then(|d| d.parse().ok())
        .unwrap_or(0)
}
