//! `segments-format.md` is normative: this test reads its worked examples and recomputes every
//! CRC and chain value with the library, so the document and the code cannot drift apart.

use dokku_audit::store::line::{check_line, ChainHash, TAIL_LEN};

fn spec() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/segments-format.md");
    std::fs::read_to_string(path).expect("segments-format.md at the repository root")
}

/// The lines of every fenced block whose info string is `jsonl example-line`.
fn example_lines(doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim_start() == "```jsonl example-line" {
            inside = true;
        } else if inside && line.trim_start().starts_with("```") {
            inside = false;
        } else if inside && !line.trim().is_empty() {
            out.push(line.to_string());
        }
    }
    out
}

#[test]
fn worked_examples_recompute() {
    let doc = spec();
    let lines = example_lines(&doc);
    assert!(
        lines.len() >= 2,
        "the spec must keep at least two worked examples"
    );
    let mut prev = ChainHash::GENESIS;
    for (i, line) in lines.iter().enumerate() {
        let checked = check_line(line.as_bytes())
            .unwrap_or_else(|e| panic!("example {} does not check: {e}", i + 1));
        assert_eq!(
            checked.id(),
            Some(i as u64 + 1),
            "examples are consecutive ids from 1"
        );
        assert_eq!(
            checked.expected_chain(&prev),
            checked.chain,
            "example {}: chain does not recompute",
            i + 1
        );
        // The CRC and chain values quoted in the prose are the ones on the line.
        let crc = &line[line.len() - 10..line.len() - 2];
        assert!(
            doc.matches(crc).count() >= 2,
            "CRC {crc} is not quoted in the prose"
        );
        let chain = checked.chain.to_hex();
        assert!(
            doc.matches(&chain).count() >= 2,
            "chain {chain} is not quoted in the prose"
        );
        prev = checked.chain;
    }
}

#[test]
fn tail_length_matches_the_byte_table() {
    let doc = spec();
    assert!(doc.contains(&format!("integrity tail (fixed length, {TAIL_LEN} bytes)")));
    assert!(doc.contains(&format!("| `L-{TAIL_LEN}` | 16 |")));
}

#[test]
fn editing_an_example_breaks_it() {
    let lines = example_lines(&spec());
    let tampered = lines[1].replace("FOO", "BAR");
    assert!(check_line(tampered.as_bytes()).is_err());
}

/// The bytes of the fenced `hexdump example-trailer` block (hexdump -C layout).
fn example_trailer(doc: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.trim_start() == "```hexdump example-trailer" {
            inside = true;
        } else if inside && line.trim_start().starts_with("```") {
            break;
        } else if inside {
            let hex = line.split('|').next().unwrap_or("");
            for byte in hex.split_whitespace().skip(1) {
                out.push(u8::from_str_radix(byte, 16).expect("hex byte"));
            }
        }
    }
    out
}

#[test]
fn trailer_example_decodes_and_matches_the_fixture() {
    use dokku_audit::store::Trailer;
    let bytes = example_trailer(&spec());
    assert_eq!(bytes.len(), 201);
    let t = Trailer::decode_from_end(&bytes).expect("example trailer decodes");
    assert_eq!((t.format, t.first_id, t.last_id, t.count), (1, 1, 5, 5));
    assert_eq!(t.chain_head.to_hex(), "d25e1f2b31e7aef1c2b4ab1ac27e7e30");
    assert_eq!(t.encode(), bytes, "re-encoding gives the same bytes");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/segments/v1/data/segments/00000000000000000001.jsonl.zst"
    );
    let file = std::fs::read(fixture).unwrap();
    assert!(
        file.ends_with(&bytes),
        "the example is the fixture's real trailer"
    );
}
