//! The command table: every command's name, arity, flags, key positions and handler, and the checks that
//! run before a handler (unknown command, wrong number of arguments).
//!
//! Data commands have a [`Handler::Store`] handler and are deterministic (see `store`); connection and
//! administration commands ([`Handler::Server`]) touch the server and connection state, so the event loop
//! runs them itself.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::resp::Reply;
use crate::store::{
    coupon_commands, keys, likes_commands, queue_commands, sets, stock_commands, strings,
    throttle_commands, Call, Mutations, Store,
};

pub type StoreHandler = fn(&mut Store, &mut Call) -> Reply;

/// Commands the event loop answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCommand {
    Ping,
    Echo,
    Quit,
    Hello,
    Auth,
    Select,
    Client,
    Command,
    Config,
    Info,
    Shutdown,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Reset,
    Time,
    Lastsave,
    Bgrewriteaof,
    Bgsave,
    Save,
}

#[derive(Debug, Clone, Copy)]
pub enum Handler {
    Store(StoreHandler),
    Server(ServerCommand),
}

/// May change state: logged, refused while the log is failing, counted in INFO.
pub const WRITE: u32 = 1;
/// Allowed before AUTH when a password is set.
pub const NO_AUTH: u32 = 1 << 1;
/// Runs immediately even inside MULTI (it is about the transaction itself).
pub const NO_QUEUE: u32 = 1 << 2;
/// Only reads: shown as `readonly` in COMMAND INFO.
pub const READONLY: u32 = 1 << 3;
/// Administration (`admin` in COMMAND INFO).
pub const ADMIN: u32 = 1 << 4;
/// Refused inside MULTI (WATCH).
pub const NOT_IN_MULTI: u32 = 1 << 5;
/// Written to the log by the server itself and run only by replay; clients get "unknown command" and
/// COMMAND does not list it ([`lookup_for_client`]).
pub const INTERNAL: u32 = 1 << 6;

#[derive(Debug)]
pub struct CommandSpec {
    /// Lower case, as Redis reports names.
    pub name: &'static str,
    /// Exact argument count including the name when positive, the minimum when negative (Redis's rule).
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    /// -1 means the last argument.
    pub last_key: i32,
    pub key_step: i32,
    pub handler: Handler,
    pub group: &'static str,
    pub summary: &'static str,
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & WRITE != 0
    }

    pub fn is_for_clients(&self) -> bool {
        self.flags & INTERNAL == 0
    }

    pub fn arity_accepts(&self, count: usize) -> bool {
        if self.arity >= 0 {
            count == self.arity as usize
        } else {
            count >= self.arity.unsigned_abs() as usize
        }
    }

    /// Indexes of the key arguments of `arguments` (a call of this command).
    pub fn key_indexes(&self, argument_count: usize) -> impl Iterator<Item = usize> {
        let first = self.first_key.max(0) as usize;
        let last = if self.last_key < 0 {
            argument_count as i64 + self.last_key as i64
        } else {
            self.last_key as i64
        };
        let step = self.key_step.max(1) as usize;
        let range = if self.first_key <= 0 || last < first as i64 {
            0..0
        } else {
            first..(last as usize + 1).min(argument_count)
        };
        range.step_by(step)
    }

    /// The flag words COMMAND INFO shows.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.flags & WRITE != 0 {
            names.push("write");
        }
        if self.flags & READONLY != 0 {
            names.push("readonly");
        }
        if self.flags & ADMIN != 0 {
            names.push("admin");
        }
        if self.flags & NO_AUTH != 0 {
            names.push("no_auth");
        }
        if self.flags & NOT_IN_MULTI != 0 {
            names.push("no_multi");
        }
        names.push("fast");
        names
    }
}

macro_rules! command {
    ($name:literal, $arity:expr, $flags:expr, $first:expr, $last:expr, $step:expr, $handler:expr, $group:literal, $summary:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $first,
            last_key: $last,
            key_step: $step,
            handler: $handler,
            group: $group,
            summary: $summary,
        }
    };
}

use Handler::{Server as S, Store as D};
use ServerCommand as C;

