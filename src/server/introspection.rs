//! What the server says about itself: INFO, CONFIG GET/SET/RESETSTAT and COMMAND.
//!
//! INFO reports measured values only: memory comes from the counting allocator and /proc, durability
//! from the journal's own counters.

use std::fmt::Write;
use std::time::Duration;

use super::Server;
use crate::config::YesNo;
use crate::dispatch::{self, CommandSpec};
use crate::resp::Reply;

/// The Redis version whose commands and replies dibs follows; some clients read it to pick features.
pub const REDIS_COMPATIBLE_VERSION: &str = "7.2.0";

const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "keyspace",
];

/// INFO: the sections asked for, in Redis's order and format.
impl Server {
    pub(super) fn info(&self, arguments: &[&[u8]]) -> String {
        let requested: Vec<String> = arguments[1..]
            .iter()
            .map(|argument| String::from_utf8_lossy(argument).to_lowercase())
            .collect();
        let wanted = |section: &str| {
            requested.is_empty()
                || requested.iter().any(|name| {
                    name == section || name == "all" || name == "everything" || name == "default"
                })
        };
        let mut text = String::new();
        for section in DEFAULT_SECTIONS {
            if !wanted(section) {
                continue;
            }
            if !text.is_empty() {
                text.push_str("\r\n");
            }
            match *section {
                "server" => self.server_section(&mut text),
                "clients" => self.clients_section(&mut text),
                "memory" => self.memory_section(&mut text),
                "persistence" => self.persistence_section(&mut text),
                "stats" => self.stats_section(&mut text),
                "replication" => {
                    text.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n")
                }
                "cpu" => cpu_section(&mut text),
                "keyspace" => self.keyspace_section(&mut text),
                _ => {}
            }
        }
        text
    }

    fn server_section(&self, text: &mut String) {
        let uptime = self.started_at.elapsed().as_secs();
        let _ = write!(
            text,
            "# Server\r\n\
             redis_version:{REDIS_COMPATIBLE_VERSION}\r\n\
             dibs_version:{}\r\n\
             redis_mode:standalone\r\n\
             os:{} {}\r\n\
             arch_bits:{}\r\n\
             multiplexing_api:epoll\r\n\
             process_id:{}\r\n\
             tcp_port:{}\r\n\
             uptime_in_seconds:{uptime}\r\n\
             uptime_in_days:{}\r\n\
             executable:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::env::consts::ARCH,
            usize::BITS,
            std::process::id(),
            self.local_address.port(),
            uptime / 86_400,
            std::env::current_exe()
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
        );
    }

    fn clients_section(&self, text: &mut String) {
        let _ = write!(
            text,
            "# Clients\r\n\
             connected_clients:{}\r\n\
             maxclients:{}\r\n\
             blocked_clients:{}\r\n\
             clients_waiting_for_durability:{}\r\n",
            self.connection_count,
            self.settings.maxclients,
            self.blocking.count(),
            self.holding.len(),
        );
    }

    fn memory_section(&self, text: &mut String) {
        let used = crate::memory::allocated_bytes();
        let resident = crate::memory::resident_bytes();
        let _ = write!(
            text,
            "# Memory\r\n\
             used_memory:{used}\r\n\
             used_memory_human:{}\r\n\
             used_memory_rss:{resident}\r\n\
             used_memory_rss_human:{}\r\n\
             maxmemory:0\r\n\
             maxmemory_policy:noeviction\r\n\
             keys:{}\r\n",
            human_bytes(used),
            human_bytes(resident),
            self.store.keyspace.len(),
        );
    }

