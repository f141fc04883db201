//! Strings and counters: GET, SET and its variants, MGET, MSET, INCR and friends, STRLEN, APPEND.
//!
//! Counters are strings that parse as 64-bit integers, as in Redis. Relative expiry times are logged as
//! absolute ones (`SET k v EX 10` is logged as `SET k v PXAT <now + 10000>`), so replay never depends on
//! when it runs.

use crate::command::error::{invalid_expire_time, not_an_integer, syntax_error, wrong_type};
use crate::command::parse::is_option;
use crate::command::reply::integer_bytes;
use crate::command::Call;
use crate::limits;
use crate::resp::Reply;
use crate::small_bytes::SmallBytes;
use crate::store::{Store, Value};

fn read_string<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s SmallBytes>, Reply> {
    match store.keyspace.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::String(bytes) => Ok(Some(bytes)),
            _ => Err(wrong_type()),
        },
    }
}

pub fn get(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    Ok(match read_string(store, call.key(), call.now_ms)? {
        Some(bytes) => Reply::SmallBulk(bytes.clone()),
        None => Reply::Null,
    })
}

/// How SET treats an existing expiry.
enum Expiry {
    Clear,
    Keep,
    At(u64),
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
pub fn set(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
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
                return Err(syntax_error());
            };
            expiry = Expiry::At(absolute_expiry(
                amount,
                unit_ms,
                relative,
                call.now_ms,
                "set",
            )?);
            expiry_given = true;
            index += 1;
        } else {
            return Err(syntax_error());
        }
        index += 1;
    }
    let key = call.key();
    if !(only_if_absent || only_if_present || return_old) && matches!(expiry, Expiry::Clear) {
        // The common plain SET needs nothing of the old value (of any type, it is replaced): one lookup
        // to write, none to read first.
        let value = Value::String(SmallBytes::copy_from_slice(call.argument(2)));
        store.keyspace.overwrite(key, value, call.now_ms);
        call.log(&[b"SET", key, call.argument(2)]);
        return Ok(Reply::OK);
    }
    // One lookup answers both questions; the old value is copied only for GET (SET runs for every SET
    // record on replay, where a copy and a second lookup per record add up).
    let (exists, old) = match read_string(store, key, call.now_ms) {
        Ok(old) => (old.is_some(), if return_old { old.cloned() } else { None }),
        Err(reply) if return_old => return Err(reply),
        // A value of another type: it exists, and plain SET replaces it.
        Err(_) => (true, None),
    };
    if (only_if_absent && exists) || (only_if_present && !exists) {
        return Ok(if return_old {
            old.map_or(Reply::Null, Reply::SmallBulk)
        } else {
            Reply::Null
        });
    }
    let value = Value::String(SmallBytes::copy_from_slice(call.argument(2)));
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
    Ok(if return_old {
        old.map_or(Reply::Null, Reply::SmallBulk)
    } else {
        Reply::OK
    })
}

pub fn setnx(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    if store.keyspace.contains(key, call.now_ms) {
        return Ok(Reply::Integer(0));
    }
    store.keyspace.insert(
        key,
        Value::String(SmallBytes::copy_from_slice(call.argument(2))),
    );
    call.log(&[b"SET", key, call.argument(2)]);
    Ok(Reply::Integer(1))
}

/// SETEX key seconds value and PSETEX key milliseconds value.
fn set_with_expiry(
    store: &mut Store,
    call: &mut Call,
    unit_ms: i64,
    command: &str,
) -> Result<Reply, Reply> {
    let at = absolute_expiry(call.argument(2), unit_ms, true, call.now_ms, command)?;
    let key = call.key();
    let value = call.argument(3);
    store.keyspace.insert_with_expiry(
        key,
        Value::String(SmallBytes::copy_from_slice(value)),
        Some(at),
    );
    let at = integer_bytes(at as i64);
    call.log(&[b"SET", key, value, b"PXAT", &at]);
    Ok(Reply::OK)
}

pub fn setex(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    set_with_expiry(store, call, 1000, "setex")
}

pub fn psetex(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    set_with_expiry(store, call, 1, "psetex")
}

