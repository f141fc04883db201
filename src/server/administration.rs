//! Administration: SAVE, BGSAVE, BGREWRITEAOF, SHUTDOWN, TIME and LASTSAVE.

use std::time::{SystemTime, UNIX_EPOCH};

use super::Server;
use crate::connection::Connection;
use crate::journal::Progress;
use crate::resp::Reply;

impl Server {
    /// SHUTDOWN: the loop stops after this iteration, once the log is synced (`Server::run`).
    pub(super) fn shutdown(&self, connection: &Connection) -> Reply {
        log::info!(
            "SHUTDOWN requested by client id={} addr={}",
            connection.id,
            connection.peer
        );
        Reply::OK
    }

    /// TIME: the wall clock itself, not the loop's `now_ms` (which never runs backwards).
    pub(super) fn time() -> Reply {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_micros());
        Reply::Array(vec![
            Reply::bulk((micros / 1_000_000).to_string().as_bytes()),
            Reply::bulk((micros % 1_000_000).to_string().as_bytes()),
        ])
    }

    /// LASTSAVE: the Unix time of the last successful log sync.
    pub(super) fn lastsave(&self) -> Reply {
        Reply::Integer((self.last_sync_at_ms / 1000) as i64)
    }

    pub(super) fn bgrewriteaof(&mut self) -> Reply {
        match self.compaction.schedule(&self.journal) {
            Ok(()) => Reply::status("Background append only file rewriting started"),
            Err(error) => Reply::error(error),
        }
    }

    /// BGSAVE: the same compaction as BGREWRITEAOF, with BGSAVE's replies.
    pub(super) fn bgsave(&mut self) -> Reply {
        match self.compaction.schedule(&self.journal) {
            Ok(()) => Reply::status("Background saving started"),
            Err(error) => Reply::error(error.replace(
                "Background append only file rewriting already in progress",
                "Background save already in progress",
            )),
        }
    }

    /// SAVE: a whole compaction in one pause (see `Compaction::save`). Replies held for durability that
    /// the syncer reported meanwhile are released (or failed) as the waker path would have.
    pub(super) fn save(&mut self) -> Reply {
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
}
