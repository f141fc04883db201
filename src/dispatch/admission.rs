//! Admission: every check a call passes before its handler runs, in one place and in one order.
//!
//! Live traffic runs [`admit`], which answers with what the loop must do with the call: reply with an
//! error, queue it in a transaction, let it wait for the snapshot, refuse it because the log failed, or
//! run it. The checks, in order (the order is part of the contract: it decides which error a call that
//! breaks two rules gets):
//! 1. the command exists for clients, and its arity accepts the call;
//! 2. the connection is authenticated, or the command needs no authentication;
//! 3. inside MULTI, the command may be used there, and the queue has room (or the command is about the
//!    transaction itself and runs at once);
//! 4. a write that changes a value the running snapshot still holds waits for it;
//! 5. a write after the log failed is refused.
//!
//! Replay runs [`admit_logged`]: the same lookup and arity check (step 1), with "data commands only" in
//! place of the rest, since the log holds nothing else and nobody is there to authenticate.

use super::spec::{CommandSpec, Handler, StoreHandler, NOT_IN_MULTI, NO_AUTH, NO_QUEUE};
use super::{lookup, truncated, unknown_command, wrong_arity};
use crate::limits;
use crate::resp::Reply;
use crate::store::Store;

/// What admission needs to know of the connection a call comes from.
pub struct Caller<'a> {
    pub authenticated: bool,
    /// The calls queued since MULTI, each as its argument list; `None` outside a transaction.
    pub transaction: Option<&'a [Vec<Vec<u8>>]>,
}

/// What admission needs to know of the server's state.
pub struct ServerState {
    /// A compaction is writing a snapshot, so some values may be held by its collection serializer.
    pub snapshot_in_progress: bool,
    /// The log failed: writes are refused until restart.
    pub log_failed: bool,
}

