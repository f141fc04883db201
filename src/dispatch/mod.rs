//! Dispatch: from a command's name to its handler, through the checks every call passes first.
//!
//! `table.rs` lists every command (`spec.rs` says what each field means). [`lookup`] finds a call's entry;
//! `admission.rs` holds the checks a call passes before it runs, for live traffic and replay; [`execute`]
//! runs a data command for live traffic and [`replay`] runs a logged one at start-up, through the same
//! handlers, so both reach the same state.

pub mod admission;
pub mod spec;
pub mod table;

use std::collections::HashMap;
use std::sync::OnceLock;

pub use spec::{Arity, CommandSpec, Handler, KeySpec, ServerCommand, StoreHandler};
pub use table::COMMANDS;

pub use crate::command::error::{unknown_command, wrong_arity};

use crate::command::error::truncated;
use crate::command::{Call, Mutations};
use crate::resp::Reply;
use crate::store::Store;

/// Finds a command by name, ignoring case. Runs once per command, live and on replay, so the table hashes
/// with ahash rather than the standard SipHash; the names are ours, not an attacker's.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    type Table = HashMap<&'static [u8], &'static CommandSpec, ahash::RandomState>;
    static TABLE: OnceLock<Table> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|spec| (spec.name.as_bytes(), spec))
            .collect()
    });
    let mut lower = [0u8; 32];
    if name.len() > lower.len() {
        return None;
    }
    for (slot, byte) in lower.iter_mut().zip(name) {
        *slot = byte.to_ascii_lowercase();
    }
    table.get(&lower[..name.len()]).copied()
}

/// Finds a command a client may send: internal commands are unknown to clients.
pub fn lookup_for_client(name: &[u8]) -> Option<&'static CommandSpec> {
    lookup(name).filter(|spec| spec.is_for_clients())
}

/// The commands clients may send, for COMMAND.
pub fn client_commands() -> impl Iterator<Item = &'static CommandSpec> {
    COMMANDS.iter().filter(|spec| spec.is_for_clients())
}

/// Runs a data command: the handler, then WATCH bookkeeping for any key it changed. The arity has been
/// checked by the caller. Live traffic and replay both come through here.
pub fn execute(
    store: &mut Store,
    spec: &CommandSpec,
    handler: StoreHandler,
    arguments: &[&[u8]],
    now_ms: u64,
    mutations: &mut Mutations,
) -> Reply {
    let logged_before = mutations.command_count();
    let reply = handler(
        store,
        &mut Call {
            arguments,
            now_ms,
            mutations,
        },
    )
    .unwrap_or_else(|refusal| refusal);
    if mutations.command_count() != logged_before && store.keyspace.has_watchers() {
        for index in spec.key_indexes(arguments.len()) {
            store.keyspace.touch(arguments[index]);
        }
    }
    debug_assert!(
        !(reply.is_error() && mutations.command_count() != logged_before),
        "a failing command must change nothing: {}",
        spec.name
    );
    reply
}

/// Replays one logged command, admitted as `admission::admit_logged` says: every logged command is a data
/// command with valid arity; anything else means the log holds something dibs never writes.
pub fn replay(
    store: &mut Store,
    arguments: &[&[u8]],
    now_ms: u64,
    scratch: &mut Mutations,
) -> Result<(), String> {
    let (spec, handler) = admission::admit_logged(arguments)?;
    let reply = execute(store, spec, handler, arguments, now_ms, scratch);
    scratch.clear();
    if let Reply::Error(text) = reply {
        return Err(format!("'{}' failed on replay: {text}", spec.name));
    }
    Ok(())
}
