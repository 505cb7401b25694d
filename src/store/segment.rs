//! Segment files: naming, listing, the sealed-segment trailer, and sealing (plain JSONL → zstd).
//!
//! Names are the first event id, zero-padded to 20 digits, so lexical order is event order:
//! `00000000000000000001.jsonl` (active, plain) and `00000000000000000001.jsonl.zst` (sealed).
//! When both exist the sealed copy counts; the plain one is kept for a grace period so that log
//! shippers finish reading it (segments-format.md §6).

use std::fs::{self};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::error::{Result, StoreError};
use super::line::ChainHash;
use crate::safefs::{self, Ownership};

/// Suffix of an active (plain JSONL) segment.
pub const PLAIN_SUFFIX: &str = ".jsonl";
/// Suffix of a sealed (zstd) segment.
pub const SEALED_SUFFIX: &str = ".jsonl.zst";
/// Suffix of a sealed segment being written (a crash leftover if seen by anyone else).
pub const TEMP_SUFFIX: &str = ".jsonl.zst.tmp";

/// One segment as found on disk: its first id and which files exist for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentFiles {
    /// The first event id, which is also its name.
    pub first_id: u64,
    /// `<dir>/<name>.jsonl`, if present.
    pub plain: Option<PathBuf>,
    /// `<dir>/<name>.jsonl.zst`, if present.
    pub sealed: Option<PathBuf>,
}

impl SegmentFiles {
    /// The file a reader uses: the sealed copy once it exists, else the plain one.
    pub fn data_path(&self) -> &Path {
        self.sealed
            .as_deref()
            .or(self.plain.as_deref())
            .unwrap_or(Path::new(""))
    }

    /// True when this segment's data is the plain file (the active segment, or one awaiting
    /// sealing after a crash).
    pub fn is_plain(&self) -> bool {
        self.sealed.is_none()
    }

    /// The display name: the data file's name.
    pub fn name(&self) -> String {
        file_name(self.data_path())
    }
}

/// The base name of a path, for messages.
pub fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The name stem of a segment starting at `first_id`.
pub fn stem(first_id: u64) -> String {
    format!("{first_id:020}")
}

/// What a file name in `segments/` (or a backup's) names: the one parser of segment names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentName {
    /// `<20 digits>.jsonl`: an active segment, or the plain copy of a sealed one.
    Plain(u64),
    /// `<20 digits>.jsonl.zst`: a sealed segment.
    Sealed(u64),
    /// `<20 digits>.jsonl.zst.tmp`: a seal being written (a leftover if its writer is gone).
    SealTemp(u64),
}

impl SegmentName {
    /// Parses a base name: exactly 20 decimal digits whose value fits a u64, then a suffix.
    pub fn parse(name: &str) -> Option<SegmentName> {
        let (digits, kind): (&str, fn(u64) -> SegmentName) =
            if let Some(d) = name.strip_suffix(TEMP_SUFFIX) {
                (d, SegmentName::SealTemp)
            } else if let Some(d) = name.strip_suffix(SEALED_SUFFIX) {
                (d, SegmentName::Sealed)
            } else {
                (name.strip_suffix(PLAIN_SUFFIX)?, SegmentName::Plain)
            };
        if digits.len() != 20 || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse::<u64>().ok().map(kind)
    }

    /// The first event id the name stands for.
    pub fn first_id(self) -> u64 {
        match self {
            SegmentName::Plain(id) | SegmentName::Sealed(id) | SegmentName::SealTemp(id) => id,
        }
    }

    /// A segment's data (plain or sealed), not a temporary file.
    pub fn is_data(self) -> bool {
        !matches!(self, SegmentName::SealTemp(_))
    }
}

/// What `list` found in the segments directory besides segments.
#[derive(Debug, Default, Clone)]
pub struct Listing {
    /// Segments in event order.
    pub segments: Vec<SegmentFiles>,
    /// Leftover temporary files from an interrupted seal.
    pub temp_files: Vec<PathBuf>,
    /// Files that are not ours.
    pub foreign_files: Vec<PathBuf>,
}

