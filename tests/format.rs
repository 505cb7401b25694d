//! `segments-format.md` is normative: this test reads the document, decodes its worked examples
//! (the `jsonl example-line`, `text example-python-output`, `hexdump example-trailer` and
//! `hexdump example-frame-start` blocks) and recomputes every CRC, chain value and trailer, both
//! with the library and independently from the byte ranges the document states. It also checks
//! the byte table of the integrity tail and the settings table against the code. If the document
//! and the code disagree, this fails.

use dokku_audit::record::{ActorStamp, Event};
use dokku_audit::settings::KEYS;
use dokku_audit::store::codec::MAX_LINE_BYTES;
use dokku_audit::store::codec::{check_line, encode_line, ChainHash, CHAIN_BYTES, TAIL_LEN};
use dokku_audit::store::codec::{
    stem, Trailer, PLAIN_SUFFIX, SEALED_SUFFIX, TEMP_SUFFIX, TRAILER_FRAME_MAGIC, TRAILER_MAGIC,
};
use dokku_audit::store::{
    AppendContext, Ownership, Store, StoreOptions, FORMAT_MARKER, FORMAT_VERSION,
};
use sha2::{Digest, Sha256};

const FIXTURE_SEGMENT: &str =
    "tests/fixtures/segments/v1/data/segments/00000000000000000001.jsonl.zst";

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/segments-format.md");
    std::fs::read_to_string(path).expect("segments-format.md at the repository root")
}

/// The non-empty lines of every fenced block whose info string is exactly `info`.
fn blocks(doc: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        let t = line.trim_start();
        if !inside && t.starts_with("```") && t[3..].trim() == info {
            inside = true;
        } else if inside && t.starts_with("```") {
            inside = false;
        } else if inside && !line.trim().is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

fn example_lines(doc: &str) -> Vec<String> {
    let lines = blocks(doc, "jsonl example-line");
    assert!(
        lines.len() >= 2,
        "the spec must keep at least two worked example lines"
    );
    lines
}

/// The bytes of an `xxd -g 1` dump: after `offset: `, the 48-character hex column.
fn hexdump_bytes(doc: &str, info: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in blocks(doc, info) {
        let (_, rest) = line.split_once(": ").expect("xxd offset column");
        let hex = &rest[..rest.len().min(48)];
        for byte in hex.split_whitespace() {
            out.push(u8::from_str_radix(byte, 16).expect("hex byte"));
        }
    }
    assert!(!out.is_empty(), "no `{info}` block in the spec");
    out
}

/// CRC-32 and chain value computed from the byte ranges the spec states (§4.3, §5.1), without
/// the library's line code.
fn independent(line: &[u8], prev: &[u8; CHAIN_BYTES]) -> (String, [u8; CHAIN_BYTES]) {
    let l = line.len();
    let crc = format!("{:08x}", crc32fast::hash(&line[..l - 18]));
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&line[..l - 67]);
    h.update(b"}");
    let mut chain = [0u8; CHAIN_BYTES];
    chain.copy_from_slice(&h.finalize()[..CHAIN_BYTES]);
    (crc, chain)
}

