//! Sets: SADD, SREM, SISMEMBER, SMISMEMBER, SCARD, SMEMBERS, SSCAN, SPOP, SRANDMEMBER.
//!
//! A set that loses its last member is deleted, as in Redis. SPOP draws from the store's generator and is
//! logged as the SREM of the members it popped, so replay removes exactly those. Every command works on
//! each encoding (see the module doc of `sets`) with the same replies; SADD passes the store's
//! thresholds, so a set converts where Redis's would.

use super::SetValue;
use crate::command::error::{not_an_integer, syntax_error, wrong_type};
use crate::command::parse::{parse_cursor, parse_scan_options};
use crate::command::reply::scan_reply;
use crate::command::Call;
use crate::limits;
use crate::resp::Reply;
use crate::store::{Shared, Store, Value};

/// The set at `key`, `Ok(None)` if absent, or WRONGTYPE.
fn read_set<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s SetValue>, Reply> {
    match store.keyspace.get(key, now_ms).map(|entry| &entry.value) {
        None => Ok(None),
        Some(Value::Set(set)) => Ok(Some(set)),
        Some(_) => Err(wrong_type()),
    }
}

fn write_set<'s>(
    store: &'s mut Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<&'s mut SetValue>, Reply> {
    match store
        .keyspace
        .get_mut(key, now_ms)
        .map(|entry| &mut entry.value)
    {
        None => Ok(None),
        Some(Value::Set(set)) => Ok(Some(set)),
        Some(_) => Err(wrong_type()),
    }
}

pub fn sadd(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    read_set(store, key, call.now_ms)?;
    let limits = store.set_encoding_limits;
    let members = &call.arguments[2..];
    let entry = store.keyspace.get_or_insert_with(key, call.now_ms, || {
        Value::Set(Shared::new(SetValue::for_members(
            members[0],
            members.len(),
            &limits,
        )))
    });
    let Value::Set(set) = &mut entry.value else {
        unreachable!("type checked above");
    };
    let mut added = 0;
    for member in members {
        if set.insert_within(member, &limits) {
            added += 1;
        }
    }
    if added > 0 {
        call.log_as_received();
    }
    Ok(Reply::Integer(added))
}

pub fn srem(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    let set = match write_set(store, key, call.now_ms)? {
        Some(set) => set,
        None => return Ok(Reply::Integer(0)),
    };
    let mut removed = 0;
    for member in &call.arguments[2..] {
        if set.swap_remove(member) {
            removed += 1;
        }
    }
    if set.is_empty() {
        store.keyspace.remove(key);
    }
    if removed > 0 {
        call.log_as_received();
    }
    Ok(Reply::Integer(removed))
}

pub fn sismember(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let set = read_set(store, call.key(), call.now_ms)?;
    Ok(Reply::Integer(
        set.is_some_and(|set| set.contains(call.argument(2))) as i64,
    ))
}

pub fn smismember(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let set = read_set(store, call.key(), call.now_ms)?;
    Ok(Reply::Array(
        call.arguments[2..]
            .iter()
            .map(|member| Reply::Integer(set.is_some_and(|set| set.contains(member)) as i64))
            .collect(),
    ))
}

pub fn scard(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let set = read_set(store, call.key(), call.now_ms)?;
    Ok(Reply::Integer(set.map_or(0, |set| set.len()) as i64))
}

