//! The `dibs` server binary: arguments to `Config`, recover the log, run the event loop. The only place
//! that exits the process.

use std::sync::Arc;

use clap::Parser;
use mio::{Poll, Token, Waker};

use dibs::aof::syncer::Syncer;
use dibs::clock::system_time_ms;
use dibs::config::{Config, YesNo};
use dibs::journal::Journal;
use dibs::server::Server;

#[global_allocator]
static ALLOCATOR: dibs::memory::CountingAllocator = dibs::memory::CountingAllocator;

fn main() {
    dibs::memory::configure_allocator();
    let config = Config::parse();
    dibs::logging::init();
    if let Err(message) = run(config) {
        log::error!("{message}");
        std::process::exit(1);
    }
}

fn run(config: Config) -> Result<(), String> {
    log::info!(
        "dibs {} starting: pid {}, data directory {}, appendonly {}, appendfsync {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        config.dir.display(),
        if config.appendonly == YesNo::Yes {
            "yes"
        } else {
            "no"
        },
        config.appendfsync.name()
    );
    let seed = system_time_ms() ^ (u64::from(std::process::id()) << 32);
    let recovered = dibs::recovery::recover(&config, seed).map_err(|error| error.to_string())?;
    let compaction_base = recovered
        .snapshot
        .map(|snapshot| (snapshot.sequence, snapshot.length));
    let log_bytes = recovered.log_bytes;
    let log_first_sequence = recovered.log_first_sequence;
    log::info!(
        "log replayed: {} records, {} bytes in {:.3} s",
        recovered.records_replayed,
        recovered.bytes_replayed,
        recovered.elapsed.as_secs_f64()
    );
    let poll = Poll::new().map_err(|error| format!("cannot create the event loop: {error}"))?;
    let waker = Arc::new(
        Waker::new(poll.registry(), Token(1))
            .map_err(|error| format!("cannot create the waker: {error}"))?,
    );
    let journal = match recovered.storage {
        Some(storage) => {
            let policy = config.appendfsync;
            let notify_waker = waker.clone();
            let syncer = Syncer::spawn(
                Box::new(storage),
                policy,
                recovered.next_sequence - 1,
                move || {
                    let _ = notify_waker.wake();
                },
            );
            let mut journal = Journal::new(policy, recovered.next_sequence, syncer);
            journal.log_first_sequence = log_first_sequence;
            journal
        }
        None => Journal::disabled(recovered.next_sequence),
    };
    let mut server = Server::bind(
        config,
        recovered.store,
        journal,
        poll,
        waker,
        recovered.last_now_ms,
    )
    .map_err(|error| format!("cannot listen: {error}"))?;
    server.set_compaction_base(compaction_base, log_bytes);
    log::info!("Ready to accept connections on {}", server.local_address());
    server
        .run()
        .map_err(|error| format!("the event loop failed: {error}"))
}
