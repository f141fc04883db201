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

/// Commands the loop executes in one iteration for all connections together; the connections not served
/// go first in the next iteration, which follows at once. Why: an iteration's CPU time is mostly its
/// commands with their reads, 2 to 3.5 µs each for a pipelined SADD to a growing set on a busy 2-core
/// machine (measured per phase); 50 clients pipelining 16 each made batches of 800 and iterations of 2 to
/// 5 ms of CPU, during which no other client (a PING) was served. 256 keeps the commands under 1 ms, half
/// the 2 ms an iteration may take, leaving the rest for its other steps and for the kernel's work the
/// thread is charged with (loopback TCP, page faults). The per-iteration overhead (a poll, a journal
/// hand-off, the writes) is tens of microseconds, so throughput does not drop.
pub const LOOP_COMMANDS_PER_ITERATION_MAX: usize = 256;

/// Pipelined requests whose keys the loop prefetches at once before executing them (see
/// `Keyspace::prefetch`): enough to overlap the cache misses of a `-P 16` pipeline, few enough that the
/// first key's line is still cached when its command runs.
pub const PREFETCH_REQUESTS_MAX: usize = 16;

/// Requests with more arguments than this are not looked ahead of (their keys are not prefetched), so the
/// look-ahead's work stays bounded whatever a client sends.
pub const PREFETCH_ARGUMENTS_MAX: usize = 8;

/// Events taken from one `poll`.
pub const EVENTS_PER_POLL_MAX: usize = 1024;

/// While `accept` fails for want of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM), how often the loop
/// tries again. Connections wait in the kernel's backlog meanwhile; closing a client retries at once.
pub const ACCEPT_RETRY_INTERVAL_MS: u64 = 100;

/// Keys the active expiry cycle deletes in one loop iteration; the rest wait for the next iteration.
pub const EXPIRED_KEYS_PER_ITERATION_MAX: usize = 64;

/// Buckets a collection's hash table (`store::table`) moves from its old bucket array to its new one per
/// insert or remove while it resizes. A table grows from `B` to `2B` buckets when it holds more than `B`
/// entries, and the move takes `B / TABLE_REHASH_BUCKETS_PER_OPERATION` operations; at most one such
/// operation adds an entry each, so the new array is at most `(B + B / n) / 2B <= 1` full when the move
/// ends, as long as n >= 1: a resize always finishes before the next is due, and no operation ever waits
/// for a whole table. The loop also moves buckets between requests (`Table::rehash_step`).
pub const TABLE_REHASH_BUCKETS_PER_OPERATION: usize = 4;

/// The largest `set-max-intset-entries` and `set-max-listpack-entries` CONFIG SET accepts. A command on an
/// `intset` or `listpack` set may walk or copy all of it, so this bounds that work (8,192 members: a 64 KiB
/// intset, a listpack of at most 8 MiB with the value ceiling below).
pub const SET_COMPACT_ENTRIES_CEILING: usize = 8192;

/// The largest `set-max-listpack-value` (bytes of one listpack member) CONFIG SET accepts.
pub const SET_LISTPACK_VALUE_CEILING: usize = 1024;

/// Buckets the loop moves per iteration for collections left mid-resize (`Keyspace::rehash_step`), so a
/// set that stops changing halfway through a resize, or one emptied from millions of members to a few,
/// gives back its old bucket array without waiting for more writes. Moving a bucket of a large table
/// costs cache misses and, in a fresh bucket array, page faults: measured at 0.2 to 0.35 µs a bucket
/// while a million-member set grew under load, so 256 buckets are under 0.1 ms of the 2 ms an iteration
/// may take. An idle loop comes back at once while moves remain, so it still finishes a 16-million-bucket
/// move in 65,536 iterations, a few seconds. Each key the step visits costs at least one bucket.
pub const TABLE_REHASH_BUCKETS_PER_ITERATION: usize = 256;

/// Commands one MULTI may queue.
pub const TRANSACTION_COMMANDS_MAX: usize = 100_000;

/// Keys one client may WATCH.
pub const WATCHED_KEYS_MAX: usize = 10_000;

/// Elements SCAN, SSCAN and similar cursors may be asked for in one call.
pub const SCAN_COUNT_MAX: usize = 100_000;

/// How much of an unknown command's name, and of its first arguments together, the error reply quotes
/// back (Redis's figure), so a client can't make one error reply large.
pub const UNKNOWN_COMMAND_ECHO_LENGTH_MAX: usize = 128;

