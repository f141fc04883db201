//! One client: its socket, its request and reply buffers, and its session state (protocol version, name,
//! authentication, transaction, watched keys).
//!
//! # Replies held for durability
//! Under `appendfsync always` a reply may only leave once every log record it could depend on is durable.
//! Each reply is tagged with the last sequence number the log had assigned when the reply was made (for a
//! read as much as for a write: a read may show a write that is not durable yet). `held` lists, in order,
//! where in `output` the replies needing a not-yet-durable sequence start; only the bytes before the first
//! of them may be written to the socket. Sequence tags grow monotonically, so release is a pop from the
//! front.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use mio::net::TcpStream;

use crate::limits;
use crate::resp::{self, Protocol, Reply};
use crate::store::Key;

/// A stretch of `output` that may not be written before the log is durable through `sequence`.
#[derive(Debug, Clone, Copy)]
struct Held {
    /// Offset in `output` where the stretch begins; it runs to the next entry or the end.
    start: usize,
    sequence: u64,
    /// Replies in the stretch, so each can be answered with an error if the log fails.
    reply_count: usize,
}

/// A key watched by this client: the version it had at WATCH time and whether it existed then.
#[derive(Debug)]
pub struct WatchedKey {
    pub key: Key,
    pub version: u64,
    pub existed: bool,
}

#[derive(Debug)]
pub struct Connection {
    pub id: u64,
    pub stream: TcpStream,
    pub peer: SocketAddr,
    pub created_at_ms: u64,
    pub last_command_at_ms: u64,
    pub last_command: &'static str,
    pub name: Vec<u8>,
    pub library_name: Vec<u8>,
    pub library_version: Vec<u8>,
    pub protocol: Protocol,
    pub authenticated: bool,

    /// Bytes received; `read_buffer[consumed..filled]` is not processed yet. The vector's length is its
    /// usable size (kept initialised so reads need no zeroing).
    pub read_buffer: Vec<u8>,
    pub consumed: usize,
    pub filled: usize,
    pub decoder: resp::RequestDecoder,

    output: Vec<u8>,
    /// Bytes of `output` already written to the socket.
    written: usize,
    held: VecDeque<Held>,

    /// Commands queued by MULTI, as owned argument lists. `None` outside a transaction.
    pub transaction: Option<Vec<Vec<Vec<u8>>>>,
    /// A command was refused while queueing: EXEC must abort.
    pub transaction_failed: bool,
    pub watched: Vec<WatchedKey>,

    /// Close once everything in `output` is written (QUIT, protocol errors).
    pub close_after_reply: bool,
    /// The socket failed or the peer closed: drop the connection.
    pub broken: bool,
    /// Listed in the server's `holding` list (replies waiting for durability).
    pub in_holding_list: bool,
    /// The last `process` stopped at the per-iteration command budget with complete requests left.
    pub budget_spent_on_commands: bool,
    /// Since when the next command has been waiting for the snapshot writer to let go of a value it
    /// changes (see `dispatch::admission`); `None` while the connection runs.
    pub waiting_for_snapshot_since: Option<Instant>,
    /// Registered for writable events: only while replies are waiting for socket space, so a client's
    /// acknowledgements don't wake the loop for nothing.
    pub writable_interest: bool,
    /// The peer closed its side: keep reading past short reads until the end of the stream shows.
    pub read_to_end_of_stream: bool,
}

/// What a read attempt found.
pub enum ReadOutcome {
    /// Read until the socket would block.
    Drained,
    /// Stopped at the per-iteration budget; more may be waiting.
    BudgetSpent,
    /// The peer closed or the socket failed.
    Closed,
}

impl Connection {
    pub fn new(
        id: u64,
        stream: TcpStream,
        peer: SocketAddr,
        now_ms: u64,
        authenticated: bool,
    ) -> Connection {
        Connection {
            id,
            stream,
            peer,
            created_at_ms: now_ms,
            last_command_at_ms: now_ms,
            last_command: "NULL",
            name: Vec::new(),
            library_name: Vec::new(),
            library_version: Vec::new(),
            protocol: Protocol::Resp2,
            authenticated,
            read_buffer: Vec::new(),
            consumed: 0,
            filled: 0,
            decoder: resp::RequestDecoder::new(),
            output: Vec::new(),
            written: 0,
            held: VecDeque::new(),
            transaction: None,
            transaction_failed: false,
            watched: Vec::new(),
            close_after_reply: false,
            broken: false,
            in_holding_list: false,
            budget_spent_on_commands: false,
            waiting_for_snapshot_since: None,
            writable_interest: false,
            read_to_end_of_stream: false,
        }
    }

