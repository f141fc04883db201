//! The socket side of the loop: accepting connections, reading and decoding requests, writing replies,
//! closing. Requests are executed through `Server::execute`, one at a time.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use mio::{Interest, Token};

use super::{connection_in, After, Server, FIRST_CONNECTION};
use crate::connection::{Connection, ReadOutcome};
use crate::limits;
use crate::resp::{self, DecodeLimits, Reply, Request};

impl Server {
    pub(super) fn accept(&mut self) {
        loop {
            let (mut stream, peer) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    if self.accept_retry_at.take().is_some() {
                        log::info!("accepting connections again");
                    }
                    return;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // EMFILE and friends: the pending connections stay in the backlog. Retrying at
                    // once would spin; waiting for the next event could strand them (see
                    // `accept_retry_at`). Retry on a timer, and as soon as a client closes.
                    if self.accept_retry_at.is_none() {
                        log::warn!(
                            "accept failed: {error}; new connections wait in the backlog until a \
                             descriptor is free (retrying every {} ms)",
                            limits::ACCEPT_RETRY_INTERVAL_MS
                        );
                    }
                    self.accept_retry_at = Some(
                        Instant::now() + Duration::from_millis(limits::ACCEPT_RETRY_INTERVAL_MS),
                    );
                    return;
                }
            };
            self.stats.connections_received += 1;
            if self.connection_count >= self.settings.maxclients {
                self.stats.connections_rejected += 1;
                let _ = stream.write(b"-ERR max number of clients reached\r\n");
                continue;
            }
            if self.settings.requirepass.is_none()
                && self.settings.protected_mode
                && !peer.ip().is_loopback()
            {
                self.stats.connections_rejected += 1;
                let _ = stream.write(
                    b"-DENIED dibs is running in protected mode: no password is set, so only clients on \
                      the loopback interface are served. Set a password with --requirepass (or CONFIG SET \
                      requirepass from a loopback client), or start with --protected-mode no if every \
                      client is trusted.\r\n",
                );
                continue;
            }
            let _ = stream.set_nodelay(true);
            let slot = self.free_slots.pop().unwrap_or_else(|| {
                self.connections.push(None);
                self.connections.len() - 1
            });
            if let Err(error) = self.poll.registry().register(
                &mut stream,
                Token(slot + FIRST_CONNECTION),
                Interest::READABLE,
            ) {
                log::warn!("could not register a client: {error}");
                self.free_slots.push(slot);
                continue;
            }
            let id = self.next_client_id;
            self.next_client_id += 1;
            let authenticated = self.settings.requirepass.is_none();
            self.connections[slot] = Some(Box::new(Connection::new(
                id,
                stream,
                peer,
                self.now_ms,
                authenticated,
            )));
            self.connection_count += 1;
        }
    }

    pub(super) fn close(&mut self, slot: usize) {
        if let Some(mut connection) = self.connections.get_mut(slot).and_then(Option::take) {
            self.unwatch_all(&mut connection);
            self.forget_blocked(slot);
            let _ = self.poll.registry().deregister(&mut connection.stream);
            self.connection_count -= 1;
            self.free_slots.push(slot);
            if self.accept_retry_at.is_some() {
                // A descriptor is free (once `connection` drops): a waiting connection can have it.
                self.accept_retry_at = Some(Instant::now());
            }
        }
    }

    /// Reads what `slot`'s socket has (unless a backlog is still being worked off) and executes the
    /// complete requests. A connection whose read or execution budget ran out is revisited next iteration
    /// without waiting for an event: mio is edge-triggered, so no new event would come for bytes already
    /// waiting in the socket.
    pub(super) fn read_and_process(&mut self, slot: usize) {
        if self.blocking.is_blocked(slot) {
            self.read_while_blocked(slot);
            return;
        }
        if self.commands_this_iteration >= limits::LOOP_COMMANDS_PER_ITERATION_MAX {
            // The iteration's command budget is spent: neither read nor run now (reading would only
            // fill the buffer), but come first in the next iteration (edge-triggered: no event will
            // come again for bytes already waiting).
            self.pending_input.push(slot);
            return;
        }
        let Some(connection) = connection_in(&mut self.connections, slot) else {
            return;
        };
        let mut revisit = false;
        if connection.broken {
            // Nothing more will arrive; what was read is still executed.
        } else if !connection.budget_spent_on_commands {
            let before = connection.filled;
            let outcome = connection.read();
            self.stats.input_bytes += connection.filled.saturating_sub(before) as u64;
            match outcome {
                ReadOutcome::Drained => {}
                ReadOutcome::BudgetSpent => revisit = true,
                ReadOutcome::Closed => connection.broken = true,
            }
        } else {
            // Complete requests are still waiting from a deep pipeline: execute those before reading more,
            // so the buffer doesn't grow faster than it drains.
            revisit = true;
        }
        let limit = if connection.authenticated {
            limits::QUERY_BUFFER_SIZE_MAX
        } else {
            limits::UNAUTHENTICATED_QUERY_BUFFER_SIZE_MAX
        };
        if connection.unprocessed_bytes() > limit {
            log::warn!(
                "closing client id={} addr={}: query buffer over {limit} bytes",
                connection.id,
                connection.peer
            );
            self.close(slot);
            return;
        }
        self.process(slot);
        // A connection still waiting for the collection serializer is retried from its own list, without
        // spinning the loop; one that ran reads the rest of its socket next iteration.
        if revisit
            && connection_in(&mut self.connections, slot)
                .is_some_and(|connection| connection.waiting_for_snapshot_since.is_none())
        {
            self.pending_input.push(slot);
        }
    }

    /// Decodes and executes the complete requests buffered for `slot`, up to the per-iteration budget.
    fn process(&mut self, slot: usize) {
        let Some(mut connection) = self.connections.get_mut(slot).and_then(Option::take) else {
            return;
        };
        // The request buffer is moved out so the arguments can borrow it while the connection takes
        // replies.
        let buffer = std::mem::take(&mut connection.read_buffer);
        connection.budget_spent_on_commands = false;
        let mut executed = 0;
        let mut after = After::Continue;
        // One argument list for every multibulk of this turn (they all borrow `buffer`): no allocation per
        // command.
        let mut multibulk_arguments: Vec<&[u8]> = Vec::new();
        // Requests before this offset have had their keys prefetched.
        let mut prefetched_until = 0;
        while !connection.close_after_reply {
            if executed >= limits::COMMANDS_PER_ITERATION_MAX
                || self.commands_this_iteration >= limits::LOOP_COMMANDS_PER_ITERATION_MAX
            {
                connection.budget_spent_on_commands = true;
                self.pending_input.push(slot);
                break;
            }
            let available = &buffer[connection.consumed..connection.filled];
            if connection.consumed >= prefetched_until {
                // Only a hint, read from the bytes alone: the requests still run one at a time, below.
                // A lone request gains nothing from it (its lookup would wait all the same).
                let mut keys: [&[u8]; limits::PREFETCH_REQUESTS_MAX] =
                    [&[]; limits::PREFETCH_REQUESTS_MAX];
                let mut key_count = 0;
                let peeked = resp::peek_second_arguments(
                    available,
                    limits::PREFETCH_REQUESTS_MAX,
                    limits::PREFETCH_ARGUMENTS_MAX,
                    |key| {
                        keys[key_count] = key;
                        key_count += 1;
                    },
                );
                if key_count > 1 {
                    for key in &keys[..key_count] {
                        self.store.keyspace.prefetch(key);
                    }
                }
                prefetched_until = connection.consumed + peeked.max(1);
            }
            if connection.decoder.in_progress()
                && available.len() < connection.decoder.bytes_needed()
            {
                break;
            }
            let decode_limits = if connection.authenticated {
                DecodeLimits::AUTHENTICATED
            } else {
                DecodeLimits::UNAUTHENTICATED
            };
            match connection.decoder.decode(available, decode_limits) {
                Ok(None) => break,
                Ok(Some(Request::Multibulk { consumed })) => {
                    multibulk_arguments.clear();
                    multibulk_arguments.extend(
                        connection
                            .decoder
                            .argument_ranges()
                            .iter()
                            .map(|range| &available[range.clone()]),
                    );
                    after = self.execute(&mut connection, &multibulk_arguments);
                    if matches!(after, After::WaitForSnapshot) {
                        break;
                    }
                    connection.consumed += consumed;
                }
                Ok(Some(Request::Inline {
                    consumed,
                    arguments,
                })) => {
                    if !arguments.is_empty() {
                        let arguments: Vec<&[u8]> = arguments.iter().map(Vec::as_slice).collect();
                        after = self.execute(&mut connection, &arguments);
                        if matches!(after, After::WaitForSnapshot) {
                            break;
                        }
                    }
                    connection.consumed += consumed;
                }
                Ok(Some(Request::Empty { consumed })) => connection.consumed += consumed,
                Err(error) => {
                    let reply = Reply::error(format!("ERR Protocol error: {}", error.0));
                    connection.reply(&reply, 0, 0);
                    log::info!(
                        "protocol error from client id={} addr={}: {}",
                        connection.id,
                        connection.peer,
                        error.0
                    );
                    connection.close_after_reply = true;
                    connection.consumed = connection.filled;
                }
            }
            executed += 1;
            self.commands_this_iteration += 1;
            if matches!(after, After::Shutdown | After::Blocked) {
                break;
            }
        }
        if matches!(after, After::WaitForSnapshot) {
            self.waiting_for_snapshot.push(slot);
        }
        if matches!(after, After::Blocked) {
            self.register_parked(slot);
        }
        connection.read_buffer = buffer;
        connection.compact_read_buffer();
        let over_limit = connection.pending_output() > self.settings.output_buffer_limit;
        if connection.has_held_replies() && !connection.in_holding_list {
            connection.in_holding_list = true;
            self.holding.push(slot);
        }
        self.connections[slot] = Some(connection);
        if over_limit {
            self.disconnect_over_output_limit(slot);
            return;
        }
        self.pending_output.push(slot);
        if matches!(after, After::Shutdown) {
            self.shutting_down = true;
        }
    }

    fn disconnect_over_output_limit(&mut self, slot: usize) {
        if let Some(connection) = self.connections[slot].as_ref() {
            log::warn!(
                "closing client id={} addr={}: {} reply bytes pending, over the limit of {}",
                connection.id,
                connection.peer,
                connection.pending_output(),
                self.settings.output_buffer_limit
            );
        }
        self.stats.output_limit_disconnections += 1;
        self.close(slot);
    }

    /// Writes what each connection may write; closes the broken and the finished ones.
    pub(super) fn flush_pending(&mut self) {
        let mut slots = std::mem::take(&mut self.pending_output);
        slots.sort_unstable();
        slots.dedup();
        for slot in slots {
            let Some(connection) = connection_in(&mut self.connections, slot) else {
                continue;
            };
            let before = connection.pending_output();
            let mut healthy = connection.flush();
            self.stats.output_bytes += (before - connection.pending_output()) as u64;
            // Ask for writable events only while the socket is full.
            let blocked = connection.has_writable_output();
            if healthy && blocked != connection.writable_interest {
                let interest = if blocked {
                    Interest::READABLE | Interest::WRITABLE
                } else {
                    Interest::READABLE
                };
                healthy = self
                    .poll
                    .registry()
                    .reregister(
                        &mut connection.stream,
                        Token(slot + FIRST_CONNECTION),
                        interest,
                    )
                    .is_ok();
                connection.writable_interest = blocked;
            }
            let finished =
                connection.output_is_empty() && (connection.close_after_reply || connection.broken);
            // A broken connection with nothing held is closed even with output unwritten: nobody reads it.
            let abandoned = connection.broken && !connection.has_held_replies();
            if !healthy || finished || abandoned {
                self.close(slot);
            }
        }
    }
}
