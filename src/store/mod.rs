//! The state the loop owns and the deterministic execution of data commands.
//!
//! Execution is `apply(command, now) -> (reply, log record)`: a handler reads the arguments and the
//! loop's clock value `now_ms` from a [`Call`](crate::command::Call), changes the [`Store`], returns
//! `Ok(reply)` and describes what it changed by appending one or more canonical commands to
//! [`Mutations`]; a refusal is `Err(reply)`, after changing nothing. Handlers never read a
//! clock, never do I/O and draw randomness only from the store's own seeded generator, whose outcome they
//! log (SPOP is logged as the SREM of what it popped). Replay runs the logged commands through the same
//! handlers with the logged clock value, so it always reaches the same state.
//!
//! A handler that fails validates before it changes anything, so a failing command changes nothing and
//! logs nothing.
//!
//! # Layout
//! - [`keyspace`]: every key, its value and expiry, in shards; expiry, SCAN, WATCH versions, timers,
//!   copy-on-write snapshots and the start-up loader, one file each.
//! - One folder per value type: `strings`, `sets`, `coupon`, `stock`, `likes`, `queue`, `throttle`, each
//!   with the type (`mod.rs`), its command handlers (`commands.rs`) and its snapshot encoding
//!   (`codec.rs`). A new type is a new folder, a [`Value`] variant, an arm in `encoding` and lines in the
//!   command table.
//! - [`keys`]: the commands on keys of any type (DEL, EXPIRE, SCAN, ...).
//! - [`encoding`]: the snapshot entry format and the primitives the codecs share.
//! - [`idempotency`] (request-ID caches) and [`shared`] (copy-on-write handles to collections).

pub mod coupon;
pub mod encoding;
pub mod idempotency;
pub mod keys;
pub mod keyspace;
pub mod likes;
pub mod lists;
#[cfg(test)]
pub mod live_store;
pub mod object;
pub mod queue;
pub mod sets;
pub mod shared;
pub mod stock;
pub mod strings;
pub mod table;
pub mod throttle;

pub use keyspace::{Entry, Key, Keyspace};
pub use lists::ListValue;
pub use sets::{SetEncodingLimits, SetValue};
pub use shared::Shared;

use crate::command::Mutations;
use crate::small_bytes::SmallBytes;

/// A value of one key. Each key has exactly one type; commands of another type get WRONGTYPE.
#[derive(Debug)]
pub enum Value {
    /// Inline up to `limits::SMALL_BYTES_INLINE_LENGTH_MAX` bytes: SET of a small value and INCR allocate
    /// nothing.
    String(SmallBytes),
    /// Boxed like the other collections: an inline `IndexSet` made every `Value` (and so every key's
    /// entry) 88 bytes; boxed, a value is 32 and a string key's entry 56, which is most of the keyspace's
    /// memory and of the time to load it at start-up.
    Set(Shared<SetValue>),
    Coupon(Shared<coupon::Coupon>),
    Stock(Shared<stock::Stock>),
    Likes(Shared<likes::Likes>),
    Queue(Shared<queue::WaitingRoom>),
    /// Not boxed: a limiter is one 8-byte number, no bigger than the box pointer.
    Throttle(throttle::Throttle),
    /// Boxed like the other collections (see `Set`).
    List(Shared<ListValue>),
}

/// A key's entry is most of the keyspace's memory: keep every value, strings included, at 32 bytes.
const _: () = assert!(std::mem::size_of::<Value>() == 32);

impl Value {
    /// A handle to this value as it is now, for the snapshot writer thread to serialize off the loop, for
    /// the collections (constant time, see `shared`); `None` for strings and limiters, whose serialization
    /// is a copy of their bytes anyway.
    pub fn share(&self) -> Option<Value> {
        match self {
            Value::String(_) | Value::Throttle(_) => None,
            Value::Set(set) => Some(Value::Set(set.share())),
            Value::Coupon(coupon) => Some(Value::Coupon(coupon.share())),
            Value::Stock(stock) => Some(Value::Stock(stock.share())),
            Value::Likes(likes) => Some(Value::Likes(likes.share())),
            Value::Queue(room) => Some(Value::Queue(room.share())),
            Value::List(list) => Some(Value::List(list.share())),
        }
    }

    /// Whether a snapshot still holds a second handle to this value: changing it now would copy it.
    pub fn is_shared(&self) -> bool {
        match self {
            Value::String(_) | Value::Throttle(_) => false,
            Value::Set(set) => set.is_shared(),
            Value::Coupon(coupon) => coupon.is_shared(),
            Value::Stock(stock) => stock.is_shared(),
            Value::Likes(likes) => likes.is_shared(),
            Value::Queue(room) => room.is_shared(),
            Value::List(list) => list.is_shared(),
        }
    }

    /// How many elements a collection holds (0 for strings and limiters): what serializing it costs.
    pub fn element_count(&self) -> u64 {
        match self {
            Value::String(_) | Value::Throttle(_) => 0,
            Value::Set(set) => set.len() as u64,
            Value::Coupon(coupon) => coupon.holder_count() as u64,
            Value::Stock(stock) => stock.open_reservation_count() as u64,
            Value::Likes(likes) => likes.count(),
            Value::Queue(room) => room.known_user_count() as u64,
            Value::List(list) => list.len() as u64,
        }
    }

    /// Whether this value keeps a hash table between two bucket arrays (a resize in progress that only
    /// more operations or [`Value::rehash_step`] will finish). The keyspace asks after every change to a
    /// collection and remembers the keys that answer yes, so the loop can finish their moves.
    pub fn is_rehashing(&self) -> bool {
        match self {
            Value::Set(set) => set.is_rehashing(),
            Value::Coupon(coupon) => coupon.is_rehashing(),
            _ => false,
        }
    }

