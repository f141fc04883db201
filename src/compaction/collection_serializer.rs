//! The collection serializer: the thread that turns the large collections a compaction hands over by handle
//! into snapshot entry bytes, so that it can let go of each handle as soon as possible.
//!
//! # Why a thread of its own
//! A command that changes a collection the snapshot still holds by handle waits until the handle is dropped
//! (`dispatch::admission`); every client of that collection waits with it. The snapshot writer thread
//! runs at nice 10 so that its checksums and copies never take a core from the loop, and it may be in the
//! middle of a direct write or another collection when a command starts waiting: a wait behind it would be
//! mostly a low-priority thread waiting for a core. This thread runs at the loop's priority and does
//! nothing but serialize (no I/O): each handle is dropped the moment its bytes exist, and the bytes go to
//! the writer, which frames, checksums and writes them like any other chunk in its own time, one entry per
//! chunk ([`SharedEntry::encode`]). Its CPU is only that of the large collections
//! (`SNAPSHOT_SHARE_ELEMENTS_MIN` elements or more).
//!
//! # Order
//! Collections handed over for a command that waits for them ([`HandedOver::wanted`]) go to the front of the
//! queue, those the walk handed over to the back: a waiting command waits for at most the collection being
//! serialized and the wanted ones before its own, not for the walk's. (A collection the walk handed over and
//! a command wants later is not moved forward: finding it would cost the loop a search per waiting
//! command.)
//!
//! # A warm buffer
//! A fresh buffer of many megabytes takes a page fault per 4 KiB page, which costs about as much as the
//! encoding itself. So one buffer is kept from one collection to the next and from one compaction to the
//! next ([`KeptBuffer`]), the largest one that was used, up to `SNAPSHOT_COLLECTION_BUFFER_KEPT_MAX` bytes:
//! a compaction's first large collection, usually the one a command waits for, is serialized into memory
//! that is already there. The cost is that memory staying allocated (INFO `used_memory` counts it) once a
//! compaction has met a large collection.
//!
//! # Bounds
//! The queue of handles costs no memory beyond the handles (at most one per collection in the snapshot; the
//! values stay the keyspace's, since commands wait rather than copy them). Serialized bytes the writer has
//! not written yet are bounded: once `SNAPSHOT_COLLECTION_BYTES_QUEUED_MAX` of them are waiting, the
//! serializer stops taking handles until the writer gives buffers back, so at most that much plus two
//! collections (the one being written, the one just serialized) is in memory; past the bound, waiting
//! commands wait for the disk again.
//!
//! # Ending
//! [`CollectionQueue::close`] (the compaction sent everything): the thread serializes what is queued and
//! ends, which tells the writer no collection is left. [`CollectionQueue::abandon`] (the compaction was
//! abandoned), or the writer ending early (it failed): the thread drops every handle it has and ends.
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};

use crossbeam_channel::{Receiver, Sender};

use crate::aof::snapshot::writer::SerializerOutput;
use crate::limits::{SNAPSHOT_COLLECTION_BUFFER_KEPT_MAX, SNAPSHOT_COLLECTION_BYTES_QUEUED_MAX};
use crate::store::encoding::SharedEntry;
use crate::store::keyspace::HandedOver;

/// The serialization buffer kept between collections and compactions (see the module docs): the writer
/// offers each buffer back once written, the serializer takes it for the next collection.
#[derive(Default)]
pub struct KeptBuffer(Mutex<Vec<u8>>);

impl KeptBuffer {
    /// Keeps `buffer` if it is larger than the one kept and at most `SNAPSHOT_COLLECTION_BUFFER_KEPT_MAX`.
    pub fn offer(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() > SNAPSHOT_COLLECTION_BUFFER_KEPT_MAX {
            return;
        }
        let mut kept = self
            .0
            .lock()
            .expect("the kept buffer lock is never poisoned");
        if buffer.capacity() > kept.capacity() {
            buffer.clear();
            std::mem::swap(&mut *kept, &mut buffer);
        }
        drop(kept);
        // The smaller one is freed here, outside the lock.
        drop(buffer);
    }

    /// The kept buffer, empty, or a new one if none is kept.
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("the kept buffer lock"))
    }

    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.0.lock().expect("the kept buffer lock").capacity()
    }
}

