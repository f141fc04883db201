//! Lists: LPUSH, RPUSH, LPUSHX, RPUSHX, LPOP, RPOP, LLEN, LRANGE, LINDEX, LSET, LINSERT, LREM, LTRIM, LPOS,
//! LMOVE, RPOPLPUSH, LMPOP, and the blocking BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP.
//!
//! Replies, error texts and the order in which arguments are checked are Redis 7.0's. A list that loses
//! its last element is deleted.
//!
//! # The blocking commands here
//! A blocking command's handler is its non-blocking variant: it pops if one of its keys holds a list and
//! answers the timeout's reply (nil) otherwise, having changed nothing. That is exactly what Redis does
//! inside MULTI, and what replay would do (replay never sees one: a served pop is logged as the plain
//! pop). Waiting is the event loop's business (`server::blocking`): when a handler answers nil without
//! changing anything and the call came straight from a client, the loop parks the client on the keys
//! [`wait_of`] names, and runs the same handler again when one of them is written.
//!
//! # The log
//! Every mutation is logged deterministically: pushes, LSET, LINSERT, LREM, LTRIM and LPOP/RPOP as
//! received (their effect depends only on the state and the arguments); LMOVE, RPOPLPUSH, BLMOVE and
//! BRPOPLPUSH as `LMOVE source destination FROM TO`; BLPOP and BRPOP as `LPOP key` / `RPOP key` of the
//! key they popped; LMPOP and BLMPOP as `LPOP key n` / `RPOP key n` with the number they popped. Calls
//! that change nothing log nothing.

use super::{ListValue, Side};
use crate::command::error::{not_an_integer, syntax_error, wrong_type};
use crate::command::parse::is_option;
use crate::command::Call;
use crate::resp::{parse_integer, Reply};
use crate::small_bytes::SmallBytes;
use crate::store::{Shared, Store, Value};

pub const TIMEOUT_NOT_A_FLOAT: &str = "ERR timeout is not a float or out of range";
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";
const POSITIVE_COUNT: &str = "ERR value is out of range, must be positive";

/// The list at `key`, `Ok(None)` if absent, or WRONGTYPE.
fn read_list<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s ListValue>, Reply> {
    match store.keyspace.get(key, now_ms).map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::List(list)) => Ok(Some(list)),
        Some(_) => Err(wrong_type()),
    }
}

fn write_list<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s mut ListValue>, Reply> {
    match store
        .keyspace
        .get_mut(key, now_ms)
        .map(|entry| &mut entry.value)
    {
        None => Ok(None),
        Some(Value::List(list)) => Ok(Some(&mut **list)),
        Some(_) => Err(wrong_type()),
    }
}

/// The list at `key`, created empty if absent (the caller has checked the type and pushes at once).
fn list_for_push<'s>(store: &'s mut Store, key: &[u8], now_ms: u64) -> &'s mut ListValue {
    let entry = store
        .keyspace
        .get_or_insert_with(key, now_ms, || Value::List(Shared::default()));
    let Value::List(list) = &mut entry.value else {
        unreachable!("the caller checked the type");
    };
    list
}

fn element_reply(element: &SmallBytes) -> Reply {
    Reply::SmallBulk(element.clone())
}

/// LEFT or RIGHT, any case; anything else is a syntax error, as in Redis.
pub fn parse_side(argument: &[u8]) -> Result<Side, Reply> {
    if is_option(argument, "LEFT") {
        Ok(Side::Left)
    } else if is_option(argument, "RIGHT") {
        Ok(Side::Right)
    } else {
        Err(syntax_error())
    }
}

/// A blocking command's timeout: seconds as a decimal number (fractions allowed), 0 meaning forever, in
/// milliseconds rounded up. Redis 7.0's errors: not a number (NaN included) is "not a float"; a negative
/// one, or one whose milliseconds do not fit a signed 64-bit count (Redis's conversion makes those
/// negative), is "negative".
pub fn parse_timeout_ms(argument: &[u8]) -> Result<u64, Reply> {
    let seconds = std::str::from_utf8(argument)
        .ok()
        .and_then(|text| text.parse::<f64>().ok())
        .filter(|seconds| !seconds.is_nan())
        .ok_or_else(|| Reply::error(TIMEOUT_NOT_A_FLOAT))?;
    let milliseconds = (seconds * 1000.0).ceil();
    if !(0.0..i64::MAX as f64).contains(&milliseconds) {
        return Err(Reply::error(TIMEOUT_NEGATIVE));
    }
    Ok(milliseconds as u64)
}