pub static COMMANDS: &[CommandSpec] = &[
    // Connection and administration.
    command!(
        "ping",
        -1,
        NO_AUTH,
        0,
        0,
        0,
        S(C::Ping),
        "connection",
        "Returns PONG, or the argument."
    ),
    command!(
        "echo",
        2,
        0,
        0,
        0,
        0,
        S(C::Echo),
        "connection",
        "Returns the given string."
    ),
    command!(
        "quit",
        -1,
        NO_AUTH | NO_QUEUE,
        0,
        0,
        0,
        S(C::Quit),
        "connection",
        "Closes the connection."
    ),
    command!(
        "hello",
        -1,
        NO_AUTH | NO_QUEUE,
        0,
        0,
        0,
        S(C::Hello),
        "connection",
        "Handshakes: protocol version, authentication, client name."
    ),
    command!(
        "auth",
        -2,
        NO_AUTH | NO_QUEUE,
        0,
        0,
        0,
        S(C::Auth),
        "connection",
        "Authenticates the connection."
    ),
    command!(
        "select",
        2,
        0,
        0,
        0,
        0,
        S(C::Select),
        "connection",
        "Selects the database; only 0 exists."
    ),
    command!(
        "client",
        -2,
        0,
        0,
        0,
        0,
        S(C::Client),
        "connection",
        "Client connection commands: ID, SETNAME, GETNAME, LIST, INFO, SETINFO."
    ),
    command!(
        "reset",
        1,
        NO_AUTH | NO_QUEUE,
        0,
        0,
        0,
        S(C::Reset),
        "connection",
        "Resets the connection state."
    ),
    command!(
        "command",
        -1,
        0,
        0,
        0,
        0,
        S(C::Command),
        "server",
        "Describes the commands: COUNT, INFO, DOCS, LIST."
    ),
    command!(
        "config",
        -2,
        ADMIN,
        0,
        0,
        0,
        S(C::Config),
        "server",
        "Reads and changes settings: GET, SET, RESETSTAT."
    ),
    command!(
        "info",
        -1,
        0,
        0,
        0,
        0,
        S(C::Info),
        "server",
        "Returns information and statistics about the server."
    ),
    command!(
        "shutdown",
        -1,
        ADMIN | NO_QUEUE,
        0,
        0,
        0,
        S(C::Shutdown),
        "server",
        "Syncs the log and stops the server."
    ),
    command!(
        "time",
        1,
        0,
        0,
        0,
        0,
        S(C::Time),
        "server",
        "Returns the server's clock."
    ),
    command!(
        "bgrewriteaof",
        1,
        ADMIN,
        0,
        0,
        0,
        S(C::Bgrewriteaof),
        "server",
        "Compacts the log in the background: a snapshot plus a new log file (protocol.md)."
    ),
    command!(
        "bgsave",
        -1,
        ADMIN,
        0,
        0,
        0,
        S(C::Bgsave),
        "server",
        "The same background compaction as BGREWRITEAOF, with BGSAVE's replies."
    ),
    command!(
        "save",
        1,
        ADMIN | NOT_IN_MULTI,
        0,
        0,
        0,
        S(C::Save),
        "server",
        "Compacts the log now, serializing everything in one pause, and replies once it is durable."
    ),
    command!(
        "lastsave",
        1,
        0,
        0,
        0,
        0,
        S(C::Lastsave),
        "server",
        "Returns the Unix time of the last successful log sync."
    ),
    command!(
        "multi",
        1,
        NO_QUEUE,
        0,
        0,
        0,
        S(C::Multi),
        "transactions",
        "Starts a transaction."
    ),
    command!(
        "exec",
        1,
        NO_QUEUE,
        0,
        0,
        0,
        S(C::Exec),
        "transactions",
        "Executes the queued commands atomically."
    ),
    command!(
        "discard",
        1,
        NO_QUEUE,
        0,
        0,
        0,
        S(C::Discard),
        "transactions",
        "Discards the queued commands."
    ),
    command!(
        "watch",
        -2,
        NO_QUEUE | NOT_IN_MULTI,
        1,
        -1,
        1,
        S(C::Watch),
        "transactions",
        "Makes EXEC conditional on keys not changing."
    ),
    command!(
        "unwatch",
        1,
        NO_QUEUE,
        0,
        0,
        0,
        S(C::Unwatch),
        "transactions",
        "Forgets all watched keys."
    ),
    // Keys.
    command!(
        "del",
        -2,
        WRITE,
        1,
        -1,
        1,
        D(keys::del),
        "generic",
        "Deletes keys."
    ),
    command!(
        "unlink",
        -2,
        WRITE,
        1,
        -1,
        1,
        D(keys::del),
        "generic",
        "Deletes keys (synchronously, like DEL)."
    ),
    command!(
        "exists",
        -2,
        READONLY,
        1,
        -1,
        1,
        D(keys::exists),
        "generic",
        "Counts the keys that exist."
    ),
    command!(
        "type",
        2,
        READONLY,
        1,
        1,
        1,
        D(keys::type_of),
        "generic",
        "Returns the type of a key."
    ),
    command!(
        "expire",
        -3,
        WRITE,
        1,
        1,
        1,
        D(keys::expire),
        "generic",
        "Sets a timeout in seconds."
    ),
    command!(
        "pexpire",
        -3,
        WRITE,
        1,
        1,
        1,
        D(keys::pexpire),
        "generic",
        "Sets a timeout in milliseconds."
    ),
    command!(
        "expireat",
        -3,
        WRITE,
        1,
        1,
        1,
        D(keys::expireat),
        "generic",
        "Sets an expiry as a Unix time in seconds."
    ),
    command!(
        "pexpireat",
        -3,
        WRITE,
        1,
        1,
        1,
        D(keys::pexpireat),
        "generic",
        "Sets an expiry as a Unix time in milliseconds."
    ),
    command!(
        "ttl",
        2,
        READONLY,
        1,
        1,
        1,
        D(keys::ttl),
        "generic",
        "Returns the time to live in seconds."
    ),
    command!(
        "pttl",
        2,
        READONLY,
        1,
        1,
        1,
        D(keys::pttl),
        "generic",
        "Returns the time to live in milliseconds."
    ),
    command!(
        "persist",
        2,
        WRITE,
        1,
        1,
        1,
        D(keys::persist),
        "generic",
        "Removes the expiry of a key."
    ),
    command!(
        "scan",
        -2,
        READONLY,
        0,
        0,
        0,
        D(keys::scan),
        "generic",
        "Iterates the keys."
    ),
    command!(
        "keys",
        2,
        READONLY,
        0,
        0,
        0,
        D(keys::keys),
        "generic",
        "Returns every key matching a pattern (walks the whole keyspace)."
    ),
    command!(
        "dbsize",
        1,
        READONLY,
        0,
        0,
        0,
        D(keys::dbsize),
        "server",
        "Returns the number of keys."
    ),
    command!(
        "flushall",
        -1,
        WRITE,
        0,
        0,
        0,
        D(keys::flushall),
        "server",
        "Removes every key."
    ),
    command!(
        "flushdb",
        -1,
        WRITE,
        0,
        0,
        0,
        D(keys::flushall),
        "server",
        "Removes every key (there is one database)."
    ),
    // Strings and counters.
    command!(
        "get",
        2,
        READONLY,
        1,
        1,
        1,
        D(strings::get),
        "string",
        "Returns the value of a key."
    ),
    command!(
        "set",
        -3,
        WRITE,
        1,
        1,
        1,
        D(strings::set),
        "string",
        "Sets the value of a key, with options."
    ),
    command!(
        "setnx",
        3,
        WRITE,
        1,
        1,
        1,
        D(strings::setnx),
        "string",
        "Sets a key only if it does not exist."
    ),
    command!(
        "setex",
        4,
        WRITE,
        1,
        1,
        1,
        D(strings::setex),
        "string",
        "Sets a key with a timeout in seconds."
    ),
    command!(
        "psetex",
        4,
        WRITE,
        1,
        1,
        1,
        D(strings::psetex),
        "string",
        "Sets a key with a timeout in milliseconds."
    ),
    command!(
        "getdel",
        2,
        WRITE,
        1,
        1,
        1,
        D(strings::getdel),
        "string",
        "Returns the value of a key and deletes it."
    ),
    command!(
        "mget",
        -2,
        READONLY,
        1,
        -1,
        1,
        D(strings::mget),
        "string",
        "Returns the values of keys."
    ),
    command!(
        "mset",
        -3,
        WRITE,
        1,
        -1,
        2,
        D(strings::mset),
        "string",
        "Sets several keys."
    ),
    command!(
        "incr",
        2,
        WRITE,
        1,
        1,
        1,
        D(strings::incr),
        "string",
        "Adds one to a counter."
    ),
    command!(
        "decr",
        2,
        WRITE,
        1,
        1,
        1,
        D(strings::decr),
        "string",
        "Subtracts one from a counter."
    ),
    command!(
        "incrby",
        3,
        WRITE,
        1,
        1,
        1,
        D(strings::incrby),
        "string",
        "Adds to a counter."
    ),
    command!(
        "decrby",
        3,
        WRITE,
        1,
        1,
        1,
        D(strings::decrby),
        "string",
        "Subtracts from a counter."
    ),
    command!(
        "strlen",
        2,
        READONLY,
        1,
        1,
        1,
        D(strings::strlen),
        "string",
        "Returns the length of a value."
    ),
    command!(
        "append",
        3,
        WRITE,
        1,
        1,
        1,
        D(strings::append),
        "string",
        "Appends to a value."
    ),
    // Sets.
    command!(
        "sadd",
        -3,
        WRITE,
        1,
        1,
        1,
        D(sets::sadd),
        "set",
        "Adds members to a set."
    ),
    command!(
        "srem",
        -3,
        WRITE,
        1,
        1,
        1,
        D(sets::srem),
        "set",
        "Removes members from a set."
    ),
    command!(
        "sismember",
        3,
        READONLY,
        1,
        1,
        1,
        D(sets::sismember),
        "set",
        "Tells whether a member is in a set."
    ),
    command!(
        "smismember",
        -3,
        READONLY,
        1,
        1,
        1,
        D(sets::smismember),
        "set",
        "Tells which members are in a set."
    ),
    command!(
        "scard",
        2,
        READONLY,
        1,
        1,
        1,
        D(sets::scard),
        "set",
        "Returns the number of members."
    ),
    command!(
        "smembers",
        2,
        READONLY,
        1,
        1,
        1,
        D(sets::smembers),
        "set",
        "Returns every member."
    ),
    command!(
        "sscan",
        -3,
        READONLY,
        1,
        1,
        1,
        D(sets::sscan),
        "set",
        "Iterates the members."
    ),
    command!(
        "spop",
        -2,
        WRITE,
        1,
        1,
        1,
        D(sets::spop),
        "set",
        "Removes and returns random members."
    ),
    command!(
        "srandmember",
        -2,
        READONLY,
        1,
        1,
        1,
        D(sets::srandmember),
        "set",
        "Returns random members."
    ), // Coupons.
    command!(
        "coupon.create",
        -3,
        WRITE,
        1,
        1,
        1,
        D(coupon_commands::create),
        "coupon",
        "Creates a coupon event: total, PERUSER, START and END."
    ),
    command!(
        "coupon.issue",
        -3,
        WRITE,
        1,
        1,
        1,
        D(coupon_commands::issue),
        "coupon",
        "Issues the next coupon number to a user, at most once per request ID."
    ),
    command!(
        "coupon.get",
        3,
        READONLY,
        1,
        1,
        1,
        D(coupon_commands::get),
        "coupon",
        "Returns the coupon numbers a user holds."
    ),
    command!(
        "coupon.revoke",
        3,
        WRITE,
        1,
        1,
        1,
        D(coupon_commands::revoke),
        "coupon",
        "Returns a user's coupons to the pool."
    ),
    command!(
        "coupon.info",
        2,
        READONLY,
        1,
        1,
        1,
        D(coupon_commands::info),
        "coupon",
        "Returns an event's counts, limits and state."
    ),
    command!(
        "coupon.holders",
        4,
        READONLY,
        1,
        1,
        1,
        D(coupon_commands::holders),
        "coupon",
        "Iterates the holders in issue order."
    ),
    // Stock.
    command!(
        "stock.set",
        3,
        WRITE,
        1,
        1,
        1,
        D(stock_commands::set),
        "stock",
        "Sets the available units of a sku, creating it."
    ),
    command!(
        "stock.add",
        -3,
        WRITE,
        1,
        1,
        1,
        D(stock_commands::add),
        "stock",
        "Adds units to a sku, creating it, at most once per request ID."
    ),
    command!(
        "stock.take",
        -3,
        WRITE,
        1,
        1,
        1,
        D(stock_commands::take),
        "stock",
        "Takes units outright, all or nothing, at most once per request ID."
    ),
    command!(
        "stock.reserve",
        -4,
        WRITE,
        1,
        1,
        1,
        D(stock_commands::reserve),
        "stock",
        "Holds units for a time, at most once per request ID."
    ),
    command!(
        "stock.confirm",
        3,
        WRITE,
        1,
        1,
        1,
        D(stock_commands::confirm),
        "stock",
        "Turns a reservation's units into sold ones."
    ),
    command!(
        "stock.release",
        3,
        WRITE,
        1,
        1,
        1,
        D(stock_commands::release),
        "stock",
        "Returns a reservation's units to available."
    ),
    command!(
        "stock.info",
        2,
        READONLY,
        1,
        1,
        1,
        D(stock_commands::info),
        "stock",
        "Returns a sku's counts."
    ),
    command!(
        "stock.expire",
        -3,
        WRITE | INTERNAL,
        1,
        1,
        1,
        D(stock_commands::expire),
        "stock",
        "Expires due reservations (written to the log by the active expiry cycle; not for clients)."
    ),
    // Likes.
    command!(
        "like.add",
        3,
        WRITE,
        1,
        1,
        1,
        D(likes_commands::add),
        "likes",
        "Likes a post as a user; returns [added, count]."
    ),
    command!(
        "like.remove",
        3,
        WRITE,
        1,
        1,
        1,
        D(likes_commands::remove),
        "likes",
        "Takes a user's like back; returns [removed, count]. An empty post is deleted."
    ),
    command!(
        "like.has",
        3,
        READONLY,
        1,
        1,
        1,
        D(likes_commands::has),
        "likes",
        "Tells whether a user likes a post."
    ),
    command!(
        "like.mhas",
        -3,
        READONLY,
        2,
        -1,
        1,
        D(likes_commands::mhas),
        "likes",
        "Tells which of the posts a user likes."
    ),
    command!(
        "like.count",
        -2,
        READONLY,
        1,
        -1,
        1,
        D(likes_commands::count),
        "likes",
        "Returns the like count of each post."
    ),
    command!(
        "like.list",
        4,
        READONLY,
        1,
        1,
        1,
        D(likes_commands::list),
        "likes",
        "Pages a post's likers, newest first, stable while likes come and go."
    ),
    // Waiting room.
    command!(
        "queue.join",
        3,
        WRITE,
        1,
        1,
        1,
        D(queue_commands::join),
        "queue",
        "Joins the line (or polls); returns the position, 0 with a valid pass."
    ),
    command!(
        "queue.pos",
        3,
        WRITE,
        1,
        1,
        1,
        D(queue_commands::pos),
        "queue",
        "Returns the position (and counts as a poll), 0 with a valid pass, null if unknown."
    ),
    command!(
        "queue.admit",
        4,
        WRITE,
        1,
        1,
        1,
        D(queue_commands::admit),
        "queue",
        "Lets the next waiters in with a pass valid for a time; returns them in order."
    ),
    command!(
        "queue.pass",
        3,
        READONLY,
        1,
        1,
        1,
        D(queue_commands::pass),
        "queue",
        "Tells whether a user holds a valid pass."
    ),
    command!(
        "queue.leave",
        3,
        WRITE,
        1,
        1,
        1,
        D(queue_commands::leave),
        "queue",
        "Leaves the line or gives the pass back."
    ),
    command!(
        "queue.len",
        2,
        READONLY,
        1,
        1,
        1,
        D(queue_commands::len),
        "queue",
        "Returns how many are waiting."
    ),
    command!(
        "queue.config",
        4,
        WRITE,
        1,
        1,
        1,
        D(queue_commands::config),
        "queue",
        "Sets the idle timeout: IDLE ms (0: never drop)."
    ),
    // Rate limits.
    command!(
        "cl.throttle",
        -5,
        WRITE,
        1,
        1,
        1,
        D(throttle_commands::throttle),
        "throttle",
        "Rate-limits with GCRA, redis-cell compatible."
    ),
    command!(
        "cl.settat",
        3,
        WRITE | INTERNAL,
        1,
        1,
        1,
        D(throttle_commands::set_theoretical_arrival),
        "throttle",
        "Restores a limiter's theoretical arrival time (written to the log by CL.THROTTLE; not for clients)."
    ),
];

