//! Every bound dibs enforces, as a named constant. protocol.md lists each of them; change both together.
//!
//! TigerBeetle's rule applies: put a limit on everything. A client can only make the server allocate in
//! proportion to bytes it has actually sent, and each of those bytes is bounded here.

/// Largest bulk string a request may carry (Redis's `proto-max-bulk-len` default).
pub const BULK_LENGTH_MAX: usize = 512 * 1024 * 1024;

/// Most arguments one request may carry. Redis accepts up to 2^31 - 1; one million is far beyond any real
/// command and keeps the per-request bookkeeping bounded.
pub const MULTIBULK_COUNT_MAX: usize = 1024 * 1024;

/// Longest inline command (`PING\r\n`) and longest `*<n>` / `$<n>` header line.
pub const INLINE_LENGTH_MAX: usize = 64 * 1024;

/// Most unprocessed request bytes one client may have buffered (Redis's `client-query-buffer-limit`).
pub const QUERY_BUFFER_SIZE_MAX: usize = 1024 * 1024 * 1024;

/// Before a client authenticates (when a password is set) it gets these much tighter bounds, as in Redis,
/// so an anonymous peer can't make the server buffer much.
pub const UNAUTHENTICATED_ARGUMENT_COUNT_MAX: usize = 10;
pub const UNAUTHENTICATED_BULK_LENGTH_MAX: usize = 16 * 1024;
pub const UNAUTHENTICATED_QUERY_BUFFER_SIZE_MAX: usize = 1024 * 1024;

/// Default hard limit of one client's pending reply bytes. A client that stops reading is disconnected
/// once its replies pass this, so it can't grow the server without bound.
pub const OUTPUT_BUFFER_SIZE_MAX_DEFAULT: usize = 64 * 1024 * 1024;

/// Default `--maxclients`.
pub const CLIENTS_MAX_DEFAULT: usize = 10_000;

/// Bytes read from one socket per `read` call.
pub const READ_CHUNK_SIZE: usize = 16 * 1024;

/// Bytes read from one client in one loop iteration before the loop moves on to the others; the rest is
/// read on the next iteration. Keeps one pipelining client from starving everyone else.
pub const READ_SIZE_PER_ITERATION_MAX: usize = 1024 * 1024;

/// Commands executed for one client in one loop iteration before the loop moves on.
pub const COMMANDS_PER_ITERATION_MAX: usize = 4096;

/// Events taken from one `poll`.
pub const EVENTS_PER_POLL_MAX: usize = 1024;

/// Keys the active expiry cycle deletes in one loop iteration; the rest wait for the next iteration.
pub const EXPIRED_KEYS_PER_ITERATION_MAX: usize = 64;

/// Commands one MULTI may queue.
pub const TRANSACTION_COMMANDS_MAX: usize = 100_000;

/// Keys one client may WATCH.
pub const WATCHED_KEYS_MAX: usize = 10_000;

/// Elements SCAN, SSCAN and similar cursors may be asked for in one call.
pub const SCAN_COUNT_MAX: usize = 100_000;

/// Longest client name CLIENT SETNAME accepts.
pub const CLIENT_NAME_LENGTH_MAX: usize = 1024;

const _: () = assert!(INLINE_LENGTH_MAX < BULK_LENGTH_MAX);
const _: () = assert!(UNAUTHENTICATED_BULK_LENGTH_MAX <= UNAUTHENTICATED_QUERY_BUFFER_SIZE_MAX);
const _: () = assert!(BULK_LENGTH_MAX < QUERY_BUFFER_SIZE_MAX);
const _: () = assert!(READ_CHUNK_SIZE <= READ_SIZE_PER_ITERATION_MAX);


/// Largest payload one log record may carry: one bulk string at its largest plus the framing of the other
/// arguments of a command or transaction. A record header that claims more is damage, never a real record,
/// so the scanner cannot be sent reading (or hashing) gigabytes on the word of a flipped bit.
pub const RECORD_PAYLOAD_SIZE_MAX: u32 = (1 << 30) + (1 << 24);

/// Bytes the syncer gathers into one append when batches queue up behind a sync (group commit). Bounds the
/// memory a burst can pin and the time one write call takes; the remaining batches go in the next append.
pub const SYNCER_APPEND_SIZE_MAX: usize = 64 << 20;

/// With `appendfsync everysec`, the longest a written record waits for its fsync, and the shortest time
/// between two fsyncs: a quiet log is still synced within this interval.
pub const SYNCER_EVERY_SECOND_INTERVAL_MS: u64 = 1_000;

/// Batch buffers the syncer hands back to the event loop for reuse; more are dropped.
pub const SYNCER_BUFFERS_POOLED_MAX: usize = 16;

/// A batch buffer larger than this is dropped rather than pooled, so one huge transaction does not pin its
/// memory for the rest of the process's life.
pub const SYNCER_BUFFER_POOLED_CAPACITY_MAX: usize = 1 << 20;

const _: () = assert!(SYNCER_APPEND_SIZE_MAX <= RECORD_PAYLOAD_SIZE_MAX as usize);
