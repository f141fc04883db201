//! Growing collections through resizes while compactions run, killed with SIGKILL at random points:
//! every acknowledged member is there after a restart, and nothing that was never attempted appears.
//!
//! Two writer threads pipeline `SADD grow <unique member>` (the set passes many table resizes, 4 buckets
//! to 65,536 and more, each one moved a few buckets per command and per loop iteration), and one issues
//! `COUPON.ISSUE coupon <unique user>`. The server compacts by itself whenever its log passes a small
//! threshold, and a helper thread asks for BGREWRITEAOF as well, so kills land before, inside and after
//! compactions, and while the snapshot writer holds the growing set by handle. Each cycle kills the
//! server after a random number of acknowledged writes (the seed is printed, and `GROWTH_CRASH_SEED`
//! replays it), restarts it on the same directory and checks:
//! acknowledged ⊆ recovered ⊆ attempted, for the set's members and for the coupon's holders (each holder's
//! number is the one its acknowledged ISSUE returned, and numbers are distinct). Later cycles keep
//! growing the same set and coupon, so recovery also replays earlier cycles' snapshots and logs.
mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

use common::{wait_until, Server, TempDir, DEADLINE};

const CYCLES: usize = 4;
const SET_WRITERS: usize = 2;
/// Commands per pipeline a set writer sends: a pipeline that fails is attempted, not acknowledged.
const PIPELINE: usize = 32;
/// Acknowledged writes per cycle before the kill: at least this many, plus a random share of it.
/// Over the cycles the set passes `SNAPSHOT_SHARE_ELEMENTS_MIN` (65,536), so later compactions hand it
/// to the snapshot writer by handle while it keeps growing.
const ACKNOWLEDGED_PER_CYCLE_MIN: u64 = 20_000;
/// The server compacts whenever its log has grown by this many bytes and by 25% over the snapshot.
const COMPACTION_MIN_SIZE: &str = "300000";

/// What the set writers and the coupon writer did in one cycle.
#[derive(Default)]
struct Outcome {
    members_attempted: Vec<String>,
    members_acknowledged: Vec<String>,
    /// user -> the number its ISSUE returned.
    holders_acknowledged: HashMap<String, i64>,
    users_attempted: Vec<String>,
}

/// A small deterministic generator (xorshift64*), so a failing seed replays.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn set_writer(
    client: redis::Client,
    cycle: usize,
    writer: usize,
    acknowledged: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let Ok(mut connection) = client.get_connection() else {
        return outcome;
    };
    connection.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut index = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut pipe = redis::pipe();
        let members: Vec<String> = (0..PIPELINE)
            .map(|offset| format!("m:{cycle}:{writer}:{}", index + offset))
            .collect();
        index += PIPELINE;
        for member in &members {
            pipe.cmd("SADD").arg("grow").arg(member);
        }
        outcome.members_attempted.extend(members.iter().cloned());
        let Ok(replies) = pipe.query::<Vec<i64>>(&mut connection) else {
            break;
        };
        assert!(
            replies.iter().all(|&added| added == 1),
            "unique members are new"
        );
        outcome.members_acknowledged.extend(members);
        acknowledged.fetch_add(PIPELINE as u64, Ordering::Relaxed);
    }
    outcome
}

fn coupon_writer(
    client: redis::Client,
    cycle: usize,
    acknowledged: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let Ok(mut connection) = client.get_connection() else {
        return outcome;
    };
    connection.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut index = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut pipe = redis::pipe();
        let users: Vec<String> = (0..PIPELINE)
            .map(|offset| format!("u:{cycle}:{}", index + offset))
            .collect();
        index += PIPELINE;
        for user in &users {
            pipe.cmd("COUPON.ISSUE").arg("coupon").arg(user);
        }
        outcome.users_attempted.extend(users.iter().cloned());
        let Ok(replies) = pipe.query::<Vec<(String, Option<i64>, i64)>>(&mut connection) else {
            break;
        };
        for (user, (status, number, _remaining)) in users.into_iter().zip(replies) {
            assert_eq!(status, "ISSUED", "a new user gets a coupon");
            outcome
                .holders_acknowledged
                .insert(user, number.expect("an issued number"));
        }
        acknowledged.fetch_add(PIPELINE as u64, Ordering::Relaxed);
    }
    outcome
}

/// Asks for a compaction now and then until `stop`; refusals (one already running) are expected.
/// Returns how many it started.
fn compactor(client: redis::Client, stop: Arc<AtomicBool>) -> u64 {
    let mut started = 0;
    let Ok(mut connection) = client.get_connection() else {
        return started;
    };
    while !stop.load(Ordering::Relaxed) {
        match redis::cmd("BGREWRITEAOF").query::<String>(&mut connection) {
            Ok(_) => started += 1,
            Err(error) if error.is_io_error() || error.is_connection_dropped() => return started,
            Err(_) => {}
        }
        // Paces the requests; the automatic trigger compacts in between as well.
        thread::sleep(std::time::Duration::from_millis(150));
    }
    started
}