    fn persistence_section(&self, text: &mut String) {
        let journal = &self.journal;
        let statistics = journal.statistics();
        let _ = write!(
            text,
            "# Persistence\r\n\
             loading:0\r\n\
             aof_enabled:{}\r\n\
             appendfsync:{}\r\n\
             aof_last_write_status:{}\r\n\
             aof_last_error:{}\r\n\
             aof_last_sequence:{}\r\n\
             aof_durable_sequence:{}\r\n\
             aof_records_appended:{}\r\n\
             aof_bytes_appended:{}\r\n\
             aof_syncs:{}\r\n\
             aof_last_sync_microseconds:{}\r\n\
             aof_average_sync_microseconds:{}\r\n\
             aof_max_sync_microseconds:{}\r\n\
             aof_replies_failed:{}\r\n\
             aof_last_sync_time:{}\r\n\
             rdb_changes_since_last_save:{}\r\n",
            journal.is_enabled() as u8,
            journal.policy.name(),
            if journal.failure.is_some() {
                "err"
            } else {
                "ok"
            },
            journal.failure.as_deref().unwrap_or(""),
            journal.last_sequence(),
            journal.durable_sequence(),
            journal.records_appended,
            journal.bytes_appended,
            statistics.syncs_count,
            statistics.sync_latency_us_last,
            statistics.sync_latency_us_average,
            statistics.sync_latency_us_max,
            self.stats.replies_failed_by_log,
            self.last_sync_at_ms / 1000,
            journal.last_sequence() - journal.durable_sequence(),
        );
        let compaction = &self.compaction;
        let seconds =
            |duration: Option<Duration>| duration.map_or(-1, |duration| duration.as_secs() as i64);
        let milliseconds = |duration: Option<Duration>| {
            duration.map_or(-1, |duration| duration.as_millis() as i64)
        };
        let tail = compaction.tail_bytes(journal);
        let _ = write!(
            text,
            "aof_rewrite_in_progress:{}\r\n\
             aof_rewrite_scheduled:{}\r\n\
             aof_rewrites:{}\r\n\
             aof_last_rewrite_time_sec:{}\r\n\
             aof_last_rewrite_time_ms:{}\r\n\
             aof_current_rewrite_time_sec:{}\r\n\
             aof_last_bgrewrite_status:{}\r\n\
             aof_last_rewrite_error:{}\r\n\
             aof_current_size:{}\r\n\
             aof_base_size:{}\r\n\
             aof_base_sequence:{}\r\n\
             aof_log_size_since_base:{}\r\n\
             aof_rewrite_writes_waited:{}\r\n\
             aof_rewrite_write_wait_max_microseconds:{}\r\n",
            compaction.in_progress() as u8,
            compaction.is_scheduled() as u8,
            compaction.rewrites,
            seconds(compaction.last_duration),
            milliseconds(compaction.last_duration),
            seconds(compaction.current_duration()),
            if compaction.last_status_ok {
                "ok"
            } else {
                "err"
            },
            compaction.last_error,
            compaction.base_size + tail,
            compaction.base_size,
            compaction.base_sequence,
            tail,
            self.stats.commands_waited,
            self.stats.command_wait_max.as_micros(),
        );
    }

    fn stats_section(&self, text: &mut String) {
        let _ = write!(
            text,
            "# Stats\r\n\
             total_connections_received:{}\r\n\
             total_commands_processed:{}\r\n\
             total_net_input_bytes:{}\r\n\
             total_net_output_bytes:{}\r\n\
             rejected_connections:{}\r\n\
             client_output_buffer_limit_disconnections:{}\r\n\
             expired_keys:{}\r\n\
             loop_iteration_max_microseconds:{}\r\n\
             loop_iteration_cpu_max_microseconds:{}\r\n\
             collections_resizing:{}\r\n",
            self.stats.connections_received,
            self.stats.commands_processed,
            self.stats.input_bytes,
            self.stats.output_bytes,
            self.stats.connections_rejected,
            self.stats.output_limit_disconnections,
            self.store.keyspace.expired_keys_total,
            self.stats.loop_iteration_max.as_micros(),
            self.stats.loop_iteration_cpu_max.as_micros(),
            self.store.keyspace.resizing_count(),
        );
    }

    fn keyspace_section(&self, text: &mut String) {
        text.push_str("# Keyspace\r\n");
        let keys = self.store.keyspace.len();
        if keys > 0 {
            let _ = write!(
                text,
                "db0:keys={keys},expires={},avg_ttl=0\r\n",
                self.store.keyspace.expiring_count()
            );
        }
    }
}