#[test]
fn worked_examples_recompute() {
    let doc = spec();
    let mut prev = ChainHash::GENESIS;
    let mut printed = Vec::new();
    for (i, line) in example_lines(&doc).iter().enumerate() {
        let n = i + 1;
        let bytes = line.as_bytes();
        let checked = check_line(bytes).unwrap_or_else(|e| panic!("example {n} fails: {e}"));
        assert_eq!(checked.id(), Some(n as u64), "examples are ids 1, 2, …");

        // Library: the chain value follows from the previous example (genesis for the first).
        assert_eq!(checked.expected_chain(&prev), checked.chain, "example {n}");
        assert_eq!(
            ChainHash::next(&prev, checked.event_open),
            checked.chain,
            "example {n}"
        );

        // Independently, from the byte ranges of §4.3 and §5.1.
        let (crc, chain) = independent(bytes, &prev.0);
        assert_eq!(
            &line[line.len() - 10..line.len() - 2],
            crc,
            "example {n} CRC"
        );
        assert_eq!(chain, checked.chain.0, "example {n} chain");

        // The values quoted in the prose are the ones on the line.
        let chain_hex = checked.chain.to_hex();
        for v in [&crc, &chain_hex] {
            assert!(
                doc.contains(&format!("= `{v}`")),
                "example {n}: `{v}` is not quoted as a computed value"
            );
        }
        assert!(
            doc.contains(&format!("`L` = {}", bytes.len())),
            "example {n}: its length is not stated"
        );

        // Encoding the canonical event JSON after the same predecessor gives the same line.
        let mut encoded = Vec::new();
        let c = encode_line(&checked.event_json(), &prev, &mut encoded);
        assert_eq!(c, checked.chain);
        assert_eq!(
            encoded,
            [bytes, &b"\n"[..]].concat(),
            "example {n} re-encodes"
        );

        // The event part is the event as the record type encodes it (§4.1).
        let text = String::from_utf8(checked.event_json()).unwrap();
        let event = Event::from_json_text(&text).expect("example is an event object");
        assert_eq!(
            event.to_json_bytes(),
            checked.event_json(),
            "canonical JSON"
        );

        // And the whole line is a JSON object ending in v, chain, crc.
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys[keys.len() - 3..], ["v", "chain", "crc"]);
        assert_eq!(v["v"], FORMAT_VERSION);

        printed.push(format!("{crc} {chain_hex}"));
        prev = checked.chain;
    }
    assert_eq!(
        blocks(&doc, "text example-python-output"),
        printed,
        "the documented output of the Python recomputation"
    );
}