/// Lists the segments directory. A missing directory is an empty listing.
pub fn list(dir: &Path) -> Result<Listing> {
    let mut listing = Listing::default();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        Err(e) => return Err(StoreError::io("read directory", dir)(e)),
    };
    let mut by_id: std::collections::BTreeMap<u64, SegmentFiles> = Default::default();
    for entry in entries {
        let entry = entry.map_err(StoreError::io("read directory", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        // Only regular files are segments: a FIFO or device named like one would block or
        // feed every reader and writer (a directory or symlink cannot be one either).
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            listing.foreign_files.push(path);
            continue;
        }
        let Some(parsed) = SegmentName::parse(&name) else {
            listing.foreign_files.push(path);
            continue;
        };
        let id = parsed.first_id();
        if !parsed.is_data() {
            listing.temp_files.push(path);
            continue;
        }
        let seg = by_id.entry(id).or_insert(SegmentFiles {
            first_id: id,
            plain: None,
            sealed: None,
        });
        if matches!(parsed, SegmentName::Plain(_)) {
            seg.plain = Some(path);
        } else {
            seg.sealed = Some(path);
        }
    }
    listing.segments = by_id.into_values().collect();
    Ok(listing)
}

/// What a sealed segment's trailer says about it. Written by `seal`, checked by `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// Format version of the segment.
    pub format: u32,
    /// Id of the first event.
    pub first_id: u64,
    /// Id of the last event.
    pub last_id: u64,
    /// Number of events.
    pub count: u64,
    /// `ts` of the first event.
    pub first_ts: String,
    /// `ts` of the last event.
    pub last_ts: String,
    /// Chain value of the last event (the chain head at the end of this segment).
    pub chain_head: ChainHash,
    /// Bytes of plain JSONL it holds.
    pub plain_bytes: u64,
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// zstd skippable frame magic used for the trailer (0x184D2A5D; any of 0x184D2A50..5F skips).
pub const TRAILER_FRAME_MAGIC: u32 = 0x184D_2A5D;
/// First four bytes of the trailer's user data.
pub const TRAILER_MAGIC: &[u8; 4] = b"DAUD";

impl Trailer {
    /// The complete skippable frame: `magic u32le | size u32le | "DAUD" | crc32 u32le | json |
    /// frame_len u32le`. The final length lets a reader find the frame from the end of the file.
    pub fn encode(&self) -> Vec<u8> {
        let json = format!(
            "{{\"format\":{},\"first_id\":{},\"last_id\":{},\"count\":{},\"first_ts\":{},\"last_ts\":{},\"chain_head\":\"{}\",\"plain_bytes\":{}}}",
            self.format,
            self.first_id,
            self.last_id,
            self.count,
            // Quoted by serde_json, so a trailer decoded from hostile bytes re-encodes to valid
            // JSON; canonical timestamps come out byte-identical.
            json_string(&self.first_ts),
            json_string(&self.last_ts),
            self.chain_head,
            self.plain_bytes
        );
        let user_len = 4 + 4 + json.len() + 4;
        let frame_len = 8 + user_len;
        let mut out = Vec::with_capacity(frame_len);
        out.extend_from_slice(&TRAILER_FRAME_MAGIC.to_le_bytes());
        out.extend_from_slice(&(user_len as u32).to_le_bytes());
        out.extend_from_slice(TRAILER_MAGIC);
        out.extend_from_slice(&crc32fast::hash(json.as_bytes()).to_le_bytes());
        out.extend_from_slice(json.as_bytes());
        out.extend_from_slice(&(frame_len as u32).to_le_bytes());
        out
    }