/// What [`CollectionQueue::next`] found.
enum Next {
    Collection(SharedEntry),
    /// Closed, and everything queued was taken.
    Closed,
    /// Every handle was dropped.
    Abandoned,
}

/// Handles waiting for the serializer, shared by the loop (which adds them) and the thread (which takes
/// them).
#[derive(Default)]
pub struct CollectionQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
}

#[derive(Default)]
struct QueueState {
    waiting: VecDeque<SharedEntry>,
    /// No more handles will come: serialize what is queued, then end.
    closed: bool,
    /// Drop every handle and end: the snapshot will not be written.
    abandoned: bool,
}

impl CollectionQueue {
    /// Queues collections handed over by handle: wanted ones first, in the order given, ahead of everything
    /// already queued; the walk's after everything.
    pub fn hand_over(&self, handed: HandedOver) {
        let mut state = self.state.lock().expect("the queue lock is never poisoned");
        if state.abandoned {
            // The thread ended (the writer failed): nobody will serialize them. Dropped below, outside the
            // lock; the keyspace holds the other handle, so this is a count going down.
            drop(state);
            drop(handed);
            return;
        }
        for entry in handed.wanted.into_iter().rev() {
            state.waiting.push_front(entry);
        }
        state.waiting.extend(handed.walked);
        drop(state);
        self.changed.notify_one();
    }

    pub fn close(&self) {
        self.state.lock().expect("the queue lock").closed = true;
        self.changed.notify_one();
    }

    pub fn abandon(&self) {
        // The handles are dropped by the thread, not here: if a key was deleted meanwhile, its handle is the
        // last one, and freeing a large collection must not happen on the loop.
        self.state.lock().expect("the queue lock").abandoned = true;
        self.changed.notify_one();
    }

    /// The next handle to serialize, waiting for one. Once abandoned, drops every queued handle instead.
    fn next(&self) -> Next {
        let mut state = self.state.lock().expect("the queue lock");
        loop {
            if state.abandoned {
                let dropped = std::mem::take(&mut state.waiting);
                drop(state);
                drop(dropped);
                return Next::Abandoned;
            }
            if let Some(entry) = state.waiting.pop_front() {
                return Next::Collection(entry);
            }
            if state.closed {
                return Next::Closed;
            }
            state = self.changed.wait(state).expect("the queue lock");
        }
    }
}

/// Starts the serializer thread. It sends each collection's entry bytes on `serialized` and learns on
/// `written` how many bytes the writer has written (so it knows how many are still waiting); it takes its
/// buffers from `kept`, to which the writer offers them back. `notify` is called after each handle is
/// dropped, so that a command waiting for it runs again at once rather than at its next retry.
pub fn spawn(
    queue: Arc<CollectionQueue>,
    serialized: Sender<SerializerOutput>,
    written: Receiver<usize>,
    kept: Arc<KeptBuffer>,
    notify: Arc<dyn Fn() + Send + Sync>,
) {
    std::thread::Builder::new()
        .name("dibs-collections".to_string())
        .spawn(move || {
            if serialize_collections(&queue, &serialized, &written, &kept, &*notify).is_err() {
                // Abandoned, or the writer ended early (its report says why). Let go of everything still
                // queued (an abandoned queue's `next` drops it all, here, off the loop) and of what comes
                // later; `AllSerialized` is not sent, so the writer cannot take the snapshot as complete.
                queue.abandon();
                let _ = queue.next();
            }
        })
        .expect("spawn the collection serializer thread");
}