pub fn smembers(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let set = read_set(store, call.key(), call.now_ms)?;
    Ok(Reply::Set(set.map_or_else(Vec::new, |set| {
        set.iter()
            .map(|member| Reply::SmallBulk(member.to_small_bytes()))
            .collect()
    })))
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]. Walks positions from the end like SCAN (see
/// `keyspace`), so a member present for the whole walk is returned at least once.
pub fn sscan(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let cursor = parse_cursor(call.argument(2))?;
    let (pattern, count) = parse_scan_options(call.arguments, 3, |_, _| false)?;
    let set = match read_set(store, call.key(), call.now_ms)? {
        Some(set) => set,
        None => return Ok(scan_reply(0, Vec::new())),
    };
    let matches =
        |member: &[u8]| pattern.is_none_or(|pattern| crate::glob::matches(pattern, member));
    if set.is_compact() {
        // Small by definition: the whole set in one call, as Redis answers for these encodings.
        let members = set
            .iter()
            .filter(|member| matches(member))
            .map(|member| bytes::Bytes::copy_from_slice(&member))
            .collect();
        return Ok(scan_reply(0, members));
    }
    let length = set.len() as u64;
    let start = if cursor == 0 || cursor > length {
        length
    } else {
        cursor
    };
    let stop = start.saturating_sub(count as u64);
    let members = (stop..start)
        .rev()
        .map(|position| set.get_index(position as usize).expect("in range"))
        .filter(|member| matches(member))
        .map(|member| bytes::Bytes::copy_from_slice(&member))
        .collect();
    Ok(scan_reply(stop, members))
}

/// SPOP key [count]
pub fn spop(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let count = match call.arguments.get(2) {
        None => None,
        Some(argument) => match crate::resp::parse_integer(argument) {
            Some(count) if count >= 0 => Some(count as usize),
            _ => return Err(Reply::error("ERR value is out of range, must be positive")),
        },
    };
    if call.arguments.len() > 3 {
        return Err(syntax_error());
    }
    let key = call.key();
    let Some(set) = read_set(store, key, call.now_ms)? else {
        return Ok(if count.is_some() {
            Reply::Set(Vec::new())
        } else {
            Reply::Null
        });
    };
    let length = set.len();
    let take = count.unwrap_or(1).min(length);
    let mut popped = Vec::with_capacity(take);
    for _ in 0..take {
        let remaining = length - popped.len();
        let index = store.random_below(remaining);
        let Ok(Some(set)) = write_set(store, key, call.now_ms) else {
            unreachable!("checked above");
        };
        popped.push(set.swap_remove_index(index).expect("index below length"));
    }
    if take == length {
        store.keyspace.remove(key);
    }
    if !popped.is_empty() {
        let mut logged: Vec<&[u8]> = vec![b"SREM", key];
        logged.extend(popped.iter().map(|member| &member[..]));
        call.log(&logged);
    }
    Ok(match count {
        None => popped.pop().map_or(Reply::Null, Reply::SmallBulk),
        Some(_) => Reply::Set(popped.into_iter().map(Reply::SmallBulk).collect()),
    })
}

/// SRANDMEMBER key [count]: a positive count gives distinct members, a negative one allows repeats.
pub fn srandmember(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let count = match call.arguments.get(2) {
        None => None,
        Some(_) if call.arguments.len() > 3 => return Err(syntax_error()),
        Some(argument) => match crate::resp::parse_integer(argument) {
            Some(count) if count > -(limits::SCAN_COUNT_MAX as i64) * 100 => Some(count),
            Some(_) => return Err(Reply::error("ERR value is out of range")),
            None => return Err(not_an_integer()),
        },
    };
    let key = call.key();
    let Some(set) = read_set(store, key, call.now_ms)? else {
        return Ok(if count.is_some() {
            Reply::Array(Vec::new())
        } else {
            Reply::Null
        });
    };
    let length = set.len();
    let indexes: Vec<usize> = match count {
        None => vec![store.random_below(length)],
        Some(count) if count >= 0 => {
            let wanted = (count as usize).min(length);
            if wanted == length {
                (0..length).collect()
            } else {
                // Distinct picks by a partial Fisher-Yates over positions.
                let mut positions: Vec<usize> = (0..length).collect();
                for slot in 0..wanted {
                    let pick = slot + store.random_below(length - slot);
                    positions.swap(slot, pick);
                }
                positions.truncate(wanted);
                positions
            }
        }
        Some(count) => (0..count.unsigned_abs() as usize)
            .map(|_| store.random_below(length))
            .collect(),
    };
    let Ok(Some(set)) = read_set(store, key, call.now_ms) else {
        unreachable!("checked above");
    };
    let members: Vec<Reply> = set
        .get_indexes(&indexes)
        .into_iter()
        .map(Reply::SmallBulk)
        .collect();
    Ok(match count {
        None => members.into_iter().next().unwrap_or(Reply::Null),
        Some(_) => Reply::Array(members),
    })
}