pub fn getdel(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let Some(bytes) = read_string(store, key, call.now_ms)? else {
        return Ok(Reply::Null);
    };
    let bytes = bytes.clone();
    store.keyspace.remove(key);
    call.log(&[b"DEL", key]);
    Ok(Reply::SmallBulk(bytes))
}

pub fn mget(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let replies = call.arguments[1..]
        .iter()
        .map(|key| {
            match store
                .keyspace
                .get(key, call.now_ms)
                .map(|entry| &entry.value)
            {
                Some(Value::String(bytes)) => Reply::SmallBulk(bytes.clone()),
                _ => Reply::Null,
            }
        })
        .collect();
    Ok(Reply::Array(replies))
}

pub fn mset(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    if call.arguments.len().is_multiple_of(2) {
        return Err(Reply::error(
            "ERR wrong number of arguments for 'mset' command",
        ));
    }
    for pair in call.arguments[1..].chunks_exact(2) {
        store
            .keyspace
            .insert(pair[0], Value::String(SmallBytes::copy_from_slice(pair[1])));
    }
    call.log_as_received();
    Ok(Reply::OK)
}

/// INCR, DECR, INCRBY, DECRBY: adds `delta` to the integer at the key (0 if absent).
fn increment(store: &mut Store, call: &mut Call, delta: i64) -> Result<Reply, Reply> {
    let key = call.key();
    let overflow = || Reply::error("ERR increment or decrement would overflow");
    let mut digits = itoa::Buffer::new();
    // One lookup: the counter is changed in place (keeping its expiry, as Redis does for INCR), or
    // created as `delta` itself, which never overflows. The digits are formatted once, on the stack, for
    // both the stored value and the record.
    let mut created = false;
    let entry = store.keyspace.get_or_insert_with(key, call.now_ms, || {
        created = true;
        Value::String(SmallBytes::copy_from_slice(digits.format(delta).as_bytes()))
    });
    let updated = if created {
        delta
    } else {
        let Value::String(current) = &mut entry.value else {
            return Err(wrong_type());
        };
        let Some(value) = crate::resp::parse_integer(current) else {
            return Err(not_an_integer());
        };
        let Some(updated) = value.checked_add(delta) else {
            return Err(overflow());
        };
        // At most 20 digits: inline, so a counter's update allocates nothing.
        *current = SmallBytes::copy_from_slice(digits.format(updated).as_bytes());
        updated
    };
    // Logged as the outcome, which is idempotent on replay and independent of the command's form.
    call.log(&[b"SET", key, digits.format(updated).as_bytes(), b"KEEPTTL"]);
    Ok(Reply::Integer(updated))
}

pub fn incr(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    increment(store, call, 1)
}

pub fn decr(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    increment(store, call, -1)
}

pub fn incrby(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let delta = call.integer(2)?;
    increment(store, call, delta)
}

pub fn decrby(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    match call.integer(2)? {
        i64::MIN => Err(Reply::error("ERR decrement would overflow")),
        delta => increment(store, call, -delta),
    }
}

pub fn strlen(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let length = read_string(store, call.key(), call.now_ms)?.map_or(0, |bytes| bytes.len());
    Ok(Reply::Integer(length as i64))
}

pub fn append(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let suffix = call.argument(2);
    let current = read_string(store, key, call.now_ms)?.cloned();
    let length = current.as_ref().map_or(0, |bytes| bytes.len()) + suffix.len();
    if length > limits::BULK_LENGTH_MAX {
        return Err(Reply::error(
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ));
    }
    let mut joined = Vec::with_capacity(length);
    if let Some(current) = &current {
        joined.extend_from_slice(current);
    }
    joined.extend_from_slice(suffix);
    let joined = SmallBytes::copy_from_slice(&joined);
    match store.keyspace.get_mut(key, call.now_ms) {
        Some(entry) => entry.value = Value::String(joined),
        None => store.keyspace.insert(key, Value::String(joined)),
    }
    call.log_as_received();
    Ok(Reply::Integer(length as i64))
}

#[cfg(test)]
mod tests {
    use crate::limits::SMALL_BYTES_INLINE_LENGTH_MAX;
    use crate::store::live_store::{reply_text, Live};

    fn bulk(text: &str) -> String {
        format!("${}\r\n{text}\r\n", text.len())
    }