fn cpu_section(text: &mut String) {
    let (user, system) = crate::memory::cpu_seconds();
    let _ = write!(
        text,
        "# CPU\r\nused_cpu_sys:{system:.6}\r\nused_cpu_user:{user:.6}\r\n"
    );
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

// --- CONFIG ---

/// The parameters CONFIG knows, and whether CONFIG SET may change them at run time.
const PARAMETERS: &[(&str, bool)] = &[
    ("appendonly", false),
    ("appendfsync", false),
    ("bind", false),
    ("client-output-buffer-limit", true),
    ("databases", false),
    ("dir", false),
    ("maxclients", true),
    ("maxmemory", false),
    ("port", false),
    ("protected-mode", true),
    ("requirepass", true),
    ("save", false),
    ("set-max-intset-entries", true),
    ("set-max-listpack-entries", true),
    ("set-max-listpack-value", true),
    ("timeout", false),
];

/// CONFIG GET, SET and RESETSTAT.
impl Server {
    fn parameter_value(&self, name: &str) -> String {
        let yes_no = |value: bool| if value { "yes" } else { "no" }.to_string();
        match name {
            "appendonly" => yes_no(self.config.appendonly == YesNo::Yes),
            "appendfsync" => self.journal.policy.name().to_string(),
            "bind" => self.config.bind.clone(),
            "client-output-buffer-limit" => format!(
                "normal {} 0 0 replica 0 0 0 pubsub 0 0 0",
                self.settings.output_buffer_limit
            ),
            "databases" => "1".to_string(),
            "dir" => std::fs::canonicalize(&self.config.dir)
                .unwrap_or_else(|_| self.config.dir.clone())
                .display()
                .to_string(),
            "maxclients" => self.settings.maxclients.to_string(),
            "maxmemory" => "0".to_string(),
            "port" => self.local_address.port().to_string(),
            "protected-mode" => yes_no(self.settings.protected_mode),
            // Redis answers the password itself; so do we, to a client that is authenticated anyway.
            "requirepass" => self
                .settings
                .requirepass
                .as_deref()
                .unwrap_or_default()
                .to_string(),
            "save" => String::new(),
            "set-max-intset-entries" => self
                .store
                .set_encoding_limits
                .intset_entries_max
                .to_string(),
            "set-max-listpack-entries" => self
                .store
                .set_encoding_limits
                .listpack_entries_max
                .to_string(),
            "set-max-listpack-value" => self
                .store
                .set_encoding_limits
                .listpack_value_length_max
                .to_string(),
            "timeout" => "0".to_string(),
            _ => String::new(),
        }
    }

    pub(super) fn config(&mut self, arguments: &[&[u8]]) -> Reply {
        let subcommand = String::from_utf8_lossy(arguments[1]).to_lowercase();
        match subcommand.as_str() {
            "get" if arguments.len() >= 3 => {
                let mut pairs = Vec::new();
                for (name, _) in PARAMETERS {
                    if arguments[2..].iter().any(|pattern| {
                        crate::glob::matches(&pattern.to_ascii_lowercase(), name.as_bytes())
                    }) {
                        pairs.push((
                            Reply::bulk(name.as_bytes()),
                            Reply::bulk(self.parameter_value(name).as_bytes()),
                        ));
                    }
                }
                Reply::Map(pairs)
            }
            "set" if arguments.len() >= 4 && arguments.len().is_multiple_of(2) => {
                self.config_set(&arguments[2..])
            }
            "resetstat" if arguments.len() == 2 => {
                self.reset_statistics();
                Reply::OK
            }
            "get" | "set" | "resetstat" => dispatch::wrong_arity(&format!("config|{subcommand}")),
            _ => Reply::error(format!(
                "ERR unknown subcommand '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(arguments[1])
            )),
        }
    }

    /// CONFIG RESETSTAT: the maxima INFO reports start again from zero.
    fn reset_statistics(&mut self) {
        self.stats.loop_iteration_max = Duration::ZERO;
        self.stats.loop_iteration_cpu_max = Duration::ZERO;
        self.stats.command_wait_max = Duration::ZERO;
        self.journal.reset_statistics_max();
    }

    /// CONFIG SET name value [name value ...]: validates every pair before applying any.
    fn config_set(&mut self, pairs: &[&[u8]]) -> Reply {
        enum Change {
            Password(Option<String>),
            MaxClients(usize),
            OutputLimit(usize),
            ProtectedMode(bool),
            SetEncoding(crate::store::SetEncodingLimits),
        }
        // Set thresholds accumulate over the pairs, so `CONFIG SET a 1 a 2` ends at 2 as in Redis.
        let mut set_limits = self.store.set_encoding_limits;
        let mut changes = Vec::new();
        for pair in pairs.chunks_exact(2) {
            let name = String::from_utf8_lossy(pair[0]).to_lowercase();
            let value = String::from_utf8_lossy(pair[1]).to_string();
            let invalid = |reason: &str| {
                Reply::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                ))
            };
            match PARAMETERS.iter().find(|(known, _)| *known == name) {
                None => {
                    return Reply::error(format!(
                        "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
                    ))
                }
                Some((_, false)) => return invalid("can't set immutable config"),
                Some(_) => {}
            }
            let change = match name.as_str() {
                "requirepass" => {
                    Change::Password(if value.is_empty() { None } else { Some(value) })
                }
                "maxclients" => match value.parse::<usize>() {
                    Ok(count) if count >= 1 => Change::MaxClients(count),
                    _ => return invalid("argument must be a positive integer"),
                },
                "client-output-buffer-limit" => {
                    let words: Vec<&str> = value.split_whitespace().collect();
                    match words.as_slice() {
                        ["normal", hard, _, _] => match hard.parse::<usize>() {
                            Ok(limit) if limit > 0 => Change::OutputLimit(limit),
                            _ => {
                                return invalid("the hard limit must be a positive number of bytes")
                            }
                        },
                        _ => {
                            return invalid(
                                "expected 'normal <hard-bytes> <soft-bytes> <soft-seconds>'",
                            )
                        }
                    }
                }
                "protected-mode" => match value.as_str() {
                    "yes" => Change::ProtectedMode(true),
                    "no" => Change::ProtectedMode(false),
                    _ => return invalid("argument must be 'yes' or 'no'"),
                },
                "set-max-intset-entries"
                | "set-max-listpack-entries"
                | "set-max-listpack-value" => {
                    let Ok(number) = value.parse::<usize>() else {
                        return invalid("argument couldn't be parsed into an integer");
                    };
                    match name.as_str() {
                        "set-max-intset-entries" => set_limits.intset_entries_max = number,
                        "set-max-listpack-entries" => set_limits.listpack_entries_max = number,
                        _ => set_limits.listpack_value_length_max = number,
                    }
                    if let Err(reason) = set_limits.validate() {
                        return invalid(&reason);
                    }
                    Change::SetEncoding(set_limits)
                }
                _ => unreachable!("every mutable parameter is handled"),
            };
            changes.push(change);
        }
        for change in changes {
            match change {
                Change::Password(password) => self.settings.requirepass = password,
                Change::MaxClients(count) => self.settings.maxclients = count,
                Change::OutputLimit(limit) => self.settings.output_buffer_limit = limit,
                Change::ProtectedMode(enabled) => self.settings.protected_mode = enabled,
                // Existing sets keep their encoding; the new thresholds apply from the next member added
                // (as in Redis). Not logged: replay uses the command line's, so keep them the same.
                Change::SetEncoding(limits) => self.store.set_encoding_limits = limits,
            }
        }
        Reply::OK
    }
}

