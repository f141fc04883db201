//! dibs: an in-memory engine for rush traffic that speaks RESP.
//!
//! # Layout
//! A request flows: socket → `connection` (buffers) → `resp` (decode) → `command` (lookup, arity) →
//! `store` (deterministic execution: reply plus the canonical mutation) → `journal` (framed record in this
//! iteration's batch) → `aof::syncer` (group commit on its own thread) → back to `server` through a mio
//! Waker, which releases the replies that waited for durability.
//!
//! - `limits`: every bound as a named constant.
//! - `resp`: the incremental RESP2/RESP3 request decoder and the reply encoder; never touches a socket.
//! - `command`: the command table, arity checks and the one `execute` used by live traffic and replay.
//! - `store`: the keyspace and one module per value type. No I/O, no clock reads.
//! - `small_bytes`: the byte string of key names and string values, inline when short.
//! - `aof`: the log's building blocks: record framing, payload format, storage, the syncer thread.
//! - `journal`: the loop's side of the log: sequences, batches, durability reports.
//! - `recovery`: start-up: load the snapshot the manifest names, replay the log after it, cut torn tails,
//!   refuse corruption.
//! - `compaction`: snapshots plus log rotation, a bounded amount per loop iteration (protocol.md).
//! - `connection`: one client's buffers and session state. `server`: the mio event loop that owns it all.
//! - `introspection`: INFO, CONFIG and COMMAND. `config`: the command line. `logging`, `memory`, `glob`.
pub mod aof;
pub mod clock;
pub mod command;
pub mod compaction;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod glob;
pub mod journal;
pub mod limits;
pub mod logging;
pub mod memory;
pub mod recovery;
pub mod resp;
pub mod server;
pub mod small_bytes;
pub mod store;
