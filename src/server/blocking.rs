//! Blocked clients: the loop's one mechanism for commands that wait for a key to be written (BLPOP, BRPOP,
//! BLMOVE, BRPOPLPUSH, BLMPOP today; stream reads and replication waits can park here the same way).
//!
//! # How a client blocks, and is served
//! A blocking command's handler is its non-blocking variant (`store::lists::commands`). Run straight from a
//! client (never inside MULTI, never on replay), a call of a `BLOCKING` command that answers without error
//! and without changing anything is not answered: the loop parks its client here, on the keys and with the
//! deadline the command's type names (`wait_of`), and stops running that client's requests (later ones
//! wait in its buffer). Any command that writes one of those keys (a push, LMOVE's destination, a
//! transaction's EXEC, RENAME...) marks the key ready; right after that command, before the next one runs,
//! the loop runs the waiters' commands again, longest-waiting first, for as long as the key holds a value of
//! the waited-for type and waiters are left. A served command is logged as its handler logs it (the plain
//! pop of what it popped), its record appended like any other, and its reply held until that record is
//! durable, like every reply. A client is served once, by whichever of its keys is written first.
//!
//! # Deadlines
//! A parked client with a timeout gets a deadline in an ordered set; `poll_timeout` wakes the loop at the
//! earliest one (no polling), and the loop answers the due ones with the command's timeout reply, at most
//! `BLOCKED_TIMEOUTS_PER_ITERATION_MAX` per iteration. The deadline fires when the loop's clock is past the
//! call's clock plus the timeout, as in Redis, so a wait is never shorter than asked.
//!
//! # Guarantees
//! - Per key, waiters are served in the order they blocked (FIFO), as Redis.
//! - A client leaves every queue and the deadline set when it is served, times out, is unblocked by CLIENT
//!   UNBLOCK or disconnects: nothing of it is left behind, and a later push stays in the list.
//! - Serving a waiter whose keys the running snapshot still holds would copy the value on the loop: such a
//!   key is retried every millisecond until the snapshot lets go (as commands wait in `admission`).
//! - Bounds: one entry per blocked client (at most `--maxclients`), one queue slot per key it waits on (at
//!   most its request's arguments).

use std::collections::{BTreeSet, HashMap, VecDeque};

use super::{connection_in, Server};
use crate::command::parse::is_option;
use crate::connection::{Connection, ReadOutcome};
use crate::dispatch::spec::BLOCKING;
use crate::dispatch::{self, CommandSpec, Handler};
use crate::limits;
use crate::resp::{self, Reply};
use crate::store::lists;
use crate::store::Key;

/// A parked client: what it runs again when served, and where it is registered.
struct BlockedClient {
    client_id: u64,
    spec: &'static CommandSpec,
    arguments: Vec<Vec<u8>>,
    keys: Vec<Key>,
    /// The `TYPE` a key must hold for the command to be worth running again.
    wanted_type: &'static str,
    /// When the wait ends; `None` waits forever.
    fires_at_ms: Option<u64>,
}

/// Every blocked client, by connection slot, and the indexes that find them.
#[derive(Default)]
pub(super) struct Blocking {
    clients: HashMap<usize, BlockedClient>,
    slot_of_client: HashMap<u64, usize>,
    /// Per key, the slots waiting on it, longest-waiting first.
    waiting: HashMap<Key, VecDeque<usize>>,
    deadlines: BTreeSet<(u64, usize)>,
    /// Keys written since the last serving pass that someone waits on, in the order written.
    ready: Vec<Key>,
    /// Keys whose waiters could not be served because the snapshot holds a value they change.
    deferred: Vec<Key>,
    /// A wait `execute` decided on, registered by `process` once it is back with the slot.
    pending: Option<BlockedClient>,
}

impl Blocking {
    pub(super) fn is_blocked(&self, slot: usize) -> bool {
        self.clients.contains_key(&slot)
    }

    pub(super) fn is_client_blocked(&self, client_id: u64) -> bool {
        self.slot_of_client.contains_key(&client_id)
    }

    /// How many clients are blocked, for INFO.
    pub(super) fn count(&self) -> usize {
        self.clients.len()
    }

    /// The earliest deadline, for `poll_timeout`.
    pub(super) fn next_deadline_ms(&self) -> Option<u64> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Whether keys wait for the snapshot to let go: the loop comes back within a millisecond.
    pub(super) fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// Marks `key` ready if somebody waits on it.
    fn signal(&mut self, key: &[u8]) {
        if self.waiting.contains_key(key) && !self.ready.iter().any(|ready| &ready[..] == key) {
            self.ready.push(Key::copy_from_slice(key));
        }
    }

