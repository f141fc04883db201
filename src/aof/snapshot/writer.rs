//! The snapshot writer thread: it takes chunk payloads from the loop over a bounded channel (the loop
//! stops serializing while it is full: memory stays bounded when the disk is slower) and the large
//! collections the collection serializer serialized off the loop, frames and checksums them off the loop,
//! and writes them to `snapshot-<S>.tmp` (`file::SnapshotFile`: direct I/O where it can). Each serialized
//! collection becomes a chunk of its own, written ahead of queued chunks so its memory is given back
//! soon.
//!
//! On [`WriterMessage::Finish`], once the serializer also said it serialized everything it was handed
//! ([`SerializerOutput::AllSerialized`]), it writes the trailer, fsyncs the file, renames it to
//! `snapshot-<S>.snap` durably, writes the manifest durably, and only then deletes what the new snapshot
//! makes redundant: log files whose records are all at most S and older snapshots (`aof::directory`).
//! Then it reports back and calls `notify` (the loop's waker). If the loop drops its end before
//! `Finish`, the snapshot is abandoned: the thread removes its temporary file and ends without a report.
use std::fs;
use std::io;
use std::path::Path;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::file::SnapshotFile;
use super::{chunk_header, header, trailer_payload, CHUNK_KIND_ENTRIES, CHUNK_KIND_TRAILER};
use crate::aof::directory::{
    delete_replaced, rename_durably, snapshot_file_name, snapshot_temporary_name, write_manifest,
};
use crate::aof::manifest::Manifest;

/// Entries the loop serialized, whole entries back to back, for one chunk. (Collections taken by handle
/// travel apart, through the collection serializer: [`SerializerOutput`].)
#[derive(Debug, Default)]
pub struct SnapshotChunk {
    pub bytes: Vec<u8>,
}

/// What the loop sends the writer thread.
pub enum WriterMessage {
    /// Whole entries, to frame as one chunk.
    Chunk(SnapshotChunk),
    /// Every entry was sent: finish the file, publish it in the manifest, delete what it replaces.
    Finish { entry_count: u64 },
}

/// What the writer thread reports when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriterReport {
    /// The manifest names the new snapshot; `deleted` files were removed after that.
    Done {
        sequence: u64,
        snapshot_bytes: u64,
        deleted: Vec<String>,
    },
    Failed(String),
}

/// What the collection serializer sends the writer.
#[derive(Debug)]
pub enum SerializerOutput {
    /// One collection's entry bytes, to write as a chunk of its own and give back.
    Entry(Vec<u8>),
    /// Every collection handed over is serialized and sent; nothing follows. Without it (the serializer
    /// ended because the snapshot was abandoned or the writer failed) the snapshot is incomplete.
    AllSerialized,
}

/// The writer thread's inputs.
pub struct WriterInputs {
    /// Chunks and `Finish`, from the loop.
    pub chunks: Receiver<WriterMessage>,
    /// Collections the serializer serialized; served first, whenever the thread is between two chunks, so
    /// that their memory is given back soon.
    pub collections: Receiver<SerializerOutput>,
    /// Called with each collection's bytes once they are written: the serializer counts them against its
    /// bound and may reuse the buffer.
    pub collection_written: Box<dyn FnMut(Vec<u8>) + Send>,
}

/// Starts the thread writing the snapshot at `sequence` in `directory`; it sends its report on `reports`
/// and then calls `notify`.
pub fn spawn(
    directory: &Path,
    sequence: u64,
    now_ms: u64,
    mut inputs: WriterInputs,
    reports: Sender<WriterReport>,
    notify: impl Fn() + Send + 'static,
) -> JoinHandle<()> {
    let directory = directory.to_path_buf();
    std::thread::Builder::new()
        .name("dibs-snapshot".to_string())
        .spawn(move || {
            lower_thread_priority();
            let temporary = directory.join(snapshot_temporary_name(sequence));
            let report = match write_snapshot(&directory, sequence, now_ms, &mut inputs) {
                Ok(Some(report)) => report,
                Ok(None) => {
                    // Abandoned: the loop dropped its end.
                    let _ = fs::remove_file(&temporary);
                    return;
                }
                Err(error) => {
                    let _ = fs::remove_file(&temporary);
                    WriterReport::Failed(error)
                }
            };
            if reports.send(report).is_ok() {
                notify();
            }
        })
        .expect("spawn the snapshot thread")
}

/// The writer's CPU work (checksums, copies into the page cache) must never take a core from the event
/// loop: on a small machine a busy writer thread scheduled over the loop is a pause clients see. Linux
/// applies `nice` per thread; failing to lower it is harmless.
fn lower_thread_priority() {
    const WRITER_NICE: libc::c_int = 10;
    // Safety: gettid and setpriority take no pointers; they only affect this thread's scheduling.
    unsafe {
        let thread_id = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread_id as libc::id_t, WRITER_NICE);
    }
}

