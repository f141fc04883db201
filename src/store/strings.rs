//! Strings and counters: GET, SET and its variants, MGET, MSET, INCR and friends, STRLEN, APPEND.
//!
//! Counters are strings that parse as 64-bit integers, as in Redis. Relative expiry times are logged as
//! absolute ones (`SET k v EX 10` is logged as `SET k v PXAT <now + 10000>`), so replay never depends on
//! when it runs.

use bytes::Bytes;

use super::{
    integer_bytes, is_option, not_an_integer, syntax_error, wrong_type, Call, Store, Value,
};
use crate::limits;
use crate::resp::Reply;

fn read_string<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s Bytes>, Reply> {
    match store.keyspace.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::String(bytes) => Ok(Some(bytes)),
            _ => Err(wrong_type()),
        },
    }
}

pub fn get(store: &mut Store, call: &mut Call) -> Reply {
    match read_string(store, call.key(), call.now_ms) {
        Ok(Some(bytes)) => Reply::Bulk(bytes.clone()),
        Ok(None) => Reply::Null,
        Err(reply) => reply,
    }
}

/// How SET treats an existing expiry.
enum Expiry {
    Clear,
    Keep,
    At(u64),
}

fn invalid_expire_time(command: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{command}' command"))
}

/// Turns a relative or absolute expiry argument into absolute milliseconds, rejecting values Redis
/// rejects: not positive, or overflowing when converted.
fn absolute_expiry(
    amount: &[u8],
    unit_ms: i64,
    relative: bool,
    now_ms: u64,
    command: &str,
) -> Result<u64, Reply> {
    let amount = crate::resp::parse_integer(amount).ok_or_else(not_an_integer)?;
    if amount <= 0 {
        return Err(invalid_expire_time(command));
    }
    let milliseconds = amount
        .checked_mul(unit_ms)
        .ok_or_else(|| invalid_expire_time(command))?;
    let at = if relative {
        milliseconds.checked_add(now_ms as i64)
    } else {
        Some(milliseconds)
    };
    at.map(|at| at as u64)
        .ok_or_else(|| invalid_expire_time(command))
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]
pub fn set(store: &mut Store, call: &mut Call) -> Reply {
    let mut only_if_absent = false;
    let mut only_if_present = false;
    let mut return_old = false;
    let mut expiry = Expiry::Clear;
    let mut expiry_given = false;
    let mut index = 3;
    while index < call.arguments.len() {
        let option = call.argument(index);
        let next = call.arguments.get(index + 1).copied();
        if is_option(option, "NX") && !only_if_present {
            only_if_absent = true;
        } else if is_option(option, "XX") && !only_if_absent {
            only_if_present = true;
        } else if is_option(option, "GET") {
            return_old = true;
        } else if is_option(option, "KEEPTTL") && !expiry_given {
            expiry = Expiry::Keep;
            expiry_given = true;
        } else if let (false, Some(amount)) = (expiry_given, next) {
            let (unit_ms, relative) = if is_option(option, "EX") {
                (1000, true)
            } else if is_option(option, "PX") {
                (1, true)
            } else if is_option(option, "EXAT") {
                (1000, false)
            } else if is_option(option, "PXAT") {
                (1, false)
            } else {
                return syntax_error();
            };
            match absolute_expiry(amount, unit_ms, relative, call.now_ms, "set") {
                Ok(at) => expiry = Expiry::At(at),
                Err(reply) => return reply,
            }
            expiry_given = true;
            index += 1;
        } else {
            return syntax_error();
        }
        index += 1;
    }
    let key = call.key();
    // One lookup answers both questions; the old value is copied only for GET (SET runs for every SET
    // record on replay, where a copy and a second lookup per record are measurable).
    let (exists, old) = match read_string(store, key, call.now_ms) {
        Ok(old) => (old.is_some(), if return_old { old.cloned() } else { None }),
        Err(reply) if return_old => return reply,
        // A value of another type: it exists, and plain SET replaces it.
        Err(_) => (true, None),
    };
    if (only_if_absent && exists) || (only_if_present && !exists) {
        return if return_old {
            old.map_or(Reply::Null, Reply::Bulk)
        } else {
            Reply::Null
        };
    }
    let value = Value::String(Bytes::copy_from_slice(call.argument(2)));
    match expiry {
        Expiry::Clear => {
            store.keyspace.insert(key, value);
            call.log(&[b"SET", key, call.argument(2)]);
        }
        Expiry::Keep => {
            let kept = store
                .keyspace
                .get(key, call.now_ms)
                .and_then(|entry| entry.expires_at_ms);
            store.keyspace.insert_with_expiry(key, value, kept);
            call.log(&[b"SET", key, call.argument(2), b"KEEPTTL"]);
        }
        Expiry::At(at) if at <= call.now_ms => {
            // Already in the past: the key ends up absent, as in Redis, and is logged as a deletion.
            store.keyspace.remove(key);
            call.log(&[b"DEL", key]);
        }
        Expiry::At(at) => {
            store.keyspace.insert_with_expiry(key, value, Some(at));
            let at = integer_bytes(at as i64);
            call.log(&[b"SET", key, call.argument(2), b"PXAT", &at]);
        }
    }
    if return_old {
        old.map_or(Reply::Null, Reply::Bulk)
    } else {
        Reply::OK
    }
}

