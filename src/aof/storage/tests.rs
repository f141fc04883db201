use super::*;
use std::time::{Duration, Instant};

fn scratch_file(name: &str) -> PathBuf {
    let directory =
        std::env::temp_dir().join(format!("dibs-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).unwrap();
    directory.join("log-00000000000000000001.aof")
}

fn file_length(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Bytes with no zero among them, different at every offset, so a misplaced or zeroed byte shows.
fn pattern(start: usize, length: usize) -> Vec<u8> {
    (start..start + length)
        .map(|index| (index % 251) as u8 + 1)
        .collect()
}

#[test]
fn a_file_storage_reserves_zeros_ahead_and_gives_them_back() {
    let path = scratch_file("reserve");
    let mut storage = FileStorage::open(&path, 1)
        .and_then(FileStorage::with_reserved_space)
        .unwrap();
    let data = pattern(0, 1000);
    storage.append(&data).unwrap();
    storage.sync().unwrap();
    let end = FILE_HEADER_SIZE as u64 + 1000;
    let deadline = Instant::now() + Duration::from_secs(30);
    while file_length(&path) < end + LOG_RESERVE_AHEAD_BYTES / 2 {
        assert!(Instant::now() < deadline, "no space was reserved");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(storage.length(), end);
    let contents = std::fs::read(&path).unwrap();
    assert_eq!(&contents[..FILE_HEADER_SIZE], &file_header(1));
    assert_eq!(&contents[FILE_HEADER_SIZE..end as usize], data.as_slice());
    assert!(contents[end as usize..].iter().all(|&byte| byte == 0));
    storage.finish().unwrap();
    assert_eq!(file_length(&path), end);
    // Appends after `finish` extend the file as they would without a reservation.
    storage.append(b"after").unwrap();
    assert_eq!(file_length(&path), end + 5);
    drop(storage);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

/// Appends of every size, some far past the reserved space, race the reserving thread; not one of
/// their bytes may end up zeroed or out of place.
#[test]
fn appends_that_outrun_the_reservation_keep_every_byte() {
    let path = scratch_file("outrun");
    let mut storage = FileStorage::open(&path, 1)
        .and_then(FileStorage::with_reserved_space)
        .unwrap();
    let mut written = 0;
    let sizes = [1, 20, 4096, 65_536, 3 << 20, 100, 5 << 20, 7, 1 << 20];
    for round in 0..6 {
        for size in sizes {
            let size = size + round;
            storage.append(&pattern(written, size)).unwrap();
            written += size;
        }
        storage.sync().unwrap();
    }
    let end = FILE_HEADER_SIZE as u64 + written as u64;
    assert_eq!(storage.length(), end);
    let contents = std::fs::read(&path).unwrap();
    assert!(contents.len() as u64 >= end);
    assert!(
        contents[FILE_HEADER_SIZE..end as usize] == pattern(0, written)[..],
        "an appended byte was overwritten"
    );
    // A cut stops the reservation for good: nothing grows the file after it.
    storage.truncate(end - 7).unwrap();
    assert_eq!(file_length(&path), end - 7);
    storage.append(b"x").unwrap();
    storage.sync().unwrap();
    assert_eq!(file_length(&path), end - 6);
    drop(storage);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[test]
fn faulty_storage_models_sync_and_crash() {
    let (mut storage, control) = FaultyStorage::new(b"head".to_vec());
    storage.append(b"one").unwrap();
    assert_eq!(control.crash(0), b"head");
    assert_eq!(control.crash(2), b"headon");
    storage.sync().unwrap();
    assert_eq!(control.crash(0), b"headone");
    storage.append(b"two").unwrap();
    control.fail_next_sync();
    let error = storage.sync().unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EIO));
    assert_eq!(control.crash(0), b"headone");
    control.fail_next_append(AppendFault::Short { bytes_written: 2 });
    let error = storage.append(b"three").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(control.contents(), b"headonetwoth");
    storage.truncate(7).unwrap();
    assert_eq!(storage.length(), 7);
    assert_eq!(control.crash(100), b"headone");
}

#[test]
fn a_torn_crash_keeps_synced_bytes_and_some_sectors() {
    let (mut storage, control) = FaultyStorage::new(b"head".to_vec());
    storage.append(b"abcdefghij").unwrap();
    // Sectors of 4: [0,4) synced, [4,8) "abcd", [8,12) "efgh", [12,14) "ij".
    assert_eq!(
        control.crash_torn(4, false, |sector| sector == 2),
        b"head\0\0\0\0efgh"
    );
    assert_eq!(
        control.crash_torn(4, true, |sector| sector == 2),
        b"head\0\0\0\0efgh\0\0"
    );
    assert_eq!(control.crash_torn(4, false, |_| false), b"head");
    storage.sync().unwrap();
    assert_eq!(control.crash_torn(4, false, |_| false), b"headabcdefghij");
}

#[test]
fn a_full_disk_gives_a_short_write() {
    let (mut storage, control) = FaultyStorage::new(b"head".to_vec());
    control.set_capacity(Some(7));
    storage.append(b"ab").unwrap();
    let error = storage.append(b"cdef").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
    assert_eq!(control.contents(), b"headabc");
    storage.truncate(6).unwrap();
    control.set_capacity(None);
    storage.append(b"xyz").unwrap();
    assert_eq!(control.contents(), b"headabxyz");
}