fn io_context<'a>(what: &'a str, path: &'a Path) -> impl Fn(io::Error) -> String + 'a {
    move |error| format!("{what} {}: {error}", path.display())
}

enum WriterInput {
    Collection(SerializerOutput),
    Message(WriterMessage),
    /// The loop dropped its end before `Finish`: the snapshot was abandoned.
    Abandoned,
    /// The serializer ended without `AllSerialized`: it let go of collections it did not serialize (the
    /// snapshot was abandoned, or the thread died), so the snapshot would lack them.
    SerializerStopped,
}

/// The writer thread's work. `Ok(None)`: abandoned before `Finish`.
fn write_snapshot(
    directory: &Path,
    sequence: u64,
    now_ms: u64,
    inputs: &mut WriterInputs,
) -> Result<Option<WriterReport>, String> {
    let temporary = directory.join(snapshot_temporary_name(sequence));
    let mut file =
        SnapshotFile::create(&temporary).map_err(io_context("cannot create", &temporary))?;
    let write = |file: &mut SnapshotFile, bytes: &[u8]| -> Result<(), String> {
        file.write(bytes)
            .map_err(io_context("cannot write", &temporary))
    };
    write(&mut file, &header(sequence, now_ms))?;
    let mut chunk_count = 0u64;
    let mut write_chunk = |file: &mut SnapshotFile, chunk: &[u8]| -> Result<(), String> {
        if !chunk.is_empty() {
            write(file, &chunk_header(CHUNK_KIND_ENTRIES, chunk))?;
            write(file, chunk)?;
            chunk_count += 1;
        }
        Ok(())
    };
    // Serialized collections first (one chunk each), whenever there are any: their memory counts against
    // the serializer's bound. The snapshot is complete only once the loop sent `Finish` and the serializer
    // said every collection handed over was serialized (`AllSerialized`, sent after the loop closed its
    // queue, which it does just before `Finish`): the trailer's counts depend on both.
    let mut finished: Option<u64> = None;
    let mut all_collections_serialized = false;
    let no_more_collections = crossbeam_channel::never();
    let entry_count = loop {
        if let (Some(entry_count), true) = (finished, all_collections_serialized) {
            break entry_count;
        }
        let collections = if all_collections_serialized {
            // Nothing more comes from there: wait only on the chunks.
            &no_more_collections
        } else {
            &inputs.collections
        };
        let input = match collections.try_recv() {
            Ok(output) => WriterInput::Collection(output),
            Err(_) if finished.is_some() => collections
                .recv()
                .map_or(WriterInput::SerializerStopped, WriterInput::Collection),
            Err(_) => crossbeam_channel::select! {
                recv(collections) -> output => output.map_or(WriterInput::SerializerStopped, WriterInput::Collection),
                recv(inputs.chunks) -> message => message.map_or(WriterInput::Abandoned, WriterInput::Message),
            },
        };
        match input {
            WriterInput::Collection(SerializerOutput::Entry(bytes)) => {
                write_chunk(&mut file, &bytes)?;
                (inputs.collection_written)(bytes);
            }
            WriterInput::Collection(SerializerOutput::AllSerialized) => {
                all_collections_serialized = true
            }
            WriterInput::Message(WriterMessage::Chunk(chunk)) => {
                write_chunk(&mut file, &chunk.bytes)?
            }
            WriterInput::Message(WriterMessage::Finish { entry_count }) => {
                finished = Some(entry_count)
            }
            WriterInput::Abandoned => return Ok(None),
            // An error, not an abandonment: if the loop still waits for a report, it must get one. (When
            // the loop abandoned the snapshot, nobody reads it; the temporary file goes either way.)
            WriterInput::SerializerStopped => {
                return Err(
                    "the collection serializer stopped before serializing every collection \
                            handed to it"
                        .to_string(),
                )
            }
        }
    };
    let trailer = trailer_payload(entry_count, chunk_count);
    write(&mut file, &chunk_header(CHUNK_KIND_TRAILER, &trailer))?;
    write(&mut file, &trailer)?;
    let (file, written) = file
        .finish()
        .map_err(io_context("cannot write", &temporary))?;
    file.sync_all()
        .map_err(io_context("cannot fsync", &temporary))?;
    drop(file);
    let final_path = directory.join(snapshot_file_name(sequence));
    rename_durably(&temporary, &final_path)
        .map_err(io_context("cannot rename durably", &temporary))?;
    write_manifest(
        directory,
        &Manifest {
            sequence,
            snapshot_file: snapshot_file_name(sequence),
        },
    )
    .map_err(|error| format!("cannot write the manifest: {error}"))?;
    let deleted = delete_replaced(directory, sequence);
    Ok(Some(WriterReport::Done {
        sequence,
        snapshot_bytes: written,
        deleted,
    }))
}
