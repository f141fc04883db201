//! Helpers shared by the integration tests.
//!
//! `FakeDibs` is a small reference model of dibs' rush commands (COUPON.*, STOCK.*, LIKE.*, QUEUE.*) as
//! the bench's command contract describes them, served over RESP on an ephemeral loopback port. It lets
//! the bench's dibs target be exercised before the real server lands, and it can be told to misbehave
//! (over-issue coupons) so the end-to-end path from a wrong server to exit status 1 is tested too. It is
//! a model, not dibs: one mutex, one thread per connection, no persistence.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Reply values of the model.
enum Reply {
    Simple(&'static str),
    Integer(i64),
    Bulk(String),
    Null,
    Array(Vec<Reply>),
    Error(String),
}

fn write_reply(reply: &Reply, output: &mut Vec<u8>) {
    match reply {
        Reply::Simple(text) => output.extend_from_slice(format!("+{text}\r\n").as_bytes()),
        Reply::Integer(number) => output.extend_from_slice(format!(":{number}\r\n").as_bytes()),
        Reply::Bulk(text) => {
            output.extend_from_slice(format!("${}\r\n{text}\r\n", text.len()).as_bytes())
        }
        Reply::Null => output.extend_from_slice(b"$-1\r\n"),
        Reply::Error(text) => output.extend_from_slice(format!("-{text}\r\n").as_bytes()),
        Reply::Array(items) => {
            output.extend_from_slice(format!("*{}\r\n", items.len()).as_bytes());
            for item in items {
                write_reply(item, output);
            }
        }
    }
}

#[derive(Default)]
struct Event {
    total: i64,
    issued: i64,
    holders: BTreeMap<String, i64>,
    requests: HashMap<String, i64>,
}

#[derive(Default)]
struct Sku {
    available: i64,
    reserved: i64,
    sold: i64,
    next_id: u64,
    /// id -> (quantity, deadline)
    open: HashMap<String, (i64, Instant)>,
    closed: HashMap<String, &'static str>,
}

impl Sku {
    fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, (_, deadline))| *deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            let (quantity, _) = self.open.remove(&id).expect("listed above");
            self.available += quantity;
            self.reserved -= quantity;
            self.closed.insert(id, "EXPIRED");
        }
    }
}

#[derive(Default)]
struct Room {
    line: VecDeque<String>,
    passes: HashMap<String, Instant>,
}

impl Room {
    fn position(&self, user: &str, now: Instant) -> Option<i64> {
        if self.passes.get(user).is_some_and(|expiry| *expiry > now) {
            return Some(0);
        }
        self.line
            .iter()
            .position(|waiting| waiting == user)
            .map(|index| index as i64 + 1)
    }
}

#[derive(Default)]
struct State {
    events: HashMap<String, Event>,
    skus: HashMap<String, Sku>,
    likes: HashMap<String, HashSet<String>>,
    rooms: HashMap<String, Room>,
}

/// How the model misbehaves, for tests that the checks catch a wrong server.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Correct,
    /// COUPON.ISSUE never answers SOLDOUT: it keeps numbering past the total.
    OverIssue,
}

pub struct FakeDibs {
    pub port: u16,
}

impl FakeDibs {
    pub fn start(behaviour: Behaviour) -> FakeDibs {
        let listener = TcpListener::bind("127.0.0.1:0").expect("an ephemeral port");
        let port = listener.local_addr().expect("bound").port();
        let state = Arc::new(Mutex::new(State::default()));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&state);
                std::thread::spawn(move || serve(stream, &state, behaviour));
            }
        });
        FakeDibs { port }
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, behaviour: Behaviour) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut output = Vec::new();
    while let Some(arguments) = read_command(&mut reader) {
        let reply = execute(&arguments, &mut state.lock().expect("no panics"), behaviour);
        write_reply(&reply, &mut output);
        // Flush once the pipelined batch is consumed, so a batch gets one write.
        if reader.buffer().is_empty() {
            if writer.write_all(&output).is_err() {
                return;
            }
            output.clear();
        }
    }
}

