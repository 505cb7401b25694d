//! `line_decode`: the line codec (`store::line`).
//!
//! 1. Arbitrary bytes: `check_line` never panics. When it accepts a line, the line is exactly
//!    `event_open ‖ tail(chain, crc)`: rebuilding it from the decoded parts per the spec gives
//!    the same bytes, the CRC recomputed over the prefix equals the stored one, and re-encoding
//!    the event with `encode_line` gives a line that checks and keeps the event bytes. A refusal
//!    is self-consistent (a CRC error names two different values, a version error a newer one).
//! 2. Structured: the input as string values inside a valid event object, built with
//!    serde_json. `encode_line` → `check_line` gives back the same event JSON and chain value,
//!    the line is valid JSON carrying `v`, `chain` and the strings, encoding is deterministic,
//!    and every single-byte change and every truncation makes `check_line` fail.

use dokku_audit::store::codec::{
    check_line, encode_line, parse_id, ChainHash, LineError, CHAIN_BYTES, FORMAT_VERSION, TAIL_LEN,
};
use dokku_audit::timefmt::CANONICAL_LEN;

use crate::spec::{CRC_SUFFIX_LEN, TAIL_CRC, TAIL_END, TAIL_V};
use crate::Bytes;

/// Lines up to this length get every byte changed; longer ones a spread of positions, to keep
/// one input's cost linear-ish (each check is a CRC over the whole line).
const FLIP_ALL_UP_TO: usize = 512;
const FLIP_SAMPLES: usize = 192;

/// The `line_decode` target body.
pub fn line_decode(data: &[u8]) {
    assert_eq!(
        TAIL_LEN,
        TAIL_V.len() + CHAIN_BYTES * 2 + TAIL_CRC.len() + 8 + TAIL_END.len(),
        "TAIL_LEN disagrees with the spec"
    );
    arbitrary_bytes(data);
    // Also as a line with its newline still on: never accepted (the tail must end the line).
    let mut with_nl = data.to_vec();
    with_nl.push(b'\n');
    assert!(
        check_line(&with_nl).is_err(),
        "a line ending in \\n checked"
    );
    structured(data);
}

/// The spec's line for `event_open` with a given chain value, without the newline.
pub fn rebuild_line(event_open: &[u8], chain: &ChainHash) -> Vec<u8> {
    let mut out = Vec::with_capacity(event_open.len() + TAIL_LEN);
    out.extend_from_slice(event_open);
    out.extend_from_slice(TAIL_V);
    out.extend_from_slice(chain.to_hex().as_bytes());
    out.push(b'"');
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&TAIL_CRC[1..]);
    out.extend_from_slice(format!("{crc:08x}").as_bytes());
    out.extend_from_slice(TAIL_END);
    out
}