    fn register(&mut self, slot: usize, client: BlockedClient) {
        for key in &client.keys {
            let queue = self.waiting.entry(key.clone()).or_default();
            if !queue.contains(&slot) {
                queue.push_back(slot);
            }
        }
        if let Some(at) = client.fires_at_ms {
            self.deadlines.insert((at, slot));
        }
        self.slot_of_client.insert(client.client_id, slot);
        self.clients.insert(slot, client);
    }

    /// Takes `slot`'s client out of every index; `None` if it was not blocked.
    fn remove(&mut self, slot: usize) -> Option<BlockedClient> {
        let client = self.clients.remove(&slot)?;
        for key in &client.keys {
            if let Some(queue) = self.waiting.get_mut(&key[..]) {
                queue.retain(|waiting| *waiting != slot);
                if queue.is_empty() {
                    self.waiting.remove(&key[..]);
                }
            }
        }
        if let Some(at) = client.fires_at_ms {
            self.deadlines.remove(&(at, slot));
        }
        self.slot_of_client.remove(&client.client_id);
        Some(client)
    }
}

impl Server {
    // --- Hooks for `execute`, `run_command` and `process` ---

    /// Called by `execute` after a command ran straight from a client: if it is a blocking command that
    /// found nothing to do, records the wait (registered by `process`, which knows the slot) and answers
    /// true: the call gets no reply now.
    pub(super) fn park_if_blocking(
        &mut self,
        connection: &Connection,
        spec: &'static CommandSpec,
        arguments: &[&[u8]],
        reply: &Reply,
    ) -> bool {
        if spec.flags & BLOCKING == 0 || reply.is_error() || !self.mutations.is_empty() {
            return false;
        }
        let Some((keys, timeout_ms)) = lists::commands::wait_of(spec.name, arguments) else {
            return false;
        };
        self.blocking.pending = Some(BlockedClient {
            client_id: connection.id,
            spec,
            arguments: arguments.iter().map(|argument| argument.to_vec()).collect(),
            keys: keys.into_iter().map(Key::copy_from_slice).collect(),
            wanted_type: lists::TYPE_NAME,
            // Redis's rule: the wait ends once the clock is past the call's time plus the timeout.
            fires_at_ms: (timeout_ms > 0).then(|| self.now_ms.saturating_add(timeout_ms + 1)),
        });
        true
    }

    /// Called by `process` when `execute` parked the connection in `slot`.
    pub(super) fn register_parked(&mut self, slot: usize) {
        if let Some(client) = self.blocking.pending.take() {
            self.blocking.register(slot, client);
        }
    }

    /// Called by `run_command` after a data command: if it logged something, each of its keys somebody
    /// waits on becomes ready.
    pub(super) fn note_written_keys(
        &mut self,
        spec: &CommandSpec,
        arguments: &[&[u8]],
        logged_before: u32,
    ) {
        if self.blocking.waiting.is_empty() || self.mutations.command_count() == logged_before {
            return;
        }
        for index in spec.key_indexes(arguments.len()) {
            self.blocking.signal(arguments[index]);
        }
    }

    /// Serves the waiters of every ready key (see the module documentation). Called after each command.
    pub(super) fn serve_ready_keys(&mut self) {
        while !self.blocking.ready.is_empty() {
            let key = self.blocking.ready.remove(0);
            self.serve_key(&key);
        }
    }

    fn serve_key(&mut self, key: &Key) {
        while let Some(&slot) = self
            .blocking
            .waiting
            .get(&key[..])
            .and_then(VecDeque::front)
        {
            if self.journal.failure.is_some() {
                // Writes are refused: the waiters wait for their timeouts.
                return;
            }
            let wanted_type = self.blocking.clients[&slot].wanted_type;
            let holds_wanted = self
                .store
                .keyspace
                .get(key, self.now_ms)
                .is_some_and(|entry| entry.value.type_name() == wanted_type);
            if !holds_wanted {
                return;
            }
            if self.snapshot_holds_any(slot) {
                if !self.blocking.deferred.contains(key) {
                    self.blocking.deferred.push(key.clone());
                }
                return;
            }
            let client = self.blocking.remove(slot).expect("a waiter is blocked");
            let Handler::Store(handler) = client.spec.handler else {
                unreachable!("blocking commands are data commands");
            };
            let arguments: Vec<&[u8]> = client.arguments.iter().map(Vec::as_slice).collect();
            let logged_before = self.mutations.command_count();
            let reply = dispatch::execute(
                &mut self.store,
                client.spec,
                handler,
                &arguments,
                self.now_ms,
                &mut self.mutations,
            );
            if !reply.is_error() && self.mutations.command_count() == logged_before {
                // Nothing it could take after all: it keeps its place.
                let keys = client.keys.clone();
                self.blocking.register(slot, client);
                self.requeue_first(slot, &keys);
                return;
            }
            self.note_written_keys(client.spec, &arguments, logged_before);
            self.commit_mutations();
            self.deliver(slot, reply);
        }
    }

