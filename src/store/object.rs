//! OBJECT ENCODING, REFCOUNT, FREQ, IDLETIME and HELP: what a key's value looks like inside.
//!
//! Replies follow Redis 7: a missing key is a null for every subcommand that names one, an unknown
//! subcommand is `ERR unknown subcommand '<name>'. Try OBJECT HELP.`, and a subcommand with the wrong number
//! of arguments gets the `object|<subcommand>` arity error.
//!
//! # Encodings
//! - Strings, by Redis's rule for a value SET stores: `int` when the bytes are a canonical 64-bit integer,
//!   `embstr` up to 44 bytes, `raw` past that. (Redis says `raw` for any value APPEND or SETRANGE made;
//!   dibs applies the rule to the value as it is.)
//! - Sets: `intset`, `listpack` or `hashtable` (see `sets`).
//! - dibs's own types, each named for what holds its elements: a coupon's holders and a stock's open
//!   reservations are hash tables (`hashtable`); a post's likes are 4-byte entries in an order log and a
//!   chunked sorted index (`packedindex`); a waiting room's line is a Fenwick tree of tickets with users
//!   in an ordered map (`fenwickline`); a rate limiter is one 64-bit number (`int`).
//!
//! # What is not tracked
//! dibs keeps no access time or access counter per key (there is no eviction to feed), so it cannot answer
//! FREQ or IDLETIME honestly. For an existing key both return the error Redis returns when the
//! maxmemory policy does not track the value asked for; REFCOUNT is 1, as Redis says for a value that is
//! not shared (dibs shares no values between keys; Redis says 2147483647 for its shared integers 0-9999).

use crate::command::Call;
use crate::resp::Reply;
use crate::store::{Store, Value};

/// Longest string Redis keeps as `embstr` (one allocation with its object header).
const EMBSTR_LENGTH_MAX: usize = 44;

const HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

const FREQ_NOT_TRACKED: &str = "ERR An LFU maxmemory policy is not selected, access frequency not \
     tracked. Please note that when switching between policies at runtime LRU and LFU data will take \
     some time to adjust.";

const IDLETIME_NOT_TRACKED: &str = "ERR An LFU maxmemory policy is selected, idle time not tracked. \
     Please note that when switching between policies at runtime LRU and LFU data will take some time \
     to adjust.";

/// The name OBJECT ENCODING gives `value`; see the module doc.
pub fn encoding_name(value: &Value) -> &'static str {
    match value {
        Value::String(bytes) => {
            if crate::resp::parse_integer(bytes).is_some() {
                "int"
            } else if bytes.len() <= EMBSTR_LENGTH_MAX {
                "embstr"
            } else {
                "raw"
            }
        }
        Value::Set(set) => set.encoding_name(),
        Value::Coupon(_) | Value::Stock(_) => "hashtable",
        Value::Likes(_) => "packedindex",
        Value::Queue(_) => "fenwickline",
        Value::Throttle(_) => "int",
        Value::List(list) => super::lists::encoding_name(list),
    }
}

/// OBJECT subcommand [key]
pub fn object(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let subcommand = String::from_utf8_lossy(call.argument(1)).to_lowercase();
    let arity = match subcommand.as_str() {
        "help" => 2,
        "encoding" | "refcount" | "freq" | "idletime" => 3,
        _ => {
            return Err(Reply::error(format!(
                "ERR unknown subcommand '{}'. Try OBJECT HELP.",
                String::from_utf8_lossy(call.argument(1))
            )))
        }
    };
    if call.arguments.len() != arity {
        return Err(crate::command::error::wrong_arity(&format!(
            "object|{subcommand}"
        )));
    }
    if subcommand == "help" {
        return Ok(Reply::Array(
            HELP.iter().map(|line| Reply::status(line)).collect(),
        ));
    }
    let Some(entry) = store.keyspace.get(call.argument(2), call.now_ms) else {
        return Ok(Reply::Null);
    };
    match subcommand.as_str() {
        "encoding" => Ok(Reply::bulk(encoding_name(&entry.value).as_bytes())),
        "refcount" => Ok(Reply::Integer(1)),
        "freq" => Err(Reply::error(FREQ_NOT_TRACKED)),
        _ => Err(Reply::error(IDLETIME_NOT_TRACKED)),
    }
}
