//! The MANIFEST: the one small file that says which snapshot the data directory's state starts from.
//!
//! # Format (protocol.md copies it)
//! Four lines of ASCII text, each ending in `\n`:
//!
//! ```text
//! dibs-manifest 1
//! snapshot snapshot-00000000000000001234.snap
//! sequence 1234
//! crc32 1a2b3c4d
//! ```
//!
//! `1` is the format version. `sequence` is the snapshot's S and must match the file name. `crc32` is the
//! CRC-32 (IEEE) of the bytes of the first three lines, in 8 lowercase hex digits. Anything else (another
//! version, a missing line, extra bytes, a wrong checksum) is damage: the server refuses to start rather than
//! guess, since a wrong manifest could silently drop or double-apply records.
//!
//! # Durability
//! `aof::directory` reads and writes it: [`write_manifest`](super::directory::write_manifest) writes
//! `MANIFEST.tmp`, fsyncs it, renames it over `MANIFEST` and fsyncs the directory. rename is atomic, so after
//! a crash `MANIFEST` is the old one or the new one, whole; a leftover `MANIFEST.tmp` is deleted at start.
//! No manifest at all means no snapshot: replay every log from sequence 1.
use super::directory::snapshot_file_name;
use crate::limits::MANIFEST_SIZE_MAX;

const MANIFEST_VERSION_LINE: &str = "dibs-manifest 1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The snapshot's S: it holds every record up to here.
    pub sequence: u64,
    /// The snapshot's file name in the data directory.
    pub snapshot_file: String,
}

impl Manifest {
    pub fn encode(&self) -> Vec<u8> {
        let body = format!(
            "{MANIFEST_VERSION_LINE}\nsnapshot {}\nsequence {}\n",
            self.snapshot_file, self.sequence
        );
        let crc = crc32fast::hash(body.as_bytes());
        format!("{body}crc32 {crc:08x}\n").into_bytes()
    }

    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        if bytes.len() > MANIFEST_SIZE_MAX {
            return Err(format!("{} bytes is too long for a manifest", bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| "not text".to_string())?;
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        if lines.len() != 4 || !text.ends_with('\n') {
            return Err("a manifest has exactly four lines".to_string());
        }
        let version = lines[0].trim_end_matches('\n');
        if version != MANIFEST_VERSION_LINE {
            return Err(format!(
                "unknown manifest version line {version:?} (this version of dibs reads {MANIFEST_VERSION_LINE:?})"
            ));
        }
        let body_length = lines[..3].iter().map(|line| line.len()).sum::<usize>();
        let crc_text = lines[3]
            .trim_end_matches('\n')
            .strip_prefix("crc32 ")
            .ok_or("the fourth line is not `crc32 <hex>`")?;
        let stored_crc = u32::from_str_radix(crc_text, 16)
            .ok()
            .filter(|_| crc_text.len() == 8)
            .ok_or("the checksum is not 8 hex digits")?;
        if crc32fast::hash(&bytes[..body_length]) != stored_crc {
            return Err("checksum mismatch".to_string());
        }
        let snapshot_file = lines[1]
            .trim_end_matches('\n')
            .strip_prefix("snapshot ")
            .ok_or("the second line is not `snapshot <file>`")?
            .to_string();
        let sequence = lines[2]
            .trim_end_matches('\n')
            .strip_prefix("sequence ")
            .and_then(|digits| digits.parse::<u64>().ok())
            .ok_or("the third line is not `sequence <number>`")?;
        if snapshot_file != snapshot_file_name(sequence) {
            return Err(format!(
                "the snapshot file {snapshot_file:?} does not match sequence {sequence}"
            ));
        }
        Ok(Manifest {
            sequence,
            snapshot_file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_any_damage_is_refused() {
        let manifest = Manifest {
            sequence: 1234,
            snapshot_file: snapshot_file_name(1234),
        };
        let bytes = manifest.encode();
        assert_eq!(Manifest::parse(&bytes).unwrap(), manifest);
        for cut in 0..bytes.len() {
            assert!(Manifest::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for position in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[position] ^= 0x01;
            assert!(Manifest::parse(&damaged).is_err(), "flip at {position}");
        }
        let mismatched = Manifest {
            sequence: 5,
            snapshot_file: snapshot_file_name(6),
        };
        assert!(Manifest::parse(&mismatched.encode()).is_err());
    }
}