/// A count that must be zero or more: Redis's "must be positive" for a negative one.
fn non_negative_count(argument: &[u8], negative: &'static str) -> Result<usize, Reply> {
    match parse_integer(argument) {
        Some(count) if count >= 0 => Ok(usize::try_from(count).unwrap_or(usize::MAX)),
        Some(_) => Err(Reply::error(negative)),
        None if negative == POSITIVE_COUNT => Err(not_an_integer()),
        None => Err(Reply::error(negative)),
    }
}

/// Resolves a Redis index (negative counts from the tail) against `length`: `None` if out of range.
fn resolve_index(index: i64, length: usize) -> Option<usize> {
    let length = length as i64;
    let resolved = if index < 0 { index + length } else { index };
    (0..length).contains(&resolved).then_some(resolved as usize)
}

/// The `start..end` positions a Redis range (LRANGE, LTRIM; negative counts from the tail, both ends
/// inclusive, clamped) covers in a list of `length`; empty when it covers nothing.
fn resolve_range(start: i64, stop: i64, length: usize) -> (usize, usize) {
    let length = length as i64;
    let mut start = if start < 0 { start + length } else { start };
    let stop = if stop < 0 { stop + length } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= length {
        return (0, 0);
    }
    let stop = stop.min(length - 1);
    (start as usize, stop as usize + 1)
}

// --- Pushes ---

fn push(
    store: &mut Store,
    call: &mut Call,
    side: Side,
    only_if_exists: bool,
) -> Result<Reply, Reply> {
    let key = call.key();
    let exists = read_list(store, key, call.now_ms)?.is_some();
    if only_if_exists && !exists {
        return Ok(Reply::Integer(0));
    }
    let list = list_for_push(store, key, call.now_ms);
    for element in &call.arguments[2..] {
        list.push(side, SmallBytes::copy_from_slice(element));
    }
    let length = list.len();
    call.log_as_received();
    Ok(Reply::Integer(length as i64))
}

pub fn lpush(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    push(store, call, Side::Left, false)
}

pub fn rpush(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    push(store, call, Side::Right, false)
}

pub fn lpushx(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    push(store, call, Side::Left, true)
}

pub fn rpushx(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    push(store, call, Side::Right, true)
}

// --- Pops ---

/// LPOP/RPOP key [count]. Without a count: one element or null. With one: an array, or a null array
/// when the key is absent (RESP3 null); a count of 0 on an existing list is an empty array.
fn pop(store: &mut Store, call: &mut Call, side: Side) -> Result<Reply, Reply> {
    let count = match call.arguments.get(2) {
        None => None,
        Some(argument) => Some(non_negative_count(argument, POSITIVE_COUNT)?),
    };
    let key = call.key();
    let Some(list) = write_list(store, key, call.now_ms)? else {
        return Ok(if count.is_some() {
            Reply::NullArray
        } else {
            Reply::Null
        });
    };
    let reply = match count {
        Some(0) => return Ok(Reply::Array(Vec::new())),
        None => element_reply(&list.pop(side).expect("a stored list is never empty")),
        Some(count) => {
            let take = count.min(list.len());
            Reply::Array(
                (0..take)
                    .map(|_| element_reply(&list.pop(side).expect("within length")))
                    .collect(),
            )
        }
    };
    if list.is_empty() {
        store.keyspace.remove(key);
    }
    call.log_as_received();
    Ok(reply)
}

pub fn lpop(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    pop(store, call, Side::Left)
}

pub fn rpop(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    pop(store, call, Side::Right)
}

// --- Reads ---

pub fn llen(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let list = read_list(store, call.key(), call.now_ms)?;
    Ok(Reply::Integer(list.map_or(0, ListValue::len) as i64))
}

pub fn lrange(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let start = call.integer(2)?;
    let stop = call.integer(3)?;
    let Some(list) = read_list(store, call.key(), call.now_ms)? else {
        return Ok(Reply::Array(Vec::new()));
    };
    let (start, end) = resolve_range(start, stop, list.len());
    Ok(Reply::Array(
        list.range(start, end).map(element_reply).collect(),
    ))
}

pub fn lindex(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let Some(list) = read_list(store, call.key(), call.now_ms)? else {
        return Ok(Reply::Null);
    };
    let index = call.integer(2)?;
    Ok(resolve_index(index, list.len())
        .and_then(|index| list.get(index))
        .map_or(Reply::Null, element_reply))
}

