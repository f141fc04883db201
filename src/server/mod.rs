//! The event loop: one thread, one mio `Poll`, owning the store, the journal and every connection.
//!
//! One iteration:
//! 1. `poll` for events (no wait when work is pending; otherwise until the next timer).
//! 2. Read from every readable socket until it would block (or its per-iteration budget is spent), then
//!    decode and execute its complete requests in order, appending replies to its output buffer. The
//!    iteration's commands, all connections together, stop at `LOOP_COMMANDS_PER_ITERATION_MAX`: the
//!    connections not served go first in the next iteration, which follows at once. Connections left over
//!    from a budget are served before the new events, in the order they were left.
//! 3. Run the active expiry cycle, bounded in keys per iteration, and move a bounded number of buckets
//!    of collections left mid-resize (`Keyspace::rehash_step`).
//! 4. Hand this iteration's log records to the syncer thread (group commit).
//! 5. Write every connection's releasable replies. Under `appendfsync always` replies wait in the output
//!    buffer until the syncer reports the records they depend on durable; its report arrives through the
//!    mio `Waker` and releases them (step 1 of a later iteration).
//!
//! Commands run one at a time on this thread, which is what makes check-then-act commands atomic without
//! locks. The only other thread is the syncer, reached through channels.
//!
//! # Where each part lives
//! - This file: the loop itself, the way of one request (`dispatch::admission` admits it, then it runs,
//!   its mutations go to the journal as one record, its reply is queued), the release of replies held
//!   for durability, and the expiry timers.
//! - `connections.rs`: the socket side: accepting, reading and decoding requests, writing replies.
//! - `session.rs`: the commands about the connection itself (HELLO, AUTH, CLIENT, SELECT, RESET...).
//! - `transaction.rs`: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//! - `blocking.rs`: blocked clients (BLPOP and the like): parking, serving when a key is written, deadlines.
//! - `administration.rs`: SAVE, BGSAVE, BGREWRITEAOF, SHUTDOWN, TIME, LASTSAVE.
//! - `introspection.rs`: INFO, CONFIG and COMMAND, reading and setting the server's own fields.

mod administration;
mod blocking;
mod connections;
mod introspection;
mod session;
mod transaction;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::clock::system_time_ms;
use crate::command::Mutations;
use crate::compaction::{Compaction, Triggers};
use crate::config::{Config, YesNo};
use crate::connection::Connection;
use crate::dispatch::admission::{self, Admission, Caller, ServerState};
use crate::dispatch::{self, CommandSpec, Handler, ServerCommand};
use crate::journal::{Journal, Progress};
use crate::limits;
use crate::resp::Reply;
use crate::store::{self, Store};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONNECTION: usize = 2;

/// The loop's own statistics, for INFO.
#[derive(Debug, Default)]
struct Stats {
    connections_received: u64,
    connections_rejected: u64,
    commands_processed: u64,
    output_limit_disconnections: u64,
    input_bytes: u64,
    output_bytes: u64,
    replies_failed_by_log: u64,
    /// The longest loop iteration seen, for INFO (reset by CONFIG RESETSTAT).
    loop_iteration_max: Duration,
    /// The most CPU time the loop thread used in one iteration: a wall-clock maximum far above it means
    /// the thread was waiting for a core, not working.
    loop_iteration_cpu_max: Duration,
    /// Commands that waited for the snapshot writer to let go of a value they change, and the longest
    /// such wait, for INFO (the maximum is reset by CONFIG RESETSTAT).
    commands_waited: u64,
    command_wait_max: Duration,
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
    /// Slots with input left over from a spent budget: processed first in the next iteration, which comes
    /// without waiting for an event.
    pending_input: Vec<usize>,
    /// Commands executed so far in this loop iteration, for all connections together (bounded by
    /// `limits::LOOP_COMMANDS_PER_ITERATION_MAX`).
    commands_this_iteration: usize,
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
    /// The last `Keyspace::rehash_step` moved buckets and more remain: poll without waiting.
    resizes_pending: bool,
    /// Set while `accept` fails for want of descriptors: when to try again. mio is edge-triggered, so
    /// connections already in the backlog raise no new event; without a retry they would wait for the
    /// next newcomer, however many descriptors had been freed since.
    accept_retry_at: Option<Instant>,
    /// Clients waiting in a blocking command (BLPOP...), their keys and deadlines.
    blocking: blocking::Blocking,
}