/// What the loop does with a call.
#[derive(Debug)]
pub enum Admission {
    /// Not accepted as a call of any command (unknown command, wrong arity, authentication required):
    /// reply with the error. Inside MULTI the transaction fails with it, so EXEC answers EXECABORT.
    Reject(Reply),
    /// Inside MULTI, refused there: reply with the error. `fails_transaction` when the refusal makes EXEC
    /// abort (a full queue), not when the command merely may not be used inside MULTI.
    RefuseInTransaction {
        spec: &'static CommandSpec,
        reply: Reply,
        fails_transaction: bool,
    },
    /// Inside MULTI: add the call to the queue and reply QUEUED.
    Queue(&'static CommandSpec),
    /// Not run now: it changes a value the snapshot's collection serializer still holds. The connection
    /// stops here and the call is admitted again later.
    WaitForSnapshot(&'static CommandSpec),
    /// A write while the log is failing: refused with the server's log-failure error.
    RefuseAfterLogFailure(&'static CommandSpec),
    Run(&'static CommandSpec),
}

impl Admission {
    /// The command called, once the call is accepted as one (whatever happens to it next).
    pub fn spec(&self) -> Option<&'static CommandSpec> {
        match self {
            Admission::Reject(_) => None,
            Admission::RefuseInTransaction { spec, .. }
            | Admission::Queue(spec)
            | Admission::WaitForSnapshot(spec)
            | Admission::RefuseAfterLogFailure(spec)
            | Admission::Run(spec) => Some(spec),
        }
    }
}

/// Where a call comes from. From the log, only data commands exist, including the internal ones the
/// server writes itself; for clients, the internal ones do not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Client,
    Log,
}

/// Why step 1 refused a call.
enum NotACall {
    Unknown,
    NotLogged(&'static CommandSpec),
    WrongArity(&'static CommandSpec),
}

/// Step 1, shared by live traffic and replay: the command exists for `source` and accepts this many
/// arguments.
fn identify(arguments: &[&[u8]], source: Source) -> Result<&'static CommandSpec, NotACall> {
    let spec = lookup(arguments[0]).ok_or(NotACall::Unknown)?;
    match source {
        Source::Client if !spec.is_for_clients() => return Err(NotACall::Unknown),
        Source::Log if !matches!(spec.handler, Handler::Store(_)) => {
            return Err(NotACall::NotLogged(spec))
        }
        _ => {}
    }
    if !spec.arity.accepts(arguments.len()) {
        return Err(NotACall::WrongArity(spec));
    }
    Ok(spec)
}

/// Admits a call from a client (see the module's comment for the checks and their order). `store` is
/// mutable for step 4 only: asking whether the snapshot holds a value hands a large pending one to the
/// serializer at once.
pub fn admit(
    store: &mut Store,
    caller: &Caller,
    state: &ServerState,
    arguments: &[&[u8]],
) -> Admission {
    let spec = match identify(arguments, Source::Client) {
        Ok(spec) => spec,
        Err(NotACall::WrongArity(spec)) => return Admission::Reject(wrong_arity(spec.name)),
        Err(NotACall::Unknown | NotACall::NotLogged(_)) => {
            return Admission::Reject(unknown_command(arguments))
        }
    };
    if !caller.authenticated && spec.flags & NO_AUTH == 0 {
        return Admission::Reject(Reply::error("NOAUTH Authentication required."));
    }
    if let Some(queued) = caller.transaction {
        if spec.flags & NOT_IN_MULTI != 0 {
            return Admission::RefuseInTransaction {
                spec,
                reply: Reply::error(format!(
                    "ERR {} inside MULTI is not allowed",
                    spec.name.to_uppercase()
                )),
                fails_transaction: false,
            };
        }
        if spec.flags & NO_QUEUE == 0 {
            if queued.len() >= limits::TRANSACTION_COMMANDS_MAX {
                return Admission::RefuseInTransaction {
                    spec,
                    reply: Reply::error("ERR too many commands queued in this MULTI"),
                    fails_transaction: true,
                };
            }
            return Admission::Queue(spec);
        }
    }
    if state.snapshot_in_progress && waits_for_snapshot(store, caller, spec, arguments) {
        return Admission::WaitForSnapshot(spec);
    }
    if spec.is_write() && state.log_failed {
        return Admission::RefuseAfterLogFailure(spec);
    }
    Admission::Run(spec)
}

/// Whether this write (or EXEC of a transaction with writes) changes a value that the running snapshot
/// still holds by a second handle (`store::shared`). Such a call waits, and its connection with it, until
/// the collection serializer has serialized the value and let go of it.
///
/// Why wait rather than copy: changing a shared value would copy all of it on the loop, a pause for every
/// client that grows with the value. Waiting costs only the clients changing that one value, for as long
/// as the collection serializer needs to serialize it (it holds only values of
/// `SNAPSHOT_SHARE_ELEMENTS_MIN` elements or more, and only until it reaches them; see
/// `compaction::collection_serializer`); reads never wait, and every other command runs as usual.
fn waits_for_snapshot(
    store: &mut Store,
    caller: &Caller,
    spec: &CommandSpec,
    arguments: &[&[u8]],
) -> bool {
    if !(spec.is_write() || spec.name == "exec") {
        return false;
    }
    let keyspace = &mut store.keyspace;
    // Every key is asked (no short cut): each large pending one is handed over now, so the serializer can
    // start on all of them before the call is admitted again.
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
    caller.transaction.is_some_and(|queued| {
        queued.iter().any(|command| {
            let arguments: Vec<&[u8]> = command.iter().map(Vec::as_slice).collect();
            lookup(arguments[0]).is_some_and(|spec| held(spec, &arguments))
        })
    })
}

/// Admits a logged call at replay: the lookup and arity check live traffic runs, for data commands only.
/// A refusal means the log holds something dibs never writes.
pub fn admit_logged(arguments: &[&[u8]]) -> Result<(&'static CommandSpec, StoreHandler), String> {
    let name = arguments.first().ok_or("an empty command")?;
    match identify(arguments, Source::Log) {
        Ok(spec) => match spec.handler {
            Handler::Store(handler) => Ok((spec, handler)),
            Handler::Server(_) => unreachable!("identify admits only data commands from the log"),
        },
        Err(NotACall::Unknown) => Err(format!("unknown command '{}'", truncated(name))),
        Err(NotACall::NotLogged(spec)) => Err(format!("'{}' is not a logged command", spec.name)),
        Err(NotACall::WrongArity(spec)) => {
            Err(format!("wrong number of arguments for '{}'", spec.name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALM: ServerState = ServerState {
        snapshot_in_progress: false,
        log_failed: false,
    };

    fn admit_call(caller: &Caller, state: &ServerState, call: &[&str]) -> Admission {
        let mut store = Store::new(0);
        let arguments: Vec<&[u8]> = call.iter().map(|argument| argument.as_bytes()).collect();
        admit(&mut store, caller, state, &arguments)
    }

    fn name(admission: &Admission) -> Option<&'static str> {
        admission.spec().map(|spec| spec.name)
    }

    fn error_text(admission: Admission) -> String {
        match admission {
            Admission::Reject(Reply::Error(text))
            | Admission::RefuseInTransaction {
                reply: Reply::Error(text),
                ..
            } => text.to_string(),
            other => panic!("not an error: {other:?}"),
        }
    }

    #[test]
    fn lookup_and_arity_come_before_authentication() {
        let stranger = Caller {
            authenticated: false,
            transaction: None,
        };
        let unknown = error_text(admit_call(&stranger, &CALM, &["nosuch", "a"]));
        assert!(
            unknown.starts_with("ERR unknown command 'nosuch'"),
            "{unknown}"
        );
        // Internal commands are unknown to clients.
        let internal = error_text(admit_call(&stranger, &CALM, &["cl.settat", "k", "1"]));
        assert!(internal.starts_with("ERR unknown command"), "{internal}");
        assert_eq!(
            error_text(admit_call(&stranger, &CALM, &["get"])),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            error_text(admit_call(&stranger, &CALM, &["get", "k"])),
            "NOAUTH Authentication required."
        );
        assert_eq!(name(&admit_call(&stranger, &CALM, &["ping"])), Some("ping"));
        assert!(matches!(
            admit_call(&stranger, &CALM, &["auth", "secret"]),
            Admission::Run(_)
        ));
    }

    #[test]
    fn inside_multi_calls_are_queued_refused_or_run() {
        let queued: Vec<Vec<Vec<u8>>> = Vec::new();
        let in_multi = Caller {
            authenticated: true,
            transaction: Some(&queued),
        };
        assert!(matches!(
            admit_call(&in_multi, &CALM, &["set", "k", "v"]),
            Admission::Queue(_)
        ));
        assert!(matches!(
            admit_call(&in_multi, &CALM, &["exec"]),
            Admission::Run(_)
        ));
        let watch = admit_call(&in_multi, &CALM, &["watch", "k"]);
        assert!(matches!(
            watch,
            Admission::RefuseInTransaction {
                fails_transaction: false,
                ..
            }
        ));
        assert_eq!(error_text(watch), "ERR WATCH inside MULTI is not allowed");
        // A wrong arity inside MULTI is rejected before it could be queued.
        assert!(matches!(
            admit_call(&in_multi, &CALM, &["set", "k"]),
            Admission::Reject(_)
        ));
        let full: Vec<Vec<Vec<u8>>> = vec![Vec::new(); limits::TRANSACTION_COMMANDS_MAX];
        let full_multi = Caller {
            authenticated: true,
            transaction: Some(&full),
        };
        let refused = admit_call(&full_multi, &CALM, &["get", "k"]);
        assert!(matches!(
            refused,
            Admission::RefuseInTransaction {
                fails_transaction: true,
                ..
            }
        ));
        assert_eq!(
            error_text(refused),
            "ERR too many commands queued in this MULTI"
        );
    }

    #[test]
    fn after_a_log_failure_writes_are_refused_and_reads_run() {
        let client = Caller {
            authenticated: true,
            transaction: None,
        };
        let failed = ServerState {
            snapshot_in_progress: false,
            log_failed: true,
        };
        assert!(matches!(
            admit_call(&client, &failed, &["set", "k", "v"]),
            Admission::RefuseAfterLogFailure(_)
        ));
        assert!(matches!(
            admit_call(&client, &failed, &["get", "k"]),
            Admission::Run(_)
        ));
        // Inside MULTI a write is still queued: EXEC answers for the log as a whole.
        let queued: Vec<Vec<Vec<u8>>> = Vec::new();
        let in_multi = Caller {
            authenticated: true,
            transaction: Some(&queued),
        };
        assert!(matches!(
            admit_call(&in_multi, &failed, &["set", "k", "v"]),
            Admission::Queue(_)
        ));
    }

    #[test]
    fn replay_admits_data_commands_only() {
        let logged = |call: &[&str]| {
            let arguments: Vec<&[u8]> = call.iter().map(|argument| argument.as_bytes()).collect();
            admit_logged(&arguments).map(|(spec, _)| spec.name)
        };
        assert_eq!(logged(&["SET", "k", "v"]), Ok("set"));
        // Internal commands exist in the log: the server writes them.
        assert_eq!(logged(&["cl.settat", "k", "1"]), Ok("cl.settat"));
        assert_eq!(logged(&[]), Err("an empty command".to_string()));
        assert_eq!(
            logged(&["nosuch"]),
            Err("unknown command 'nosuch'".to_string())
        );
        assert_eq!(
            logged(&["ping", "a", "b"]),
            Err("'ping' is not a logged command".to_string())
        );
        assert_eq!(
            logged(&["get"]),
            Err("wrong number of arguments for 'get'".to_string())
        );
    }
}