/// Longest client name CLIENT SETNAME accepts.
pub const CLIENT_NAME_LENGTH_MAX: usize = 1024;

/// Shards of the keyspace: each is its own hash table, so growing past a power of two rehashes one shard,
/// not every key at once: a pause proportional to a thousandth of the keys instead of all of them. More
/// shards cost a little memory per keyspace (one empty map each) and a little work when SCAN or a snapshot
/// crosses empty ones. A power of two, so the shard is a shift of the key's hash.
pub const KEYSPACE_SHARD_COUNT: usize = 1024;

/// SCAN cursors carry the shard above this many bits of position within the shard (a shard would need
/// 2^40 keys to overflow it; SCAN asserts it does not).
pub const SCAN_CURSOR_SHARD_SHIFT: u32 = 40;

/// How many entries a snapshot step walks between two questions to its time budget: often enough that a
/// step overruns its budget by little, rarely enough that reading the clock costs little.
pub const SNAPSHOT_BUDGET_CHECK_ENTRIES: usize = 64;

/// The longest key name or string value `SmallBytes` keeps inline: its 32 bytes less the enum's tag and
/// the length byte. Longer ones live in one shared heap allocation.
pub const SMALL_BYTES_INLINE_LENGTH_MAX: usize = 30;

/// Collections one compaction step hands the snapshot writer thread by handle (see `store::keyspace`).
/// Bounds the writer's work per step's hand-over, and so how long a write to one of them may wait.
pub const SNAPSHOT_SHARED_VALUES_PER_STEP_MAX: usize = 4096;

/// Collections with at least this many elements are handed to the snapshot writer by handle; smaller ones
/// are serialized on the loop (a short pause, bounded by this size), so a command that changes them
/// during a compaction never has to copy them.
pub const SNAPSHOT_SHARE_ELEMENTS_MIN: u64 = 65_536;

/// Serialized large collections waiting for the snapshot writer to write them (see
/// `compaction::collection_serializer`): past it the collection serializer takes no more handles until the writer
/// catches up, so memory stays bounded when the disk is slow. Four times the chunk queue's 16 MiB, since
/// while it has room a command waiting for a collection waits for its serialization, not for the disk; a
/// coupon of 320,000 holders serializes to about 10 MB.
pub const SNAPSHOT_COLLECTION_BYTES_QUEUED_MAX: usize = 64 << 20;

/// The largest serialization buffer the collection serializer keeps between collections and compactions
/// (see `compaction::collection_serializer`): a fresh buffer's page faults cost as much as the serialization. A
/// coupon of 440,000 holders needs 16 MB; a larger collection's buffer is freed after use.
pub const SNAPSHOT_COLLECTION_BUFFER_KEPT_MAX: usize = 32 << 20;

/// The snapshot writer writes with `O_DIRECT` in blocks of this size (see `aof::snapshot`'s file writer):
/// one block in flight at a time, none in the page cache.
pub const SNAPSHOT_DIRECT_BLOCK_BYTES: usize = 1 << 20;

/// Where a file system refuses `O_DIRECT`, snapshot bytes the writer lets pile up in the page cache before
/// it starts their writeback, and at most two such windows are unwritten at any time. Without this a
/// snapshot of hundreds of megabytes is all written back by its final fsync, the disk is busy with it for
/// many milliseconds, and every log fsync (so every reply under `always`) waits behind it: Redis's rewrite
/// stall, and the reason for its `aof-rewrite-incremental-fsync` (4 MB).
pub const SNAPSHOT_WRITEBACK_BYTES: u64 = 4 << 20;

/// How much of a replaced snapshot or log file one step of its deletion frees (see
/// `aof::directory`'s gradual shrink): bounds the journal work each of the log's fsyncs may have to
/// commit while old files are deleted after a compaction.
pub const FILE_DELETE_STEP_BYTES: u64 = 4 << 20;

/// The pause between two deletion steps, so the log's fsyncs get the disk's journal between them.
pub const FILE_DELETE_STEP_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Threads that build the key table from a snapshot at start-up (at most one per core), each inserting
/// the keys of its own range of shards after one pass over the file has found where they are.
pub const SNAPSHOT_LOAD_THREADS_MAX: usize = 8;