/// What the loop does after running a command for a connection.
enum After {
    Continue,
    Shutdown,
    /// Not run: it changes a value the snapshot's collection serializer still holds. Stop this connection
    /// here and run the command again later (`dispatch::admission`).
    WaitForSnapshot,
    /// Parked by a blocking command (`blocking`): run nothing more for this connection until it is served.
    Blocked,
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
            commands_this_iteration: 0,
            pending_output: Vec::new(),
            holding: Vec::new(),
            waiting_for_snapshot: Vec::new(),
            last_sync_at_ms,
            shutting_down: false,
            compaction,
            resizes_pending: false,
            accept_retry_at: None,
            blocking: blocking::Blocking::default(),
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
            self.commands_this_iteration = 0;
            // Connections left over from the last iteration's budgets go first, in the order they were
            // left (not by slot), so a connection put off by the loop's command budget is served before
            // connections that have only just become ready, and none waits twice in a row for the others.
            let mut leftover = std::mem::take(&mut self.pending_input);
            let mut seen = std::collections::HashSet::with_capacity(leftover.len());
            leftover.retain(|slot| seen.insert(*slot));
            for slot in leftover {
                if !self.shutting_down {
                    self.read_and_process(slot);
                }
            }
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
            for slot in std::mem::take(&mut self.waiting_for_snapshot) {
                if !self.shutting_down {
                    self.read_and_process(slot);
                }
            }
            self.expire_cycle();
            self.resizes_pending = self
                .store
                .keyspace
                .rehash_step(limits::TABLE_REHASH_BUCKETS_PER_ITERATION);
            self.blocking_step();
            debug_assert!(self.mutations.is_empty(), "no unit is half-recorded here");
            self.compaction
                .step(&mut self.store, &mut self.journal, self.now_ms);
            if let Progress::Failed = self.journal.submit(self.now_ms) {
                self.fail_held();
            }
            self.flush_pending();
            let iteration = iteration_started.elapsed();
            if iteration > self.stats.loop_iteration_max {
                self.stats.loop_iteration_max = iteration;
            }
            let iteration_cpu =
                crate::memory::thread_cpu_time().saturating_sub(iteration_cpu_started);
            if iteration_cpu > self.stats.loop_iteration_cpu_max {
                self.stats.loop_iteration_cpu_max = iteration_cpu;
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
            || self.resizes_pending
        {
            return Some(Duration::ZERO);
        }
        let mut timeout_ms = 1000;
        // Work retried each millisecond: a resize or a blocked client's pop whose value the snapshot writer
        // holds, until it lets go.
        if self.compaction.is_waiting_for_writer()
            || !self.waiting_for_snapshot.is_empty()
            || self.store.keyspace.resizing_count() > 0
            || self.blocking.has_deferred()
        {
            timeout_ms = 1;
        }
        if self.journal.has_unsubmitted() {
            timeout_ms = crate::limits::RELAXED_SUBMIT_INTERVAL_MS;
        }
        if let Some(retry_at) = self.accept_retry_at {
            let wait = retry_at.saturating_duration_since(Instant::now());
            timeout_ms = timeout_ms.min(wait.as_millis() as u64);
        }
        let deadlines = [
            self.store.keyspace.next_expiry_ms(),
            self.store.keyspace.next_timer_ms(),
            self.blocking.next_deadline_ms(),
        ];
        for at in deadlines.into_iter().flatten() {
            timeout_ms = timeout_ms.min(at.saturating_sub(self.now_ms).max(1));
        }
        Some(Duration::from_millis(timeout_ms))
    }

    // --- Durability ---

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