    /// Reads the trailer from the end of a sealed segment's bytes.
    pub fn decode_from_end(bytes: &[u8]) -> Option<Trailer> {
        let n = bytes.len();
        let frame_len =
            u32::from_le_bytes(bytes.get(n.checked_sub(4)?..)?.try_into().ok()?) as usize;
        let frame = bytes.get(n.checked_sub(frame_len)?..)?;
        if frame.len() < 20 || frame[..4] != TRAILER_FRAME_MAGIC.to_le_bytes() {
            return None;
        }
        let user_len = u32::from_le_bytes(frame[4..8].try_into().ok()?) as usize;
        if user_len + 8 != frame_len || &frame[8..12] != TRAILER_MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(frame[12..16].try_into().ok()?);
        let json = &frame[16..frame_len - 4];
        if crc32fast::hash(json) != crc {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(json).ok()?;
        // A trailer of another format version is unusable (segments-format.md §6.3): the
        // reader falls back to the content, and `verify` reports it.
        if v["format"].as_u64() != Some(u64::from(super::line::FORMAT_VERSION)) {
            return None;
        }
        Some(Trailer {
            format: v["format"].as_u64()? as u32,
            first_id: v["first_id"].as_u64()?,
            last_id: v["last_id"].as_u64()?,
            count: v["count"].as_u64()?,
            first_ts: v["first_ts"].as_str()?.to_string(),
            last_ts: v["last_ts"].as_str()?.to_string(),
            chain_head: ChainHash::from_hex(v["chain_head"].as_str()?.as_bytes())?,
            plain_bytes: v["plain_bytes"].as_u64()?,
        })
    }

    /// Reads only the trailer of a sealed segment file (a few hundred bytes from its end).
    pub fn read(path: &Path) -> Result<Option<Trailer>> {
        use std::io::{Seek, SeekFrom};
        let mut f = safefs::open_read(path).map_err(StoreError::io("open", path))?;
        let len = f.metadata().map_err(StoreError::io("stat", path))?.len();
        let take = len.min(4096);
        f.seek(SeekFrom::Start(len - take))
            .map_err(StoreError::io("seek", path))?;
        let mut buf = Vec::with_capacity(take as usize);
        f.read_to_end(&mut buf)
            .map_err(StoreError::io("read", path))?;
        Ok(Trailer::decode_from_end(&buf))
    }
}

/// zstd frame magic (RFC 8878).
const ZSTD_MAGIC: u32 = 0xFD2F_B528;

/// Checks the frame headers of a sealed segment's bytes: every zstd data frame must declare its
/// content size and carry the XXH64 content checksum (segments-format.md §6.2). Returns one
/// sentence per violation, with the frame's byte offset in the file. Frames that cannot be
/// walked (damaged bytes) end the walk quietly: decoding reports that damage.
pub fn frame_problems(bytes: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0usize;
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    while at < bytes.len() {
        let Some(magic) = u32_at(at) else {
            break;
        };
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            let Some(size) = u32_at(at + 4) else {
                break;
            };
            at = at.saturating_add(8).saturating_add(size as usize);
            continue;
        }
        if magic != ZSTD_MAGIC {
            break;
        }
        let Some(&descriptor) = bytes.get(at + 4) else {
            break;
        };
        // Frame_Content_Size_flag (bits 7-6) or Single_Segment_flag (bit 5) means the size is
        // there; Content_Checksum_flag is bit 2.
        if descriptor >> 6 == 0 && descriptor & 0x20 == 0 {
            out.push(format!(
                "zstd frame at byte {at} of the file does not declare its content size"
            ));
        }
        if descriptor & 0x04 == 0 {
            out.push(format!(
                "zstd frame at byte {at} of the file has no content checksum"
            ));
        }
        match zstd::zstd_safe::find_frame_compressed_size(&bytes[at..]) {
            Ok(n) if n > 0 => at += n,
            _ => break,
        }
    }
    out
}

