//! The segment reader: valid lines built from the fuzz input, followed by arbitrary bytes, as a
//! plain (active) segment and as a sealed zstd segment. Every valid line comes back exactly once
//! and in order, nothing unchecked is ever yielded, damage is reported, and nothing panics.
#![no_main]

use std::ops::ControlFlow;

use dokku_audit::store::line::{encode_line, ChainHash};
use dokku_audit::store::reader::{scan_segment, ScanItem};
use dokku_audit::store::segment::{seal, SegmentFiles, Trailer};
use dokku_audit::store::Ownership;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |b| *b as usize) % (data.len() + 1);
    let (events, garbage) = data.split_at(split);
    let mut bytes = Vec::new();
    let mut chain = ChainHash::GENESIS;
    let mut want = Vec::new();
    for (i, chunk) in events.chunks(7).enumerate() {
        let json = serde_json::to_vec(&serde_json::json!({
            "id": i + 1, "ts": "2026-01-01T00:00:00Z", "message": String::from_utf8_lossy(chunk)
        }))
        .expect("serialise");
        chain = encode_line(&json, &chain, &mut bytes);
        want.push(json);
    }
    let valid_len = bytes.len() as u64;
    bytes.extend_from_slice(garbage);

    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path().join("00000000000000000001.jsonl");
    std::fs::write(&plain, &bytes).expect("write");
    let seg = SegmentFiles {
        first_id: 1,
        plain: Some(plain.clone()),
        sealed: None,
    };
    check(&seg, true, &want, garbage.is_empty());

    // Sealed: only the valid part, as the writer seals it.
    if !want.is_empty() {
        std::fs::write(&plain, &bytes[..valid_len as usize]).expect("write");
        let trailer = Trailer {
            format: 1,
            first_id: 1,
            last_id: want.len() as u64,
            count: want.len() as u64,
            first_ts: "2026-01-01T00:00:00Z".into(),
            last_ts: "2026-01-01T00:00:00Z".into(),
            chain_head: chain,
            plain_bytes: valid_len,
        };
        let sealed = seal(&plain, valid_len, &trailer, 3, &Ownership::default()).expect("seal");
        let raw = std::fs::read(&sealed).expect("read");
        assert_eq!(Trailer::decode_from_end(&raw), Some(trailer));
        let seg = SegmentFiles {
            first_id: 1,
            plain: None,
            sealed: Some(sealed),
        };
        check(&seg, false, &want, true);
    }
});

fn check(seg: &SegmentFiles, active: bool, want: &[Vec<u8>], clean: bool) {
    let mut got = Vec::new();
    let mut damage = 0;
    let _ = scan_segment(seg, active, &mut |item| {
        match item {
            ScanItem::Line { line, .. } => got.push(line.event_json()),
            ScanItem::Damage(_) => damage += 1,
        }
        ControlFlow::Continue(())
    })
    .expect("scan");
    // Every valid line comes back, in order; garbage may add lines only if it is itself valid.
    assert!(got.len() >= want.len());
    assert_eq!(&got[..want.len()], want);
    if clean {
        assert_eq!(damage, 0);
        assert_eq!(got.len(), want.len());
    }
}
