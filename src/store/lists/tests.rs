use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::store::encoding::{decode_value, encode_value};
use crate::store::live_store::{reply_text, Live};
use crate::store::{Shared, Store, Value};

fn run(live: &mut Live, call: &[&str]) -> String {
    reply_text(&live.run(call, 1_000))
}

fn bulk(text: &str) -> String {
    format!("${}\r\n{text}\r\n", text.len())
}

fn array(items: &[String]) -> String {
    format!("*{}\r\n{}", items.len(), items.concat())
}

fn elements(items: &[&str]) -> String {
    array(&items.iter().map(|item| bulk(item)).collect::<Vec<_>>())
}

#[test]
fn pushes_and_pops_answer_as_redis() {
    let mut live = Live::new();
    assert_eq!(run(&mut live, &["RPUSH", "l", "a", "b", "c"]), ":3\r\n");
    assert_eq!(run(&mut live, &["LPUSH", "l", "x", "y"]), ":5\r\n");
    assert_eq!(
        run(&mut live, &["LRANGE", "l", "0", "-1"]),
        elements(&["y", "x", "a", "b", "c"])
    );
    assert_eq!(run(&mut live, &["LPUSHX", "missing", "a"]), ":0\r\n");
    assert_eq!(run(&mut live, &["RPUSHX", "l", "d"]), ":6\r\n");
    assert_eq!(run(&mut live, &["LPOP", "l"]), bulk("y"));
    assert_eq!(run(&mut live, &["RPOP", "l", "2"]), elements(&["d", "c"]));
    assert_eq!(run(&mut live, &["LPOP", "l", "0"]), "*0\r\n");
    assert_eq!(run(&mut live, &["LPOP", "missing"]), "$-1\r\n");
    assert_eq!(run(&mut live, &["LPOP", "missing", "0"]), "*-1\r\n");
    assert_eq!(run(&mut live, &["LPOP", "missing", "2"]), "*-1\r\n");
    assert_eq!(
        run(&mut live, &["LPOP", "l", "-1"]),
        "-ERR value is out of range, must be positive\r\n"
    );
    assert_eq!(
        run(&mut live, &["LPOP", "l", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        run(&mut live, &["LPOP", "l", "9"]),
        elements(&["x", "a", "b"])
    );
    // The last element gone, the key is gone.
    assert_eq!(run(&mut live, &["EXISTS", "l"]), ":0\r\n");
    assert_eq!(run(&mut live, &["SET", "s", "v"]), "+OK\r\n");
    let wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    for call in [
        &["LPUSH", "s", "a"][..],
        &["LPUSHX", "s", "a"],
        &["LPOP", "s"],
        &["LLEN", "s"],
        &["LRANGE", "s", "0", "1"],
        &["LINDEX", "s", "0"],
        &["LSET", "s", "0", "a"],
        &["LINSERT", "s", "BEFORE", "a", "b"],
        &["LREM", "s", "0", "a"],
        &["LTRIM", "s", "0", "1"],
        &["LPOS", "s", "a"],
        &["LMOVE", "s", "d", "LEFT", "LEFT"],
        &["LMPOP", "1", "s", "LEFT"],
        &["BLPOP", "s", "0"],
    ] {
        assert_eq!(run(&mut live, call), wrong, "{call:?}");
    }
    assert_eq!(run(&mut live, &["TYPE", "s"]), "+string\r\n");
    run(&mut live, &["RPUSH", "l", "a"]);
    assert_eq!(run(&mut live, &["TYPE", "l"]), "+list\r\n");
    assert_eq!(run(&mut live, &["LMOVE", "l", "s", "LEFT", "LEFT"]), wrong);
    // A missing source is nil whatever the destination holds.
    assert_eq!(
        run(&mut live, &["LMOVE", "missing", "s", "LEFT", "LEFT"]),
        "$-1\r\n"
    );
}

#[test]
fn indexes_ranges_and_searches() {
    let mut live = Live::new();
    run(
        &mut live,
        &["RPUSH", "l", "a", "b", "c", "a", "b", "c", "a"],
    );
    assert_eq!(run(&mut live, &["LINDEX", "l", "-1"]), bulk("a"));
    assert_eq!(run(&mut live, &["LINDEX", "l", "7"]), "$-1\r\n");
    assert_eq!(run(&mut live, &["LINDEX", "missing", "x"]), "$-1\r\n");
    assert_eq!(
        run(&mut live, &["LINDEX", "l", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        run(&mut live, &["LRANGE", "l", "-100", "1"]),
        elements(&["a", "b"])
    );
    assert_eq!(run(&mut live, &["LRANGE", "l", "5", "2"]), "*0\r\n");
    assert_eq!(run(&mut live, &["LRANGE", "missing", "0", "-1"]), "*0\r\n");
    assert_eq!(run(&mut live, &["LPOS", "l", "a"]), ":0\r\n");
    assert_eq!(run(&mut live, &["LPOS", "l", "a", "RANK", "-1"]), ":6\r\n");
    assert_eq!(
        run(&mut live, &["LPOS", "l", "a", "RANK", "2", "COUNT", "0"]),
        "*2\r\n:3\r\n:6\r\n"
    );
    assert_eq!(
        run(&mut live, &["LPOS", "l", "a", "COUNT", "0", "MAXLEN", "3"]),
        "*1\r\n:0\r\n"
    );
    assert_eq!(run(&mut live, &["LPOS", "l", "z"]), "$-1\r\n");
    assert_eq!(run(&mut live, &["LPOS", "l", "z", "COUNT", "1"]), "*0\r\n");
    assert_eq!(
        run(&mut live, &["LPOS", "missing", "z", "COUNT", "1"]),
        "*0\r\n"
    );
    assert_eq!(
        run(&mut live, &["LPOS", "l", "a", "RANK", "0"]),
        "-ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use \
         negative to start from the end of the list\r\n"
    );
    assert_eq!(
        run(&mut live, &["LPOS", "l", "a", "COUNT", "-1"]),
        "-ERR COUNT can't be negative\r\n"
    );
    assert_eq!(
        run(&mut live, &["LPOS", "l", "a", "MAXLEN", "x"]),
        "-ERR MAXLEN can't be negative\r\n"
    );
    assert_eq!(
        run(&mut live, &["LPOS", "l", "a", "RANK"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        run(&mut live, &["LINSERT", "l", "middle", "a", "b"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        run(&mut live, &["LINSERT", "l", "before", "c", "X"]),
        ":8\r\n"
    );
    assert_eq!(
        run(&mut live, &["LINSERT", "l", "AFTER", "zz", "X"]),
        ":-1\r\n"
    );
    assert_eq!(
        run(&mut live, &["LINSERT", "missing", "AFTER", "zz", "X"]),
        ":0\r\n"
    );
    assert_eq!(
        run(&mut live, &["LSET", "missing", "0", "x"]),
        "-ERR no such key\r\n"
    );
    assert_eq!(
        run(&mut live, &["LSET", "l", "99", "x"]),
        "-ERR index out of range\r\n"
    );
    assert_eq!(run(&mut live, &["LSET", "l", "-1", "last"]), "+OK\r\n");
    assert_eq!(
        run(&mut live, &["LRANGE", "l", "0", "-1"]),
        elements(&["a", "b", "X", "c", "a", "b", "c", "last"])
    );
    assert_eq!(run(&mut live, &["LREM", "l", "-1", "c"]), ":1\r\n");
    assert_eq!(run(&mut live, &["LREM", "l", "0", "b"]), ":2\r\n");
    assert_eq!(
        run(&mut live, &["LRANGE", "l", "0", "-1"]),
        elements(&["a", "X", "c", "a", "last"])
    );
    assert_eq!(run(&mut live, &["LTRIM", "l", "1", "-2"]), "+OK\r\n");
    assert_eq!(
        run(&mut live, &["LRANGE", "l", "0", "-1"]),
        elements(&["X", "c", "a"])
    );
    assert_eq!(run(&mut live, &["LTRIM", "l", "5", "1"]), "+OK\r\n");
    assert_eq!(run(&mut live, &["EXISTS", "l"]), ":0\r\n");
    assert_eq!(run(&mut live, &["LTRIM", "missing", "0", "1"]), "+OK\r\n");
}

#[test]
fn multi_key_pops_and_their_log_records() {
    let mut live = Live::new();
    run(&mut live, &["RPUSH", "b", "1", "2", "3"]);
    assert_eq!(
        run(&mut live, &["LMPOP", "2", "a", "b", "RIGHT", "COUNT", "5"]),
        array(&[bulk("b"), elements(&["3", "2", "1"])])
    );
    assert_eq!(
        live.last_record().1,
        vec![vec!["RPOP".to_string(), "b".into(), "3".into()]]
    );
    assert_eq!(run(&mut live, &["LMPOP", "1", "b", "LEFT"]), "*-1\r\n");
    for (call, error) in [
        (
            &["LMPOP", "0", "a", "LEFT"][..],
            "ERR numkeys should be greater than 0",
        ),
        (
            &["LMPOP", "x", "a", "LEFT"],
            "ERR numkeys should be greater than 0",
        ),
        (&["LMPOP", "2", "a", "LEFT"], "ERR syntax error"),
        (&["LMPOP", "1", "a", "UP"], "ERR syntax error"),
        (
            &["LMPOP", "1", "a", "LEFT", "COUNT", "0"],
            "ERR count should be greater than 0",
        ),
        (
            &["LMPOP", "1", "a", "LEFT", "COUNT", "1", "COUNT", "1"],
            "ERR syntax error",
        ),
        (&["BLPOP", "a", "-1"], "ERR timeout is negative"),
        (
            &["BLPOP", "a", "x"],
            "ERR timeout is not a float or out of range",
        ),
        (
            &["BLPOP", "a", "nan"],
            "ERR timeout is not a float or out of range",
        ),
        (&["BLPOP", "a", "inf"], "ERR timeout is negative"),
        (&["BLPOP", "a", "1e30"], "ERR timeout is negative"),
        (&["BLMOVE", "a", "b", "UP", "LEFT", "x"], "ERR syntax error"),
        (
            &["BLMOVE", "a", "b", "LEFT", "LEFT", "x"],
            "ERR timeout is not a float or out of range",
        ),
        (
            &["BLMPOP", "-1", "1", "a", "LEFT"],
            "ERR timeout is negative",
        ),
    ] {
        assert_eq!(run(&mut live, call), format!("-{error}\r\n"), "{call:?}");
    }
    // Blocking commands run here as their non-blocking variants, logged as the plain pop.
    run(&mut live, &["RPUSH", "b", "1", "2"]);
    assert_eq!(
        run(&mut live, &["BLPOP", "a", "b", "0"]),
        elements(&["b", "1"])
    );
    assert_eq!(
        live.last_record().1,
        vec![vec!["LPOP".to_string(), "b".into()]]
    );
    assert_eq!(run(&mut live, &["BRPOPLPUSH", "b", "c", "0.5"]), bulk("2"));
    assert_eq!(
        live.last_record().1,
        vec![vec![
            "LMOVE".to_string(),
            "b".into(),
            "c".into(),
            "RIGHT".into(),
            "LEFT".into()
        ]]
    );
    let records = live.records.len();
    assert_eq!(run(&mut live, &["BLPOP", "a", "b", "0"]), "*-1\r\n");
    assert_eq!(run(&mut live, &["BRPOP", "a", "0"]), "*-1\r\n");
    assert_eq!(
        run(&mut live, &["BLMOVE", "a", "c", "LEFT", "LEFT", "0"]),
        "$-1\r\n"
    );
    assert_eq!(
        run(&mut live, &["BLMPOP", "0", "1", "a", "LEFT"]),
        "*-1\r\n"
    );
    assert_eq!(
        live.records.len(),
        records,
        "nothing popped, nothing logged"
    );
    // A list moved onto itself keeps its key (and expiry).
    run(&mut live, &["PEXPIRE", "c", "100000"]);
    assert_eq!(
        run(&mut live, &["LMOVE", "c", "c", "LEFT", "RIGHT"]),
        bulk("2")
    );
    assert_eq!(run(&mut live, &["PTTL", "c"]), ":100000\r\n");
}

#[test]
fn parse_timeout_rounds_up_to_milliseconds() {
    assert_eq!(commands::parse_timeout_ms(b"0"), Ok(0));
    assert_eq!(commands::parse_timeout_ms(b"0.2"), Ok(200));
    assert_eq!(commands::parse_timeout_ms(b"0.0001"), Ok(1));
    assert_eq!(commands::parse_timeout_ms(b"1.5"), Ok(1500));
    assert_eq!(commands::parse_timeout_ms(b"-0.0001"), Ok(0));
}

#[test]
fn encoding_follows_the_listpack_size() {
    let mut list: ListValue = ["1", "hello"].into_iter().map(SmallBytes::from).collect();
    // 6 header + (1 + 1) for "1" + (1 + 5 + 1) for "hello" + 1 end.
    assert_eq!(list.listpack_bytes(), 16);
    assert_eq!(encoding_name(&list), "listpack");
    let big = "x".repeat(5000);
    list.push_back(SmallBytes::from(big.as_str()));
    assert_eq!(encoding_name(&list), "listpack");
    list.push_back(SmallBytes::from(big.as_str()));
    assert_eq!(encoding_name(&list), "quicklist");
    list.pop_back();
    assert_eq!(encoding_name(&list), "listpack");
    assert_eq!(listpack_entry_bytes(b"-1"), 3);
    assert_eq!(listpack_entry_bytes(b"01"), 4, "not canonical: a string");
    assert_eq!(listpack_entry_bytes(b"100000"), 5);
}

// --- The reference model ---

type Model = BTreeMap<String, VecDeque<String>>;

#[derive(Debug, Clone)]
enum Operation {
    Push(bool, bool, String, Vec<String>),
    Pop(bool, String, Option<usize>),
    Length(String),
    Range(String, i64, i64),
    Index(String, i64),
    Set(String, i64, String),
    Insert(String, bool, String, String),
    Remove(String, i64, String),
    Trim(String, i64, i64),
    Position(String, String, i64, Option<usize>, usize),
    Move(String, String, bool, bool),
    MultiPop(Vec<String>, bool, usize),
    BlockingPop(bool, Vec<String>),
    Restart,
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_string()), Just("b".to_string())]
}

fn element() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("x".to_string()),
        Just("y".to_string()),
        Just("7".to_string()),
        Just("a-longer-element-kept-on-the-heap".to_string()),
    ]
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        4 => (any::<bool>(), any::<bool>(), key(), prop::collection::vec(element(), 1..4))
            .prop_map(|(left, only_if_exists, key, elements)| Operation::Push(left, only_if_exists, key, elements)),
        3 => (any::<bool>(), key(), proptest::option::of(0..4usize))
            .prop_map(|(left, key, count)| Operation::Pop(left, key, count)),
        1 => key().prop_map(Operation::Length),
        2 => (key(), -6..6i64, -6..6i64).prop_map(|(key, start, stop)| Operation::Range(key, start, stop)),
        1 => (key(), -6..6i64).prop_map(|(key, index)| Operation::Index(key, index)),
        1 => (key(), -6..6i64, element()).prop_map(|(key, index, value)| Operation::Set(key, index, value)),
        1 => (key(), any::<bool>(), element(), element())
            .prop_map(|(key, after, pivot, value)| Operation::Insert(key, after, pivot, value)),
        1 => (key(), -3..3i64, element()).prop_map(|(key, count, value)| Operation::Remove(key, count, value)),
        1 => (key(), -6..6i64, -6..6i64).prop_map(|(key, start, stop)| Operation::Trim(key, start, stop)),
        1 => (key(), element(), prop_oneof![-3..0i64, 1..4i64], proptest::option::of(0..3usize), 0..5usize)
            .prop_map(|(key, value, rank, count, maxlen)| Operation::Position(key, value, rank, count, maxlen)),
        2 => (key(), key(), any::<bool>(), any::<bool>())
            .prop_map(|(source, destination, from_left, to_left)| Operation::Move(source, destination, from_left, to_left)),
        1 => (prop::collection::vec(key(), 1..3), any::<bool>(), 1..4usize)
            .prop_map(|(keys, left, count)| Operation::MultiPop(keys, left, count)),
        1 => (any::<bool>(), prop::collection::vec(key(), 1..3))
            .prop_map(|(left, keys)| Operation::BlockingPop(left, keys)),
        1 => Just(Operation::Restart),
    ]
}

fn resolve(index: i64, length: usize) -> Option<usize> {
    let resolved = if index < 0 {
        index + length as i64
    } else {
        index
    };
    (0..length as i64)
        .contains(&resolved)
        .then_some(resolved as usize)
}

fn range(start: i64, stop: i64, length: usize) -> std::ops::Range<usize> {
    let length = length as i64;
    let start = if start < 0 {
        (start + length).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { stop + length } else { stop };
    if start > stop || start >= length {
        return 0..0;
    }
    start as usize..stop.min(length - 1) as usize + 1
}

fn pop_model(list: &mut VecDeque<String>, left: bool) -> String {
    if left {
        list.pop_front().unwrap()
    } else {
        list.pop_back().unwrap()
    }
}

fn side(left: bool) -> &'static str {
    if left {
        "LEFT"
    } else {
        "RIGHT"
    }
}

/// Applies `operation` to the model, returning the call and the RESP2 reply Redis would give.
fn apply(model: &mut Model, operation: &Operation) -> (Vec<String>, String) {
    let strings = |items: &[&str]| {
        items
            .iter()
            .map(|item| item.to_string())
            .collect::<Vec<_>>()
    };
    let result = match operation {
        Operation::Restart => unreachable!("handled by the caller"),
        Operation::Push(left, only_if_exists, key, values) => {
            let name = match (left, only_if_exists) {
                (true, false) => "LPUSH",
                (false, false) => "RPUSH",
                (true, true) => "LPUSHX",
                (false, true) => "RPUSHX",
            };
            let mut call = strings(&[name, key]);
            call.extend(values.iter().cloned());
            let reply = if *only_if_exists && !model.contains_key(key) {
                ":0\r\n".to_string()
            } else {
                let list = model.entry(key.clone()).or_default();
                for value in values {
                    if *left {
                        list.push_front(value.clone());
                    } else {
                        list.push_back(value.clone());
                    }
                }
                format!(":{}\r\n", list.len())
            };
            (call, reply)
        }
        Operation::Pop(left, key, count) => {
            let mut call = strings(&[if *left { "LPOP" } else { "RPOP" }, key]);
            if let Some(count) = count {
                call.push(count.to_string());
            }
            let reply = match (model.get_mut(key), count) {
                (None, None) => "$-1\r\n".to_string(),
                (None, Some(_)) => "*-1\r\n".to_string(),
                (Some(list), None) => bulk(&pop_model(list, *left)),
                (Some(list), Some(count)) => {
                    let take = (*count).min(list.len());
                    let popped: Vec<String> =
                        (0..take).map(|_| bulk(&pop_model(list, *left))).collect();
                    array(&popped)
                }
            };
            (call, reply)
        }
        Operation::Length(key) => (
            strings(&["LLEN", key]),
            format!(":{}\r\n", model.get(key).map_or(0, VecDeque::len)),
        ),
        Operation::Range(key, start, stop) => {
            let reply = match model.get(key) {
                None => "*0\r\n".to_string(),
                Some(list) => array(
                    &list
                        .range(range(*start, *stop, list.len()))
                        .map(|item| bulk(item))
                        .collect::<Vec<_>>(),
                ),
            };
            (
                strings(&["LRANGE", key, &start.to_string(), &stop.to_string()]),
                reply,
            )
        }
        Operation::Index(key, index) => {
            let reply = model
                .get(key)
                .and_then(|list| resolve(*index, list.len()).map(|at| bulk(&list[at])))
                .unwrap_or_else(|| "$-1\r\n".to_string());
            (strings(&["LINDEX", key, &index.to_string()]), reply)
        }
        Operation::Set(key, index, value) => {
            let reply = match model.get_mut(key) {
                None => "-ERR no such key\r\n".to_string(),
                Some(list) => match resolve(*index, list.len()) {
                    None => "-ERR index out of range\r\n".to_string(),
                    Some(at) => {
                        list[at] = value.clone();
                        "+OK\r\n".to_string()
                    }
                },
            };
            (strings(&["LSET", key, &index.to_string(), value]), reply)
        }
        Operation::Insert(key, after, pivot, value) => {
            let reply = match model.get_mut(key) {
                None => ":0\r\n".to_string(),
                Some(list) => match list.iter().position(|item| item == pivot) {
                    None => ":-1\r\n".to_string(),
                    Some(at) => {
                        list.insert(at + *after as usize, value.clone());
                        format!(":{}\r\n", list.len())
                    }
                },
            };
            let place = if *after { "AFTER" } else { "BEFORE" };
            (strings(&["LINSERT", key, place, pivot, value]), reply)
        }
        Operation::Remove(key, count, value) => {
            let removed = match model.get_mut(key) {
                None => 0,
                Some(list) => {
                    let mut positions: Vec<usize> =
                        (0..list.len()).filter(|&at| &list[at] == value).collect();
                    if *count < 0 {
                        positions.reverse();
                    }
                    if *count != 0 {
                        positions.truncate(count.unsigned_abs() as usize);
                    }
                    positions.sort_unstable();
                    for at in positions.iter().rev() {
                        list.remove(*at);
                    }
                    positions.len()
                }
            };
            (
                strings(&["LREM", key, &count.to_string(), value]),
                format!(":{removed}\r\n"),
            )
        }
        Operation::Trim(key, start, stop) => {
            if let Some(list) = model.get_mut(key) {
                let kept = range(*start, *stop, list.len());
                *list = list.range(kept).cloned().collect();
            }
            (
                strings(&["LTRIM", key, &start.to_string(), &stop.to_string()]),
                "+OK\r\n".to_string(),
            )
        }
        Operation::Position(key, value, rank, count, maxlen) => {
            let mut call = strings(&["LPOS", key, value, "RANK", &rank.to_string()]);
            if let Some(count) = count {
                call.extend(strings(&["COUNT", &count.to_string()]));
            }
            call.extend(strings(&["MAXLEN", &maxlen.to_string()]));
            let found: Vec<usize> = match model.get(key) {
                None => Vec::new(),
                Some(list) => {
                    let length = list.len();
                    let compared = if *maxlen == 0 {
                        length
                    } else {
                        (*maxlen).min(length)
                    };
                    let order: Vec<usize> = if *rank > 0 {
                        (0..compared).collect()
                    } else {
                        (length - compared..length).rev().collect()
                    };
                    let matches = order
                        .into_iter()
                        .filter(|&at| &list[at] == value)
                        .skip(rank.unsigned_abs() as usize - 1);
                    match count {
                        None | Some(1) => matches.take(1).collect(),
                        Some(0) => matches.collect(),
                        Some(count) => matches.take(*count).collect(),
                    }
                }
            };
            let reply = match count {
                None => found
                    .first()
                    .map_or("$-1\r\n".to_string(), |at| format!(":{at}\r\n")),
                Some(_) => array(
                    &found
                        .iter()
                        .map(|at| format!(":{at}\r\n"))
                        .collect::<Vec<_>>(),
                ),
            };
            (call, reply)
        }
        Operation::Move(source, destination, from_left, to_left) => {
            let call = strings(&[
                "LMOVE",
                source,
                destination,
                side(*from_left),
                side(*to_left),
            ]);
            let reply = match model.get_mut(source) {
                None => "$-1\r\n".to_string(),
                Some(list) => {
                    let value = pop_model(list, *from_left);
                    let target = model.entry(destination.clone()).or_default();
                    if *to_left {
                        target.push_front(value.clone());
                    } else {
                        target.push_back(value.clone());
                    }
                    bulk(&value)
                }
            };
            (call, reply)
        }
        Operation::MultiPop(keys, left, count) => {
            let mut call = strings(&["LMPOP", &keys.len().to_string()]);
            call.extend(keys.iter().cloned());
            call.extend(strings(&[side(*left), "COUNT", &count.to_string()]));
            let reply = match keys.iter().find(|key| model.contains_key(*key)) {
                None => "*-1\r\n".to_string(),
                Some(key) => {
                    let list = model.get_mut(key).unwrap();
                    let take = (*count).min(list.len());
                    let popped: Vec<String> =
                        (0..take).map(|_| bulk(&pop_model(list, *left))).collect();
                    array(&[bulk(key), array(&popped)])
                }
            };
            (call, reply)
        }
        Operation::BlockingPop(left, keys) => {
            let mut call = strings(&[if *left { "BLPOP" } else { "BRPOP" }]);
            call.extend(keys.iter().cloned());
            call.push("0".to_string());
            let reply = match keys.iter().find(|key| model.contains_key(*key)) {
                None => "*-1\r\n".to_string(),
                Some(key) => {
                    let value = pop_model(model.get_mut(key).unwrap(), *left);
                    array(&[bulk(key), bulk(&value)])
                }
            };
            (call, reply)
        }
    };
    model.retain(|_, list| !list.is_empty());
    result
}

/// Every list of `store`, by key, head first.
fn lists_of(store: &mut Store) -> Model {
    let mut lists = Model::new();
    for key in ["a", "b"] {
        if let Some(entry) = store.keyspace.get(key.as_bytes(), 1_000) {
            let Value::List(list) = &entry.value else {
                panic!("{key} is not a list");
            };
            lists.insert(
                key.to_string(),
                list.iter()
                    .map(|element| String::from_utf8_lossy(element).into_owned())
                    .collect(),
            );
        }
    }
    lists
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random list commands against a `VecDeque` model: every reply matches, and a replay of the log (a
    /// restart) and a snapshot round trip of every list reach the same lists.
    #[test]
    fn list_commands_match_a_reference_model(operations in prop::collection::vec(operation(), 1..60)) {
        let mut live = Live::new();
        let mut model = Model::new();
        for operation in &operations {
            if let Operation::Restart = operation {
                let mut replayed = live.replay().expect("the log replays");
                prop_assert_eq!(lists_of(&mut replayed), model.clone());
                live.store = replayed;
                continue;
            }
            let (call, expected) = apply(&mut model, operation);
            let call: Vec<&str> = call.iter().map(String::as_str).collect();
            prop_assert_eq!(run(&mut live, &call), expected, "{:?}", call);
            prop_assert_eq!(lists_of(&mut live.store), model.clone());
        }
        let mut replayed = live.replay().expect("the log replays");
        prop_assert_eq!(lists_of(&mut replayed), model.clone());
        for (key, elements) in &model {
            let list: ListValue = elements.iter().map(|element| SmallBytes::from(element.as_str())).collect();
            let value = Value::List(Shared::new(list));
            let mut bytes = Vec::new();
            let tag = encode_value(&value, &mut bytes);
            let Value::List(decoded) = decode_value(tag, &bytes).expect("decodes") else {
                panic!("{key} decoded as another type");
            };
            let Value::List(original) = &value else { unreachable!() };
            prop_assert_eq!(&*decoded, &**original);
        }
    }
}