/// LPOS key element [RANK rank] [COUNT num-matches] [MAXLEN len]
pub fn lpos(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut compared_max: usize = 0;
    let mut index = 3;
    while index < call.arguments.len() {
        let option = call.argument(index);
        let Some(&value) = call.arguments.get(index + 1) else {
            return Err(syntax_error());
        };
        if is_option(option, "RANK") {
            rank =
                match parse_integer(value) {
                    None => return Err(not_an_integer()),
                    Some(i64::MIN) => return Err(Reply::error(
                        "ERR value is out of range, value must between -9223372036854775807 and \
                         9223372036854775807",
                    )),
                    Some(0) => return Err(Reply::error(
                        "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list",
                    )),
                    Some(rank) => rank,
                };
        } else if is_option(option, "COUNT") {
            count = Some(non_negative_count(value, "ERR COUNT can't be negative")?);
        } else if is_option(option, "MAXLEN") {
            compared_max = non_negative_count(value, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(syntax_error());
        }
        index += 2;
    }
    let Some(list) = read_list(store, call.key(), call.now_ms)? else {
        return Ok(if count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Null
        });
    };
    let element = call.argument(2);
    let length = list.len();
    let compared_max = if compared_max == 0 {
        length
    } else {
        compared_max.min(length)
    };
    let wanted = match count {
        None => 1,
        Some(0) => usize::MAX,
        Some(count) => count,
    };
    let mut to_skip = rank.unsigned_abs() - 1;
    let mut found = Vec::new();
    let positions: Box<dyn Iterator<Item = usize>> = if rank > 0 {
        Box::new(0..compared_max)
    } else {
        Box::new((length - compared_max..length).rev())
    };
    for position in positions {
        if &list.get(position).expect("in range")[..] != element {
            continue;
        }
        if to_skip > 0 {
            to_skip -= 1;
            continue;
        }
        found.push(Reply::Integer(position as i64));
        if found.len() >= wanted {
            break;
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found),
        None => found.pop().unwrap_or(Reply::Null),
    })
}

// --- Changes in place ---

pub fn lset(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let length = match read_list(store, key, call.now_ms)? {
        None => return Err(Reply::error("ERR no such key")),
        Some(list) => list.len(),
    };
    let index = call.integer(2)?;
    let Some(index) = resolve_index(index, length) else {
        return Err(Reply::error("ERR index out of range"));
    };
    let Ok(Some(list)) = write_list(store, key, call.now_ms) else {
        unreachable!("checked above");
    };
    list.set(index, SmallBytes::copy_from_slice(call.argument(3)));
    call.log_as_received();
    Ok(Reply::OK)
}

/// LINSERT key BEFORE|AFTER pivot element: the new length, -1 if the pivot is not there, 0 if the key
/// is absent.
pub fn linsert(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let after = if is_option(call.argument(2), "AFTER") {
        true
    } else if is_option(call.argument(2), "BEFORE") {
        false
    } else {
        return Err(syntax_error());
    };
    let key = call.key();
    let pivot = call.argument(3);
    let position = match read_list(store, key, call.now_ms)? {
        None => return Ok(Reply::Integer(0)),
        Some(list) => list.iter().position(|element| &element[..] == pivot),
    };
    let Some(position) = position else {
        return Ok(Reply::Integer(-1));
    };
    let Ok(Some(list)) = write_list(store, key, call.now_ms) else {
        unreachable!("checked above");
    };
    list.insert(
        position + after as usize,
        SmallBytes::copy_from_slice(call.argument(4)),
    );
    let length = list.len();
    call.log_as_received();
    Ok(Reply::Integer(length as i64))
}

/// LREM key count element: count > 0 removes the first `count` matches from the head, < 0 the last
/// from the tail, 0 all of them.
pub fn lrem(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let count = call.integer(2)?;
    let key = call.key();
    let element = call.argument(3);
    let matches = match read_list(store, key, call.now_ms)? {
        None => return Ok(Reply::Integer(0)),
        Some(list) => list.iter().filter(|stored| &stored[..] == element).count(),
    };
    let removing = if count == 0 {
        matches
    } else {
        matches.min(usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX))
    };
    if removing == 0 {
        return Ok(Reply::Integer(0));
    }
    // Matches are numbered from the head; these are the ones that go.
    let first_removed = if count < 0 { matches - removing } else { 0 };
    let Ok(Some(list)) = write_list(store, key, call.now_ms) else {
        unreachable!("checked above");
    };
    let mut seen = 0;
    list.retain(|stored| {
        if &stored[..] != element {
            return true;
        }
        seen += 1;
        !(first_removed < seen && seen <= first_removed + removing)
    });
    if list.is_empty() {
        store.keyspace.remove(key);
    }
    call.log_as_received();
    Ok(Reply::Integer(removing as i64))
}