fn read_command(reader: &mut BufReader<TcpStream>) -> Option<Vec<String>> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let count: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut arguments = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let length: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut bytes = vec![0u8; length + 2];
        reader.read_exact(&mut bytes).ok()?;
        bytes.truncate(length);
        arguments.push(String::from_utf8(bytes).ok()?);
    }
    Some(arguments)
}

fn number(text: &str) -> i64 {
    text.parse().unwrap_or(0)
}

fn execute(arguments: &[String], state: &mut State, behaviour: Behaviour) -> Reply {
    let now = Instant::now();
    let name = arguments[0].to_ascii_uppercase();
    let argument = |index: usize| arguments.get(index).map(String::as_str).unwrap_or("");
    match name.as_str() {
        "PING" => Reply::Simple("PONG"),
        "FLUSHDB" => {
            *state = State::default();
            Reply::Simple("OK")
        }
        "COUPON.CREATE" => {
            state.events.insert(
                argument(1).to_string(),
                Event {
                    total: number(argument(2)),
                    ..Event::default()
                },
            );
            Reply::Simple("OK")
        }
        "COUPON.ISSUE" => {
            let Some(event) = state.events.get_mut(argument(1)) else {
                return Reply::Error("ERR no such event".into());
            };
            let (user, request) = (argument(2), argument(4));
            let status = if let Some(&first) = event.holders.get(user) {
                ("ALREADY", Some(first))
            } else if event.issued >= event.total && behaviour == Behaviour::Correct {
                ("SOLDOUT", None)
            } else {
                event.issued += 1;
                event.holders.insert(user.to_string(), event.issued);
                event.requests.insert(request.to_string(), event.issued);
                ("ISSUED", Some(event.issued))
            };
            Reply::Array(vec![
                Reply::Bulk(status.0.into()),
                status.1.map_or(Reply::Null, Reply::Integer),
                Reply::Integer(event.total - event.issued),
            ])
        }
        "COUPON.INFO" => {
            let event = state.events.entry(argument(1).to_string()).or_default();
            let field = |name: &str, value: i64| [Reply::Bulk(name.into()), Reply::Integer(value)];
            Reply::Array(
                [
                    field("total", event.total),
                    field("issued", event.issued),
                    field("remaining", event.total - event.issued),
                    field("revoked", 0),
                    field("peruser", 1),
                ]
                .into_iter()
                .flatten()
                .collect(),
            )
        }
        "COUPON.HOLDERS" => {
            let event = state.events.entry(argument(1).to_string()).or_default();
            let start = number(argument(2)) as usize;
            let count = number(argument(3)).max(1) as usize;
            let page: Vec<Reply> = event
                .holders
                .iter()
                .skip(start)
                .take(count)
                .flat_map(|(user, number)| [Reply::Bulk(user.clone()), Reply::Integer(*number)])
                .collect();
            let next = if start + count >= event.holders.len() {
                0
            } else {
                start + count
            };
            Reply::Array(vec![Reply::Bulk(next.to_string()), Reply::Array(page)])
        }
        "STOCK.SET" => {
            let sku = state.skus.entry(argument(1).to_string()).or_default();
            sku.available = number(argument(2));
            Reply::Simple("OK")
        }
        "STOCK.TAKE" | "STOCK.RESERVE" => {
            let sku = state.skus.entry(argument(1).to_string()).or_default();
            sku.expire(now);
            let quantity = number(argument(2));
            let take = name == "STOCK.TAKE";
            if sku.available < quantity {
                let mut reply = vec![Reply::Bulk("SOLDOUT".into())];
                if !take {
                    reply.push(Reply::Null);
                }
                reply.push(Reply::Integer(sku.available));
                return Reply::Array(reply);
            }
            sku.available -= quantity;
            if take {
                sku.sold += quantity;
                return Reply::Array(vec![
                    Reply::Bulk("OK".into()),
                    Reply::Integer(sku.available),
                ]);
            }
            sku.reserved += quantity;
            sku.next_id += 1;
            let id = format!("r{}", sku.next_id);
            let ttl = Duration::from_millis(number(argument(3)) as u64);
            sku.open.insert(id.clone(), (quantity, now + ttl));
            Reply::Array(vec![
                Reply::Bulk("OK".into()),
                Reply::Bulk(id),
                Reply::Integer(sku.available),
            ])
        }
        "STOCK.CONFIRM" | "STOCK.RELEASE" => {
            let sku = state.skus.entry(argument(1).to_string()).or_default();
            sku.expire(now);
            let id = argument(2);
            let Some((quantity, _)) = sku.open.remove(id) else {
                return Reply::Simple(sku.closed.get(id).copied().unwrap_or("UNKNOWN"));
            };
            sku.reserved -= quantity;
            let outcome = if name == "STOCK.CONFIRM" {
                sku.sold += quantity;
                "CONFIRMED"
            } else {
                sku.available += quantity;
                "RELEASED"
            };
            sku.closed.insert(id.to_string(), outcome);
            Reply::Simple(outcome)
        }
        "STOCK.INFO" => {
            let sku = state.skus.entry(argument(1).to_string()).or_default();
            sku.expire(now);
            let field = |name: &str, value: i64| [Reply::Bulk(name.into()), Reply::Integer(value)];
            Reply::Array(
                [
                    field("available", sku.available),
                    field("reserved", sku.reserved),
                    field("sold", sku.sold),
                    field("reservations", sku.open.len() as i64),
                ]
                .into_iter()
                .flatten()
                .collect(),
            )
        }
        "LIKE.ADD" | "LIKE.REMOVE" => {
            let likers = state.likes.entry(argument(1).to_string()).or_default();
            let changed = if name == "LIKE.ADD" {
                likers.insert(argument(2).to_string())
            } else {
                likers.remove(argument(2))
            };
            Reply::Array(vec![
                Reply::Integer(changed as i64),
                Reply::Integer(likers.len() as i64),
            ])
        }
        "LIKE.COUNT" => Reply::Array(
            arguments[1..]
                .iter()
                .map(|post| Reply::Integer(state.likes.get(post).map_or(0, HashSet::len) as i64))
                .collect(),
        ),
        "LIKE.HAS" => Reply::Integer(
            state
                .likes
                .get(argument(1))
                .is_some_and(|likers| likers.contains(argument(2))) as i64,
        ),
        "QUEUE.JOIN" | "QUEUE.POS" => {
            let room = state.rooms.entry(argument(1).to_string()).or_default();
            let user = argument(2);
            match room.position(user, now) {
                Some(position) => Reply::Integer(position),
                None if name == "QUEUE.JOIN" => {
                    room.line.push_back(user.to_string());
                    Reply::Integer(room.line.len() as i64)
                }
                None => Reply::Null,
            }
        }
        "QUEUE.ADMIT" => {
            let room = state.rooms.entry(argument(1).to_string()).or_default();
            let count = number(argument(2)) as usize;
            let ttl = Duration::from_millis(number(argument(3)) as u64);
            let mut admitted = Vec::new();
            while admitted.len() < count {
                let Some(user) = room.line.pop_front() else {
                    break;
                };
                room.passes.insert(user.clone(), now + ttl);
                admitted.push(Reply::Bulk(user));
            }
            Reply::Array(admitted)
        }
        "QUEUE.LEN" => Reply::Integer(
            state
                .rooms
                .get(argument(1))
                .map_or(0, |room| room.line.len() as i64),
        ),
        _ => Reply::Error(format!("ERR unknown command '{name}'")),
    }
}
