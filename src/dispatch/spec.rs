//! What the command table says about one command: its name, how many arguments it takes, its flags, where
//! its keys are and which handler runs it. The table itself is `table.rs`; the checks that read these
//! fields before a handler runs are in `dispatch`.

use crate::command::Call;
use crate::resp::Reply;
use crate::store::Store;

/// A data command's handler: `Ok` with the reply, or `Err` with the error reply of a call it refused
/// after changing nothing.
pub type StoreHandler = fn(&mut Store, &mut Call) -> Result<Reply, Reply>;

/// Commands the event loop answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCommand {
    Ping,
    Echo,
    Quit,
    Hello,
    Auth,
    Select,
    Client,
    Command,
    Config,
    Info,
    Shutdown,
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
    Reset,
    Time,
    Lastsave,
    Bgrewriteaof,
    Bgsave,
    Save,
}

#[derive(Debug, Clone, Copy)]
pub enum Handler {
    /// A data command: deterministic, runs on live traffic and on replay (see `store`).
    Store(StoreHandler),
    /// A connection or administration command: touches the server and connection state, so the event
    /// loop runs it itself.
    Server(ServerCommand),
}

/// May change state: logged, refused while the log is failing, counted in INFO.
pub const WRITE: u32 = 1;
/// Allowed before AUTH when a password is set.
pub const NO_AUTH: u32 = 1 << 1;
/// Runs immediately even inside MULTI (it is about the transaction itself).
pub const NO_QUEUE: u32 = 1 << 2;
/// Only reads: shown as `readonly` in COMMAND INFO.
pub const READONLY: u32 = 1 << 3;
/// Administration (`admin` in COMMAND INFO).
pub const ADMIN: u32 = 1 << 4;
/// Refused inside MULTI (WATCH).
pub const NOT_IN_MULTI: u32 = 1 << 5;
/// Written to the log by the server itself and run only by replay; clients get "unknown command" and
/// COMMAND does not list it.
pub const INTERNAL: u32 = 1 << 6;
/// May wait for a key to be written (BLPOP and the like): run straight from a client, a call that finds
/// nothing to do parks the client (`server::blocking`); inside MULTI it answers at once.
pub const BLOCKING: u32 = 1 << 7;

/// How many arguments a call may have, the command's name included. A call outside the range is refused
/// with Redis's "wrong number of arguments" before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arity {
    pub min: usize,
    pub max: usize,
}

impl Arity {
    pub const fn exactly(count: usize) -> Arity {
        Arity {
            min: count,
            max: count,
        }
    }

    /// No maximum of its own: the request decoder's argument limit bounds it.
    pub const fn at_least(count: usize) -> Arity {
        Arity {
            min: count,
            max: usize::MAX,
        }
    }

    /// For the few commands whose contract has a maximum that Redis reports as a wrong arity (PING's
    /// one optional message, CL.THROTTLE's one optional quantity).
    pub const fn between(min: usize, max: usize) -> Arity {
        Arity { min, max }
    }

    pub fn accepts(&self, count: usize) -> bool {
        (self.min..=self.max).contains(&count)
    }

    /// Redis's single number, as COMMAND shows it: the exact count when fixed, minus the minimum otherwise.
    pub fn redis_arity(&self) -> i64 {
        if self.min == self.max {
            self.min as i64
        } else {
            -(self.min as i64)
        }
    }
}

/// Where a command's keys are among its arguments, as COMMAND reports them (Redis's first key, last key
/// and step; a negative last key counts from the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    pub first: i32,
    pub last: i32,
    pub step: i32,
}

pub const NO_KEYS: KeySpec = KeySpec {
    first: 0,
    last: 0,
    step: 0,
};
pub const FIRST_KEY: KeySpec = KeySpec {
    first: 1,
    last: 1,
    step: 1,
};
pub const ALL_KEYS: KeySpec = KeySpec {
    first: 1,
    last: -1,
    step: 1,
};
pub const KEY_VALUE_PAIRS: KeySpec = KeySpec {
    first: 1,
    last: -1,
    step: 2,
};
/// The first two arguments (LMOVE's source and destination).
pub const FIRST_TWO_KEYS: KeySpec = KeySpec {
    first: 1,
    last: 2,
    step: 1,
};
/// Every argument but the command's name and the last (BLPOP's keys before its timeout).
pub const KEYS_BEFORE_LAST: KeySpec = KeySpec {
    first: 1,
    last: -2,
    step: 1,
};
pub const KEYS_AFTER_FIRST: KeySpec = KeySpec {
    first: 2,
    last: -1,
    step: 1,
};

#[derive(Debug)]
pub struct CommandSpec {
    /// Lower case, as Redis reports names.
    pub name: &'static str,
    pub arity: Arity,
    pub flags: u32,
    pub keys: KeySpec,
    pub handler: Handler,
    pub group: &'static str,
    pub summary: &'static str,
}

impl CommandSpec {
    pub fn is_write(&self) -> bool {
        self.flags & WRITE != 0
    }

    pub fn is_for_clients(&self) -> bool {
        self.flags & INTERNAL == 0
    }

    /// Indexes of the key arguments of a call of this command with `argument_count` arguments.
    pub fn key_indexes(&self, argument_count: usize) -> impl Iterator<Item = usize> {
        let KeySpec { first, last, step } = self.keys;
        let last = if last < 0 {
            argument_count as i64 + last as i64
        } else {
            last as i64
        };
        let range = if first <= 0 || last < first as i64 {
            0..0
        } else {
            first as usize..(last as usize + 1).min(argument_count)
        };
        range.step_by(step.max(1) as usize)
    }

    /// The flag words COMMAND INFO shows.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.flags & WRITE != 0 {
            names.push("write");
        }
        if self.flags & READONLY != 0 {
            names.push("readonly");
        }
        if self.flags & ADMIN != 0 {
            names.push("admin");
        }
        if self.flags & NO_AUTH != 0 {
            names.push("no_auth");
        }
        if self.flags & NOT_IN_MULTI != 0 {
            names.push("no_multi");
        }
        if self.flags & BLOCKING != 0 {
            names.push("blocking");
        }
        names.push("fast");
        names
    }
}