/// Seals a plain segment: compresses its first `plain_len` bytes (whole lines only, checked by
/// the caller) into `<stem>.jsonl.zst` with a trailer, via a temp file, fsync, rename and a
/// directory fsync. The plain file is left in place; `remove_expired_plain` deletes it later.
pub fn seal(
    plain: &Path,
    plain_len: u64,
    trailer: &Trailer,
    level: i32,
    owner: &Ownership,
) -> Result<PathBuf> {
    let dir = plain.parent().unwrap_or(Path::new("."));
    let stem = stem(trailer.first_id);
    let tmp = dir.join(format!("{stem}{TEMP_SUFFIX}"));
    let sealed = dir.join(format!("{stem}{SEALED_SUFFIX}"));
    let src = safefs::open_read(plain).map_err(StoreError::io("open", plain))?;
    let out = safefs::create_replacing(&tmp, owner)?;
    let mut enc =
        zstd::stream::write::Encoder::new(out, level).map_err(StoreError::io("zstd", &tmp))?;
    // Content size and checksum in the frame header make `zstd -t` and truncation checks exact.
    enc.include_checksum(true)
        .map_err(StoreError::io("zstd", &tmp))?;
    // Sealing runs under the writer lock: use every core so a full segment seals quickly.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    if workers > 1 && plain_len > 1024 * 1024 {
        enc.multithread(workers)
            .map_err(StoreError::io("zstd", &tmp))?;
    }
    enc.set_pledged_src_size(Some(plain_len))
        .map_err(StoreError::io("zstd", &tmp))?;
    let copied = std::io::copy(&mut src.take(plain_len), &mut enc)
        .map_err(StoreError::io("compress", plain))?;
    if copied != plain_len {
        return Err(StoreError::Segment {
            segment: file_name(plain),
            detail: format!("shrank while sealing ({copied} of {plain_len} bytes)"),
        });
    }
    let mut out = enc.finish().map_err(StoreError::io("compress", &tmp))?;
    out.write_all(&trailer.encode())
        .map_err(StoreError::io("write", &tmp))?;
    out.sync_all().map_err(StoreError::io("fsync", &tmp))?;
    drop(out);
    crate::crashpoint::hit("seal.before_rename");
    safefs::rename(&tmp, &sealed).map_err(StoreError::io("rename", &sealed))?;
    crate::crashpoint::hit("seal.after_rename");
    safefs::sync_dir(dir)?;
    Ok(sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_parse_one_way() {
        use SegmentName::*;
        let id = "00000000000000000042";
        assert_eq!(SegmentName::parse(&format!("{id}.jsonl")), Some(Plain(42)));
        assert_eq!(
            SegmentName::parse(&format!("{id}.jsonl.zst")),
            Some(Sealed(42))
        );
        assert_eq!(
            SegmentName::parse(&format!("{id}.jsonl.zst.tmp")),
            Some(SealTemp(42))
        );
        assert!(!SealTemp(42).is_data());
        assert_eq!(
            SegmentName::parse(&format!("{}.jsonl", stem(u64::MAX))),
            Some(Plain(u64::MAX))
        );
        for bad in [
            "42.jsonl",
            "0000000000000000042.jsonl",
            "99999999999999999999.jsonl",
            "0000000000000000004x.jsonl",
            "+0000000000000000042.jsonl",
            "00000000000000000042.json",
            "00000000000000000042.jsonl.gz",
        ] {
            assert_eq!(SegmentName::parse(bad), None, "{bad}");
        }
    }

    fn t_copy() -> Trailer {
        Trailer {
            format: 1,
            first_id: 1,
            last_id: 1,
            count: 1,
            first_ts: "2026-01-01T00:00:00Z".into(),
            last_ts: "2026-01-01T00:00:00Z".into(),
            chain_head: ChainHash([1; 16]),
            plain_bytes: 10,
        }
    }

    #[test]
    fn trailer_round_trip_and_damage() {
        let t = Trailer {
            format: 1,
            first_id: 5,
            last_id: 9,
            count: 5,
            first_ts: "2026-01-01T00:00:00Z".into(),
            last_ts: "2026-01-01T00:00:09Z".into(),
            chain_head: ChainHash([7; 16]),
            plain_bytes: 1234,
        };
        let mut bytes = b"zstd frames before".to_vec();
        bytes.extend_from_slice(&t.encode());
        assert_eq!(Trailer::decode_from_end(&bytes), Some(t));
        let n = bytes.len();
        bytes[n - 10] ^= 1;
        assert_eq!(Trailer::decode_from_end(&bytes), None);
        assert_eq!(Trailer::decode_from_end(b""), None);
        assert_eq!(Trailer::decode_from_end(&[255, 255, 255, 255]), None);
        // Odd timestamps (only possible in hostile bytes) still round-trip.
        let odd = Trailer {
            first_ts: "a\"b\\c\n".into(),
            ..t_copy()
        };
        assert_eq!(Trailer::decode_from_end(&odd.encode()), Some(odd));
        // Any format but 1 is unusable (§6.3), 0 included.
        for format in [0, 2] {
            let other = Trailer { format, ..t_copy() };
            assert_eq!(Trailer::decode_from_end(&other.encode()), None);
        }
    }

    #[test]
    fn listing_sorts_and_classifies() {
        let dir = tempfile::tempdir().unwrap();
        for n in [
            "00000000000000000010.jsonl",
            "00000000000000000001.jsonl.zst",
            "00000000000000000001.jsonl",
            "00000000000000000020.jsonl.zst.tmp",
            "notes.txt",
            "123.jsonl",
        ] {
            fs::write(dir.path().join(n), b"").unwrap();
        }
        let l = list(dir.path()).unwrap();
        assert_eq!(l.segments.len(), 2);
        assert_eq!(l.segments[0].first_id, 1);
        assert!(!l.segments[0].is_plain());
        assert!(l.segments[1].is_plain());
        assert_eq!(l.temp_files.len(), 1);
        assert_eq!(l.foreign_files.len(), 2);
    }
}
