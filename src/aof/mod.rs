//! The append-only log: every mutation is recorded here and made durable before any reply that depends on
//! it leaves the server.
//!
//! # Layout
//! - `record`: the file header and record framing (magic, length, sequence, CRC-32), and the scanner that
//!   reads a file back and tells a torn tail (cut it) from corruption (refuse to start).
//! - `payload`: what one record holds: one command or a whole transaction, with the loop clock it ran with.
//! - `storage`: the byte sink (`Storage`), on a real file or on a fault-injecting in-memory buffer.
//! - `syncer`: the thread that appends batches and fsyncs them with group commit, and reports back.
//! - `snapshot`: compaction's snapshot files and the thread that writes them; `manifest`: the file that
//!   names the current snapshot (see protocol.md); `collection_serializer`: the thread that serializes the
//!   large collections a compaction hands over by handle, for the snapshot writer.
//!
//! The byte formats are in `record` and `payload`, and in `protocol.md`.
pub mod collection_serializer;
pub mod manifest;
pub mod payload;
pub mod record;
pub mod snapshot;
pub mod storage;
pub mod syncer;
