//! Kill -9 under load: every write the server acknowledged is there after a restart.
//!
//! Client threads write as fast as they are answered (INCR of their own counter, SADD of a unique member,
//! SET of a unique key) and record what was attempted and what was acknowledged. The server is killed
//! with SIGKILL while they run, restarted on the same directory, and checked: acknowledged ⊆ recovered ⊆
//! attempted. Each cycle uses its own keys, so later cycles also replay the earlier cycles' logs.
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use common::{wait_until, Server, TempDir, DEADLINE};
use redis::Commands;

const CYCLES: usize = 3;
const WRITERS: usize = 4;
/// Acknowledged operations, over all writers, before the kill.
const ACKNOWLEDGED_BEFORE_KILL: u64 = 300;

/// What one writer did.
#[derive(Default)]
struct Outcome {
    increments_attempted: u64,
    increments_acknowledged: u64,
    members_acknowledged: Vec<String>,
    keys_acknowledged: Vec<String>,
}

fn writer(
    client: redis::Client,
    cycle: usize,
    writer: usize,
    acknowledged_total: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let Ok(mut connection) = client.get_connection() else {
        return outcome;
    };
    connection.set_read_timeout(Some(DEADLINE)).unwrap();
    let counter = format!("counter_{cycle}_{writer}");
    let set = format!("set_{cycle}");
    for index in 0.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        outcome.increments_attempted += 1;
        if connection.incr::<_, _, i64>(&counter, 1).is_err() {
            break;
        }
        outcome.increments_acknowledged += 1;
        let member = format!("member_{writer}_{index}");
        if connection.sadd::<_, _, i64>(&set, &member).is_err() {
            break;
        }
        outcome.members_acknowledged.push(member);
        let key = format!("unique_{cycle}_{writer}_{index}");
        if connection.set::<_, _, ()>(&key, index).is_err() {
            break;
        }
        outcome.keys_acknowledged.push(key);
        acknowledged_total.fetch_add(3, Ordering::Relaxed);
    }
    outcome
}

#[test]
fn kill_nine_under_load_loses_no_acknowledged_write() {
    let dir = TempDir::new("crash-under-load");
    let mut server = Server::start(dir.path(), &[]);
    for cycle in 0..CYCLES {
        let acknowledged_total = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..WRITERS)
            .map(|index| {
                let client = server.client();
                let acknowledged_total = Arc::clone(&acknowledged_total);
                let stop = Arc::clone(&stop);
                thread::spawn(move || writer(client, cycle, index, acknowledged_total, stop))
            })
            .collect();
        wait_until("enough acknowledged writes", || {
            acknowledged_total.load(Ordering::Relaxed) >= ACKNOWLEDGED_BEFORE_KILL
        });
        server.kill();
        // The writers stop on their first failed call; `stop` only guards against a writer that somehow
        // keeps succeeding.
        stop.store(true, Ordering::Relaxed);
        let outcomes: Vec<Outcome> = writers
            .into_iter()
            .map(|writer| writer.join().unwrap())
            .collect();

        server = Server::start(dir.path(), &[]);
        let mut connection = server.connection();
        let members: Vec<String> = connection.smembers(format!("set_{cycle}")).unwrap();
        let members: std::collections::HashSet<String> = members.into_iter().collect();
        for (index, outcome) in outcomes.iter().enumerate() {
            let counter: Option<u64> = connection.get(format!("counter_{cycle}_{index}")).unwrap();
            let counter = counter.unwrap_or(0);
            assert!(
                counter >= outcome.increments_acknowledged
                    && counter <= outcome.increments_attempted,
                "cycle {cycle} writer {index}: counter {counter}, acknowledged {}, attempted {}",
                outcome.increments_acknowledged,
                outcome.increments_attempted
            );
            for member in &outcome.members_acknowledged {
                assert!(
                    members.contains(member),
                    "cycle {cycle}: acknowledged member {member} lost"
                );
            }
            for keys in outcome.keys_acknowledged.chunks(500) {
                let values: Vec<Option<String>> =
                    redis::cmd("MGET").arg(keys).query(&mut connection).unwrap();
                for (key, value) in keys.iter().zip(values) {
                    assert!(
                        value.is_some(),
                        "cycle {cycle}: acknowledged key {key} lost"
                    );
                }
            }
        }
    }
}
