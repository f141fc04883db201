//! Session commands: what a connection says about itself and its protocol. PING, ECHO, QUIT, HELLO, AUTH,
//! SELECT, CLIENT and RESET. Each changes only the calling connection (CLIENT LIST reads the others).

use std::os::fd::AsRawFd;

use super::Server;
use crate::command::error::not_an_integer;
use crate::command::parse::is_option;
use crate::connection::Connection;
use crate::dispatch;
use crate::limits;
use crate::resp::{self, Protocol, Reply};

impl Server {
    /// PING: the table's arity allows one optional message.
    pub(super) fn ping(arguments: &[&[u8]]) -> Reply {
        match arguments.get(1) {
            None => Reply::status("PONG"),
            Some(message) => Reply::bulk(message),
        }
    }

    pub(super) fn quit(connection: &mut Connection) -> Reply {
        connection.close_after_reply = true;
        Reply::OK
    }

    /// SELECT: there is one database, 0.
    pub(super) fn select(arguments: &[&[u8]]) -> Reply {
        match resp::parse_integer(arguments[1]) {
            Some(0) => Reply::OK,
            Some(_) => Reply::error("ERR DB index is out of range"),
            None => not_an_integer(),
        }
    }

    /// RESET: the connection as it was when it connected (outside a transaction, nothing watched, RESP2,
    /// no name, authenticated only if no password is set).
    pub(super) fn reset(&mut self, connection: &mut Connection) -> Reply {
        connection.transaction = None;
        self.unwatch_all(connection);
        connection.protocol = Protocol::Resp2;
        connection.name.clear();
        connection.authenticated = self.settings.requirepass.is_none();
        Reply::status("RESET")
    }

    /// HELLO [protover [AUTH user password] [SETNAME name]]: the handshake (protocol version,
    /// authentication and name in one call), answered with the server's description.
    pub(super) fn hello(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> Reply {
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

    /// AUTH [user] password: only the `default` user exists.
    pub(super) fn auth(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> Reply {
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

    /// CLIENT ID, GETNAME, SETNAME, SETINFO, INFO, LIST and HELP.
    pub(super) fn client(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> Reply {
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
            "unblock" if (3..=4).contains(&arguments.len()) => self.client_unblock(arguments),
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
                    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
                    "INFO",
                    "LIST",
                ]
                .iter()
                .map(|line| Reply::Status((*line).into()))
                .collect(),
            ),
            "id" | "getname" | "setname" | "setinfo" | "info" | "list" | "unblock" => arity_error(),
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
            client_flags(connection, self.blocking.is_client_blocked(connection.id)),
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
}

/// CLIENT LIST's flags: `x` inside MULTI, `b` while blocked, else `N`.
fn client_flags(connection: &Connection, blocked: bool) -> &'static str {
    match (connection.transaction.is_some(), blocked) {
        (true, _) => "x",
        (false, true) => "b",
        (false, false) => "N",
    }
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