pub fn setnx(store: &mut Store, call: &mut Call) -> Reply {
    let key = call.key();
    if store.keyspace.contains(key, call.now_ms) {
        return Reply::Integer(0);
    }
    store
        .keyspace
        .insert(key, Value::String(Bytes::copy_from_slice(call.argument(2))));
    call.log(&[b"SET", key, call.argument(2)]);
    Reply::Integer(1)
}

/// SETEX key seconds value and PSETEX key milliseconds value.
fn set_with_expiry(store: &mut Store, call: &mut Call, unit_ms: i64, command: &str) -> Reply {
    let at = match absolute_expiry(call.argument(2), unit_ms, true, call.now_ms, command) {
        Ok(at) => at,
        Err(reply) => return reply,
    };
    let key = call.key();
    let value = call.argument(3);
    store
        .keyspace
        .insert_with_expiry(key, Value::String(Bytes::copy_from_slice(value)), Some(at));
    let at = integer_bytes(at as i64);
    call.log(&[b"SET", key, value, b"PXAT", &at]);
    Reply::OK
}

pub fn setex(store: &mut Store, call: &mut Call) -> Reply {
    set_with_expiry(store, call, 1000, "setex")
}

pub fn psetex(store: &mut Store, call: &mut Call) -> Reply {
    set_with_expiry(store, call, 1, "psetex")
}

pub fn getdel(store: &mut Store, call: &mut Call) -> Reply {
    let key = call.key();
    match read_string(store, key, call.now_ms) {
        Ok(Some(bytes)) => {
            let bytes = bytes.clone();
            store.keyspace.remove(key);
            call.log(&[b"DEL", key]);
            Reply::Bulk(bytes)
        }
        Ok(None) => Reply::Null,
        Err(reply) => reply,
    }
}

pub fn mget(store: &mut Store, call: &mut Call) -> Reply {
    let replies = call.arguments[1..]
        .iter()
        .map(|key| {
            match store
                .keyspace
                .get(key, call.now_ms)
                .map(|entry| &entry.value)
            {
                Some(Value::String(bytes)) => Reply::Bulk(bytes.clone()),
                _ => Reply::Null,
            }
        })
        .collect();
    Reply::Array(replies)
}

pub fn mset(store: &mut Store, call: &mut Call) -> Reply {
    if call.arguments.len().is_multiple_of(2) {
        return Reply::error("ERR wrong number of arguments for 'mset' command");
    }
    for pair in call.arguments[1..].chunks_exact(2) {
        store
            .keyspace
            .insert(pair[0], Value::String(Bytes::copy_from_slice(pair[1])));
    }
    call.log_as_received();
    Reply::OK
}

/// INCR, DECR, INCRBY, DECRBY: adds `delta` to the integer at the key (0 if absent).
fn increment(store: &mut Store, call: &mut Call, delta: i64) -> Reply {
    let key = call.key();
    let current = match read_string(store, key, call.now_ms) {
        Ok(Some(bytes)) => match crate::resp::parse_integer(bytes) {
            Some(value) => value,
            None => return not_an_integer(),
        },
        Ok(None) => 0,
        Err(reply) => return reply,
    };
    let Some(updated) = current.checked_add(delta) else {
        return Reply::error("ERR increment or decrement would overflow");
    };
    let bytes = integer_bytes(updated);
    match store.keyspace.get_mut(key, call.now_ms) {
        // Keep the key's expiry, as Redis does for INCR.
        Some(entry) => entry.value = Value::String(bytes.clone()),
        None => store.keyspace.insert(key, Value::String(bytes.clone())),
    }
    // Logged as the outcome, which is idempotent on replay and independent of the command's form.
    call.log(&[b"SET", key, &bytes, b"KEEPTTL"]);
    Reply::Integer(updated)
}

pub fn incr(store: &mut Store, call: &mut Call) -> Reply {
    increment(store, call, 1)
}

pub fn decr(store: &mut Store, call: &mut Call) -> Reply {
    increment(store, call, -1)
}

pub fn incrby(store: &mut Store, call: &mut Call) -> Reply {
    match call.integer(2) {
        Ok(delta) => increment(store, call, delta),
        Err(reply) => reply,
    }
}

pub fn decrby(store: &mut Store, call: &mut Call) -> Reply {
    match call.integer(2) {
        Ok(i64::MIN) => Reply::error("ERR decrement would overflow"),
        Ok(delta) => increment(store, call, -delta),
        Err(reply) => reply,
    }
}

pub fn strlen(store: &mut Store, call: &mut Call) -> Reply {
    match read_string(store, call.key(), call.now_ms) {
        Ok(Some(bytes)) => Reply::Integer(bytes.len() as i64),
        Ok(None) => Reply::Integer(0),
        Err(reply) => reply,
    }
}

pub fn append(store: &mut Store, call: &mut Call) -> Reply {
    let key = call.key();
    let suffix = call.argument(2);
    let current = match read_string(store, key, call.now_ms) {
        Ok(current) => current.cloned(),
        Err(reply) => return reply,
    };
    let length = current.as_ref().map_or(0, |bytes| bytes.len()) + suffix.len();
    if length > limits::BULK_LENGTH_MAX {
        return Reply::error("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    }
    let mut joined = Vec::with_capacity(length);
    if let Some(current) = &current {
        joined.extend_from_slice(current);
    }
    joined.extend_from_slice(suffix);
    let joined = Bytes::from(joined);
    match store.keyspace.get_mut(key, call.now_ms) {
        Some(entry) => entry.value = Value::String(joined),
        None => store.keyspace.insert(key, Value::String(joined)),
    }
    call.log_as_received();
    Reply::Integer(length as i64)
}