/// Finds a command by name, ignoring case. Runs once per command, live and on replay, so the table hashes
/// with ahash rather than the standard SipHash; the names are ours, not an attacker's.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    type Table = HashMap<&'static [u8], &'static CommandSpec, ahash::RandomState>;
    static TABLE: OnceLock<Table> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|spec| (spec.name.as_bytes(), spec))
            .collect()
    });
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (slot, byte) in lower.iter_mut().zip(name) {
        *slot = byte.to_ascii_lowercase();
    }
    table.get(&lower[..name.len()]).copied()
}

/// Finds a command a client may send: internal commands are unknown to clients.
pub fn lookup_for_client(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup(name).filter(|spec| spec.is_for_clients())
}

/// The commands clients may send, for COMMAND.
pub fn client_commands() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS.iter().filter(|spec| spec.is_for_clients())
}

/// Redis's reply to an unknown command: the name as sent cut to 128 bytes, then the first arguments,
/// quoted, until the list reaches 128 bytes (the argument that crosses the mark is cut there).
pub fn unknown_command(arguments: &[&[u8]]) -> Reply {
    const LISTED_ARGUMENTS_LENGTH_MAX: usize = 128;
    let mut listed = Vec::new();
    for argument in &arguments[1..] {
        if listed.len() >= LISTED_ARGUMENTS_LENGTH_MAX {
            break;
        }
        let room = LISTED_ARGUMENTS_LENGTH_MAX - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&argument[..argument.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    Reply::error(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        truncated(arguments[0]),
        String::from_utf8_lossy(&listed)
    ))
}

fn truncated(argument: &[u8]) -> String {
    String::from_utf8_lossy(&argument[..argument.len().min(128)]).into_owned()
}

pub fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// Runs a data command: the handler, then WATCH bookkeeping for any key it changed. The arity has been
/// checked by the caller. Live traffic and replay both come through here.
pub fn execute(
    store: &mut Store,
    spec: &CommandSpec,
    handler: StoreHandler,
    arguments: &[&[u8]],
    now_ms: u64,
    mutations: &mut Mutations,
) -> Reply {
    let logged_before = mutations.command_count();
    let reply = handler(
        store,
        &mut Call {
            arguments,
            now_ms,
            mutations,
        },
    );
    if mutations.command_count() != logged_before && store.keyspace.has_watchers() {
        for index in spec.key_indexes(arguments.len()) {
            store.keyspace.touch(arguments[index]);
        }
    }
    debug_assert!(
        !(reply.is_error() && mutations.command_count() != logged_before),
        "a failing command must change nothing: {}",
        spec.name
    );
    reply
}

/// Replays one logged command. Every logged command is a data command with valid arity; anything else
/// means the log holds something this build never writes.
pub fn replay(
    store: &mut Store,
    arguments: &[&[u8]],
    now_ms: u64,
    scratch: &mut Mutations,
) -> Result<(), String> {
    let name = arguments.first().ok_or("an empty command")?;
    let spec = lookup(name).ok_or_else(|| format!("unknown command '{}'", truncated(name)))?;
    let Handler::Store(handler) = spec.handler else {
        return Err(format!("'{}' is not a logged command", spec.name));
    };
    if !spec.arity_accepts(arguments.len()) {
        return Err(format!("wrong number of arguments for '{}'", spec.name));
    }
    let reply = execute(store, spec, handler, arguments, now_ms, scratch);
    scratch.clear();
    if let Reply::Error(text) = reply {
        return Err(format!("'{}' failed on replay: {text}", spec.name));
    }
    Ok(())
}