/// Under `everysec` and `no`, replies do not wait for the log, so batches may gather for up to this long
/// (or this many bytes) before going to the syncer: fewer thread wake-ups on a busy loop, and well inside
/// those policies' loss window.
pub const RELAXED_SUBMIT_INTERVAL_MS: u64 = 10;
pub const RELAXED_SUBMIT_SIZE: usize = 64 * 1024;

/// The most serialization one loop iteration does. Every reply the iteration sends waits for it, so it is
/// short; under load the loop iterates often enough that the walk still keeps up with the writer, so a
/// shorter step does not make a compaction take longer.
pub const SNAPSHOT_STEP_BUDGET: std::time::Duration = std::time::Duration::from_micros(250);

/// The loop hands over entries in chunks of about this size.
pub const SNAPSHOT_CHUNK_SIZE: usize = 1 << 20;
/// A chunk holds whole entries, so one value bigger than a chunk makes a bigger chunk; the largest value
/// is bounded by memory, not by this format. A length beyond this is damage.
pub const SNAPSHOT_CHUNK_SIZE_MAX: u64 = 1 << 40;
/// Chunks queued for the writer thread before the loop pauses serializing: 16 MiB in flight.
pub const SNAPSHOT_CHUNKS_QUEUED_MAX: usize = 16;

/// Under `always`, the next sync starts no sooner than this fraction of the last sync's duration after
/// it ended (if a batch is already waiting, that is: an idle log syncs at once), and never more than
/// `GROUP_COMMIT_GATHER_MAX` after. A sync of 3 ms waits at most 1.5 ms for company, and less as soon
/// as as many records are in as that sync carried.
pub const GROUP_COMMIT_GATHER_FRACTION: u32 = 2;
pub const GROUP_COMMIT_GATHER_MAX: std::time::Duration = std::time::Duration::from_millis(2);

/// A manifest is four short lines; anything longer is not one.
pub const MANIFEST_SIZE_MAX: usize = 256;

/// How many argument slots to reserve up front for a multibulk, whatever count it declares.
pub const ARGUMENT_RESERVE_MAX: usize = 64;

const _: () = assert!(INLINE_LENGTH_MAX < BULK_LENGTH_MAX);
const _: () = assert!(SNAPSHOT_CHUNK_SIZE as u64 <= SNAPSHOT_CHUNK_SIZE_MAX);
const _: () = assert!(SNAPSHOT_CHUNKS_QUEUED_MAX >= 1);
const _: () = assert!(GROUP_COMMIT_GATHER_FRACTION >= 1);
const _: () = assert!(ARGUMENT_RESERVE_MAX <= MULTIBULK_COUNT_MAX);
const _: () = assert!(RELAXED_SUBMIT_SIZE <= SYNCER_APPEND_SIZE_MAX);
const _: () = assert!(KEYSPACE_SHARD_COUNT.is_power_of_two() && KEYSPACE_SHARD_COUNT > 1);
const _: () = assert!(
    SCAN_CURSOR_SHARD_SHIFT + KEYSPACE_SHARD_COUNT.trailing_zeros() <= 64,
    "a SCAN cursor holds the shard and the position in one u64"
);
const _: () = assert!(SNAPSHOT_BUDGET_CHECK_ENTRIES > 0);
// At least one bucket per operation keeps a growing table's new array at most full when its move ends
// (the proof is on the constant); more than a few would make one insert's worst case long again.
const _: () =
    assert!(TABLE_REHASH_BUCKETS_PER_OPERATION >= 1 && TABLE_REHASH_BUCKETS_PER_OPERATION <= 64);
const _: () = assert!(
    SMALL_BYTES_INLINE_LENGTH_MAX <= u8::MAX as usize,
    "the inline length is one byte"
);
const _: () = assert!(SMALL_BYTES_INLINE_LENGTH_MAX < INLINE_LENGTH_MAX);
const _: () = assert!(UNKNOWN_COMMAND_ECHO_LENGTH_MAX <= INLINE_LENGTH_MAX);
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

/// Zeros the log keeps written and durable past its end, so that an append overwrites allocated blocks
/// and its fdatasync commits no metadata (see `aof::storage`). Also the most a log file holds past its last
/// record after a crash; recovery cuts it.
pub const LOG_RESERVE_AHEAD_BYTES: u64 = 4 << 20;

