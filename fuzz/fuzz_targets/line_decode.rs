//! The line codec: arbitrary bytes never panic the checker, and any event encodes to a line
//! that checks, decodes to the same canonical JSON, keeps its chain value, and stops checking
//! when any single byte changes.
#![no_main]

use dokku_audit::store::line::{check_line, encode_line, ChainHash};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // 1. Arbitrary bytes: no panic; an accepted line is self-consistent.
    if let Ok(line) = check_line(data) {
        let json = line.event_json();
        assert_eq!(json.last(), Some(&b'}'));
        assert!(data.starts_with(line.event_open));
        let _ = (line.id(), line.ts());
    }

    // 2. Structured: the fuzz input as a string inside a real event object.
    let text = String::from_utf8_lossy(data);
    let event = serde_json::json!({"id": 7, "ts": "2026-01-01T00:00:00Z", "app": text, "meta": {"k": text}});
    let json = serde_json::to_vec(&event).expect("serialise");
    let prev = ChainHash([data.first().copied().unwrap_or(0); 16]);
    let mut out = Vec::new();
    let chain = encode_line(&json, &prev, &mut out);
    assert_eq!(
        out.iter().filter(|c| **c == b'\n').count(),
        1,
        "exactly one line"
    );
    let line = &out[..out.len() - 1];
    let checked = check_line(line).expect("an encoded line checks");
    assert_eq!(checked.event_json(), json);
    assert_eq!(checked.chain, chain);
    assert_eq!(checked.expected_chain(&prev), chain);
    assert_eq!(checked.id(), Some(7));

    // 3. Any single-byte change is detected.
    if !line.is_empty() {
        let at = (data.len() * 31) % line.len();
        let mut bad = line.to_vec();
        bad[at] ^= data.get(1).copied().unwrap_or(1).max(1);
        assert!(check_line(&bad).is_err(), "flip at {at} not detected");
    }
});