// --- COMMAND ---

pub(super) fn command(arguments: &[&[u8]]) -> Reply {
    let Some(subcommand) = arguments.get(1) else {
        return Reply::Array(dispatch::client_commands().map(command_info).collect());
    };
    let subcommand = String::from_utf8_lossy(subcommand).to_lowercase();
    match subcommand.as_str() {
        "count" if arguments.len() == 2 => {
            Reply::Integer(dispatch::client_commands().count() as i64)
        }
        "list" if arguments.len() == 2 => Reply::Array(
            dispatch::client_commands()
                .map(|spec| Reply::bulk(spec.name.as_bytes()))
                .collect(),
        ),
        "info" => {
            if arguments.len() == 2 {
                return Reply::Array(dispatch::client_commands().map(command_info).collect());
            }
            Reply::Array(
                arguments[2..]
                    .iter()
                    .map(|name| {
                        dispatch::lookup_for_client(name).map_or(Reply::NullArray, command_info)
                    })
                    .collect(),
            )
        }
        "docs" => {
            let specs: Vec<&CommandSpec> = if arguments.len() == 2 {
                dispatch::client_commands().collect()
            } else {
                arguments[2..]
                    .iter()
                    .filter_map(|name| dispatch::lookup_for_client(name))
                    .collect()
            };
            Reply::Map(
                specs
                    .into_iter()
                    .map(|spec| (Reply::bulk(spec.name.as_bytes()), command_docs(spec)))
                    .collect(),
            )
        }
        "count" | "list" => dispatch::wrong_arity(&format!("command|{subcommand}")),
        _ => Reply::error(format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(arguments[1])
        )),
    }
}

fn command_info(spec: &CommandSpec) -> Reply {
    Reply::Array(vec![
        Reply::bulk(spec.name.as_bytes()),
        Reply::Integer(spec.arity.redis_arity()),
        Reply::Set(spec.flag_names().into_iter().map(Reply::status).collect()),
        Reply::Integer(spec.keys.first as i64),
        Reply::Integer(spec.keys.last as i64),
        Reply::Integer(spec.keys.step as i64),
        Reply::Set(vec![Reply::Status(format!("@{}", spec.group).into())]),
        Reply::Set(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
    ])
}

fn command_docs(spec: &CommandSpec) -> Reply {
    Reply::Map(vec![
        (
            Reply::bulk(b"summary"),
            Reply::bulk(spec.summary.as_bytes()),
        ),
        (Reply::bulk(b"since"), Reply::bulk(b"0.1.0")),
        (Reply::bulk(b"group"), Reply::bulk(spec.group.as_bytes())),
    ])
}
