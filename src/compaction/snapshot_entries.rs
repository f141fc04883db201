//! A snapshot's entries: the bridge between the snapshot file format (`aof::snapshot`, which frames and
//! checksums chunks of opaque bytes) and the store's encoding of an entry (`store::encoding`: key, expiry,
//! type tag and the value's bytes). Start-up's loader and `dibs-aof check` read snapshots through it.
use crate::aof::snapshot::{read_snapshot_chunks, SnapshotDamage, SnapshotSummary};
use crate::store::encoding::{read_entry, RawEntry, Reader};

/// Reads and verifies a whole snapshot, handing each entry to `on_entry` in file order. Every checksum,
/// the trailer's counts and the end of the file are checked; an entry that does not decode, or an error
/// from `on_entry` (a value that does not decode), is reported at the entry's offset. A caller that loads
/// entries must discard them on error.
pub fn read_snapshot<'a>(
    bytes: &'a [u8],
    mut on_entry: impl FnMut(RawEntry<'a>) -> Result<(), String>,
) -> Result<SnapshotSummary, SnapshotDamage> {
    read_snapshot_chunks(bytes, |payload, payload_at| {
        let mut reader = Reader::new(payload);
        let mut entry_count = 0;
        while reader.remaining() > 0 {
            let entry_offset = payload_at + reader.offset();
            let entry = read_entry(&mut reader).map_err(|reason| {
                SnapshotDamage::at(entry_offset, format!("an entry does not decode: {reason}"))
            })?;
            on_entry(entry).map_err(|reason| {
                SnapshotDamage::at(entry_offset, format!("an entry does not load: {reason}"))
            })?;
            entry_count += 1;
        }
        Ok(entry_count)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aof::snapshot::encode_snapshot;
    use crate::store::encoding::{decode_value, encode_entry};
    use crate::store::Value;

    fn sample() -> Vec<u8> {
        let mut first = Vec::new();
        let mut second = Vec::new();
        for index in 0..10 {
            let value = Value::String(crate::small_bytes::SmallBytes::from(
                format!("value{index}").as_str(),
            ));
            let out = if index < 6 { &mut first } else { &mut second };
            encode_entry(
                format!("key{index}").as_bytes(),
                &value,
                (index % 2 == 0).then_some(index),
                out,
            );
        }
        encode_snapshot(42, 1_000, &[first, second], 10)
    }

    #[test]
    fn a_snapshot_reads_back_entry_for_entry() {
        let bytes = sample();
        let mut seen = Vec::new();
        let summary = read_snapshot(&bytes, |entry| {
            let Value::String(value) = decode_value(entry.tag, entry.value)? else {
                return Err("not a string".to_string());
            };
            seen.push((entry.key.to_vec(), value, entry.expires_at_ms));
            Ok(())
        })
        .expect("valid");
        assert_eq!(summary.sequence, 42);
        assert_eq!(summary.now_ms, 1_000);
        assert_eq!(summary.entry_count, 10);
        assert_eq!(summary.chunk_count, 2);
        assert_eq!(seen.len(), 10);
        assert_eq!(
            seen[3],
            (
                b"key3".to_vec(),
                crate::small_bytes::SmallBytes::from("value3"),
                None
            )
        );
        assert_eq!(seen[4].2, Some(4));
    }

    #[test]
    fn every_cut_and_every_bit_flip_is_detected() {
        let bytes = sample();
        for cut in 0..bytes.len() {
            assert!(
                read_snapshot(&bytes[..cut], |_| Ok(())).is_err(),
                "a cut at {cut} went unnoticed"
            );
        }
        for position in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut damaged = bytes.clone();
                damaged[position] ^= 1 << bit;
                assert!(
                    read_snapshot(&damaged, |_| Ok(())).is_err(),
                    "a flip at {position} bit {bit} went unnoticed"
                );
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read_snapshot(&longer, |_| Ok(())).is_err());
    }
}
