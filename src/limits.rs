//! Every bound dibs enforces, as a named constant. protocol.md lists each of them; change both together.

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

const _: () = assert!(COUPON_TOTAL_MAX <= COUPON_NUMBER_MAX);
const _: () = assert!(
    COUPON_NUMBER_MAX < u32::MAX as u64,
    "holder indexes are u32"
);
const _: () = assert!(COUPON_PER_USER_MAX <= COUPON_TOTAL_MAX);
const _: () = assert!(STOCK_RESERVATION_TTL_MS_MAX <= STOCK_SETTLED_WINDOW_MS);
const _: () = assert!(IDEMPOTENCY_ENTRIES_PER_KEY_MAX > 0 && STOCK_SETTLED_REMEMBERED_MAX > 0);