    /// Moves up to `buckets` buckets of this value's resize in progress, if any; returns whether one is
    /// still in progress. A value a snapshot still holds a second handle to is left alone (returns true):
    /// changing it would copy all of it on the loop, and the move can wait until the handle is dropped.
    /// Moving buckets changes neither the elements nor their order, so it is not a write: nothing is
    /// logged, no WATCH is touched, and a snapshot that has not serialized the value yet writes the same.
    pub fn rehash_step(&mut self, buckets: usize) -> bool {
        if self.is_shared() {
            return self.is_rehashing();
        }
        match self {
            Value::Set(set) => set.rehash_step(buckets),
            Value::Coupon(coupon) => coupon.rehash_step(buckets),
            _ => false,
        }
    }

    /// Whether this value is a collection, whose changes may leave a hash table mid-resize: the keys the
    /// keyspace checks after a change. A test on the variant alone, so a type that adopts a table needs
    /// no line here, only its arms in [`Value::is_rehashing`] and [`Value::rehash_step`].
    pub fn is_collection(&self) -> bool {
        !matches!(self, Value::String(_) | Value::Throttle(_))
    }

    /// The name TYPE answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => strings::TYPE_NAME,
            Value::Set(_) => sets::TYPE_NAME,
            Value::Coupon(_) => coupon::TYPE_NAME,
            Value::Stock(_) => stock::TYPE_NAME,
            Value::Likes(_) => likes::TYPE_NAME,
            Value::Queue(_) => queue::TYPE_NAME,
            Value::Throttle(_) => throttle::TYPE_NAME,
            Value::List(_) => lists::TYPE_NAME,
        }
    }

    /// Asserts every invariant of the value, walking all of it: after a snapshot load (debug builds), after
    /// replay and in tests; never on the hot path.
    pub fn check_invariants(&self) {
        match self {
            Value::String(value) => strings::check_invariants(value),
            Value::Set(set) => sets::check_invariants(set),
            Value::Coupon(coupon) => coupon.check_invariants(),
            Value::Stock(stock) => stock.check_invariants(),
            Value::Likes(likes) => likes.check_invariants(),
            Value::Queue(room) => room.check_invariants(),
            Value::Throttle(throttle) => throttle.check_invariants(),
            Value::List(list) => lists::check_invariants(list),
        }
    }
}

/// What firing a value's timer leaves behind.
pub enum Fired {
    /// The value stays; its next deadline, if any, to register.
    Next(Option<u64>),
    /// The value has nothing left and its key goes (the arm has logged whatever replay needs to agree).
    RemoveKey,
}

/// Fires the internal deadlines of up to `count_max` values (stock reservations, passes, idle waiters,
/// stale rate limiters) due at `now_ms`, logging what each did into `mutations`. Returns the keys fired,
/// for WATCH.
pub fn fire_due_timers(
    store: &mut Store,
    now_ms: u64,
    count_max: usize,
    mutations: &mut Mutations,
) -> Vec<Key> {
    let due = store.keyspace.take_due_timers(now_ms, count_max);
    for key in &due {
        if store.keyspace.snapshot_holds(key) {
            // The snapshot writer holds this value: firing now would copy all of it on the loop. The
            // deadline is retried a millisecond later, as it would be behind a full timer budget.
            store.keyspace.set_timer(key, Some(now_ms + 1));
            continue;
        }
        let Some(entry) = store.keyspace.get_mut(key, now_ms) else {
            continue;
        };
        // Each value type with deadlines gets its arm here: it expires what is due (bounded), logs the
        // outcome as a canonical command and answers its next deadline, registered below.
        let fired = match &mut entry.value {
            Value::Stock(stock) => {
                Fired::Next(stock::commands::fire_timer(stock, key, now_ms, mutations))
            }
            Value::Queue(room) => queue::commands::fire_timer(room, key, now_ms, mutations),
            Value::Throttle(throttle) => {
                throttle::commands::fire_timer(throttle, key, now_ms, mutations)
            }
            Value::String(_) | Value::Set(_) | Value::Coupon(_) | Value::Likes(_) => {
                Fired::Next(None)
            }
            Value::List(_) => Fired::Next(None),
        };
        match fired {
            Fired::Next(next_deadline_ms) => store.keyspace.set_timer(key, next_deadline_ms),
            Fired::RemoveKey => {
                store.keyspace.remove(key);
            }
        }
    }
    due
}

/// Everything the loop owns that commands act on.
#[derive(Debug)]
pub struct Store {
    pub keyspace: Keyspace,
    /// State of the generator behind SPOP and SRANDMEMBER (xorshift64*). Seeded at start; its draws are
    /// never replayed, only their logged outcomes.
    random_state: u64,
    /// When a set converts from `intset` or `listpack` to `hashtable` (CONFIG `set-max-*`). Set at start
    /// from the command line, before replay, so replay converts where the live server did.
    pub set_encoding_limits: SetEncodingLimits,
}

impl Store {
    pub fn new(random_seed: u64) -> Store {
        Store {
            keyspace: Keyspace::new(),
            random_state: random_seed | 1,
            set_encoding_limits: SetEncodingLimits::default(),
        }
    }

    /// Asserts every invariant of every value and of the keyspace's indexes, walking everything: for
    /// debug builds after a replay (recovery calls it) and for tests; it costs a full pass over the data.
    pub fn check_invariants(&self) {
        self.keyspace.check_invariants();
    }

    /// A pseudo-random number below `bound` (which must be non-zero).
    pub fn random_below(&mut self, bound: usize) -> usize {
        let mut x = self.random_state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.random_state = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound as u64) as usize
    }
}
