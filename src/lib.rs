//! dibs: an in-memory engine for rush traffic that speaks RESP.
//!
//! # One request, step by step
//! `COUPON.ISSUE launch ann` goes down the layers once and comes back up once; each step lives in one file:
//!
//! | step | file |
//! |---|---|
//! | the socket is readable; its bytes go into the connection's buffer | `server/connections.rs` (`read_and_process`), `connection.rs` |
//! | whole requests are decoded, none half | `resp/decode.rs` |
//! | lookup, arity, AUTH, MULTI's rules, the snapshot wait, writes after a log failure | `dispatch/admission.rs` (`admit`) |
//! | the handler runs with the loop's clock value | `dispatch/mod.rs` (`execute`) |
//! | validate, then change, reply, and describe the change as canonical commands | `store/coupon/commands.rs` (`issue`), with `command/` |
//! | the change becomes a framed record in this iteration's batch; the reply waits for its sequence | `server/mod.rs` (`commit_mutations`), `journal.rs` |
//! | the batch is written and fdatasync'd, with whatever else is waiting (group commit) | `aof/syncer/mod.rs` (its own thread) |
//! | the syncer reports durability through the mio waker; held replies are released | `server/mod.rs` (`collect_durability`, `release_held`) |
//! | the reply bytes are written to the socket | `server/connections.rs` (`flush_pending`) |
//!
//! Start-up runs the same handlers: `recovery/` loads the snapshot and replays the log through
//! `dispatch::replay`, which shares admission's lookup and arity check.
//!
//! # Layers
//! A module imports only from layers below its own (`tests/module_layers.rs` checks it):
//! 0. leaves: `limits` (every bound), `clock` (wall time, read only by the loop and start-up), `glob`,
//!    `small_bytes` (key names and strings, inline when short), `logging`, `memory`, `resp` (the RESP2/RESP3
//!    decoder and encoder; never touches a socket).
//! 1. `aof`: the log's building blocks: record framing, the payload format, storage, the syncer thread, the
//!    data directory's files (`aof::directory`), the snapshot file format.
//! 2. `command`: what a handler works with: one `Call`, its `Mutations`, argument parsing, error replies.
//! 3. `store`: the keyspace and one folder per value type (the type, its handlers, its snapshot codec). No
//!    I/O, no clock reads.
//! 4. `dispatch`: the command table (one line per command), admission, `execute` and `replay`.
//! 5. `journal` (the loop's side of the log), `recovery` (start-up), `compaction` (snapshots and log
//!    rotation, a bounded amount per loop iteration), `config` (the command line).
//! 6. `connection` (one client's buffers and session state) and `server`: the mio event loop that owns it
//!    all, with its session, transaction, administration and introspection commands.
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
