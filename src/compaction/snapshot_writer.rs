//! The loop's end of a snapshot being written: it starts the writer thread (`aof::snapshot::writer`) and
//! the collection serializer that feeds it, hands them chunks and collections, and takes the report.
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::collection_serializer::{self, CollectionQueue, KeptBuffer};
use crate::aof::snapshot::writer::{
    self, SnapshotChunk, WriterInputs, WriterMessage, WriterReport,
};
use crate::limits::SNAPSHOT_CHUNKS_QUEUED_MAX;
use crate::store::keyspace::HandedOver;

/// The loop's end of a snapshot writer thread and of its collection serializer thread. Dropping it without
/// `Finish` abandons the snapshot: the threads let go of their handles, the writer removes its temporary
/// file, and both exit.
pub struct SnapshotWriter {
    sender: Option<Sender<WriterMessage>>,
    /// Collections taken by handle, for the collection serializer thread ([`SnapshotWriter::hand_over`]).
    collections: Arc<CollectionQueue>,
    reports: Receiver<WriterReport>,
    thread: Option<JoinHandle<()>>,
    pub sequence: u64,
}

impl SnapshotWriter {
    /// Starts the thread writing `snapshot-<sequence>.tmp` in `directory`, and the collection serializer
    /// that feeds it, which serializes into `collection_buffer` (kept from one compaction to the next).
    /// `notify` wakes the loop: called after the report is sent, and whenever the serializer lets go of a
    /// collection (a command may be waiting for it).
    pub fn spawn(
        directory: &Path,
        sequence: u64,
        now_ms: u64,
        collection_buffer: Arc<KeptBuffer>,
        notify: impl Fn() + Send + Sync + 'static,
    ) -> SnapshotWriter {
        let notify: Arc<dyn Fn() + Send + Sync> = Arc::new(notify);
        let (sender, receiver) = crossbeam_channel::bounded(SNAPSHOT_CHUNKS_QUEUED_MAX);
        let collections = Arc::new(CollectionQueue::default());
        // Unbounded, but the serializer keeps the bytes in them under
        // `SNAPSHOT_COLLECTION_BYTES_QUEUED_MAX`, counting the lengths the writer reports written.
        let (serialized_sender, serialized_receiver) = crossbeam_channel::unbounded();
        let (written_sender, written_receiver) = crossbeam_channel::unbounded();
        collection_serializer::spawn(
            Arc::clone(&collections),
            serialized_sender,
            written_receiver,
            Arc::clone(&collection_buffer),
            Arc::clone(&notify),
        );
        let (report_sender, reports) = crossbeam_channel::bounded(1);
        let inputs = WriterInputs {
            chunks: receiver,
            collections: serialized_receiver,
            collection_written: Box::new(move |bytes: Vec<u8>| {
                // Gone only if the serializer ended, which it does after its last entry.
                let _ = written_sender.send(bytes.len());
                collection_buffer.offer(bytes);
            }),
        };
        let thread = writer::spawn(
            directory,
            sequence,
            now_ms,
            inputs,
            report_sender,
            move || notify(),
        );
        SnapshotWriter {
            sender: Some(sender),
            collections,
            reports,
            thread: Some(thread),
            sequence,
        }
    }

    /// Hands over a chunk without blocking; gives it back when the queue is full.
    pub fn try_send(&self, chunk: SnapshotChunk) -> Result<(), SnapshotChunk> {
        let sender = self.sender.as_ref().expect("sender lives until finish");
        match sender.try_send(WriterMessage::Chunk(chunk)) {
            Ok(()) => Ok(()),
            Err(crossbeam_channel::TrySendError::Full(WriterMessage::Chunk(chunk))) => Err(chunk),
            // The thread ended early (it failed): its report says why; drop the chunk.
            Err(_) => Ok(()),
        }
    }

    /// Hands over collections taken by handle. The collection serializer thread serializes them (wanted
    /// ones first) and drops each handle as soon as its bytes exist: a command that changes one of them
    /// waits for exactly that (`dispatch::admission`), so the wait must include neither the queue of
    /// serialized chunks nor the writer's disk writes. The writer then writes the bytes, ahead of queued
    /// chunks.
    pub fn hand_over(&self, collections: HandedOver) {
        self.collections.hand_over(collections);
    }

