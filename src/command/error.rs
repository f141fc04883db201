//! The error replies every command may give, and their texts, in one place so that every value type
//! refuses the same misuse with the same words (Redis's, where Redis has one).
//!
//! A handler that answers one of these has changed nothing and logged nothing: it validates first.

use crate::limits::UNKNOWN_COMMAND_ECHO_LENGTH_MAX;
use crate::resp::Reply;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub const SYNTAX_ERROR: &str = "ERR syntax error";
pub const INVALID_CURSOR: &str = "ERR invalid cursor";

/// A command of one type run against a key holding another.
pub fn wrong_type() -> Reply {
    Reply::error(WRONGTYPE)
}

/// Options the command does not know, or given in a shape it does not accept.
pub fn syntax_error() -> Reply {
    Reply::error(SYNTAX_ERROR)
}

/// An argument that should be an integer is not one, or does not fit.
pub fn not_an_integer() -> Reply {
    Reply::error(NOT_AN_INTEGER)
}

/// Redis's reply to an unknown command: the name as sent cut to `UNKNOWN_COMMAND_ECHO_LENGTH_MAX` bytes,
/// then the first arguments, quoted, until the list reaches that many bytes (the argument that crosses
/// the mark is cut there).
pub fn unknown_command(arguments: &[&[u8]]) -> Reply {
    let mut listed = Vec::new();
    for argument in &arguments[1..] {
        if listed.len() >= UNKNOWN_COMMAND_ECHO_LENGTH_MAX {
            break;
        }
        let room = UNKNOWN_COMMAND_ECHO_LENGTH_MAX - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&argument[..argument.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    Reply::error(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        truncated(arguments[0]),
        String::from_utf8_lossy(&listed)
    ))
}

/// A command name as an error message may quote it: cut to `UNKNOWN_COMMAND_ECHO_LENGTH_MAX` bytes.
pub fn truncated(argument: &[u8]) -> String {
    String::from_utf8_lossy(&argument[..argument.len().min(UNKNOWN_COMMAND_ECHO_LENGTH_MAX)])
        .into_owned()
}

/// An expiry time Redis refuses (not positive where it must be, or overflowing in milliseconds), for
/// SET's options, SETEX, PSETEX and the EXPIRE family.
pub fn invalid_expire_time(command: &str) -> Reply {
    Reply::error(format!("ERR invalid expire time in '{command}' command"))
}

/// A call whose argument count the command's arity refuses.
pub fn wrong_arity(name: &str) -> Reply {
    Reply::error(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}
