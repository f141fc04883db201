//! The event loop: one thread, one mio `Poll`, owning the store, the journal and every connection.
//!
//! One iteration:
//! 1. `poll` for events (no wait when work is pending; otherwise until the next timer).
//! 2. Read from every readable socket until it would block (or its per-iteration budget is spent), then
//!    decode and execute its complete requests in order, appending replies to its output buffer.
//! 3. Run the active expiry cycle, bounded in keys per iteration.
//! 4. Hand this iteration's log records to the syncer thread (group commit).
//! 5. Write every connection's releasable replies. Under `appendfsync always` replies wait in the output
//!    buffer until the syncer reports the records they depend on durable; its report arrives through the
//!    mio `Waker` and releases them (step 1 of a later iteration).
//!
//! Commands run one at a time on this thread, which is what makes check-then-act commands atomic without
//! locks. The only other thread is the syncer, reached through channels.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::clock::system_time_ms;
use crate::command::error::not_an_integer;
use crate::command::parse::is_option;
use crate::command::Mutations;
use crate::compaction::{Compaction, Triggers};
use crate::config::{Config, YesNo};
use crate::connection::{Connection, ReadOutcome, WatchedKey};
use crate::dispatch::{self, CommandSpec, Handler, ServerCommand};
use crate::journal::{Journal, Progress};
use crate::limits;
use crate::resp::{self, DecodeLimits, Protocol, Reply, Request};
use crate::store::{self, Store};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

#[derive(Debug, Default)]
struct Stats {
    connections_received: u64,
    connections_rejected: u64,
    commands_processed: u64,
    output_limit_disconnections: u64,
    input_bytes: u64,
    output_bytes: u64,
    replies_failed_by_log: u64,
}

/// Settings CONFIG SET may change while running.
#[derive(Debug, Clone)]
struct Settings {
    requirepass: Option<String>,
    maxclients: usize,
    output_buffer_limit: usize,
    protected_mode: bool,
}

/// Builds the loop's components from the data directory; the store and journal come from recovery.
pub struct Server {
    poll: Poll,
    listener: TcpListener,
    local_address: SocketAddr,
    waker: Arc<Waker>,
    connections: Vec<Option<Box<Connection>>>,
    free_slots: Vec<usize>,
    connection_count: usize,
    next_client_id: u64,
    store: Store,
    journal: Journal,
    mutations: Mutations,
    config: Config,
    settings: Settings,
    now_ms: u64,
    started_at: Instant,
    stats: Stats,
    /// Slots with input left over from a spent budget: processed again without waiting for an event.
    pending_input: Vec<usize>,
    /// Slots that may have something to write at the end of the iteration.
    pending_output: Vec<usize>,
    /// Slots with replies held for durability.
    holding: Vec<usize>,
    /// Slots whose next command waits for the snapshot's collection serializer: retried every iteration (1
    /// ms apart, and at once when the serializer lets go of a collection: it wakes the loop).
    waiting_for_snapshot: Vec<usize>,
    last_sync_at_ms: u64,
    shutting_down: bool,
    compaction: Compaction,
    /// Set while `accept` fails for want of descriptors: when to try again. mio is edge-triggered, so
    /// connections already in the backlog raise no new event; without a retry they would wait for the
    /// next newcomer, however many descriptors had been freed since.
    accept_retry_at: Option<Instant>,
}

/// What the loop does after running a command for a connection.
enum After {
    Continue,
    Shutdown,
    /// Not run: it changes a value the snapshot's collection serializer still holds. Stop this connection
    /// here and run the command again later (`Server::waits_for_snapshot`).
    WaitForSnapshot,
}

