//! Every bound dibs enforces, as a named constant. protocol.md lists each of them; change both together.

// ---------------------------------------------------------------------------------------------------------
// User ids (likes, waiting rooms)
// ---------------------------------------------------------------------------------------------------------

/// Longest user id LIKE.* and QUEUE.* accept, in bytes. Ids are opaque to dibs; the bound keeps one entry's
/// memory small and predictable (a flash sale's ids are account numbers or short tokens).
pub const USER_ID_BYTES_MAX: usize = 256;

// ---------------------------------------------------------------------------------------------------------
// Likes
// ---------------------------------------------------------------------------------------------------------

/// Most likes one post may hold. Text ids are referenced by a 31-bit slot number and every like needs a
/// sequence number below `u32::MAX`, so this must stay well under 2^31.
pub const LIKES_PER_POST_MAX: u64 = 1 << 30;

/// Most users one LIKE.LIST page returns. Bounds the work and the reply of one call.
pub const LIKES_LIST_COUNT_MAX: u64 = 1_000;

/// Most entries in one chunk of a post's membership index. An insert or a removal moves at most this many
/// 4-byte entries (2 KiB), whatever the size of the post.
pub const LIKES_INDEX_CHUNK_ENTRIES_MAX: usize = 512;

/// Removed likes leave a 4-byte tombstone in the post's order log until there are at least this many and
/// at least a quarter as many as live likes; then the log is compacted in one linear pass.
pub const LIKES_TOMBSTONES_COMPACT_MIN: usize = 64;

// ---------------------------------------------------------------------------------------------------------
// Waiting rooms
// ---------------------------------------------------------------------------------------------------------

/// Most users waiting in one room. Tickets are 32-bit, and the line may hold up to twice as many slots as
/// waiters before it is compacted.
pub const QUEUE_WAITERS_MAX: usize = 1 << 24;

/// Most users one QUEUE.ADMIT lets in. Bounds the work and the reply of one call.
pub const QUEUE_ADMIT_COUNT_MAX: u64 = 10_000;

/// Longest pass QUEUE.ADMIT grants: seven days.
pub const QUEUE_PASS_TTL_MS_MAX: u64 = 7 * 24 * 3_600 * 1_000;

/// Longest idle timeout QUEUE.CONFIG IDLE accepts: seven days (0 turns the timeout off).
pub const QUEUE_IDLE_TIMEOUT_MS_MAX: u64 = 7 * 24 * 3_600 * 1_000;

/// The line (one slot per ticket, vacated by admissions and departures) is compacted once it has at least
/// this many slots and fewer than half of them hold a waiter.
pub const QUEUE_LINE_COMPACT_MIN: usize = 1_024;

// ---------------------------------------------------------------------------------------------------------
// Rate limits (CL.THROTTLE)
// ---------------------------------------------------------------------------------------------------------

/// Longest period CL.THROTTLE accepts: 100 years, so the period in nanoseconds fits an i64 as redis-cell
/// computes it.
pub const THROTTLE_PERIOD_S_MAX: i64 = 100 * 365 * 86_400;

/// Largest delay variation tolerance (emission interval * (max_burst + 1)) CL.THROTTLE accepts: 100 years.
/// A stored theoretical arrival time is at most now + tolerance, so it always fits a u64 of nanoseconds.
pub const THROTTLE_TOLERANCE_S_MAX: i64 = 100 * 365 * 86_400;

const _: () = assert!(LIKES_PER_POST_MAX < (1 << 31));
const _: () = assert!(LIKES_INDEX_CHUNK_ENTRIES_MAX >= 4);
const _: () = assert!(QUEUE_WAITERS_MAX * 2 + QUEUE_LINE_COMPACT_MIN < u32::MAX as usize);
const _: () = assert!(THROTTLE_PERIOD_S_MAX as i128 * 1_000_000_000 <= i64::MAX as i128);
const _: () = assert!(
    (THROTTLE_TOLERANCE_S_MAX as u128 + 200 * 365 * 86_400) * 1_000_000_000 <= u64::MAX as u128,
    "now (before year 2170) + tolerance must fit a u64 of nanoseconds"
);