#[test]
fn worked_examples_are_what_the_writer_writes() {
    let doc = spec();
    let lines = example_lines(&doc);
    let mut events: Vec<Event> = lines
        .iter()
        .map(|l| {
            let json = check_line(l.as_bytes()).unwrap().event_json();
            Event::from_json_text(std::str::from_utf8(&json).unwrap()).unwrap()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path(), StoreOptions::default(), Ownership::default());
    let ctx = AppendContext {
        now: "2026-04-08T20:03:00Z".into(),
        source_trigger: "manual".into(),
        actor: ActorStamp::system(),
    };
    let receipt = store.append(&mut events, &ctx).unwrap();
    assert_eq!((receipt.first_id, receipt.last_id), (1, lines.len() as u64));

    let name = format!("{}{PLAIN_SUFFIX}", stem(1));
    assert!(doc.contains(&name));
    let written = std::fs::read(dir.path().join("segments").join(&name)).unwrap();
    let expected: String = lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(String::from_utf8(written).unwrap(), expected);
    let last = check_line(lines.last().unwrap().as_bytes()).unwrap();
    assert_eq!(receipt.chain_head, last.chain.to_hex());

    let marker = std::fs::read_to_string(dir.path().join("FORMAT")).unwrap();
    assert_eq!(marker, format!("{FORMAT_MARKER}{FORMAT_VERSION}\n"));
    assert!(doc.contains(&format!("`{}`", marker.trim_end())));
    assert!(verify_ok(&store));
}

fn verify_ok(store: &Store) -> bool {
    let report = store.verify().unwrap();
    report.ok() && report.torn_tail.is_none()
}

#[test]
fn editing_an_example_is_detected() {
    let lines = example_lines(&spec());
    // Any flipped bit fails the line on its own.
    for line in &lines {
        for i in 0..line.len() {
            for bit in 0..8 {
                let mut bad = line.clone().into_bytes();
                bad[i] ^= 1 << bit;
                assert!(check_line(&bad).is_err(), "flip at {i} bit {bit}");
            }
        }
    }
    // An edit with a recomputed CRC and chain value breaks the chain at the next line.
    let first = check_line(lines[0].as_bytes()).unwrap();
    let edited = String::from_utf8(first.event_json())
        .unwrap()
        .replace("app created", "app deleted");
    let mut out = Vec::new();
    let new_chain = encode_line(edited.as_bytes(), &ChainHash::GENESIS, &mut out);
    assert!(check_line(&out[..out.len() - 1]).is_ok());
    let second = check_line(lines[1].as_bytes()).unwrap();
    assert_ne!(second.expected_chain(&new_chain), second.chain);
}

/// Rows of the §4.2 table: offset from the end, size, and the literal bytes where fixed.
fn tail_table(doc: &str) -> Vec<(usize, usize, Option<String>)> {
    let mut rows = Vec::new();
    for line in doc.lines() {
        let Some(rest) = line.strip_prefix("| `L-") else {
            continue;
        };
        let cells: Vec<&str> = rest.split(" | ").collect();
        let back: usize = cells[0].trim_end_matches('`').parse().unwrap();
        let size: usize = cells[1].parse().unwrap();
        let literal = cells[2]
            .strip_prefix('`')
            .and_then(|c| c.strip_suffix('`'))
            .map(str::to_string);
        rows.push((back, size, literal));
    }
    rows
}

#[test]
fn tail_byte_table_matches_the_code_and_the_examples() {
    let doc = spec();
    assert!(doc.contains(&format!("integrity tail (fixed length, {TAIL_LEN} bytes)")));
    let rows = tail_table(&doc);
    assert_eq!(rows.len(), 5, "five rows in the tail table");
    assert_eq!(rows[0].0, TAIL_LEN, "the tail starts at L-{TAIL_LEN}");
    assert_eq!(rows.iter().map(|r| r.1).sum::<usize>(), TAIL_LEN);
    for pair in rows.windows(2) {
        assert_eq!(pair[0].0 - pair[0].1, pair[1].0, "rows are contiguous");
    }
    assert_eq!(rows[4].0, rows[4].1, "the last row ends the line");
    for line in example_lines(&doc) {
        let l = line.len();
        for (back, size, literal) in &rows {
            let field = &line[l - back..l - back + size];
            match literal {
                Some(lit) => assert_eq!(field, lit),
                None => assert!(
                    field
                        .bytes()
                        .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                    "`{field}` is not lower-case hex"
                ),
            }
        }
    }
    // The minimum length stated in §4.2, and the CRC range of §4.3.
    assert!(doc.contains(&format!("at least {} bytes long", TAIL_LEN + 2)));
    assert!(doc.contains("`line[0 .. L-18]`"));
}

#[test]
fn trailer_example_decodes_and_is_the_fixtures_trailer() {
    let doc = spec();
    let bytes = hexdump_bytes(&doc, "hexdump example-trailer");
    let n = bytes.len();
    assert_eq!(bytes[..4], TRAILER_FRAME_MAGIC.to_le_bytes());
    assert!(doc.contains(&format!("0x{TRAILER_FRAME_MAGIC:08X}")));
    assert_eq!(&bytes[8..12], TRAILER_MAGIC);
    // Frame_Size, the CRC of the JSON and the final length, as §6.3 lays them out.
    let frame_size = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
    assert_eq!(frame_size + 8, n);
    let json = &bytes[16..n - 4];
    assert_eq!(frame_size, json.len() + 12);
    let crc = u32::from_le_bytes(bytes[12..16].try_into().unwrap());
    assert_eq!(crc, crc32fast::hash(json));
    assert!(doc.contains(&format!("`0x{crc:08x}`")));
    assert_eq!(
        u32::from_le_bytes(bytes[n - 4..].try_into().unwrap()) as usize,
        n
    );
    assert!(doc.contains(&format!("tail -c {n} ")));

    let t = Trailer::decode_from_end(&bytes).expect("the example trailer decodes");
    assert_eq!(t.encode(), bytes, "re-encoding gives the same bytes");
    assert_eq!(t.format, FORMAT_VERSION);
    assert!(doc.contains(&format!("chain head `{}`", t.chain_head)));

    // It is the real trailer of the frozen fixture, and agrees with the segment's content.
    let file = std::fs::read(format!("{}/{FIXTURE_SEGMENT}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(
        file.ends_with(&bytes),
        "the example is the fixture's trailer"
    );
    assert!(doc.contains(&format!("({} bytes, ids", file.len())));
    let plain = zstd::stream::decode_all(&file[..]).expect("zstdcat-compatible");
    assert_eq!(plain.len() as u64, t.plain_bytes);
    let mut prev = ChainHash::GENESIS;
    let mut count = 0;
    for line in plain.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
        let checked = check_line(line).unwrap();
        assert_eq!(checked.expected_chain(&prev), checked.chain);
        if count == 0 {
            assert_eq!(checked.id(), Some(t.first_id));
            assert_eq!(checked.ts(), Some(t.first_ts.as_str()));
        }
        prev = checked.chain;
        count += 1;
        if checked.id() == Some(t.last_id) {
            assert_eq!(checked.ts(), Some(t.last_ts.as_str()));
        }
    }
    assert_eq!(count, t.count);
    assert_eq!(prev, t.chain_head);
}

#[test]
fn frame_start_example_is_the_fixtures_zstd_header() {
    let doc = spec();
    let bytes = hexdump_bytes(&doc, "hexdump example-frame-start");
    let file = std::fs::read(format!("{}/{FIXTURE_SEGMENT}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert!(file.starts_with(&bytes));
    assert_eq!(bytes[..4], 0xFD2F_B528u32.to_le_bytes(), "zstd frame magic");
    let descriptor = bytes[4];
    assert_ne!(descriptor & 0b100, 0, "Content_Checksum_flag is set");
    assert_eq!(
        descriptor >> 6,
        1,
        "Frame_Content_Size_flag is 1 (2 bytes, +256)"
    );
    assert_ne!(descriptor & 0b10_0000, 0, "Single_Segment_flag is set");
    let size = u16::from_le_bytes([bytes[5], bytes[6]]) as u64 + 256;
    let trailer = Trailer::decode_from_end(&file).unwrap();
    assert_eq!(size, trailer.plain_bytes);
    assert!(doc.contains(&format!("0x{:04x} + 256 = {size}", size - 256)));
}

#[test]
fn names_constants_and_settings_match_the_code() {
    let doc = spec();
    for suffix in [PLAIN_SUFFIX, SEALED_SUFFIX, TEMP_SUFFIX] {
        assert!(doc.contains(&format!("| `{suffix}` |")), "suffix {suffix}");
    }
    assert_eq!(stem(u64::MAX).len(), 20);
    assert!(doc.contains("zero-padded to exactly 20"));
    assert_eq!(MAX_LINE_BYTES, 64 * 1024 * 1024);
    assert!(doc.contains("A line is at most 64 MiB"));
    use dokku_audit::safefs::{DIR_MODE, FILE_MODE};
    assert!(doc.contains(&format!("mode {DIR_MODE:o}")));
    assert!(doc.contains(&format!("mode {FILE_MODE:04o}")));
    // Every store setting is in the §3 table with its real default.
    for name in [
        "segment_max_bytes",
        "segment_rotate_daily",
        "durability",
        "seal_grace_seconds",
        "seal_zstd_level",
        "busy_timeout_ms",
    ] {
        let key = KEYS.iter().find(|k| k.name == name).expect(name);
        let row = format!("| `{}` | `{}` |", key.name, key.default);
        assert!(doc.contains(&row), "settings table row {row}");
    }
    let opts = StoreOptions::default();
    assert_eq!(opts.segment_max_bytes.to_string(), "16777216");
    assert_eq!(opts.seal_grace.as_secs(), 3600);
    assert_eq!(opts.zstd_level, 7);
}