    /// Reads from the socket into the request buffer until it would block or the budget is spent.
    pub fn read(&mut self) -> ReadOutcome {
        let mut read_this_turn = 0;
        loop {
            if read_this_turn >= limits::READ_SIZE_PER_ITERATION_MAX {
                return ReadOutcome::BudgetSpent;
            }
            if self.read_buffer.len() - self.filled < limits::READ_CHUNK_SIZE {
                self.compact_read_buffer();
                if self.read_buffer.len() - self.filled < limits::READ_CHUNK_SIZE {
                    let grown =
                        (self.read_buffer.len() * 2).max(self.filled + limits::READ_CHUNK_SIZE);
                    self.read_buffer.resize(grown, 0);
                }
            }
            let space = self.read_buffer.len() - self.filled;
            match self.stream.read(&mut self.read_buffer[self.filled..]) {
                Ok(0) => return ReadOutcome::Closed,
                Ok(count) => {
                    self.filled += count;
                    read_this_turn += count;
                    if count < space && !self.read_to_end_of_stream {
                        // A short read emptied the socket's receive queue; whatever arrives later
                        // raises a new edge. Skipping the read that would only say WouldBlock saves a
                        // system call per request.
                        return ReadOutcome::Drained;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    return ReadOutcome::Drained
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return ReadOutcome::Closed,
            }
        }
    }

    /// Moves unprocessed bytes to the front once processed bytes dominate the buffer, and gives back the
    /// memory of a buffer that grew for one large request.
    pub fn compact_read_buffer(&mut self) {
        if self.consumed == self.filled {
            self.consumed = 0;
            self.filled = 0;
            if self.read_buffer.len() > 4 * limits::READ_CHUNK_SIZE {
                self.read_buffer = Vec::new();
            }
        } else if self.consumed > 0 && !self.decoder.in_progress() {
            // The decoder keeps offsets into the current request, so only move bytes between requests.
            self.read_buffer.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.consumed = 0;
        }
    }

    pub fn unprocessed_bytes(&self) -> usize {
        self.filled - self.consumed
    }

    /// Appends a reply that needs the log durable through `sequence` (0: needs nothing) before it leaves,
    /// given the log is durable through `durable`.
    pub fn reply(&mut self, reply: &Reply, sequence: u64, durable: u64) {
        self.mark_reply(sequence, durable);
        resp::encode(reply, self.protocol, &mut self.output);
    }

    /// Appends bytes already encoded as one reply, with the same rule as `reply`.
    pub fn reply_encoded(&mut self, bytes: &[u8], sequence: u64, durable: u64) {
        self.mark_reply(sequence, durable);
        self.output.extend_from_slice(bytes);
    }

    fn mark_reply(&mut self, sequence: u64, durable: u64) {
        if sequence > durable {
            match self.held.back_mut() {
                Some(last) if last.sequence == sequence => last.reply_count += 1,
                _ => self.held.push_back(Held {
                    start: self.output.len(),
                    sequence,
                    reply_count: 1,
                }),
            }
        } else if let Some(last) = self.held.back_mut() {
            // Behind a held reply, this one waits too (replies leave in order).
            last.reply_count += 1;
        }
    }

    /// Releases replies whose records are durable now. Returns true if any bytes became writable.
    pub fn release(&mut self, durable: u64) -> bool {
        let mut released = false;
        while self
            .held
            .front()
            .is_some_and(|held| held.sequence <= durable)
        {
            self.held.pop_front();
            released = true;
        }
        released
    }

    /// The log failed: every reply still held is replaced by `error` (those writes were never
    /// acknowledged; reads among them might have shown them). Returns how many replies were replaced.
    pub fn fail_held(&mut self, error: &Reply) -> usize {
        let Some(first) = self.held.front() else {
            return 0;
        };
        let start = first.start;
        let count: usize = self.held.iter().map(|held| held.reply_count).sum();
        self.held.clear();
        self.output.truncate(start);
        for _ in 0..count {
            resp::encode(error, self.protocol, &mut self.output);
        }
        count
    }

    pub fn has_held_replies(&self) -> bool {
        !self.held.is_empty()
    }

    /// Bytes waiting to be written (held or not): what the output limit is about.
    pub fn pending_output(&self) -> usize {
        self.output.len() - self.written
    }

    pub fn has_writable_output(&self) -> bool {
        self.writable_end() > self.written
    }

    fn writable_end(&self) -> usize {
        self.held
            .front()
            .map_or(self.output.len(), |held| held.start)
    }

    /// Writes what may be written. Returns false if the socket failed.
    pub fn flush(&mut self) -> bool {
        let end = self.writable_end();
        while self.written < end {
            match self.stream.write(&self.output[self.written..end]) {
                Ok(0) => return false,
                Ok(count) => self.written += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        if self.written == self.output.len() {
            self.output.clear();
            self.written = 0;
            if self.output.capacity() > 4 * limits::READ_CHUNK_SIZE {
                self.output = Vec::new();
            }
        } else if self.written > 64 * 1024 && self.written * 2 > self.output.len() {
            self.output.drain(..self.written);
            for held in &mut self.held {
                held.start -= self.written;
            }
            self.written = 0;
        }
        true
    }

    /// True when nothing is left to write at all.
    pub fn output_is_empty(&self) -> bool {
        self.written == self.output.len()
    }

    pub fn output_capacity(&self) -> usize {
        self.output.capacity()
    }
}
