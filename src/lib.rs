//! dibs: an in-memory engine for rush traffic that speaks RESP.
//!
//! # Layout
//! - `limits`: every bound as a named constant.
//! - `resp`: the incremental RESP2/RESP3 request decoder and the reply encoder; never touches a socket.
//! - `store`: the keyspace and one module per value type. Deterministic: execution takes the command and the
//!   loop's clock and yields a reply and, for a mutation, a log record. No I/O, no clock reads.
//! - `aof`: the log: record framing, the syncer thread (group commit), replay and repair.
//! - `connection`: one client's buffers and state. `server`: the mio event loop that owns everything.
pub mod limits;
pub mod store;