    /// Puts `slot` back at the head of the queues of `keys` (it was the longest-waiting there).
    fn requeue_first(&mut self, slot: usize, keys: &[Key]) {
        for key in keys {
            if let Some(queue) = self.blocking.waiting.get_mut(&key[..]) {
                queue.retain(|waiting| *waiting != slot);
                queue.push_front(slot);
            }
        }
    }

    /// Whether the running snapshot holds a value the blocked command in `slot` may change.
    fn snapshot_holds_any(&mut self, slot: usize) -> bool {
        if !self.compaction.in_progress() {
            return false;
        }
        let client = &self.blocking.clients[&slot];
        let arguments: Vec<&[u8]> = client.arguments.iter().map(Vec::as_slice).collect();
        let mut keys: Vec<&[u8]> = client.keys.iter().map(|key| &key[..]).collect();
        keys.extend(
            client
                .spec
                .key_indexes(arguments.len())
                .map(|index| arguments[index]),
        );
        let keyspace = &mut self.store.keyspace;
        // Every key is asked: each large pending one is handed to the serializer now.
        keys.iter()
            .filter(|key| keyspace.snapshot_holds(key))
            .count()
            > 0
    }

    /// Queues `reply` for the connection in `slot` (held for durability like any reply) and lets the
    /// requests it buffered while blocked run.
    fn deliver(&mut self, slot: usize, reply: Reply) {
        let requirement = self.journal.reply_requirement();
        let durable = self.journal.durable_sequence();
        let Some(connection) = connection_in(&mut self.connections, slot) else {
            return;
        };
        connection.reply(&reply, requirement, durable);
        if connection.has_held_replies() && !connection.in_holding_list {
            connection.in_holding_list = true;
            self.holding.push(slot);
        }
        self.pending_output.push(slot);
        self.pending_input.push(slot);
    }

    // --- Once per loop iteration ---

    /// Times out the due waiters and retries the keys deferred for the snapshot.
    pub(super) fn blocking_step(&mut self) {
        let mut timed_out = 0;
        while let Some(&(at, slot)) = self.blocking.deadlines.first() {
            if at > self.now_ms || timed_out >= limits::BLOCKED_TIMEOUTS_PER_ITERATION_MAX {
                break;
            }
            timed_out += 1;
            let client = self
                .blocking
                .remove(slot)
                .expect("a deadline has its client");
            self.deliver(slot, lists::commands::timeout_reply(client.spec.name));
        }
        if self.blocking.has_deferred() {
            self.blocking.ready.append(&mut self.blocking.deferred);
            self.serve_ready_keys();
        }
    }

    // --- The socket side of a blocked client ---

    /// A blocked client's socket is read (so a disconnect is seen and its later requests are buffered)
    /// but nothing it sent runs until it is served.
    pub(super) fn read_while_blocked(&mut self, slot: usize) {
        let Some(connection) = connection_in(&mut self.connections, slot) else {
            return;
        };
        if !connection.broken {
            let before = connection.filled;
            let outcome = connection.read();
            self.stats.input_bytes += connection.filled.saturating_sub(before) as u64;
            if let ReadOutcome::Closed = outcome {
                connection.broken = true;
            }
        }
        let over_limit = connection.unprocessed_bytes() > limits::QUERY_BUFFER_SIZE_MAX;
        if connection.broken || over_limit {
            // Nobody is left to answer: the client leaves every queue now.
            self.close(slot);
        }
    }

    /// Called by `close`: the client leaves every queue and the deadline set.
    pub(super) fn forget_blocked(&mut self, slot: usize) {
        self.blocking.remove(slot);
    }

    /// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if that client was blocked (it gets its timeout reply, or the
    /// UNBLOCKED error), 0 otherwise.
    pub(super) fn client_unblock(&mut self, arguments: &[&[u8]]) -> Reply {
        let Some(client_id) = resp::parse_integer(arguments[2]) else {
            return crate::command::error::not_an_integer();
        };
        let as_error = match arguments.get(3) {
            None => false,
            Some(reason) if is_option(reason, "TIMEOUT") => false,
            Some(reason) if is_option(reason, "ERROR") => true,
            Some(_) => {
                return Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            }
        };
        let Some(&slot) = u64::try_from(client_id)
            .ok()
            .and_then(|client_id| self.blocking.slot_of_client.get(&client_id))
        else {
            return Reply::Integer(0);
        };
        let client = self.blocking.remove(slot).expect("indexed by client id");
        let reply = if as_error {
            Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK")
        } else {
            lists::commands::timeout_reply(client.spec.name)
        };
        self.deliver(slot, reply);
        Reply::Integer(1)
    }
}