pub fn ltrim(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let start = call.integer(2)?;
    let stop = call.integer(3)?;
    let key = call.key();
    let length = match read_list(store, key, call.now_ms)? {
        None => return Ok(Reply::OK),
        Some(list) => list.len(),
    };
    let (start, end) = resolve_range(start, stop, length);
    if start == 0 && end == length {
        return Ok(Reply::OK);
    }
    if start == end {
        store.keyspace.remove(key);
    } else {
        let Ok(Some(list)) = write_list(store, key, call.now_ms) else {
            unreachable!("checked above");
        };
        list.keep_range(start, end);
    }
    call.log_as_received();
    Ok(Reply::OK)
}

// --- Moves ---

/// Pops from `source`'s `from` end and pushes onto `destination`'s `to` end, logged as LMOVE. `Ok(None)`
/// if `source` is absent (whatever `destination` holds); WRONGTYPE if either holds another type.
fn move_element(
    store: &mut Store,
    call: &mut Call,
    source: &[u8],
    destination: &[u8],
    from: Side,
    to: Side,
) -> Result<Option<SmallBytes>, Reply> {
    if read_list(store, source, call.now_ms)?.is_none() {
        return Ok(None);
    }
    read_list(store, destination, call.now_ms)?;
    let Ok(Some(list)) = write_list(store, source, call.now_ms) else {
        unreachable!("checked above");
    };
    let element = list.pop(from).expect("a stored list is never empty");
    if source == destination {
        // The same list: it keeps at least the element just moved, and its expiry.
        list.push(to, element.clone());
    } else {
        if list.is_empty() {
            store.keyspace.remove(source);
        }
        list_for_push(store, destination, call.now_ms).push(to, element.clone());
    }
    call.log(&[b"LMOVE", source, destination, from.word(), to.word()]);
    Ok(Some(element))
}

fn moved_reply(moved: Option<SmallBytes>) -> Reply {
    moved.as_ref().map_or(Reply::Null, element_reply)
}

/// LMOVE source destination LEFT|RIGHT LEFT|RIGHT
pub fn lmove(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let from = parse_side(call.argument(3))?;
    let to = parse_side(call.argument(4))?;
    let moved = move_element(store, call, call.key(), call.argument(2), from, to)?;
    Ok(moved_reply(moved))
}

/// RPOPLPUSH source destination: LMOVE source destination RIGHT LEFT.
pub fn rpoplpush(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let moved = move_element(
        store,
        call,
        call.key(),
        call.argument(2),
        Side::Right,
        Side::Left,
    )?;
    Ok(moved_reply(moved))
}

/// BLMOVE source destination LEFT|RIGHT LEFT|RIGHT timeout, run as LMOVE (see the module documentation).
pub fn blmove(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let from = parse_side(call.argument(3))?;
    let to = parse_side(call.argument(4))?;
    parse_timeout_ms(call.argument(5))?;
    let moved = move_element(store, call, call.key(), call.argument(2), from, to)?;
    Ok(moved_reply(moved))
}

/// BRPOPLPUSH source destination timeout, run as RPOPLPUSH.
pub fn brpoplpush(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    parse_timeout_ms(call.argument(3))?;
    rpoplpush(store, call)
}

// --- Pops from the first of several keys ---

/// BLPOP/BRPOP key [key ...] timeout, run as the pop of one element from the first key holding a list:
/// `[key, element]`, or a null array. A key of another type before it is WRONGTYPE.
fn blocking_pop(store: &mut Store, call: &mut Call, side: Side) -> Result<Reply, Reply> {
    let last = call.arguments.len() - 1;
    parse_timeout_ms(call.argument(last))?;
    for &key in &call.arguments[1..last] {
        let Some(list) = write_list(store, key, call.now_ms)? else {
            continue;
        };
        let element = list.pop(side).expect("a stored list is never empty");
        if list.is_empty() {
            store.keyspace.remove(key);
        }
        let name: &[u8] = match side {
            Side::Left => b"LPOP",
            Side::Right => b"RPOP",
        };
        call.log(&[name, key]);
        return Ok(Reply::Array(vec![
            Reply::bulk(key),
            element_reply(&element),
        ]));
    }
    Ok(Reply::NullArray)
}

pub fn blpop(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    blocking_pop(store, call, Side::Left)
}

