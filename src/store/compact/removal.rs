//! What a prune removed: the report `prune` prints and records.

/// What a deletion did (or, for a plan, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removal {
    /// Events removed.
    pub deleted: u64,
    /// Smallest id removed.
    pub min_id: Option<u64>,
    /// Largest id removed.
    pub max_id: Option<u64>,
    /// Segment files deleted whole.
    pub segments_deleted: u64,
    /// Segments rewritten without some of their lines.
    pub segments_rewritten: u64,
    /// Bytes of segment files before.
    pub bytes_before: u64,
    /// Bytes of segment files after.
    pub bytes_after: u64,
    /// `(first kept id, chain value of the deleted line before it)` for every gap.
    pub anchors: Vec<(u64, String)>,
    /// First ids of the segments that are gone (deleted or replaced).
    pub old_segments: Vec<u64>,
    /// First ids of the segments written in their place.
    pub new_segments: Vec<u64>,
}

impl Removal {
    /// The anchors as the `meta.chain_anchors` value.
    pub fn anchors_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.anchors
                .iter()
                .map(|(id, prev)| serde_json::json!({"id": id, "prev": prev}))
                .collect(),
        )
    }
}
