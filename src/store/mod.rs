//! The state the loop owns and the deterministic execution of data commands.
//!
//! Execution is `apply(command, now) -> (reply, log record)`: a handler reads the arguments and the
//! loop's clock value `now_ms` from [`Call`], changes the [`Store`], returns the [`Reply`] and describes
//! what it changed by appending one or more canonical commands to [`Mutations`]. Handlers never read a
//! clock, never do I/O and draw randomness only from the store's own seeded generator, whose outcome they
//! log (SPOP is logged as the SREM of what it popped). Replay runs the logged commands through the same
//! handlers with the logged clock value, so it always reaches the same state.
//!
//! A handler that fails validates before it changes anything, so a failing command changes nothing and
//! logs nothing.

pub mod coupon;
pub mod coupon_commands;
pub mod encoding;
pub mod idempotency;
pub mod keys;
pub mod keyspace;
pub mod likes;
pub mod likes_commands;
#[cfg(test)]
pub mod live_store;
pub mod queue;
pub mod queue_commands;
pub mod sets;
pub mod shared;
pub mod stock;
pub mod stock_commands;
pub mod strings;
pub mod throttle;
pub mod throttle_commands;

use bytes::Bytes;
use indexmap::IndexSet;

pub use keyspace::{Entry, Key, Keyspace};
pub use shared::Shared;

use crate::aof::payload;
use crate::resp::Reply;
use crate::small_bytes::SmallBytes;

pub type SetValue = IndexSet<Bytes, keyspace::Hasher>;

/// A value of one key. Each key has exactly one type; commands of another type get WRONGTYPE.
#[derive(Debug)]
pub enum Value {
    /// Inline up to `small_bytes::INLINE_LENGTH_MAX` bytes: SET of a small value and INCR allocate nothing.
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
        }
    }

    /// The name TYPE answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::String(_) => "string",
            Value::Set(_) => "set",
            Value::Coupon(_) => coupon::TYPE_NAME,
            Value::Stock(_) => stock::TYPE_NAME,
            Value::Likes(_) => likes::TYPE_NAME,
            Value::Queue(_) => queue::TYPE_NAME,
            Value::Throttle(_) => throttle::TYPE_NAME,
        }
    }
}

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub const SYNTAX_ERROR: &str = "ERR syntax error";

pub fn wrong_type() -> Reply {
    Reply::error(WRONGTYPE)
}

pub fn syntax_error() -> Reply {
    Reply::error(SYNTAX_ERROR)
}

pub fn not_an_integer() -> Reply {
    Reply::error(NOT_AN_INTEGER)
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
                Fired::Next(stock_commands::fire_timer(stock, key, now_ms, mutations))
            }
            Value::Queue(room) => queue_commands::fire_timer(room, key, now_ms, mutations),
            Value::Throttle(throttle) => {
                throttle_commands::fire_timer(throttle, key, now_ms, mutations)
            }
            Value::String(_) | Value::Set(_) | Value::Coupon(_) | Value::Likes(_) => {
                Fired::Next(None)
            }
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
}

impl Store {
    pub fn new(random_seed: u64) -> Store {
        Store {
            keyspace: Keyspace::new(),
            random_state: random_seed | 1,
        }
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

/// The canonical form of what one atomic unit (a command, a transaction, an expiry cycle) changed: the
/// payload of one log record, in the layout of `aof::payload`, built in place as commands run.
#[derive(Debug, Default)]
pub struct Mutations {
    payload: Vec<u8>,
    command_count: u32,
}

impl Mutations {
    pub fn new() -> Mutations {
        Mutations::default()
    }

    pub fn is_empty(&self) -> bool {
        self.command_count == 0
    }

    pub fn command_count(&self) -> u32 {
        self.command_count
    }

    /// Appends one canonical command, run at `now_ms`. All commands of one unit share one clock value.
    pub fn push<'a>(&mut self, now_ms: u64, arguments: impl IntoIterator<Item = &'a [u8]>) {
        if self.command_count == 0 {
            payload::begin_payload(&mut self.payload, now_ms);
        }
        self.command_count += 1;
        payload::append_command(&mut self.payload, arguments);
    }

    /// Finishes the unit and returns its payload; the value is left empty for reuse.
    pub fn take_payload(&mut self) -> Option<&[u8]> {
        if self.command_count == 0 {
            return None;
        }
        payload::set_command_count(&mut self.payload, self.command_count);
        self.command_count = 0;
        Some(&self.payload)
    }

    /// Drops whatever was collected (a transaction aborted before it changed anything).
    pub fn clear(&mut self) {
        self.command_count = 0;
    }
}

/// One command being executed: its arguments, the loop's clock and where its mutations go.
pub struct Call<'a> {
    pub arguments: &'a [&'a [u8]],
    pub now_ms: u64,
    pub mutations: &'a mut Mutations,
}

impl<'a> Call<'a> {
    pub fn argument(&self, index: usize) -> &'a [u8] {
        self.arguments[index]
    }

    pub fn key(&self) -> &'a [u8] {
        self.arguments[1]
    }

    /// Logs the command exactly as received: right for every command whose effect depends only on the
    /// state, its arguments and the clock value carried by the record.
    pub fn log_as_received(&mut self) {
        self.mutations
            .push(self.now_ms, self.arguments.iter().copied());
    }

    /// Logs a canonical command in place of the one received.
    pub fn log(&mut self, arguments: &[&[u8]]) {
        self.mutations.push(self.now_ms, arguments.iter().copied());
    }

    /// Parses argument `index` as an integer, or answers Redis's error.
    pub fn integer(&self, index: usize) -> Result<i64, Reply> {
        crate::resp::parse_integer(self.arguments[index]).ok_or_else(not_an_integer)
    }
}

/// Case-insensitive comparison of an argument with an option name given in upper case.
pub fn is_option(argument: &[u8], upper: &str) -> bool {
    argument.eq_ignore_ascii_case(upper.as_bytes())
}

/// Formats an integer as the bytes Redis would store for it.
pub fn integer_bytes(value: i64) -> Bytes {
    let mut buffer = itoa::Buffer::new();
    Bytes::copy_from_slice(buffer.format(value).as_bytes())
}

/// A count or quantity as an integer reply. Every one is bounded far below `i64::MAX` by `limits`;
/// saturating keeps a broken bound from ever panicking the loop.
pub fn integer_reply(value: u64) -> Reply {
    Reply::Integer(i64::try_from(value).unwrap_or(i64::MAX))
}

/// Parses argument `index` of `call` as an unsigned integer. A negative value becomes `u64::MAX`, which
/// every range check of the value types refuses with its own message ("total must be between 1 and ..."),
/// so the client hears the bound rather than a bare "not an integer".
pub fn unsigned_or_out_of_range(call: &Call, index: usize) -> Result<u64, Reply> {
    let value = call.integer(index)?;
    Ok(u64::try_from(value).unwrap_or(u64::MAX))
}

/// Parses an optional trailing `ID request-id` starting at argument `index`: nothing, or exactly those
/// two arguments.
pub fn parse_request_id<'a>(call: &Call<'a>, index: usize) -> Result<Option<&'a [u8]>, Reply> {
    match call.arguments.len().saturating_sub(index) {
        0 => Ok(None),
        2 if is_option(call.argument(index), "ID") => Ok(Some(call.argument(index + 1))),
        _ => Err(syntax_error()),
    }
}