impl Server {
    /// Binds the listener. `store` and `journal` hold the recovered state.
    pub fn bind(
        config: Config,
        store: Store,
        journal: Journal,
        poll: Poll,
        waker: Arc<Waker>,
        clock_floor_ms: u64,
    ) -> io::Result<Server> {
        let address: SocketAddr =
            format!("{}:{}", config.bind, config.port)
                .parse()
                .map_err(|error| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("--bind/--port: {error}"),
                    )
                })?;
        let mut listener = TcpListener::bind(address)?;
        let local_address = listener.local_addr()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let settings = Settings {
            requirepass: config.requirepass.clone(),
            maxclients: config.maxclients,
            output_buffer_limit: config.client_output_buffer_limit,
            protected_mode: config.protected_mode == YesNo::Yes,
        };
        let last_sync_at_ms = system_time_ms();
        let compaction = Compaction::new(
            &config.dir,
            Some(waker.clone()),
            Triggers {
                percentage: config.auto_aof_rewrite_percentage,
                min_size: config.auto_aof_rewrite_min_size,
            },
            None,
            0,
        );
        Ok(Server {
            poll,
            listener,
            local_address,
            waker,
            connections: Vec::new(),
            free_slots: Vec::new(),
            connection_count: 0,
            next_client_id: 1,
            store,
            journal,
            mutations: Mutations::new(),
            config,
            settings,
            // The clock never runs backwards past what the log has seen, so a key never comes back to life.
            now_ms: system_time_ms().max(clock_floor_ms),
            started_at: Instant::now(),
            stats: Stats::default(),
            pending_input: Vec::new(),
            pending_output: Vec::new(),
            holding: Vec::new(),
            waiting_for_snapshot: Vec::new(),
            last_sync_at_ms,
            shutting_down: false,
            compaction,
            accept_retry_at: None,
        })
    }

    /// Tells compaction what recovery found: the snapshot's (sequence, size) and the log bytes after it.
    pub fn set_compaction_base(&mut self, base: Option<(u64, u64)>, log_bytes: u64) {
        self.compaction = Compaction::new(
            &self.config.dir,
            Some(self.waker.clone()),
            self.compaction.triggers,
            base,
            log_bytes,
        );
    }

    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }

    pub fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Runs until SHUTDOWN. Returns after the log has been synced.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(limits::EVENTS_PER_POLL_MAX);
        while !self.shutting_down {
            let timeout = self.poll_timeout();
            if let Err(error) = self.poll.poll(&mut events, timeout) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            let iteration_started = Instant::now();
            let iteration_cpu_started = crate::memory::thread_cpu_time();
            self.now_ms = self.now_ms.max(system_time_ms());
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => self.collect_durability(),
                    Token(token) => {
                        let slot = token - FIRST_CONNECTION;
                        if event.is_read_closed() || event.is_error() {
                            // The peer is gone or half-closed: read until the end-of-stream shows, since
                            // no further edge will come to reveal it.
                            if let Some(connection) = connection_in(&mut self.connections, slot) {
                                connection.read_to_end_of_stream = true;
                            }
                        }
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            self.read_and_process(slot);
                        }
                        if event.is_writable() {
                            self.pending_output.push(slot);
                        }
                    }
                }
                if self.shutting_down {
                    break;
                }
            }
            if self
                .accept_retry_at
                .is_some_and(|retry_at| Instant::now() >= retry_at)
            {
                self.accept();
            }
            let mut leftover = std::mem::take(&mut self.pending_input);
            leftover.sort_unstable();
            leftover.dedup();
            for slot in leftover {
                if !self.shutting_down {
                    self.read_and_process(slot);
                }
            }
            for slot in std::mem::take(&mut self.waiting_for_snapshot) {
                if !self.shutting_down {
                    self.read_and_process(slot);
                }
            }
            self.expire_cycle();
            debug_assert!(self.mutations.is_empty(), "no unit is half-recorded here");
            self.compaction
                .step(&mut self.store, &mut self.journal, self.now_ms);
            if let Progress::Failed = self.journal.submit(self.now_ms) {
                self.fail_held();
            }
            self.flush_pending();
            let iteration = iteration_started.elapsed();
            if iteration > self.compaction.loop_iteration_max {
                self.compaction.loop_iteration_max = iteration;
            }
            let iteration_cpu =
                crate::memory::thread_cpu_time().saturating_sub(iteration_cpu_started);
            if iteration_cpu > self.compaction.loop_iteration_cpu_max {
                self.compaction.loop_iteration_cpu_max = iteration_cpu;
            }
        }
        self.journal.shut_down();
        // Replies held for the records just synced can leave now.
        self.collect_durability();
        self.flush_pending();
        log::info!("dibs is now ready to exit, bye bye");
        Ok(())
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.pending_input.is_empty()
            || !self.pending_output.is_empty()
            || self.compaction.has_work()
        {
            return Some(Duration::ZERO);
        }
        let mut timeout_ms = 1000;
        if self.compaction.is_waiting_for_writer() || !self.waiting_for_snapshot.is_empty() {
            timeout_ms = 1;
        }
        if self.journal.has_unsubmitted() {
            timeout_ms = crate::journal::RELAXED_SUBMIT_INTERVAL_MS;
        }
        if let Some(retry_at) = self.accept_retry_at {
            let wait = retry_at.saturating_duration_since(Instant::now());
            timeout_ms = timeout_ms.min(wait.as_millis() as u64);
        }
        let deadlines = [
            self.store.keyspace.next_expiry_ms(),
            self.store.keyspace.next_timer_ms(),
        ];
        for at in deadlines.into_iter().flatten() {
            timeout_ms = timeout_ms.min(at.saturating_sub(self.now_ms).max(1));
        }
        Some(Duration::from_millis(timeout_ms))
    }

    // --- Connections ---

    fn accept(&mut self) {
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

    fn close(&mut self, slot: usize) {
        if let Some(mut connection) = self.connections.get_mut(slot).and_then(Option::take) {
            self.unwatch_all(&mut connection);
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
    fn read_and_process(&mut self, slot: usize) {
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
            if executed >= limits::COMMANDS_PER_ITERATION_MAX {
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
            if matches!(after, After::Shutdown) {
                break;
            }
        }
        if matches!(after, After::WaitForSnapshot) {
            self.waiting_for_snapshot.push(slot);
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
    fn flush_pending(&mut self) {
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

    /// Takes the syncer's reports and releases (or, on failure, fails) held replies.
    fn collect_durability(&mut self) {
        match self.journal.collect() {
            Progress::Nothing => {}
            Progress::Durable => {
                self.last_sync_at_ms = self.now_ms;
                self.release_held();
            }
            Progress::Failed => {
                self.release_held();
                if self.compaction.in_progress() {
                    self.compaction
                        .fail(&mut self.store, "the log failed".to_string());
                }
                self.fail_held();
            }
        }
    }

    fn release_held(&mut self) {
        let durable = self.journal.durable_sequence();
        let mut still_holding = Vec::new();
        for slot in std::mem::take(&mut self.holding) {
            let Some(connection) = connection_in(&mut self.connections, slot) else {
                continue;
            };
            if connection.release(durable) {
                self.pending_output.push(slot);
            }
            if connection.has_held_replies() {
                still_holding.push(slot);
            } else {
                connection.in_holding_list = false;
            }
        }
        self.holding = still_holding;
    }

    /// The log failed: replies waiting for records that will never be durable become errors, and the
    /// state those records produced is discarded by reloading what is durable.
    fn fail_held(&mut self) {
        let error = self.log_failure_reply();
        for slot in std::mem::take(&mut self.holding) {
            if let Some(connection) = connection_in(&mut self.connections, slot) {
                self.stats.replies_failed_by_log += connection.fail_held(&error) as u64;
                self.pending_output.push(slot);
            }
        }
        self.reload_durable_state();
    }

    fn log_failure_reply(&self) -> Reply {
        Reply::error(format!(
            "MISCONF Errors writing to the AOF file: {}",
            self.journal.failure.as_deref().unwrap_or("unknown error")
        ))
    }

    /// Rebuilds the store from what the log holds durably, so that nothing a failed record did stays
    /// visible. Writes stay refused; reads are served from the rebuilt state.
    fn reload_durable_state(&mut self) {
        match crate::recovery::reload(&self.config, self.journal.durable_sequence()) {
            Ok(store) => {
                self.store = store;
                log::warn!(
                    "state reloaded from the log through sequence {}; writes are refused until restart",
                    self.journal.durable_sequence()
                );
            }
            Err(error) => {
                log::error!(
                    "could not reload the durable state after the log failed: {error}; exiting"
                );
                std::process::exit(1);
            }
        }
    }

    // --- Commands ---

    /// Runs one request for `connection` and queues its reply.
    fn execute(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> After {
        let Some(spec) = dispatch::lookup_for_client(arguments[0]) else {
            if connection.transaction.is_some() {
                connection.transaction_failed = true;
            }
            self.reply(connection, dispatch::unknown_command(arguments));
            return After::Continue;
        };
        if !spec.arity.accepts(arguments.len()) {
            if connection.transaction.is_some() {
                connection.transaction_failed = true;
            }
            self.reply(connection, dispatch::wrong_arity(spec.name));
            return After::Continue;
        }
        if !connection.authenticated && spec.flags & dispatch::spec::NO_AUTH == 0 {
            if connection.transaction.is_some() {
                connection.transaction_failed = true;
            }
            self.reply(connection, Reply::error("NOAUTH Authentication required."));
            return After::Continue;
        }
        connection.last_command = spec.name;
        connection.last_command_at_ms = self.now_ms;
        if let Some(queued) = &mut connection.transaction {
            if spec.flags & dispatch::spec::NOT_IN_MULTI != 0 {
                let reply = Reply::error(format!(
                    "ERR {} inside MULTI is not allowed",
                    spec.name.to_uppercase()
                ));
                self.reply(connection, reply);
                return After::Continue;
            }
            if spec.flags & dispatch::spec::NO_QUEUE == 0 {
                if queued.len() >= limits::TRANSACTION_COMMANDS_MAX {
                    connection.transaction_failed = true;
                    self.reply(
                        connection,
                        Reply::error("ERR too many commands queued in this MULTI"),
                    );
                } else {
                    queued.push(arguments.iter().map(|argument| argument.to_vec()).collect());
                    self.reply(connection, Reply::status("QUEUED"));
                }
                return After::Continue;
            }
        }
        if self.waits_for_snapshot(connection, spec, arguments) {
            if connection.waiting_for_snapshot_since.is_none() {
                connection.waiting_for_snapshot_since = Some(Instant::now());
                self.compaction.commands_waited += 1;
            }
            return After::WaitForSnapshot;
        }
        if let Some(since) = connection.waiting_for_snapshot_since.take() {
            self.compaction.command_wait_max =
                self.compaction.command_wait_max.max(since.elapsed());
        }
        self.stats.commands_processed += 1;
        if spec.is_write() && self.journal.failure.is_some() {
            let reply = self.log_failure_reply();
            self.reply(connection, reply);
            return After::Continue;
        }
        let (reply, after) = self.run_command(connection, spec, arguments);
        self.commit_mutations();
        self.reply(connection, reply);
        after
    }

    /// Whether this write (or EXEC of a transaction with writes) changes a value that a running compaction's
    /// snapshot still holds by a second handle (`store::shared`). Such a command waits, and its connection
    /// with it, until the collection serializer has serialized the value and let go of it.
    ///
    /// Why wait rather than copy: changing a shared value copies all of it on the loop (12-18 ms for a
    /// coupon of 260,000 holders, far more for a waiting room of millions), a pause for every client.
    /// Waiting costs only the clients changing that one value, for as long as the collection serializer
    /// needs to serialize it (it holds only values of `SNAPSHOT_SHARE_ELEMENTS_MIN` elements or more, and
    /// only until it reaches them; see `aof::collection_serializer`); reads never wait, and every other
    /// command runs as usual.
    fn waits_for_snapshot(
        &mut self,
        connection: &Connection,
        spec: &CommandSpec,
        arguments: &[&[u8]],
    ) -> bool {
        // Without a compaction this is the whole cost on the command path.
        if !self.compaction.in_progress() || !(spec.is_write() || spec.name == "exec") {
            return false;
        }
        let keyspace = &mut self.store.keyspace;
        // Every key is asked (no short cut): each large pending one is handed over now, so the
        // serializer can start on all of them before the command runs again.
        let mut held = |spec: &CommandSpec, arguments: &[&[u8]]| {
            spec.is_write()
                && spec
                    .key_indexes(arguments.len())
                    .filter(|&index| keyspace.snapshot_holds(arguments[index]))
                    .count()
                    > 0
        };
        if spec.name != "exec" {
            return held(spec, arguments);
        }
        connection.transaction.as_ref().is_some_and(|queued| {
            queued.iter().any(|command| {
                let arguments: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
                dispatch::lookup(arguments[0]).is_some_and(|spec| held(spec, &arguments))
            })
        })
    }

    /// Appends the collected mutations, if any, as one log record.
    fn commit_mutations(&mut self) {
        if let Some(payload) = self.mutations.take_payload() {
            self.journal.append(payload);
        }
    }

    fn reply(&mut self, connection: &mut Connection, reply: Reply) {
        connection.reply(
            &reply,
            self.journal.reply_requirement(),
            self.journal.durable_sequence(),
        );
    }

    /// Runs a command that has passed the checks; data commands add to `self.mutations`.
    fn run_command(
        &mut self,
        connection: &mut Connection,
        spec: &'static CommandSpec,
        arguments: &[&[u8]],
    ) -> (Reply, After) {
        match spec.handler {
            Handler::Store(handler) => (
                dispatch::execute(
                    &mut self.store,
                    spec,
                    handler,
                    arguments,
                    self.now_ms,
                    &mut self.mutations,
                ),
                After::Continue,
            ),
            Handler::Server(which) => self.run_server_command(connection, which, arguments),
        }
    }

    fn run_server_command(
        &mut self,
        connection: &mut Connection,
        which: ServerCommand,
        arguments: &[&[u8]],
    ) -> (Reply, After) {
        let reply = match which {
            // The table's arity allows one optional message.
            ServerCommand::Ping => match arguments.get(1) {
                None => Reply::status("PONG"),
                Some(message) => Reply::bulk(message),
            },
            ServerCommand::Echo => Reply::bulk(arguments[1]),
            ServerCommand::Quit => {
                connection.close_after_reply = true;
                Reply::OK
            }
            ServerCommand::Hello => self.hello(connection, arguments),
            ServerCommand::Auth => self.auth(connection, arguments),
            ServerCommand::Select => match resp::parse_integer(arguments[1]) {
                Some(0) => Reply::OK,
                Some(_) => Reply::error("ERR DB index is out of range"),
                None => not_an_integer(),
            },
            ServerCommand::Client => self.client(connection, arguments),
            ServerCommand::Command => crate::introspection::command(arguments),
            ServerCommand::Config => self.config_command(arguments),
            ServerCommand::Info => Reply::Verbatim("txt", self.info(arguments).into()),
            ServerCommand::Shutdown => {
                log::info!(
                    "SHUTDOWN requested by client id={} addr={}",
                    connection.id,
                    connection.peer
                );
                return (Reply::OK, After::Shutdown);
            }
            ServerCommand::Time => {
                let micros = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_micros());
                Reply::Array(vec![
                    Reply::bulk((micros / 1_000_000).to_string().as_bytes()),
                    Reply::bulk((micros % 1_000_000).to_string().as_bytes()),
                ])
            }
            ServerCommand::Lastsave => Reply::Integer((self.last_sync_at_ms / 1000) as i64),
            ServerCommand::Bgrewriteaof => match self.compaction.schedule(&self.journal) {
                Ok(()) => Reply::status("Background append only file rewriting started"),
                Err(error) => Reply::error(error),
            },
            ServerCommand::Bgsave => match self.compaction.schedule(&self.journal) {
                Ok(()) => Reply::status("Background saving started"),
                Err(error) => Reply::error(error.replace(
                    "Background append only file rewriting already in progress",
                    "Background save already in progress",
                )),
            },
            ServerCommand::Save => self.save(),
            ServerCommand::Multi => {
                if connection.transaction.is_some() {
                    Reply::error("ERR MULTI calls can not be nested")
                } else {
                    connection.transaction = Some(Vec::new());
                    connection.transaction_failed = false;
                    Reply::OK
                }
            }
            ServerCommand::Exec => self.exec(connection),
            ServerCommand::Discard => {
                if connection.transaction.take().is_none() {
                    Reply::error("ERR DISCARD without MULTI")
                } else {
                    self.unwatch_all(connection);
                    Reply::OK
                }
            }
            ServerCommand::Watch => self.watch(connection, arguments),
            ServerCommand::Unwatch => {
                self.unwatch_all(connection);
                Reply::OK
            }
            ServerCommand::Reset => {
                connection.transaction = None;
                self.unwatch_all(connection);
                connection.protocol = Protocol::Resp2;
                connection.name.clear();
                connection.authenticated = self.settings.requirepass.is_none();
                Reply::status("RESET")
            }
        };
        (reply, After::Continue)
    }

    /// SAVE: a whole compaction in one pause (see `Compaction::save`). Replies held for durability that
    /// the syncer reported meanwhile are released (or failed) as the waker path would have.
    fn save(&mut self) -> Reply {
        debug_assert!(self.mutations.is_empty(), "SAVE is refused inside MULTI");
        let mut progress_durable = false;
        let mut progress_failed = false;
        let outcome =
            self.compaction
                .save(
                    &mut self.store,
                    &mut self.journal,
                    self.now_ms,
                    |journal| match journal.collect() {
                        Progress::Nothing => {}
                        Progress::Durable => progress_durable = true,
                        Progress::Failed => progress_failed = true,
                    },
                );
        if progress_durable || progress_failed {
            self.release_held();
        }
        if progress_failed {
            self.fail_held();
        }
        match outcome {
            Ok(()) => Reply::OK,
            Err(error) => Reply::error(error),
        }
    }

    fn hello(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> Reply {
        let mut protocol = connection.protocol;
        let mut index = 1;
        if let Some(version) = arguments.get(1) {
            protocol = match resp::parse_integer(version) {
                Some(2) => Protocol::Resp2,
                Some(3) => Protocol::Resp3,
                Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
                None => {
                    return Reply::error("ERR Protocol version is not an integer or out of range")
                }
            };
            index = 2;
        }
        let mut name = None;
        while index < arguments.len() {
            let option = arguments[index];
            if is_option(option, "AUTH") && index + 2 < arguments.len() {
                let reply = self.check_password(arguments[index + 1], arguments[index + 2]);
                if reply.is_error() {
                    return reply;
                }
                connection.authenticated = true;
                index += 3;
            } else if is_option(option, "SETNAME") && index + 1 < arguments.len() {
                if let Err(reply) = validate_client_name(arguments[index + 1]) {
                    return reply;
                }
                name = Some(arguments[index + 1].to_vec());
                index += 2;
            } else {
                return Reply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(option)
                ));
            }
        }
        if !connection.authenticated {
            return Reply::error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        }
        if let Some(name) = name {
            connection.name = name;
        }
        connection.protocol = protocol;
        Reply::Map(vec![
            (Reply::bulk(b"server"), Reply::bulk(b"dibs")),
            (
                Reply::bulk(b"version"),
                Reply::bulk(env!("CARGO_PKG_VERSION").as_bytes()),
            ),
            (
                Reply::bulk(b"proto"),
                Reply::Integer(if protocol == Protocol::Resp3 { 3 } else { 2 }),
            ),
            (Reply::bulk(b"id"), Reply::Integer(connection.id as i64)),
            (Reply::bulk(b"mode"), Reply::bulk(b"standalone")),
            (Reply::bulk(b"role"), Reply::bulk(b"master")),
            (Reply::bulk(b"modules"), Reply::Array(Vec::new())),
        ])
    }

    fn check_password(&self, user: &[u8], password: &[u8]) -> Reply {
        match &self.settings.requirepass {
            Some(expected) if user == b"default" && password == expected.as_bytes() => Reply::OK,
            _ => Reply::error("WRONGPASS invalid username-password pair or user is disabled."),
        }
    }

    fn auth(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> Reply {
        let (user, password): (&[u8], &[u8]) = match arguments.len() {
            2 => (b"default", arguments[1]),
            3 => (arguments[1], arguments[2]),
            _ => return Reply::error("ERR syntax error"),
        };
        if self.settings.requirepass.is_none() && arguments.len() == 2 {
            return Reply::error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        }
        if self.settings.requirepass.is_none() {
            // No password: the default user accepts any password, as Redis's nopass user does.
            return if user == b"default" {
                Reply::OK
            } else {
                Reply::error("WRONGPASS invalid username-password pair or user is disabled.")
            };
        }
        let reply = self.check_password(user, password);
        if !reply.is_error() {
            connection.authenticated = true;
        }
        reply
    }

    fn client(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> Reply {
        let subcommand = String::from_utf8_lossy(arguments[1]).to_lowercase();
        let arity_error = || dispatch::wrong_arity(&format!("client|{subcommand}"));
        match subcommand.as_str() {
            "id" if arguments.len() == 2 => Reply::Integer(connection.id as i64),
            "getname" if arguments.len() == 2 => {
                if connection.name.is_empty() {
                    Reply::Null
                } else {
                    Reply::bulk(&connection.name)
                }
            }
            "setname" if arguments.len() == 3 => match validate_client_name(arguments[2]) {
                Ok(()) => {
                    connection.name = arguments[2].to_vec();
                    Reply::OK
                }
                Err(reply) => reply,
            },
            "setinfo" if arguments.len() == 4 => {
                let value = arguments[3];
                if value.iter().any(|byte| *byte <= b' ' || *byte > b'~') {
                    return Reply::error(format!(
                        "ERR {} cannot contain spaces, newlines or special characters.",
                        String::from_utf8_lossy(arguments[2])
                    ));
                }
                if is_option(arguments[2], "LIB-NAME") {
                    connection.library_name = value.to_vec();
                } else if is_option(arguments[2], "LIB-VER") {
                    connection.library_version = value.to_vec();
                } else {
                    return Reply::error(format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(arguments[2])
                    ));
                }
                Reply::OK
            }
            "info" if arguments.len() == 2 => {
                Reply::Verbatim("txt", self.client_line(connection).into())
            }
            "list" if arguments.len() == 2 => {
                let mut text = self.client_line(connection);
                for other in self.connections.iter().flatten() {
                    text.push_str(&self.client_line(other));
                }
                Reply::Verbatim("txt", text.into())
            }
            "help" => Reply::Array(
                [
                    "CLIENT <subcommand> [<arg> ...]. Subcommands are:",
                    "ID",
                    "GETNAME",
                    "SETNAME <name>",
                    "SETINFO <LIB-NAME|LIB-VER> <value>",
                    "INFO",
                    "LIST",
                ]
                .iter()
                .map(|line| Reply::Status((*line).into()))
                .collect(),
            ),
            "id" | "getname" | "setname" | "setinfo" | "info" | "list" => arity_error(),
            _ => Reply::error(format!(
                "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                String::from_utf8_lossy(arguments[1])
            )),
        }
    }

    /// One line of CLIENT LIST, in Redis's field order.
    fn client_line(&self, connection: &Connection) -> String {
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub=0 psub=0 ssub=0 multi={} \
             qbuf={} qbuf-free={} argv-mem=0 multi-mem=0 obl=0 oll=0 omem={} tot-mem={} events=r cmd={} \
             user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
            connection.id,
            connection.peer,
            self.local_address,
            connection.stream.as_raw_fd(),
            String::from_utf8_lossy(&connection.name),
            self.now_ms.saturating_sub(connection.created_at_ms) / 1000,
            self.now_ms.saturating_sub(connection.last_command_at_ms) / 1000,
            if connection.transaction.is_some() { "x" } else { "N" },
            connection.transaction.as_ref().map_or(-1, |queued| queued.len() as i64),
            connection.unprocessed_bytes(),
            // While a connection's own command runs, `process` has lent its request buffer out (the
            // arguments borrow it), so the buffer looks empty here: report no free space rather than
            // underflow.
            connection.read_buffer.len().saturating_sub(connection.filled),
            connection.pending_output(),
            connection.read_buffer.len() + connection.output_capacity(),
            connection.last_command,
            if connection.protocol == Protocol::Resp3 { 3 } else { 2 },
            String::from_utf8_lossy(&connection.library_name),
            String::from_utf8_lossy(&connection.library_version),
        )
    }

    fn watch(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> Reply {
        if connection.watched.len() + arguments.len() - 1 > limits::WATCHED_KEYS_MAX {
            return Reply::error("ERR too many watched keys");
        }
        for key in &arguments[1..] {
            if connection
                .watched
                .iter()
                .any(|watched| &watched.key[..] == *key)
            {
                continue;
            }
            let existed = self.store.keyspace.contains(key, self.now_ms);
            let version = self.store.keyspace.watch(key);
            connection.watched.push(WatchedKey {
                key: crate::store::Key::copy_from_slice(key),
                version,
                existed,
            });
        }
        Reply::OK
    }

    fn unwatch_all(&mut self, connection: &mut Connection) {
        for watched in connection.watched.drain(..) {
            self.store.keyspace.unwatch(&watched.key);
        }
    }

    /// True if a watched key changed (or expired) since WATCH.
    fn watched_keys_changed(&mut self, connection: &Connection) -> bool {
        connection.watched.iter().any(|watched| {
            self.store.keyspace.watch_version(&watched.key) != watched.version
                || (watched.existed && !self.store.keyspace.contains(&watched.key, self.now_ms))
        })
    }

    /// EXEC: runs the queued commands back to back; their mutations form one log record, so the
    /// transaction is durable (and replayed) all or nothing.
    fn exec(&mut self, connection: &mut Connection) -> Reply {
        let Some(queued) = connection.transaction.take() else {
            return Reply::error("ERR EXEC without MULTI");
        };
        if connection.transaction_failed {
            self.unwatch_all(connection);
            return Reply::error("EXECABORT Transaction discarded because of previous errors.");
        }
        let changed = self.watched_keys_changed(connection);
        self.unwatch_all(connection);
        if changed {
            return Reply::NullArray;
        }
        let writes = queued
            .iter()
            .any(|arguments| dispatch::lookup(&arguments[0]).is_some_and(CommandSpec::is_write));
        if writes && self.journal.failure.is_some() {
            return Reply::error(format!(
                "EXECABORT Transaction discarded because of: {}",
                self.journal.failure.as_deref().unwrap_or("")
            ));
        }
        let mut encoded = Vec::new();
        resp::encode_header(&mut encoded, b'*', queued.len() as i64);
        for arguments in &queued {
            let arguments: Vec<&[u8]> = arguments.iter().map(Vec::as_slice).collect();
            let spec = dispatch::lookup(arguments[0]).expect("checked when queued");
            self.stats.commands_processed += 1;
            let (reply, _) = self.run_command(connection, spec, &arguments);
            resp::encode(&reply, connection.protocol, &mut encoded);
        }
        Reply::Raw(encoded)
    }

    fn config_command(&mut self, arguments: &[&[u8]]) -> Reply {
        crate::introspection::config(self, arguments)
    }

    fn info(&self, arguments: &[&[u8]]) -> String {
        crate::introspection::info(self, arguments)
    }

    // --- Expiry ---

    /// Deletes keys whose time has come, a bounded number per iteration; the deletions form one record.
    fn expire_cycle(&mut self) {
        if self.journal.failure.is_some() {
            // Deleting would be a write the log can't take; lazy expiry still hides the keys.
            return;
        }
        let expired = self
            .store
            .keyspace
            .expire_due(self.now_ms, limits::EXPIRED_KEYS_PER_ITERATION_MAX);
        for key in &expired {
            self.mutations.push(self.now_ms, [&b"DEL"[..], &key[..]]);
            self.store.keyspace.touch(key);
        }
        let fired = store::fire_due_timers(
            &mut self.store,
            self.now_ms,
            limits::EXPIRED_KEYS_PER_ITERATION_MAX,
            &mut self.mutations,
        );
        if !self.mutations.is_empty() {
            for key in &fired {
                self.store.keyspace.touch(key);
            }
        }
        // If more are due, `poll_timeout` brings the loop back within a millisecond.
        self.commit_mutations();
    }
}

/// The connection in `slot`, if any. A free function so the borrow stays on `connections` alone.
fn connection_in(
    connections: &mut [Option<Box<Connection>>],
    slot: usize,
) -> Option<&mut Connection> {
    connections
        .get_mut(slot)
        .and_then(|slot| slot.as_deref_mut())
}

fn validate_client_name(name: &[u8]) -> Result<(), Reply> {
    if name.len() > limits::CLIENT_NAME_LENGTH_MAX {
        return Err(Reply::error("ERR Client name is too long"));
    }
    if name.iter().any(|byte| *byte <= b' ' || *byte > b'~') {
        return Err(Reply::error(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// Read access for INFO and CONFIG, which live in `introspection`.
impl Server {
    pub(crate) fn introspection_view(&self) -> crate::introspection::View<'_> {
        crate::introspection::View {
            config: &self.config,
            requirepass: self.settings.requirepass.as_deref(),
            maxclients: self.settings.maxclients,
            output_buffer_limit: self.settings.output_buffer_limit,
            protected_mode: self.settings.protected_mode,
            local_address: self.local_address,
            uptime: self.started_at.elapsed(),
            connection_count: self.connection_count,
            store: &self.store,
            journal: &self.journal,
            commands_processed: self.stats.commands_processed,
            connections_received: self.stats.connections_received,
            connections_rejected: self.stats.connections_rejected,
            output_limit_disconnections: self.stats.output_limit_disconnections,
            input_bytes: self.stats.input_bytes,
            output_bytes: self.stats.output_bytes,
            replies_failed_by_log: self.stats.replies_failed_by_log,
            last_sync_at_ms: self.last_sync_at_ms,
            holding_count: self.holding.len(),
            compaction: &self.compaction,
        }
    }

    pub(crate) fn reset_statistics(&mut self) {
        self.compaction.loop_iteration_max = Duration::ZERO;
        self.compaction.loop_iteration_cpu_max = Duration::ZERO;
        self.compaction.command_wait_max = Duration::ZERO;
        self.journal.reset_statistics_max();
    }

    pub(crate) fn set_requirepass(&mut self, password: Option<String>) {
        self.settings.requirepass = password;
    }

    pub(crate) fn set_maxclients(&mut self, maxclients: usize) {
        self.settings.maxclients = maxclients;
    }

    pub(crate) fn set_output_buffer_limit(&mut self, limit: usize) {
        self.settings.output_buffer_limit = limit;
    }

    pub(crate) fn set_protected_mode(&mut self, enabled: bool) {
        self.settings.protected_mode = enabled;
    }
}
