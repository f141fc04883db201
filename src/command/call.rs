//! One command being executed ([`Call`]) and the canonical log record it builds ([`Mutations`]).
//!
//! Execution is `apply(command, now) -> (reply, log record)`: a handler reads the arguments and the
//! loop's clock value `now_ms` from [`Call`], changes the store, returns the reply and describes what it
//! changed by appending one or more canonical commands to [`Mutations`]. Replay runs the logged commands
//! through the same handlers with the logged clock value, so it always reaches the same state.

use crate::aof::payload;
use crate::resp::Reply;

use super::error::not_an_integer;

/// The canonical form of what one atomic unit (a command, a transaction, an expiry cycle) changed: the
/// payload of one log record, in the layout of `aof::payload`, built in place as commands run.
#[derive(Debug, Default)]
pub struct Mutations {
    payload: Vec<u8>,
    command_count: u32,
}

impl Mutations {
    pub fn new() -> Mutations {
        Mutations::default()
    }

    pub fn is_empty(&self) -> bool {
        self.command_count == 0
    }

    pub fn command_count(&self) -> u32 {
        self.command_count
    }

    /// Appends one canonical command, run at `now_ms`. All commands of one unit share one clock value.
    pub fn push<'a>(&mut self, now_ms: u64, arguments: impl IntoIterator<Item = &'a [u8]>) {
        if self.command_count == 0 {
            payload::begin_payload(&mut self.payload, now_ms);
        }
        self.command_count += 1;
        payload::append_command(&mut self.payload, arguments);
    }

    /// Finishes the unit and returns its payload; the value is left empty for reuse.
    pub fn take_payload(&mut self) -> Option<&[u8]> {
        if self.command_count == 0 {
            return None;
        }
        payload::set_command_count(&mut self.payload, self.command_count);
        self.command_count = 0;
        Some(&self.payload)
    }

    /// Drops whatever was collected (a transaction aborted before it changed anything).
    pub fn clear(&mut self) {
        self.command_count = 0;
    }
}

/// One command being executed: its arguments, the loop's clock and where its mutations go.
pub struct Call<'a> {
    pub arguments: &'a [&'a [u8]],
    pub now_ms: u64,
    pub mutations: &'a mut Mutations,
}

impl<'a> Call<'a> {
    pub fn argument(&self, index: usize) -> &'a [u8] {
        self.arguments[index]
    }

    pub fn key(&self) -> &'a [u8] {
        self.arguments[1]
    }

    /// Logs the command exactly as received: right for every command whose effect depends only on the
    /// state, its arguments and the clock value carried by the record.
    pub fn log_as_received(&mut self) {
        self.mutations
            .push(self.now_ms, self.arguments.iter().copied());
    }

    /// Logs a canonical command in place of the one received.
    pub fn log(&mut self, arguments: &[&[u8]]) {
        self.mutations.push(self.now_ms, arguments.iter().copied());
    }

    /// Parses argument `index` as an integer, or answers Redis's error.
    pub fn integer(&self, index: usize) -> Result<i64, Reply> {
        crate::resp::parse_integer(self.arguments[index]).ok_or_else(not_an_integer)
    }
}
