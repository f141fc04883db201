//! A store driven the way the loop drives it, keeping every log record it would write, for the command
//! modules' unit tests: run client commands and the active cycle, then replay the records into a fresh
//! store and compare values.

use super::{fire_due_timers, Store};
use crate::aof::payload::decode_payload;
use crate::command::Mutations;
use crate::dispatch::{self, Handler};
use crate::resp::Reply;

/// One record: its `now_ms` and its commands, owned.
pub type Record = (u64, Vec<Vec<Vec<u8>>>);

pub struct Live {
    pub store: Store,
    pub records: Vec<Record>,
    mutations: Mutations,
}

impl Default for Live {
    fn default() -> Live {
        Live::new()
    }
}

impl Live {
    pub fn new() -> Live {
        Live {
            store: Store::new(7),
            records: Vec::new(),
            mutations: Mutations::new(),
        }
    }

    fn commit(&mut self) {
        if let Some(payload) = self.mutations.take_payload() {
            let payload = decode_payload(payload).expect("a payload we wrote decodes");
            let commands = payload
                .commands
                .iter()
                .map(|command| command.iter().map(|argument| argument.to_vec()).collect())
                .collect();
            self.records.push((payload.now_ms, commands));
        }
    }

    /// Runs a client command at `now_ms`, as the loop would (internal commands are unknown here).
    pub fn run(&mut self, arguments: &[&str], now_ms: u64) -> Reply {
        let arguments: Vec<&[u8]> = arguments
            .iter()
            .map(|argument| argument.as_bytes())
            .collect();
        let spec = dispatch::lookup_for_client(arguments[0]).expect("a client command");
        let Handler::Store(handler) = spec.handler else {
            panic!("a data command")
        };
        if !spec.arity.accepts(arguments.len()) {
            return dispatch::wrong_arity(spec.name);
        }
        let reply = dispatch::execute(
            &mut self.store,
            spec,
            handler,
            &arguments,
            now_ms,
            &mut self.mutations,
        );
        self.commit();
        reply
    }

    /// Runs the active cycle's timers at `now_ms`; returns the keys fired.
    pub fn fire(&mut self, now_ms: u64) -> Vec<super::Key> {
        let fired = fire_due_timers(&mut self.store, now_ms, 64, &mut self.mutations);
        self.commit();
        fired
    }

    /// The commands of the last record, as text.
    pub fn last_record(&self) -> (u64, Vec<Vec<String>>) {
        let (now_ms, commands) = self.records.last().expect("a record");
        let commands = commands
            .iter()
            .map(|command| {
                command
                    .iter()
                    .map(|argument| String::from_utf8_lossy(argument).into_owned())
                    .collect()
            })
            .collect();
        (*now_ms, commands)
    }

    /// Replays every record into a fresh store.
    pub fn replay(&self) -> Result<Store, String> {
        let mut store = Store::new(8);
        let mut scratch = Mutations::new();
        for (now_ms, commands) in &self.records {
            for command in commands {
                let arguments: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
                dispatch::replay(&mut store, &arguments, *now_ms, &mut scratch)?;
            }
        }
        // The pair of the checks the commands made as they ran: both stores must be whole.
        self.store.check_invariants();
        store.check_invariants();
        Ok(store)
    }
}

/// A reply as RESP2 text, for compact assertions.
pub fn reply_text(reply: &Reply) -> String {
    let mut out = Vec::new();
    crate::resp::encode(reply, crate::resp::Protocol::Resp2, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}
