//! Transactions: MULTI, EXEC, DISCARD, WATCH and UNWATCH. Between MULTI and EXEC, `dispatch::admission`
//! decides which calls are queued; EXEC runs them back to back on the loop, so no other client's command
//! comes between them, and their mutations form one log record.

use super::Server;
use crate::connection::{Connection, WatchedKey};
use crate::dispatch::{self, CommandSpec};
use crate::limits;
use crate::resp::{self, Reply};

impl Server {
    pub(super) fn multi(connection: &mut Connection) -> Reply {
        if connection.transaction.is_some() {
            Reply::error("ERR MULTI calls can not be nested")
        } else {
            connection.transaction = Some(Vec::new());
            connection.transaction_failed = false;
            Reply::OK
        }
    }

    pub(super) fn discard(&mut self, connection: &mut Connection) -> Reply {
        if connection.transaction.take().is_none() {
            Reply::error("ERR DISCARD without MULTI")
        } else {
            self.unwatch_all(connection);
            Reply::OK
        }
    }

    pub(super) fn watch(&mut self, connection: &mut Connection, arguments: &[&[u8]]) -> Reply {
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

    pub(super) fn unwatch_all(&mut self, connection: &mut Connection) {
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
    pub(super) fn exec(&mut self, connection: &mut Connection) -> Reply {
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

    pub(super) fn unwatch(&mut self, connection: &mut Connection) -> Reply {
        self.unwatch_all(connection);
        Reply::OK
    }
}