fn arbitrary_bytes(data: &[u8]) {
    let line = match check_line(data) {
        Ok(line) => line,
        Err(e) => {
            match e {
                LineError::Crc { stored, computed } => assert_ne!(stored, computed),
                LineError::NewerVersion(v) => assert!(v > FORMAT_VERSION),
                LineError::Malformed => {}
                // CRC and tail are fine, but the event part has no usable `{"id":N,`.
                LineError::NoId => {
                    assert!(data.len() >= TAIL_LEN);
                    assert_eq!(parse_id(&data[..data.len() - TAIL_LEN]), None);
                }
            }
            let _ = e.to_string();
            return;
        }
    };
    // Shape: the event part is a prefix, the tail has the fixed length.
    assert_eq!(data.len(), line.event_open.len() + TAIL_LEN);
    assert!(data.starts_with(line.event_open));
    assert_eq!(data.first(), Some(&b'{'));
    // Round trip through the spec: decoded parts → the same bytes.
    assert_eq!(rebuild_line(line.event_open, &line.chain), data);
    // The CRC, recomputed over everything before `,"crc":`.
    let crc_hex = &data[data.len() - 10..data.len() - 2];
    let stored = u32::from_str_radix(std::str::from_utf8(crc_hex).expect("hex"), 16).expect("hex");
    assert_eq!(
        crc32fast::hash(&data[..data.len() - CRC_SUFFIX_LEN]),
        stored
    );
    // The chain value as stored, in lower-case hex.
    let chain_at = line.event_open.len() + TAIL_V.len();
    assert_eq!(
        &data[chain_at..chain_at + CHAIN_BYTES * 2],
        line.chain.to_hex().as_bytes()
    );
    assert_eq!(
        ChainHash::from_hex(line.chain.to_hex().as_bytes()),
        Some(line.chain)
    );
    // The canonical event JSON.
    let json = line.event_json();
    assert_eq!(json.last(), Some(&b'}'));
    assert_eq!(&json[..json.len() - 1], line.event_open);
    // The prefix readers never panic, and what they return is really there.
    if let Some(id) = line.id() {
        assert!(line.event_open.starts_with(b"{\"id\":"));
        let digits: Vec<u8> = line.event_open[6..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .copied()
            .collect();
        assert_eq!(
            std::str::from_utf8(&digits)
                .ok()
                .and_then(|s| s.parse().ok()),
            Some(id)
        );
    }
    if let Some(ts) = line.ts() {
        assert_eq!(ts.len(), CANONICAL_LEN);
        let needle = [b",\"ts\":\"".as_slice(), ts.as_bytes()].concat();
        assert!(line.event_open.windows(needle.len()).any(|w| w == needle));
    }
    // Re-encoding: the chain value cannot be reproduced (the previous one is unknown), but any
    // previous value gives a line that checks, keeps the event bytes and chains as documented.
    let prev = ChainHash([data[data.len() / 2]; CHAIN_BYTES]);
    let mut out = Vec::new();
    let chain = encode_line(&json, &prev, &mut out);
    assert_eq!(out.last(), Some(&b'\n'));
    assert_eq!(out.len(), data.len() + 1);
    let again = check_line(&out[..out.len() - 1]).expect("re-encoded line checks");
    assert_eq!(again.event_open, line.event_open);
    assert_eq!(again.chain, chain);
    assert_eq!(line.expected_chain(&prev), chain);
    assert_eq!(chain, ChainHash::next(&prev, line.event_open));
    if again.chain == line.chain {
        assert_eq!(&out[..out.len() - 1], data);
    }
}

fn structured(data: &[u8]) {
    let mut input = Bytes::new(data);
    let id = u64::from(input.u16()) << 8 | u64::from(input.u8());
    let mut prev = [0u8; CHAIN_BYTES];
    prev.copy_from_slice(&{
        let mut p = input.take(CHAIN_BYTES).to_vec();
        p.resize(CHAIN_BYTES, 0);
        p
    });
    let prev = ChainHash(prev);
    let xor_seed = input.u8();
    let rest = input.rest();
    let (a, b) = rest.split_at(rest.len() / 2);
    let app = String::from_utf8_lossy(a);
    let key = String::from_utf8_lossy(b);
    let ts = "2026-01-01T00:00:00Z";
    // Key order matters (`id` first, `ts` second): serde_json has `preserve_order` on.
    let event = serde_json::json!({
        "id": id, "ts": ts, "app": app, "meta": { key.as_ref(): app }
    });
    let json = serde_json::to_vec(&event).expect("serialise");

    let mut out = Vec::new();
    let chain = encode_line(&json, &prev, &mut out);
    if id == 0 {
        // Id 0 is no event id (segments-format.md §4.2 check 5): never a valid line.
        assert_eq!(
            check_line(&out[..out.len() - 1]).unwrap_err(),
            LineError::NoId
        );
        return;
    }
    assert_eq!(out.iter().filter(|c| **c == b'\n').count(), 1, "one line");
    assert_eq!(out.last(), Some(&b'\n'));
    let line = &out[..out.len() - 1];
    assert_eq!(line.len(), json.len() - 1 + TAIL_LEN);
    assert_eq!(rebuild_line(&json[..json.len() - 1], &chain), line);

    let checked = check_line(line).expect("an encoded line checks");
    assert_eq!(checked.event_json(), json);
    assert_eq!(checked.chain, chain);
    assert_eq!(checked.expected_chain(&prev), chain);
    assert_eq!(chain, ChainHash::next(&prev, &json[..json.len() - 1]));
    assert_eq!(checked.id(), Some(id));
    assert_eq!(checked.ts(), Some(ts));

    // The whole line is valid JSON: the event plus the integrity fields.
    let v: serde_json::Value = serde_json::from_slice(line).expect("line is JSON");
    assert_eq!(v["v"], 1);
    assert_eq!(v["chain"], chain.to_hex());
    assert_eq!(v["app"], serde_json::Value::from(app.as_ref()));
    assert_eq!(
        v["meta"][key.as_ref()],
        serde_json::Value::from(app.as_ref())
    );

    // Deterministic: decoding and encoding again gives the same bytes.
    let mut again = Vec::new();
    assert_eq!(encode_line(&checked.event_json(), &prev, &mut again), chain);
    assert_eq!(again, out);

    // Every single-byte change is detected (CRC-32 catches any burst up to 32 bits; the tail's
    // literals, hex and version are checked by shape).
    let positions: Vec<usize> = if line.len() <= FLIP_ALL_UP_TO {
        (0..line.len()).collect()
    } else {
        (0..FLIP_SAMPLES)
            .map(|i| i * line.len() / FLIP_SAMPLES)
            .chain(line.len() - TAIL_LEN..line.len())
            .collect()
    };
    for (n, at) in positions.into_iter().enumerate() {
        let mask = xor_seed.wrapping_add(n as u8).max(1);
        let mut bad = line.to_vec();
        bad[at] ^= mask;
        assert!(
            check_line(&bad).is_err(),
            "byte {at} ^ {mask:#04x} not detected"
        );
    }
    // So is every truncation that keeps at least the tail's length, and a few short ones.
    for n in (0..line.len())
        .rev()
        .take(FLIP_SAMPLES)
        .chain(0..TAIL_LEN.min(line.len()))
    {
        assert!(check_line(&line[..n]).is_err(), "truncation to {n} checked");
    }
}