fn all_members(connection: &mut redis::Connection) -> HashSet<String> {
    let members: Vec<String> = redis::cmd("SMEMBERS")
        .arg("grow")
        .query(connection)
        .unwrap();
    members.into_iter().collect()
}

fn all_holders(connection: &mut redis::Connection) -> HashMap<String, i64> {
    let mut holders = HashMap::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, page): (String, Vec<(String, i64)>) = redis::cmd("COUPON.HOLDERS")
            .arg("coupon")
            .arg(&cursor)
            .arg(10_000)
            .query(connection)
            .unwrap();
        for (user, number) in page {
            assert!(
                holders.insert(user.clone(), number).is_none(),
                "{user} listed twice"
            );
        }
        if next == "0" {
            return holders;
        }
        cursor = next;
    }
}

#[test]
fn growing_a_set_and_a_coupon_through_compactions_and_kill_nine_keeps_every_acknowledged_member() {
    let seed = std::env::var("GROWTH_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    println!("GROWTH_CRASH_SEED={seed}");
    let mut random = seed;
    let dir = TempDir::new("collection-growth-crash");
    let arguments = [
        "--auto-aof-rewrite-min-size",
        COMPACTION_MIN_SIZE,
        "--auto-aof-rewrite-percentage",
        "25",
    ];
    let mut server = Server::start(dir.path(), &arguments);
    let created: String = redis::cmd("COUPON.CREATE")
        .arg("coupon")
        .arg(10_000_000)
        .query(&mut server.connection())
        .unwrap();
    assert_eq!(created, "OK");
    let mut members_acknowledged: HashSet<String> = HashSet::new();
    let mut members_attempted: HashSet<String> = HashSet::new();
    let mut holders_acknowledged: HashMap<String, i64> = HashMap::new();
    let mut users_attempted: HashSet<String> = HashSet::new();
    let mut compactions_started = 0;
    for cycle in 0..CYCLES {
        let kill_after =
            ACKNOWLEDGED_PER_CYCLE_MIN + next_random(&mut random) % ACKNOWLEDGED_PER_CYCLE_MIN;
        let acknowledged = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers: Vec<_> = (0..SET_WRITERS)
            .map(|writer| {
                let (client, acknowledged, stop) =
                    (server.client(), acknowledged.clone(), stop.clone());
                thread::spawn(move || set_writer(client, cycle, writer, acknowledged, stop))
            })
            .collect();
        {
            let (client, acknowledged, stop) =
                (server.client(), acknowledged.clone(), stop.clone());
            writers.push(thread::spawn(move || {
                coupon_writer(client, cycle, acknowledged, stop)
            }));
        }
        let compaction = {
            let (client, stop) = (server.client(), stop.clone());
            thread::spawn(move || compactor(client, stop))
        };
        wait_until("enough acknowledged writes before the kill", || {
            acknowledged.load(Ordering::Relaxed) >= kill_after
        });
        server.kill();
        // The writers stop on their first failed call; `stop` ends the compactor and guards against a
        // writer that somehow keeps succeeding.
        stop.store(true, Ordering::Relaxed);
        for writer in writers {
            let outcome = writer.join().unwrap();
            members_attempted.extend(outcome.members_attempted);
            members_acknowledged.extend(outcome.members_acknowledged);
            users_attempted.extend(outcome.users_attempted);
            holders_acknowledged.extend(outcome.holders_acknowledged);
        }
        compactions_started += compaction.join().unwrap();

        server = Server::start(dir.path(), &arguments);
        let mut connection = server.connection();
        let members = all_members(&mut connection);
        for member in &members_acknowledged {
            assert!(
                members.contains(member),
                "cycle {cycle} (seed {seed}): acknowledged member {member} lost"
            );
        }
        for member in &members {
            assert!(
                members_attempted.contains(member),
                "cycle {cycle} (seed {seed}): member {member} was never sent"
            );
        }
        let holders = all_holders(&mut connection);
        for (user, number) in &holders_acknowledged {
            assert_eq!(
                holders.get(user),
                Some(number),
                "cycle {cycle} (seed {seed}): acknowledged holder {user} lost or renumbered"
            );
        }
        let mut numbers = HashSet::new();
        for (user, number) in &holders {
            assert!(
                users_attempted.contains(user),
                "cycle {cycle} (seed {seed}): holder {user} was never sent"
            );
            assert!(numbers.insert(*number), "number {number} issued twice");
        }
        // What survived unacknowledged is now part of the state: later cycles must keep it too.
        members_acknowledged = members;
        holders_acknowledged = holders;
        println!(
            "cycle {cycle}: killed after {} acknowledged; {} members, {} holders recovered",
            acknowledged.load(Ordering::Relaxed),
            members_acknowledged.len(),
            holders_acknowledged.len()
        );
    }
    assert!(
        compactions_started >= CYCLES as u64,
        "compactions ran while the collections grew ({compactions_started} started on request)"
    );
    // The restarted server finishes whatever resize recovery left, without any command.
    let mut client = server.raw();
    wait_until("every resize finished after the last restart", || {
        common::info_field(&mut client, "collections_resizing") == 0
    });
}
