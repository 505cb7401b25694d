//! Format compatibility: the checked-in v1 data directory (sealed segments, an active segment
//! ending in a torn line, as a crash leaves it) must be read by every future version with the
//! same result. The fixture is written once by the ignored generator below and never changed.

use std::path::{Path, PathBuf};

use crate::util::{self, demo_jsonl, stdout, TestEnv};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/segments/v1")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn v1_fixture_is_still_read_the_same_way() {
    let fixture = fixture_dir();
    let env = TestEnv::new();
    copy_dir(&fixture.join("data"), &env.data);
    assert!(
        !env.segment_files(".jsonl.zst").is_empty(),
        "fixture has sealed segments"
    );
    assert!(
        env.active_segment().is_some(),
        "fixture has an active segment"
    );

    let export = env.ok(&["export", "--format", "jsonl"]);
    let expected = std::fs::read_to_string(fixture.join("expected-export.jsonl")).unwrap();
    assert_eq!(export, expected, "export of the v1 fixture changed");

    let verify = env.run(&["verify"]);
    assert!(verify.status.success(), "{}", stdout(&verify));
    let expected = std::fs::read_to_string(fixture.join("expected-verify.txt")).unwrap();
    assert_eq!(
        stdout(&verify),
        expected,
        "verify of the v1 fixture changed"
    );
}

#[test]
fn v1_fixture_accepts_appends_after_repairing_its_torn_tail() {
    let env = TestEnv::new();
    copy_dir(&fixture_dir().join("data"), &env.data);
    let one = env.file("one.jsonl", &demo_jsonl(1, 0));
    env.ok(&["import", one.to_str().unwrap()]);
    let events = env.export_events();
    assert!(events.iter().any(|e| e["action"] == "repair"));
    assert!(env.run(&["verify"]).status.success());
}