/// Zeros the reserving thread writes, then fdatasyncs, at a time. That fdatasync commits the file's growth
/// to the journal, once per step rather than once per log fsync; a log fsync that overlaps it may share
/// the commit, so smaller steps make that rare slower fsync cheaper.
pub const LOG_RESERVE_STEP_BYTES: u64 = 1 << 20;

/// With `appendfsync everysec`, the longest a written record waits for its fsync, and the shortest time
/// between two fsyncs: a quiet log is still synced within this interval.
pub const SYNCER_EVERY_SECOND_INTERVAL_MS: u64 = 1_000;

/// Batch buffers the syncer hands back to the event loop for reuse; more are dropped.
pub const SYNCER_BUFFERS_POOLED_MAX: usize = 16;

/// A batch buffer larger than this is dropped rather than pooled, so one huge transaction does not pin its
/// memory for the rest of the process's life.
pub const SYNCER_BUFFER_POOLED_CAPACITY_MAX: usize = 1 << 20;

const _: () = assert!(SYNCER_APPEND_SIZE_MAX <= RECORD_PAYLOAD_SIZE_MAX as usize);

// ---------------------------------------------------------------------------------------------------------
// Idempotency (`store::idempotency`).

/// How long a request ID is remembered by default, in milliseconds: a client that retries within a day gets
/// the first reply back. Configurable per server; see `IdempotencyPolicy`.
pub const IDEMPOTENCY_WINDOW_MS_DEFAULT: u64 = 24 * 60 * 60 * 1000;

/// How many request IDs one key remembers at most; the oldest are forgotten first. With
/// `IDEMPOTENCY_REQUEST_ID_LENGTH_MAX` this bounds the memory of one key's cache to roughly
/// 100_000 * (2 * 64 + 64) bytes, about 20 MB.
pub const IDEMPOTENCY_ENTRIES_PER_KEY_MAX: usize = 100_000;

/// The longest request ID accepted, in bytes: a UUID in text is 36, so 64 leaves room for a prefix.
pub const IDEMPOTENCY_REQUEST_ID_LENGTH_MAX: usize = 64;

// ---------------------------------------------------------------------------------------------------------
// Coupons (`store::coupon`).

/// The most coupons one event may offer (`COUPON.CREATE ... total`).
pub const COUPON_TOTAL_MAX: u64 = 10_000_000;

/// The most coupons one user may hold in one event (`PERUSER n`).
pub const COUPON_PER_USER_MAX: u64 = 1_000;

/// The most coupon numbers one event ever hands out, revoked ones included. Numbers are never reused, so
/// only revokes push this past `COUPON_TOTAL_MAX`; the bound keeps the number-to-holder table (4 bytes per
/// number) within 400 MB and every index within `u32`.
pub const COUPON_NUMBER_MAX: u64 = 10 * COUPON_TOTAL_MAX;

/// The longest user name accepted, in bytes.
pub const COUPON_USER_LENGTH_MAX: usize = 256;

/// The most issue numbers one `COUPON.HOLDERS` call examines (its `count`), so one call is bounded work.
pub const COUPON_HOLDERS_COUNT_MAX: u64 = 10_000;

// ---------------------------------------------------------------------------------------------------------
// Stock (`store::stock`).

/// The largest quantity one call may set, add, take or reserve; `STOCK.ADD` also refuses to push a sku's
/// available units past it. (Released holds may still lift `available` above it; counters stay far from
/// overflow, and `supplied` is checked anyway.)
pub const STOCK_QUANTITY_MAX: u64 = 1_000_000_000;

/// The longest hold a reservation may ask for: a checkout that takes longer than a day is abandoned.
pub const STOCK_RESERVATION_TTL_MS_MAX: u64 = 24 * 60 * 60 * 1000;

/// The most reservations one sku may hold open at once: bounds one sku's reservation table (about 80
/// bytes each) to roughly 80 MB.
pub const STOCK_RESERVATIONS_OPEN_MAX: usize = 1_000_000;

/// How long a settled reservation's final state (confirmed, released, expired) is remembered so a repeated
/// `STOCK.CONFIRM` or `STOCK.RELEASE` answers the same; after that it answers `UNKNOWN`.
pub const STOCK_SETTLED_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// The most settled reservations one sku remembers; the oldest are forgotten first.
pub const STOCK_SETTLED_REMEMBERED_MAX: usize = 100_000;

