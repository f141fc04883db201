//! Commands on keys of any type: DEL, UNLINK, EXISTS, TYPE, the EXPIRE family, TTL, PTTL, PERSIST, SCAN,
//! KEYS, DBSIZE and FLUSHALL.
//!
//! Every expiry is logged as an absolute `PEXPIREAT`, and one that is already in the past as a `DEL`, so
//! replay never depends on when it runs.

use bytes::Bytes;

use crate::command::error::{invalid_expire_time, not_an_integer, syntax_error};
use crate::command::parse::{is_option, parse_cursor, parse_scan_options};
use crate::command::reply::{integer_bytes, scan_reply};
use crate::command::Call;
use crate::resp::Reply;
use crate::store::Store;

pub fn del(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let mut deleted = 0;
    for key in &call.arguments[1..] {
        let live = store.keyspace.contains(key, call.now_ms);
        if live {
            store.keyspace.remove(key);
            deleted += 1;
        }
    }
    if deleted > 0 {
        call.log_as_received();
    }
    Ok(Reply::Integer(deleted))
}

pub fn exists(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let count = call.arguments[1..]
        .iter()
        .filter(|key| store.keyspace.contains(key, call.now_ms))
        .count();
    Ok(Reply::Integer(count as i64))
}

pub fn type_of(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    Ok(match store.keyspace.get(call.key(), call.now_ms) {
        Some(entry) => Reply::status(entry.value.type_name()),
        None => Reply::status("none"),
    })
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT key time [NX | XX | GT | LT]
fn expire_generic(
    store: &mut Store,
    call: &mut Call,
    unit_ms: i64,
    relative: bool,
    command: &str,
) -> Result<Reply, Reply> {
    let Some(amount) = crate::resp::parse_integer(call.argument(2)) else {
        return Err(not_an_integer());
    };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &call.arguments[3..] {
        if is_option(option, "NX") {
            nx = true;
        } else if is_option(option, "XX") {
            xx = true;
        } else if is_option(option, "GT") {
            gt = true;
        } else if is_option(option, "LT") {
            lt = true;
        } else {
            return Err(Reply::error(format!(
                "ERR Unsupported option {}",
                String::from_utf8_lossy(option)
            )));
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error(
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::error(
            "ERR GT and LT options at the same time are not compatible",
        ));
    }
    let invalid = || invalid_expire_time(command);
    let Some(milliseconds) = amount.checked_mul(unit_ms) else {
        return Err(invalid());
    };
    let at = if relative {
        match milliseconds.checked_add(call.now_ms as i64) {
            Some(at) => at,
            None => return Err(invalid()),
        }
    } else {
        milliseconds
    };
    let key = call.key();
    let Some(entry) = store.keyspace.get(key, call.now_ms) else {
        return Ok(Reply::Integer(0));
    };
    let current = entry.expires_at_ms;
    // A key without expiry counts as an infinite TTL for GT and LT, as in Redis.
    let allowed = match current {
        None => !xx && !gt,
        Some(current) => !nx && (!gt || at > current as i64) && (!lt || at < current as i64),
    };
    if !allowed {
        return Ok(Reply::Integer(0));
    }
    if at <= call.now_ms as i64 {
        store.keyspace.remove(key);
        call.log(&[b"DEL", key]);
    } else {
        store.keyspace.set_expiry(key, Some(at as u64));
        let at = integer_bytes(at);
        call.log(&[b"PEXPIREAT", key, &at]);
    }
    Ok(Reply::Integer(1))
}

pub fn expire(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    expire_generic(store, call, 1000, true, "expire")
}

pub fn pexpire(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    expire_generic(store, call, 1, true, "pexpire")
}

pub fn expireat(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    expire_generic(store, call, 1000, false, "expireat")
}

pub fn pexpireat(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    expire_generic(store, call, 1, false, "pexpireat")
}

/// TTL and PTTL: -2 when the key is absent, -1 when it has no expiry.
fn ttl_generic(store: &mut Store, call: &mut Call, unit_ms: u64) -> Reply {
    match store.keyspace.get(call.key(), call.now_ms) {
        None => Reply::Integer(-2),
        Some(entry) => match entry.expires_at_ms {
            None => Reply::Integer(-1),
            Some(at) => {
                let remaining = at.saturating_sub(call.now_ms);
                // Rounded to the nearest unit, as Redis does.
                Reply::Integer(((remaining + unit_ms / 2) / unit_ms) as i64)
            }
        },
    }
}

pub fn ttl(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    Ok(ttl_generic(store, call, 1000))
}

pub fn pttl(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    Ok(ttl_generic(store, call, 1))
}

pub fn persist(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let key = call.key();
    Ok(match store.keyspace.get(key, call.now_ms) {
        Some(entry) if entry.expires_at_ms.is_some() => {
            store.keyspace.set_expiry(key, None);
            call.log_as_received();
            Reply::Integer(1)
        }
        _ => Reply::Integer(0),
    })
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub fn scan(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let cursor = parse_cursor(call.argument(1))?;
    let mut type_filter: Option<&[u8]> = None;
    let (pattern, count) = parse_scan_options(call.arguments, 2, |option, value| {
        if is_option(option, "TYPE") {
            type_filter = Some(value);
            true
        } else {
            false
        }
    })?;
    let (next, keys) = store
        .keyspace
        .scan(cursor, count, call.now_ms, |key, value| {
            pattern.is_none_or(|pattern| crate::glob::matches(pattern, key))
                && type_filter
                    .is_none_or(|wanted| value.type_name().as_bytes().eq_ignore_ascii_case(wanted))
        });
    Ok(scan_reply(
        next,
        keys.into_iter().map(Bytes::from).collect(),
    ))
}

/// KEYS pattern: walks the whole keyspace, as in Redis; meant for debugging, not for rush traffic.
pub fn keys(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    let pattern = call.argument(1);
    let now_ms = call.now_ms;
    let keys = store
        .keyspace
        .iter()
        .filter(|(key, entry)| {
            !matches!(entry.expires_at_ms, Some(at) if at <= now_ms)
                && crate::glob::matches(pattern, key)
        })
        .map(|(key, _)| Reply::bulk(key))
        .collect();
    Ok(Reply::Array(keys))
}

pub fn dbsize(store: &mut Store, _call: &mut Call) -> Result<Reply, Reply> {
    Ok(Reply::Integer(store.keyspace.len() as i64))
}

/// FLUSHALL [ASYNC | SYNC] (and FLUSHDB): both modes free synchronously.
pub fn flushall(store: &mut Store, call: &mut Call) -> Result<Reply, Reply> {
    match call.arguments.get(1) {
        None => {}
        Some(mode) if is_option(mode, "ASYNC") || is_option(mode, "SYNC") => {}
        Some(_) => return Err(syntax_error()),
    }
    if call.arguments.len() > 2 {
        return Err(syntax_error());
    }
    store.keyspace.clear();
    call.log(&[b"FLUSHALL"]);
    Ok(Reply::OK)
}