pub fn brpop(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    blocking_pop(store, call, Side::Right)
}

/// The parsed arguments of LMPOP and BLMPOP from `numkeys_index` on: the keys, the end, the count.
/// The keys are given as their positions among the arguments.
fn parse_mpop(
    arguments: &[&[u8]],
    numkeys_index: usize,
) -> Result<(std::ops::Range<usize>, Side, usize), Reply> {
    let numkeys_error = || Reply::error("ERR numkeys should be greater than 0");
    let key_count = match parse_integer(arguments[numkeys_index]) {
        Some(count) if count >= 1 => usize::try_from(count).unwrap_or(usize::MAX),
        _ => return Err(numkeys_error()),
    };
    let side_index = numkeys_index.saturating_add(key_count).saturating_add(1);
    if side_index >= arguments.len() {
        return Err(syntax_error());
    }
    let side = parse_side(arguments[side_index])?;
    let mut count = None;
    let mut index = side_index + 1;
    while index < arguments.len() {
        if count.is_none() && is_option(arguments[index], "COUNT") && index + 1 < arguments.len() {
            count = match parse_integer(arguments[index + 1]) {
                Some(count) if count >= 1 => Some(usize::try_from(count).unwrap_or(usize::MAX)),
                _ => return Err(Reply::error("ERR count should be greater than 0")),
            };
            index += 2;
        } else {
            return Err(syntax_error());
        }
    }
    Ok((numkeys_index + 1..side_index, side, count.unwrap_or(1)))
}

/// Pops up to `count` elements from the first of `keys` holding a list: `[key, [element ...]]`, or a null
/// array. Logged as `LPOP key n` / `RPOP key n`.
fn mpop(
    store: &mut Store,
    call: &mut Call,
    keys: std::ops::Range<usize>,
    side: Side,
    count: usize,
) -> Result<Reply, Reply> {
    for index in keys {
        let key = call.argument(index);
        let Some(list) = write_list(store, key, call.now_ms)? else {
            continue;
        };
        let take = count.min(list.len());
        let popped: Vec<Reply> = (0..take)
            .map(|_| element_reply(&list.pop(side).expect("within length")))
            .collect();
        if list.is_empty() {
            store.keyspace.remove(key);
        }
        // LMPOP's keys are not where the command table's key positions could say; WATCH learns here.
        store.keyspace.touch(key);
        let name: &[u8] = match side {
            Side::Left => b"LPOP",
            Side::Right => b"RPOP",
        };
        let mut digits = itoa::Buffer::new();
        call.log(&[name, key, digits.format(take).as_bytes()]);
        return Ok(Reply::Array(vec![Reply::bulk(key), Reply::Array(popped)]));
    }
    Ok(Reply::NullArray)
}

/// LMPOP numkeys key [key ...] LEFT|RIGHT [COUNT count]
pub fn lmpop(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let (keys, side, count) = parse_mpop(call.arguments, 1)?;
    mpop(store, call, keys, side, count)
}

/// BLMPOP timeout numkeys key [key ...] LEFT|RIGHT [COUNT count], run as LMPOP.
pub fn blmpop(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    parse_timeout_ms(call.argument(1))?;
    let (keys, side, count) = parse_mpop(call.arguments, 2)?;
    mpop(store, call, keys, side, count)
}

// --- What the loop needs to park a blocked client ---

/// What a blocking list command waits for when its handler answered nil without changing anything: the
/// keys any of which, once written, may let it run, and its timeout in milliseconds (0 = forever). `None`
/// for any other command. The handler has validated the arguments, so this only reads them.
pub fn wait_of<'a>(name: &str, arguments: &[&'a [u8]]) -> Option<(Vec<&'a [u8]>, u64)> {
    let last = arguments.len() - 1;
    let (keys, timeout) = match name {
        "blpop" | "brpop" => (arguments[1..last].to_vec(), arguments[last]),
        "blmove" | "brpoplpush" => (vec![arguments[1]], arguments[last]),
        "blmpop" => {
            let (keys, _, _) = parse_mpop(arguments, 2).ok()?;
            (arguments[keys].to_vec(), arguments[1])
        }
        _ => return None,
    };
    Some((keys, parse_timeout_ms(timeout).ok()?))
}

/// What a blocking list command answers when its timeout passes: a null array for the pops, a null
/// for the moves (both `_` in RESP3), as Redis 7.
pub fn timeout_reply(name: &str) -> Reply {
    match name {
        "blmove" | "brpoplpush" => Reply::Null,
        _ => Reply::NullArray,
    }
}
