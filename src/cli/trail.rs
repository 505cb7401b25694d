//! Maintenance events for changes that stand on their own — a setting (`set`), the API token
//! (`serve --rotate-token`, its creation on the first `serve`): who did it and what changed,
//! recorded after the change succeeded. A trail that cannot be written (a full disk, a damaged
//! or newer store, a writer lock held too long) does not undo the change: the command warns on
//! stderr and still exits 0 (docs/operations.md, "What leaves a trace").

use serde_json::{Map, Value};

use super::Context;
use crate::record::Event;
use crate::store::Store;

/// Appends one `maintenance`/`action` event for a change that already happened, as the local
/// actor of the command. On failure prints a warning naming `what` changed and returns false.
pub fn record_change(
    ctx: &Context,
    store: &Store,
    action: &str,
    message: String,
    meta: Map<String, Value>,
) -> bool {
    let append = ctx.maintenance_append("manual");
    let mut ev = [Event::maintenance(
        action,
        message.clone(),
        meta,
        &append.now,
        "manual",
        &append.actor,
    )];
    match store.append(&mut ev, &append) {
        Ok(_) => true,
        Err(e) => {
            eprintln!(
                " !     warning: {message}, but the audit trail could not record it: {e} (the change stands)"
            );
            false
        }
    }
}

/// A `meta` object from string pairs.
pub fn meta(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), v.clone()))
        .collect()
}