/// Writes the fixture if it does not exist. Run once with
/// `cargo test --test tests compat:: -- --ignored`; never regenerate an existing version.
#[test]
#[ignore]
fn write_v1_fixture_if_missing() {
    let dir = fixture_dir();
    if dir.join("data").exists() {
        return;
    }
    let env = TestEnv::new().env("DOKKU_AUDIT_SEGMENT_MAX_BYTES", "16384");
    let input = env.file("in.jsonl", &demo_jsonl(80, 3));
    env.ok(&["import", input.to_str().unwrap()]);
    for p in env.segment_files(".jsonl") {
        if Path::new(&format!("{}.zst", p.display())).exists() {
            std::fs::remove_file(p).unwrap();
        }
    }
    let _ = std::fs::remove_file(env.data.join("LOCK"));
    let active = env.active_segment().unwrap();
    let mut bytes = std::fs::read(&active).unwrap();
    bytes.extend_from_slice(br#"{"id":999,"ts":"2026-04-08T20:00:01Z","app":"torn-by-a-cra"#);
    std::fs::write(&active, bytes).unwrap();
    copy_dir(&env.data, &dir.join("data"));
    std::fs::write(
        dir.join("expected-export.jsonl"),
        env.ok(&["export", "--format", "jsonl"]),
    )
    .unwrap();
    std::fs::write(dir.join("expected-verify.txt"), env.ok(&["verify"])).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Fixtures pinning what a reader written from segments-format.md alone had to guess (issue 15).
// Each `tests/fixtures/segments/<name>/` holds `data/` (a data directory, derived once from the
// frozen v1 fixture) and the expected stdout, stderr and exit code of `export` and `verify`
// (`expected-*`); `README.md` there says which section of the spec it pins. Written once by
// the ignored generator below, never regenerated.

use dokku_audit::store::codec::{check_line, encode_line};
use dokku_audit::store::Trailer;

/// The issue-15 fixtures, with the spec section each pins.
const FIXTURES: &[(&str, &str)] = &[
    (
        "name-mismatch",
        "§3: sealed segment 00000000000000000025 copied under the name 00000000000000000026 (its first line holds id 25). The whole segment is skipped and reported once at its line 1; the next segment's first line no longer follows its predecessor.",
    ),
    (
        "below-name",
        "§3: the first line of sealed segment 00000000000000000001 (id 1, valid) copied into the active segment 00000000000000000066 after its line 2: a line below the segment's name is never served; it is reported at its own line, and the rest of the segment is read.",
    ),
    (
        "no-id",
        "§4.2 check 5: three lines with a valid CRC but no event id (`{\"ID\":3001,…`, an id above u64::MAX, the 69-byte line `{x,\"v\":1,…}`) inside the active segment: each is invalid, never served, and the next valid line is a chain break.",
    ),
    (
        "no-id-in-chain",
        "§4.2 check 5, §5: line 4 of the active segment (id 69) rewritten as `{\"ID\":69,…` with its chain value and CRC recomputed from line 3: it is invalid and not served, and because its chain value is never a predecessor, line 5 (id 70) is reported as a chain break.",
    ),
    (
        "format-0",
        "§10: FORMAT holds `dokku-audit segments 0`: refused by every reader and writer (exit 1), naming the version.",
    ),
    (
        "empty",
        "§2: a store with FORMAT and an empty segments/: export prints nothing (jsonl), the wrapper with no events (json), the header (csv); verify exits 0.",
    ),
    (
        "zstd-no-size-no-checksum",
        "§6.2: sealed segment 00000000000000000001 recompressed without content size and checksum (same content, same trailer): its lines are served, verify reports the frame (exit 1).",
    ),
    (
        "zstd-bad-checksum",
        "§6.2: the XXH64 content checksum of sealed segment 00000000000000000001 flipped: the lines decoded before the check are served (each passed its CRC), the decode error is reported after them (exit 1).",
    ),
    (
        "blank-line-sealed",
        "§6.3: sealed segment 00000000000000000001 with a blank line after line 2 and a trailer whose plain_bytes is the content length: the blank line is damage, plain_bytes matches (no trailer mismatch).",
    ),
    (
        "journal-dotdot",
        "§8.1: compact.journal names `../outside`: refused; readers ignore it and read segments/ as it stands; verify reports it (exit 1).",
    ),
    (
        "journal-not-json",
        "§8.1: compact.journal is not JSON: refused; readers ignore it; verify reports it (exit 1).",
    ),
];

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/segments")
}

/// What a fixture run prints, with the temporary data directory replaced by `<data>`.
struct Observed {
    files: Vec<(String, String)>,
}

fn observe(env: &TestEnv, name: &str) -> Observed {
    let data = env.data.display().to_string();
    let norm = |s: String| s.replace(&data, "<data>");
    let mut files = Vec::new();
    let mut exits = String::new();
    let mut exports: Vec<(&str, &[&str])> = vec![("jsonl", &["export", "--format", "jsonl"])];
    if name == "empty" {
        exports.push(("json", &["export", "--format", "json"]));
        exports.push(("csv", &["export", "--format", "csv"]));
    }
    for (ext, args) in exports {
        let o = env.run(args);
        files.push((format!("expected-export.{ext}"), norm(stdout(&o))));
        if ext == "jsonl" {
            files.push(("expected-export-stderr.txt".into(), norm(util::stderr(&o))));
        }
        exits.push_str(&format!(
            "export --format {ext}: {}\n",
            o.status.code().unwrap_or(-1)
        ));
    }
    let v = env.run(&["verify"]);
    files.push(("expected-verify.txt".into(), norm(stdout(&v))));
    files.push(("expected-verify-stderr.txt".into(), norm(util::stderr(&v))));
    exits.push_str(&format!("verify: {}\n", v.status.code().unwrap_or(-1)));
    files.push(("expected-exit.txt".into(), exits));
    Observed { files }
}

/// Every issue-15 fixture is read exactly as recorded: export and verify, stdout, stderr, exit.
#[test]
fn issue15_fixtures_are_read_the_same_way() {
    for (name, _) in FIXTURES {
        let dir = fixtures_root().join(name);
        assert!(dir.join("data").is_dir(), "fixture {name} is missing");
        let env = TestEnv::new();
        copy_dir(&dir.join("data"), &env.data);
        for (file, got) in observe(&env, name).files {
            let want = std::fs::read_to_string(dir.join(&file))
                .unwrap_or_else(|e| panic!("{name}/{file}: {e}"));
            assert_eq!(got, want, "fixture {name}: {file} changed");
        }
        // Reading never changes a fixture.
        let mut before = Vec::new();
        let mut after = Vec::new();
        list_files(&dir.join("data"), &mut before);
        list_files(&env.data, &mut after);
        assert_eq!(before.len(), after.len(), "fixture {name}: a reader wrote");
    }
}

fn list_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            list_files(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

/// The empty export imports as nothing, and the store stays empty (docs/decisions.md).
#[test]
fn an_empty_export_is_empty_and_imports_as_nothing() {
    let env = TestEnv::new();
    copy_dir(&fixtures_root().join("empty/data"), &env.data);
    let export = env.ok(&["export", "--format", "jsonl"]);
    assert_eq!(export, "");
    let input = env.file("empty.jsonl", export.as_bytes());
    assert_eq!(
        env.ok(&["import", input.to_str().unwrap()]),
        "imported events: 0\n"
    );
    assert_eq!(env.ok(&["export"]), "");
}

/// A writer refuses the FORMAT-0 fixture as readers do, and writes nothing.
#[test]
fn format_0_is_refused_by_writers_too() {
    let env = TestEnv::new();
    copy_dir(&fixtures_root().join("format-0/data"), &env.data);
    let one = env.file("one.jsonl", &demo_jsonl(1, 0));
    let o = env.run(&["import", one.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    util::assert_dokku_error(&o, "format version 0");
    let mut files = Vec::new();
    list_files(&env.data, &mut files);
    let mut want = Vec::new();
    list_files(&fixtures_root().join("format-0/data"), &mut want);
    assert_eq!(files.len(), want.len());
}

/// A writer refuses to append while a refused journal is there (exit 1), and appends again
/// once it is moved away.
#[test]
fn a_refused_journal_blocks_writers_until_moved_away() {
    let env = TestEnv::new();
    copy_dir(&fixtures_root().join("journal-dotdot/data"), &env.data);
    let one = env.file("one.jsonl", &demo_jsonl(1, 0));
    let o = env.run(&["import", one.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    util::assert_dokku_error(&o, "compaction journal");
    std::fs::rename(env.data.join("compact.journal"), env.tmp.path().join("j")).unwrap();
    env.ok(&["import", one.to_str().unwrap()]);
    assert!(env.run(&["verify"]).status.success());
}

fn seg(data: &Path, first: u64, suffix: &str) -> PathBuf {
    data.join("segments").join(format!("{first:020}{suffix}"))
}

/// The plain content of a v1 sealed segment and its trailer.
fn unseal(path: &Path) -> (Vec<u8>, Trailer) {
    let bytes = std::fs::read(path).unwrap();
    let trailer = Trailer::decode_from_end(&bytes).unwrap();
    let content = zstd::stream::decode_all(&bytes[..]).unwrap();
    (content, trailer)
}

fn reseal(path: &Path, content: &[u8], trailer: &Trailer, size_and_checksum: bool) {
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 7).unwrap();
    enc.include_checksum(size_and_checksum).unwrap();
    enc.include_contentsize(size_and_checksum).unwrap();
    if size_and_checksum {
        enc.set_pledged_src_size(Some(content.len() as u64))
            .unwrap();
    }
    std::io::Write::write_all(&mut enc, content).unwrap();
    let mut out = enc.finish().unwrap();
    out.extend_from_slice(&trailer.encode());
    std::fs::write(path, out).unwrap();
}

/// Builds one fixture's data directory from the v1 fixture.
fn build_fixture(name: &str, data: &Path) {
    match name {
        "name-mismatch" => {
            std::fs::rename(seg(data, 25, ".jsonl.zst"), seg(data, 26, ".jsonl.zst")).unwrap()
        }
        "no-id" => {
            let active = seg(data, 66, ".jsonl");
            let bytes = std::fs::read(&active).unwrap();
            let mut lines: Vec<&[u8]> = bytes.split_inclusive(|c| *c == b'\n').collect();
            // After line 3 (id 68): three lines whose CRC and chain value are right, but whose
            // event part has no usable id.
            let prev = check_line(lines[2].strip_suffix(b"\n").unwrap())
                .unwrap()
                .chain;
            let mut extra = Vec::new();
            let mut chain = prev;
            for ev in [
                &br#"{"ID":3001,"ts":"2026-04-08T20:00:00Z","app":"no-id"}"#[..],
                br#"{"id":18446744073709551616,"ts":"2026-04-08T20:00:00Z","app":"too-big"}"#,
                b"{x}",
            ] {
                chain = encode_line(ev, &chain, &mut extra);
            }
            lines.insert(3, &extra);
            std::fs::write(&active, lines.concat()).unwrap();
        }
        "below-name" => {
            let (content, _) = unseal(&seg(data, 1, ".jsonl.zst"));
            let first = content.split_inclusive(|c| *c == b'\n').next().unwrap();
            let active = seg(data, 66, ".jsonl");
            let bytes = std::fs::read(&active).unwrap();
            let mut lines: Vec<&[u8]> = bytes.split_inclusive(|c| *c == b'\n').collect();
            lines.insert(2, first);
            std::fs::write(&active, lines.concat()).unwrap();
        }
        "no-id-in-chain" => {
            let active = seg(data, 66, ".jsonl");
            let bytes = std::fs::read(&active).unwrap();
            let mut lines: Vec<Vec<u8>> = bytes
                .split_inclusive(|c| *c == b'\n')
                .map(<[u8]>::to_vec)
                .collect();
            let prev = check_line(lines[2].strip_suffix(b"\n").unwrap())
                .unwrap()
                .chain;
            let line4 = lines[3].strip_suffix(b"\n").unwrap();
            let mut event = check_line(line4).unwrap().event_json();
            assert!(event.starts_with(b"{\"id\":69,"));
            event[2..4].copy_from_slice(b"ID");
            let mut out = Vec::new();
            encode_line(&event, &prev, &mut out);
            lines[3] = out;
            std::fs::write(&active, lines.concat()).unwrap();
        }
        "format-0" => std::fs::write(data.join("FORMAT"), "dokku-audit segments 0\n").unwrap(),
        "empty" => {
            for e in std::fs::read_dir(data.join("segments")).unwrap().flatten() {
                std::fs::remove_file(e.path()).unwrap();
            }
        }
        "zstd-no-size-no-checksum" => {
            let p = seg(data, 1, ".jsonl.zst");
            let (content, trailer) = unseal(&p);
            reseal(&p, &content, &trailer, false);
        }
        "zstd-bad-checksum" => {
            let p = seg(data, 1, ".jsonl.zst");
            let mut bytes = std::fs::read(&p).unwrap();
            let trailer_len = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
            // The XXH64 checksum is the last 4 bytes of the zstd frame, before the trailer.
            let at = bytes.len() - trailer_len as usize - 4;
            bytes[at] ^= 0xff;
            std::fs::write(&p, bytes).unwrap();
        }
        "blank-line-sealed" => {
            let p = seg(data, 1, ".jsonl.zst");
            let (content, mut trailer) = unseal(&p);
            let mut lines: Vec<&[u8]> = content.split_inclusive(|c| *c == b'\n').collect();
            lines.insert(2, b"\n");
            let content = lines.concat();
            trailer.plain_bytes = content.len() as u64;
            reseal(&p, &content, &trailer, true);
        }
        "journal-dotdot" => std::fs::write(
            data.join("compact.journal"),
            br#"{"staging":"compact-1","renames":[],"remove":["../outside"]}"#,
        )
        .unwrap(),
        "journal-not-json" => {
            std::fs::write(data.join("compact.journal"), b"{\"staging\":\"compact-1\",").unwrap()
        }
        other => panic!("no recipe for fixture {other}"),
    }
}

/// Writes each issue-15 fixture that does not exist yet. Run once with
/// `cargo test --test tests compat:: -- --ignored`; never regenerate an existing one.
#[test]
#[ignore]
fn write_issue15_fixtures_if_missing() {
    for (name, about) in FIXTURES {
        let dir = fixtures_root().join(name);
        if dir.join("data").exists() {
            continue;
        }
        let env = TestEnv::new();
        copy_dir(&fixture_dir().join("data"), &env.data);
        build_fixture(name, &env.data);
        copy_dir(&env.data, &dir.join("data"));
        for (file, text) in observe(&env, name).files {
            std::fs::write(dir.join(file), text).unwrap();
        }
        std::fs::write(
            dir.join("README.md"),
            format!("# Fixture `{name}`\n\n{about}\n\nData derived once from `../v1/data` by `write_issue15_fixtures_if_missing` in `tests/compat.rs`; never regenerated.\n"),
        )
        .unwrap();
    }
}