/// Reservations of one sku the loop's active cycle expires per due timer; more due ones wait for the next
/// iteration. With `EXPIRED_KEYS_PER_ITERATION_MAX` skus per iteration this bounds one cycle's work and the
/// size of its `STOCK.EXPIRE` log records.
pub const STOCK_RESERVATIONS_EXPIRED_PER_TIMER_MAX: usize = 256;

const _: () = assert!(COUPON_TOTAL_MAX <= COUPON_NUMBER_MAX);
const _: () = assert!(
    COUPON_NUMBER_MAX < u32::MAX as u64,
    "holder indexes are u32"
);
const _: () = assert!(COUPON_PER_USER_MAX <= COUPON_TOTAL_MAX);
const _: () = assert!(STOCK_RESERVATION_TTL_MS_MAX <= STOCK_SETTLED_WINDOW_MS);
const _: () = assert!(IDEMPOTENCY_ENTRIES_PER_KEY_MAX > 0 && STOCK_SETTLED_REMEMBERED_MAX > 0);

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

/// Samples kept inside each index chunk besides its first entry, so that a search reads few entries
/// through the order log between two samples. More samples save cache misses on a search of a large post
/// and cost memory on every sampled post.
pub const LIKES_INDEX_SAMPLES_PER_CHUNK: usize = 7;

/// A post gets index samples once it holds this many likes (once its index has more than one chunk), and
/// drops them below half as many: most posts are small, and a search of a one-chunk index is short anyway.
pub const LIKES_INDEX_SAMPLED_LIKES_MIN: u32 = 512;

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

/// Users of one room the loop's active cycle drops (idle waiters) or forgets (expired passes) per due timer;
/// the rest wait for the next iteration. Like `STOCK_RESERVATIONS_EXPIRED_PER_TIMER_MAX`, it bounds one
/// cycle's work and the size of its `QUEUE.LEAVE` log records.
pub const QUEUE_ENTRIES_EXPIRED_PER_TIMER_MAX: usize = 256;

// ---------------------------------------------------------------------------------------------------------
// Rate limits (CL.THROTTLE)
// ---------------------------------------------------------------------------------------------------------

/// Longest period CL.THROTTLE accepts: 100 years, so the period in nanoseconds fits an i64 as redis-cell
/// computes it.
pub const THROTTLE_PERIOD_S_MAX: i64 = 100 * 365 * 86_400;

/// Largest delay variation tolerance (emission interval * (max_burst + 1)) CL.THROTTLE accepts: 100 years.
/// A stored theoretical arrival time is at most now + tolerance, so it always fits a u64 of nanoseconds.
pub const THROTTLE_TOLERANCE_S_MAX: i64 = 100 * 365 * 86_400;

/// The size up to which a list's listpack encoding (as Redis would lay it out) lets `OBJECT ENCODING`
/// answer `listpack`, past which `quicklist`: Redis's default `list-max-listpack-size -2`, 8 KiB per node.
pub const LIST_LISTPACK_BYTES_MAX: usize = 8 * 1024;

/// Blocked clients (BLPOP and the other blocking commands) timed out per loop iteration; the rest time out
/// on the next one, within a millisecond.
pub const BLOCKED_TIMEOUTS_PER_ITERATION_MAX: usize = 1024;

const _: () = assert!(LIKES_PER_POST_MAX < (1 << 31));
const _: () = assert!(LIKES_INDEX_CHUNK_ENTRIES_MAX >= 4);
const _: () = assert!(
    LIKES_INDEX_SAMPLES_PER_CHUNK < LIKES_INDEX_CHUNK_ENTRIES_MAX / 2,
    "a split chunk holds at least half the maximum: room for every sample"
);
const _: () = assert!(
    LIKES_INDEX_SAMPLED_LIKES_MIN as usize >= LIKES_INDEX_CHUNK_ENTRIES_MAX,
    "samples only once the index has more than one chunk"
);
const _: () = assert!(QUEUE_WAITERS_MAX * 2 + QUEUE_LINE_COMPACT_MIN < u32::MAX as usize);
const _: () = assert!(THROTTLE_PERIOD_S_MAX as i128 * 1_000_000_000 <= i64::MAX as i128);
const _: () = assert!(
    (THROTTLE_TOLERANCE_S_MAX as u128 + 200 * 365 * 86_400) * 1_000_000_000 <= u64::MAX as u128,
    "now (before year 2170) + tolerance must fit a u64 of nanoseconds"
);