    /// Hands over a chunk, waiting while the queue is full (SAVE).
    pub fn send(&self, chunk: SnapshotChunk) {
        let sender = self.sender.as_ref().expect("sender lives until finish");
        let _ = sender.send(WriterMessage::Chunk(chunk));
    }

    pub fn finish(&mut self, entry_count: u64) {
        if let Some(sender) = self.sender.take() {
            // Nothing more will be handed over: the serializer ends once it has serialized what it has,
            // and the writer waits for that before the trailer.
            self.collections.close();
            let _ = sender.send(WriterMessage::Finish { entry_count });
        }
    }

    pub fn try_report(&self) -> Option<WriterReport> {
        self.reports.try_recv().ok()
    }

    /// Waits for the report (SAVE, tests).
    pub fn wait_report(&self) -> WriterReport {
        self.reports
            .recv()
            .unwrap_or_else(|_| WriterReport::Failed("the snapshot thread stopped".to_string()))
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if self.sender.take().is_some() {
            // Not finished: abandoned. (After `Finish` both threads complete the snapshot.)
            self.collections.abandon();
        }
        if let Some(thread) = self.thread.take() {
            // Abandoning a snapshot must not block the loop on the disk: the thread cleans up alone.
            drop(thread);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aof::directory::read_manifest;
    use crate::compaction::snapshot_entries::read_snapshot;
    use crate::store::encoding::{decode_value, encode_entry};
    use crate::store::Value;
    use std::fs;

    #[test]
    fn the_writer_thread_publishes_a_snapshot_and_deletes_what_it_replaces() {
        let directory =
            std::env::temp_dir().join(format!("dibs-snapshot-writer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        fs::create_dir_all(&directory).unwrap();
        for name in [
            "log-00000000000000000001.aof",
            "log-00000000000000000008.aof",
            "log-00000000000000000011.aof",
            "snapshot-00000000000000000005.snap",
        ] {
            fs::write(directory.join(name), b"x").unwrap();
        }
        let mut writer = SnapshotWriter::spawn(&directory, 10, 7, Arc::default(), || {});
        let mut bytes = Vec::new();
        encode_entry(
            b"k",
            &Value::String(crate::small_bytes::SmallBytes::from("v")),
            None,
            &mut bytes,
        );
        writer.send(SnapshotChunk { bytes });
        // A collection handed over by handle: the collection serializer serializes it and lets go of it,
        // the writer writes it.
        let set: crate::store::SetValue = [bytes::Bytes::from("m")].into_iter().collect();
        let value = Value::Set(crate::store::Shared::new(set));
        writer.hand_over(HandedOver {
            wanted: Vec::new(),
            walked: vec![crate::store::encoding::SharedEntry {
                key: Box::from(&b"s"[..]),
                expires_at_ms: Some(99),
                value: value.share().expect("a collection"),
            }],
        });
        writer.finish(2);
        let WriterReport::Done { deleted, .. } = writer.wait_report() else {
            panic!("failed");
        };
        assert_eq!(deleted.len(), 3);
        let manifest = read_manifest(&directory).unwrap().expect("a manifest");
        assert_eq!(manifest.sequence, 10);
        let bytes = fs::read(directory.join(&manifest.snapshot_file)).unwrap();
        let mut loaded = Vec::new();
        let summary = read_snapshot(&bytes, |entry| {
            let value = decode_value(entry.tag, entry.value)?;
            loaded.push((entry.key.to_vec(), entry.expires_at_ms, value));
            Ok(())
        })
        .unwrap();
        // Each collection is a chunk of its own, written whenever the thread gets to it.
        assert_eq!((summary.entry_count, summary.chunk_count), (2, 2));
        loaded.sort_by(|left, right| left.0.cmp(&right.0));
        assert!(
            matches!(&loaded[0], (key, None, Value::String(v)) if key == b"k" && v.as_bytes() == b"v")
        );
        let (key, expiry, Value::Set(loaded_set)) = &loaded[1] else {
            panic!("the set second");
        };
        assert!(!value.is_shared(), "the writer let go of the set");
        let Value::Set(set) = &value else {
            unreachable!("made above")
        };
        assert_eq!(
            (&key[..], *expiry, &**loaded_set),
            (&b"s"[..], Some(99), &**set)
        );
        let mut names: Vec<String> = fs::read_dir(&directory)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "MANIFEST",
                "log-00000000000000000011.aof",
                "snapshot-00000000000000000010.snap"
            ]
        );
        fs::remove_dir_all(&directory).unwrap();
    }
}