    /// Runs one request for `connection` and queues its reply: admit, run, commit the mutations, reply.
    fn execute(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> After {
        let admission = admission::admit(
            &mut self.store,
            &Caller {
                authenticated: connection.authenticated,
                transaction: connection.transaction.as_deref(),
            },
            &ServerState {
                snapshot_in_progress: self.compaction.in_progress(),
                log_failed: self.journal.failure.is_some(),
            },
            arguments,
        );
        if let Some(spec) = admission.spec() {
            connection.last_command = spec.name;
            connection.last_command_at_ms = self.now_ms;
        }
        let spec = match admission {
            Admission::Reject(reply) => {
                if connection.transaction.is_some() {
                    connection.transaction_failed = true;
                }
                self.reply(connection, reply);
                return After::Continue;
            }
            Admission::RefuseInTransaction {
                reply,
                fails_transaction,
                ..
            } => {
                connection.transaction_failed |= fails_transaction;
                self.reply(connection, reply);
                return After::Continue;
            }
            Admission::Queue(_) => {
                let queued = connection
                    .transaction
                    .as_mut()
                    .expect("queued inside MULTI");
                queued.push(arguments.iter().map(|argument| argument.to_vec()).collect());
                self.reply(connection, Reply::status("QUEUED"));
                return After::Continue;
            }
            Admission::WaitForSnapshot(_) => {
                if connection.waiting_for_snapshot_since.is_none() {
                    connection.waiting_for_snapshot_since = Some(Instant::now());
                    self.stats.commands_waited += 1;
                }
                return After::WaitForSnapshot;
            }
            Admission::RefuseAfterLogFailure(_) => {
                self.count_processed(connection);
                let reply = self.log_failure_reply();
                self.reply(connection, reply);
                return After::Continue;
            }
            Admission::Run(spec) => spec,
        };
        self.count_processed(connection);
        let (reply, after) = self.run_command(connection, spec, arguments);
        if self.park_if_blocking(connection, spec, arguments, &reply) {
            return After::Blocked;
        }
        self.commit_mutations();
        self.reply(connection, reply);
        self.serve_ready_keys();
        after
    }

    /// Counts a call that got past admission's waits, and ends its connection's wait for the snapshot.
    fn count_processed(&mut self, connection: &mut Connection) {
        if let Some(since) = connection.waiting_for_snapshot_since.take() {
            self.stats.command_wait_max = self.stats.command_wait_max.max(since.elapsed());
        }
        self.stats.commands_processed += 1;
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
            Handler::Store(handler) => {
                let logged_before = self.mutations.command_count();
                let reply = dispatch::execute(
                    &mut self.store,
                    spec,
                    handler,
                    arguments,
                    self.now_ms,
                    &mut self.mutations,
                );
                self.note_written_keys(spec, arguments, logged_before);
                (reply, After::Continue)
            }
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
            ServerCommand::Ping => Server::ping(arguments),
            ServerCommand::Echo => Reply::bulk(arguments[1]),
            ServerCommand::Quit => Server::quit(connection),
            ServerCommand::Hello => self.hello(connection, arguments),
            ServerCommand::Auth => self.auth(connection, arguments),
            ServerCommand::Select => Server::select(arguments),
            ServerCommand::Client => self.client(connection, arguments),
            ServerCommand::Reset => self.reset(connection),
            ServerCommand::Command => introspection::command(arguments),
            ServerCommand::Config => self.config(arguments),
            ServerCommand::Info => Reply::Verbatim("txt", self.info(arguments).into()),
            ServerCommand::Shutdown => return (self.shutdown(connection), After::Shutdown),
            ServerCommand::Time => Server::time(),
            ServerCommand::Lastsave => self.lastsave(),
            ServerCommand::Bgrewriteaof => self.bgrewriteaof(),
            ServerCommand::Bgsave => self.bgsave(),
            ServerCommand::Save => self.save(),
            ServerCommand::Multi => Server::multi(connection),
            ServerCommand::Exec => self.exec(connection),
            ServerCommand::Discard => self.discard(connection),
            ServerCommand::Watch => self.watch(connection, arguments),
            ServerCommand::Unwatch => self.unwatch(connection),
        };
        (reply, After::Continue)
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
