//! Every bound dibs enforces, as a named constant. protocol.md lists each of them; change both together.

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