/// The thread's work. `Err(())`: abandoned, or the writer stopped taking bytes.
fn serialize_collections(
    queue: &CollectionQueue,
    serialized: &Sender<SerializerOutput>,
    written: &Receiver<usize>,
    kept: &KeptBuffer,
    notify: &dyn Fn(),
) -> Result<(), ()> {
    // Bytes sent to the writer and not yet written.
    let mut bytes_queued = 0usize;
    loop {
        let entry = match queue.next() {
            Next::Collection(entry) => entry,
            Next::Closed => break,
            Next::Abandoned => return Err(()),
        };
        let mut bytes = kept.take();
        let started = std::time::Instant::now();
        let cpu_started = crate::memory::thread_cpu_time();
        entry.encode(&mut bytes);
        drop(entry);
        notify();
        // Wall clock against CPU time tells serializing from waiting for a core.
        log::debug!(
            "serialized a collection of {} bytes in {} µs ({} µs of CPU)",
            bytes.len(),
            started.elapsed().as_micros(),
            crate::memory::thread_cpu_time()
                .saturating_sub(cpu_started)
                .as_micros()
        );
        while let Ok(length) = written.try_recv() {
            bytes_queued -= length;
        }
        // The bound applies after the handle is dropped: a waiting command need not wait for the disk
        // until the writer is a whole bound behind.
        while bytes_queued >= SNAPSHOT_COLLECTION_BYTES_QUEUED_MAX {
            bytes_queued -= written.recv().map_err(|_| ())?;
        }
        bytes_queued += bytes.len();
        serialized
            .send(SerializerOutput::Entry(bytes))
            .map_err(|_| ())?;
    }
    serialized
        .send(SerializerOutput::AllSerialized)
        .map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SetValue, Shared, Value};

    fn collection(key: &str) -> (Value, SharedEntry) {
        let set: SetValue = [bytes::Bytes::from(key.to_string())].into_iter().collect();
        let value = Value::Set(Shared::new(set));
        let entry = SharedEntry {
            key: key.as_bytes().into(),
            expires_at_ms: None,
            value: value.share().expect("a collection"),
        };
        (value, entry)
    }

    #[test]
    fn wanted_collections_are_serialized_before_the_walks_and_every_handle_is_let_go() {
        let queue = Arc::new(CollectionQueue::default());
        let (walked_value, walked) = collection("walked");
        let (first_value, first) = collection("first");
        let (second_value, second) = collection("second");
        queue.hand_over(HandedOver {
            wanted: Vec::new(),
            walked: vec![walked],
        });
        queue.hand_over(HandedOver {
            wanted: vec![first, second],
            walked: Vec::new(),
        });
        queue.close();
        let (serialized, serialized_receiver) = crossbeam_channel::unbounded();
        let (_written, written_receiver) = crossbeam_channel::unbounded();
        let kept = Arc::new(KeptBuffer::default());
        spawn(
            queue,
            serialized,
            written_receiver,
            Arc::clone(&kept),
            Arc::new(|| {}),
        );
        let mut keys = Vec::new();
        let mut outputs = serialized_receiver.iter();
        while let Some(SerializerOutput::Entry(bytes)) = outputs.next() {
            let mut reader = crate::store::encoding::Reader::new(&bytes);
            let entry = crate::store::encoding::read_entry(&mut reader).expect("an entry");
            assert_eq!(reader.remaining(), 0, "one entry per buffer");
            keys.push(String::from_utf8(entry.key.to_vec()).unwrap());
        }
        assert_eq!(keys, ["first", "second", "walked"]);
        assert!(
            outputs.next().is_none(),
            "`AllSerialized` ended the stream, and nothing follows it"
        );
        assert_eq!(kept.capacity(), 0, "nothing was offered back");
        for value in [walked_value, first_value, second_value] {
            assert!(!value.is_shared(), "the serializer let go");
        }
    }

    #[test]
    fn the_largest_buffer_offered_is_kept_up_to_the_limit_and_given_out_empty() {
        let kept = KeptBuffer::default();
        kept.offer(vec![1; 100]);
        kept.offer(Vec::with_capacity(50));
        assert_eq!(kept.capacity(), 100, "the larger one stays");
        kept.offer(Vec::with_capacity(SNAPSHOT_COLLECTION_BUFFER_KEPT_MAX + 1));
        assert_eq!(kept.capacity(), 100, "one past the limit is freed");
        let buffer = kept.take();
        assert!(buffer.is_empty() && buffer.capacity() == 100);
        assert_eq!(kept.capacity(), 0, "taken, not shared");
    }

    #[test]
    fn an_abandoned_queue_lets_go_of_its_handles_without_serializing_them() {
        let queue = Arc::new(CollectionQueue::default());
        let (value, entry) = collection("held");
        queue.hand_over(HandedOver {
            wanted: vec![entry],
            walked: Vec::new(),
        });
        queue.abandon();
        assert!(matches!(queue.next(), Next::Abandoned));
        assert!(!value.is_shared());
        let (_, late) = collection("late");
        queue.hand_over(HandedOver {
            wanted: vec![late],
            walked: Vec::new(),
        });
        assert!(
            matches!(queue.next(), Next::Abandoned),
            "nothing is queued once abandoned"
        );
    }
}