    #[test]
    fn values_on_both_sides_of_the_inline_limit_read_back_byte_for_byte() {
        let mut live = Live::new();
        for length in SMALL_BYTES_INLINE_LENGTH_MAX - 2..=SMALL_BYTES_INLINE_LENGTH_MAX + 2 {
            let value: String = (0..length)
                .map(|index| (b'a' + index as u8 % 26) as char)
                .collect();
            let key = format!("k{length}");
            assert_eq!(reply_text(&live.run(&["SET", &key, &value], 0)), "+OK\r\n");
            assert_eq!(reply_text(&live.run(&["GET", &key], 0)), bulk(&value));
            assert_eq!(
                reply_text(&live.run(&["STRLEN", &key], 0)),
                format!(":{length}\r\n")
            );
            // APPEND moves a value from inline to the heap (or keeps it there).
            assert_eq!(
                reply_text(&live.run(&["APPEND", &key, "xyz"], 0)),
                format!(":{}\r\n", length + 3)
            );
            let appended = format!("{value}xyz");
            assert_eq!(reply_text(&live.run(&["GET", &key], 0)), bulk(&appended));
            assert_eq!(
                reply_text(&live.run(&["SET", &key, "new", "GET"], 0)),
                bulk(&appended)
            );
            assert_eq!(
                reply_text(&live.run(&["MGET", &key, "absent"], 0)),
                format!("*2\r\n{}$-1\r\n", bulk("new"))
            );
            assert_eq!(reply_text(&live.run(&["GETDEL", &key], 0)), bulk("new"));
            assert_eq!(reply_text(&live.run(&["GET", &key], 0)), "$-1\r\n");
        }
    }

    #[test]
    fn counters_rewrite_their_digits_in_place_and_replay_to_the_same_strings() {
        let mut live = Live::new();
        assert_eq!(reply_text(&live.run(&["INCR", "c"], 0)), ":1\r\n");
        live.run(&["SET", "c", "9"], 0);
        assert_eq!(reply_text(&live.run(&["INCR", "c"], 0)), ":10\r\n");
        assert_eq!(reply_text(&live.run(&["GET", "c"], 0)), bulk("10"));
        assert_eq!(reply_text(&live.run(&["DECRBY", "c", "20"], 0)), ":-10\r\n");
        assert_eq!(reply_text(&live.run(&["APPEND", "c", "5"], 0)), ":4\r\n");
        assert_eq!(reply_text(&live.run(&["INCR", "c"], 0)), ":-104\r\n");
        // The widest counters, 19 digits and a sign, are still inline.
        live.run(&["SET", "c", "9223372036854775806"], 0);
        assert_eq!(
            reply_text(&live.run(&["INCR", "c"], 0)),
            ":9223372036854775807\r\n"
        );
        assert!(reply_text(&live.run(&["INCR", "c"], 0)).starts_with("-ERR"));
        live.run(&["SET", "c", "-9223372036854775807"], 0);
        assert_eq!(
            reply_text(&live.run(&["DECR", "c"], 0)),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(
            reply_text(&live.run(&["GET", "c"], 0)),
            bulk("-9223372036854775808")
        );
        // Not canonical decimal: stays a string, byte for byte, and INCR refuses it.
        live.run(&["SET", "z", "007"], 0);
        assert!(reply_text(&live.run(&["INCR", "z"], 0)).starts_with("-ERR"));
        assert_eq!(reply_text(&live.run(&["GET", "z"], 0)), bulk("007"));
        let mut replayed = live.replay().expect("replay");
        for key in ["c", "z"] {
            let live_value = reply_text(&live.run(&["GET", key], 0));
            let mut mutations = crate::command::Mutations::new();
            let spec = crate::dispatch::lookup(b"GET").expect("GET");
            let crate::dispatch::Handler::Store(handler) = spec.handler else {
                panic!("a data command")
            };
            let arguments: [&[u8]; 2] = [b"GET", key.as_bytes()];
            let replayed_value = reply_text(&crate::dispatch::execute(
                &mut replayed,
                spec,
                handler,
                &arguments,
                0,
                &mut mutations,
            ));
            assert_eq!(replayed_value, live_value, "{key}");
        }
    }
}
