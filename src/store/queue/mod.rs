//! Waiting rooms: a fair line for a sale, with admission passes and an idle timeout.
//!
//! # Semantics (as protocol.md states them)
//! - QUEUE.JOIN room user: joins at the back and returns the position (1 = next in). Joining again keeps
//!   one's place (and counts as a poll). A user holding a valid pass gets 0 and nothing changes.
//! - QUEUE.POS room user: the position while waiting (and counts as a poll); 0 while holding a valid pass;
//!   null if unknown: never joined, left, admitted with the pass now expired, or dropped for idling.
//! - QUEUE.ADMIT room n pass-ttl-ms: the next up to n waiters, in line order, each given a pass valid for
//!   pass-ttl-ms (until now + ttl, exclusive). Waiters found idle past the timeout are dropped, not admitted.
//! - QUEUE.PASS room user: 1 while the user holds a valid pass, else 0. A pure read.
//! - QUEUE.LEAVE room user: 1 if the user was waiting (and not idle past the timeout) or held a valid pass,
//!   which is then revoked; else 0.
//! - QUEUE.LEN room: how many are waiting, including idlers not dropped yet (the active cycle drops them
//!   within a few cycles).
//! - QUEUE.CONFIG room IDLE ms: waiters who neither JOIN nor POS for `ms` are dropped (0, the default, never
//!   drops). The analogue of a websocket ping/pong keeping one's spot. A dropped user's POS is null and a
//!   JOIN goes to the back of the line. A waiter idle past the timeout is treated as dropped the moment it
//!   touches the room (lazily) and is removed for everyone else by [`WaitingRoom::expire_idle`].
//!
//! # Guarantees
//! - A waiting user's position never increases: newcomers join behind everyone, and admissions, departures,
//!   drops and compaction only remove users from the line.
//! - JOIN, POS, LEAVE and PASS cost O(log n); ADMIT costs O(log n) per user admitted or dropped. Positions
//!   are ranks in a Fenwick tree over the line's slots (one per ticket); the line is compacted (tickets
//!   renumbered, order kept) once more than half of it is vacant, so its size stays within twice the
//!   waiters plus `QUEUE_LINE_COMPACT_MIN`.
//! - Deterministic: every answer and every change depends only on the state, the arguments and `now_ms`.
//!
//! # Durability (for the command table)
//! JOIN, POS (it refreshes last-seen), ADMIT, LEAVE and CONFIG change state and must be logged with their
//! `now_ms`. The users [`WaitingRoom::expire_idle`] drops must be logged too (as LEAVE records, for
//! example), because positions count idlers until they are dropped. Expired passes need no record for the
//! answers' sake: a pass past its expiry answers as absent whether or not [`WaitingRoom::expire_passes`] has
//! removed it. dibs logs them anyway (`commands`), so a replayed room equals the live one.

pub mod codec;
pub mod commands;

use crate::limits::{
    QUEUE_ADMIT_COUNT_MAX, QUEUE_IDLE_TIMEOUT_MS_MAX, QUEUE_LINE_COMPACT_MIN,
    QUEUE_PASS_TTL_MS_MAX, QUEUE_WAITERS_MAX, USER_ID_BYTES_MAX,
};
use std::collections::{BTreeMap, BTreeSet};

/// What `TYPE` says for a waiting room.
pub const TYPE_NAME: &str = "queue";

/// A line slot whose waiter has left.
const SLOT_VACANT: u32 = u32::MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
enum EntryState {
    Waiting { ticket: u32, last_seen_ms: u64 },
    Admitted { pass_expires_ms: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    user: Box<[u8]>,
    state: EntryState,
}

/// One waiting room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitingRoom {
    /// Users known to the room (waiting or admitted), by entry id; freed ids are reused.
    entries: Vec<Option<Entry>>,
    free_entry_ids: Vec<u32>,
    /// A B-tree rather than a hash map: deterministic, and no hash seed to choose.
    entry_id_by_user: BTreeMap<Box<[u8]>, u32>,
    /// Entry id per ticket, in join order; `SLOT_VACANT` once its waiter is gone.
    line: Vec<u32>,
    /// Fenwick tree over `line` (1 per occupied slot): the prefix sum up to a ticket is its position.
    line_ranks: Vec<u32>,
    /// Every slot before this one is vacant: where ADMIT starts looking.
    line_head: usize,
    waiting_count: usize,
    /// Waiters by last poll, oldest first: the idle-timeout schedule.
    idle_order: BTreeSet<(u64, u32)>,
    /// Pass holders by pass expiry, soonest first.
    pass_order: BTreeSet<(u64, u32)>,
    /// 0: waiters are never dropped for idling.
    idle_timeout_ms: u64,
}

impl WaitingRoom {
    pub fn new() -> Self {
        WaitingRoom::default()
    }

    /// QUEUE.JOIN: the user's position, or 0 if they hold a valid pass.
    pub fn join(&mut self, user: &[u8], now_ms: u64) -> Result<u64, String> {
        if user.len() > USER_ID_BYTES_MAX {
            return Err(format!("ERR user id longer than {USER_ID_BYTES_MAX} bytes"));
        }
        let known = self.entry_id_by_user.get(user).copied();
        let mut frees_a_place = false;
        if let Some(entry_id) = known {
            match self.entry(entry_id).state {
                EntryState::Waiting {
                    ticket,
                    last_seen_ms,
                } if !self.is_idle(last_seen_ms, now_ms) => {
                    self.refresh(entry_id, ticket, last_seen_ms, now_ms);
                    return Ok(self.rank(ticket));
                }
                EntryState::Admitted { pass_expires_ms } if now_ms < pass_expires_ms => {
                    return Ok(0)
                }
                // Idle past the timeout (their place is freed), or the pass expired (no place to free): the
                // user is gone and joins anew.
                EntryState::Waiting { .. } => frees_a_place = true,
                EntryState::Admitted { .. } => {}
            }
        }
        // Checked before any change, so a refused JOIN changes nothing.
        if !frees_a_place && self.waiting_count >= QUEUE_WAITERS_MAX {
            return Err(format!(
                "ERR waiting room is full ({QUEUE_WAITERS_MAX} waiters)"
            ));
        }
        if let Some(entry_id) = known {
            self.remove_entry(entry_id);
        }
        Ok(self.enqueue(user, now_ms))
    }

    /// QUEUE.POS: Some(position) while waiting, Some(0) with a valid pass, None if unknown.
    pub fn position(&mut self, user: &[u8], now_ms: u64) -> Option<u64> {
        let entry_id = self.entry_id_by_user.get(user).copied()?;
        match self.entry(entry_id).state {
            EntryState::Waiting {
                ticket,
                last_seen_ms,
            } if !self.is_idle(last_seen_ms, now_ms) => {
                self.refresh(entry_id, ticket, last_seen_ms, now_ms);
                Some(self.rank(ticket))
            }
            EntryState::Admitted { pass_expires_ms } if now_ms < pass_expires_ms => Some(0),
            _ => {
                self.remove_entry(entry_id);
                None
            }
        }
    }

    /// The position of a waiting user without counting as a poll or dropping anyone: for tests, INFO and
    /// debugging. Idlers not dropped yet still have their place here.
    pub fn rank_of(&self, user: &[u8]) -> Option<u64> {
        let entry_id = *self.entry_id_by_user.get(user)?;
        match self.entry(entry_id).state {
            EntryState::Waiting { ticket, .. } => Some(self.rank(ticket)),
            EntryState::Admitted { .. } => None,
        }
    }

    /// QUEUE.ADMIT: the users let in, in line order.
    pub fn admit(
        &mut self,
        count: u64,
        pass_ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<Vec<u8>>, String> {
        if count == 0 || count > QUEUE_ADMIT_COUNT_MAX {
            return Err(format!(
                "ERR count must be between 1 and {QUEUE_ADMIT_COUNT_MAX}"
            ));
        }
        if pass_ttl_ms == 0 || pass_ttl_ms > QUEUE_PASS_TTL_MS_MAX {
            return Err(format!(
                "ERR pass ttl must be between 1 and {QUEUE_PASS_TTL_MS_MAX} ms"
            ));
        }
        let pass_expires_ms = now_ms.saturating_add(pass_ttl_ms);
        let mut admitted = Vec::new();
        while (admitted.len() as u64) < count && self.line_head < self.line.len() {
            let entry_id = self.line[self.line_head];
            if entry_id == SLOT_VACANT {
                self.line_head += 1;
                continue;
            }
            let EntryState::Waiting {
                ticket,
                last_seen_ms,
            } = self.entry(entry_id).state
            else {
                unreachable!("the line holds waiters only");
            };
            if self.is_idle(last_seen_ms, now_ms) {
                self.remove_entry(entry_id);
                continue;
            }
            self.line_vacate(ticket);
            assert!(self.idle_order.remove(&(last_seen_ms, entry_id)));
            assert!(self.pass_order.insert((pass_expires_ms, entry_id)));
            let entry = self.entries[entry_id as usize]
                .as_mut()
                .expect("a live entry");
            entry.state = EntryState::Admitted { pass_expires_ms };
            admitted.push(entry.user.to_vec());
        }
        self.line_compact_if_sparse();
        Ok(admitted)
    }

    /// QUEUE.PASS: true while the user holds a valid pass.
    pub fn has_pass(&self, user: &[u8], now_ms: u64) -> bool {
        self.entry_id_by_user.get(user).is_some_and(|&entry_id| {
            matches!(self.entry(entry_id).state, EntryState::Admitted { pass_expires_ms } if now_ms < pass_expires_ms)
        })
    }

    /// QUEUE.LEAVE: true if the user was waiting (not idle past the timeout) or held a valid pass.
    pub fn leave(&mut self, user: &[u8], now_ms: u64) -> bool {
        let Some(entry_id) = self.entry_id_by_user.get(user).copied() else {
            return false;
        };
        let present = match self.entry(entry_id).state {
            EntryState::Waiting { last_seen_ms, .. } => !self.is_idle(last_seen_ms, now_ms),
            EntryState::Admitted { pass_expires_ms } => now_ms < pass_expires_ms,
        };
        self.remove_entry(entry_id);
        present
    }

    /// True while the room holds any entry for `user` (waiting, idle but not dropped yet, or admitted with a
    /// pass not removed yet). Every JOIN, POS and LEAVE of a known user may change the room; the command
    /// layer uses this to decide what to log.
    pub fn is_known(&self, user: &[u8]) -> bool {
        self.entry_id_by_user.contains_key(user)
    }

    /// QUEUE.LEN: users waiting, idlers not yet dropped included.
    pub fn waiting_count(&self) -> u64 {
        self.waiting_count as u64
    }

    /// No waiters and no passes (valid or not yet expired away). The room's configuration is its only state.
    pub fn is_empty(&self) -> bool {
        self.entry_id_by_user.is_empty()
    }

    /// QUEUE.CONFIG room IDLE ms (0: never drop). Applies at once to every waiter's last poll.
    pub fn set_idle_timeout_ms(&mut self, idle_timeout_ms: u64) -> Result<(), String> {
        if idle_timeout_ms > QUEUE_IDLE_TIMEOUT_MS_MAX {
            return Err(format!(
                "ERR idle timeout must be at most {QUEUE_IDLE_TIMEOUT_MS_MAX} ms"
            ));
        }
        self.idle_timeout_ms = idle_timeout_ms;
        Ok(())
    }

    pub fn idle_timeout_ms(&self) -> u64 {
        self.idle_timeout_ms
    }

    /// Drops up to `count_max` waiters idle past the timeout, longest idle first; returns them (to be
    /// logged). For the loop's active cycle.
    pub fn expire_idle(&mut self, now_ms: u64, count_max: usize) -> Vec<Vec<u8>> {
        let mut dropped = Vec::new();
        while dropped.len() < count_max {
            let Some(&(last_seen_ms, entry_id)) = self.idle_order.first() else {
                break;
            };
            if !self.is_idle(last_seen_ms, now_ms) {
                break;
            }
            dropped.push(self.entry(entry_id).user.to_vec());
            self.remove_entry(entry_id);
        }
        dropped
    }

    /// Removes up to `count_max` expired passes, soonest expiry first; returns their holders (to be logged,
    /// so a replayed room holds exactly the same entries). Changes no answer (see Durability).
    pub fn expire_passes(&mut self, now_ms: u64, count_max: usize) -> Vec<Vec<u8>> {
        let mut removed = Vec::new();
        while removed.len() < count_max {
            let Some(&(pass_expires_ms, entry_id)) = self.pass_order.first() else {
                break;
            };
            if now_ms < pass_expires_ms {
                break;
            }
            removed.push(self.entry(entry_id).user.to_vec());
            self.remove_entry(entry_id);
        }
        removed
    }

    /// The earliest time at which `expire_idle` or `expire_passes` would have work, if any.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        let idle = (self.idle_timeout_ms > 0)
            .then(|| {
                self.idle_order
                    .first()
                    .map(|&(last_seen_ms, _)| last_seen_ms.saturating_add(self.idle_timeout_ms))
            })
            .flatten();
        let pass = self
            .pass_order
            .first()
            .map(|&(pass_expires_ms, _)| pass_expires_ms);
        match (idle, pass) {
            (Some(idle), Some(pass)) => Some(idle.min(pass)),
            (deadline, None) | (None, deadline) => deadline,
        }
    }

    /// Users known to the room, waiting or admitted: what its serialization's cost grows with.
    pub fn known_user_count(&self) -> usize {
        self.entry_id_by_user.len()
    }

    /// Estimated bytes: capacities of the vectors, and per-element estimates for the B-trees (entries
    /// plus about a half again of node overhead).
    pub fn approximate_memory_bytes(&self) -> usize {
        use std::mem::size_of;
        const BTREE_OVERHEAD_NUMERATOR: usize = 3;
        const BTREE_OVERHEAD_DENOMINATOR: usize = 2;
        let user_bytes: usize = self
            .entries
            .iter()
            .flatten()
            .map(|entry| entry.user.len())
            .sum();
        let btree_elements = self.entry_id_by_user.len()
            * (size_of::<Box<[u8]>>() + size_of::<u32>())
            + (self.idle_order.len() + self.pass_order.len()) * size_of::<(u64, u32)>();
        size_of::<Self>()
            + self.entries.capacity() * size_of::<Option<Entry>>()
            + self.free_entry_ids.capacity() * size_of::<u32>()
            + 2 * user_bytes // once in the entry, once as the map's key
            + btree_elements * BTREE_OVERHEAD_NUMERATOR / BTREE_OVERHEAD_DENOMINATOR
            + (self.line.capacity() + self.line_ranks.capacity()) * size_of::<u32>()
    }

    /// Asserts every structural invariant; O(n log n). In tests, and in debug builds after a snapshot load
    /// and after replay (`Value::check_invariants`).
    pub fn check_invariants(&self) {
        assert_eq!(self.line.len(), self.line_ranks.len());
        assert!(self.line[..self.line_head]
            .iter()
            .all(|&slot| slot == SLOT_VACANT));
        let occupied: Vec<(usize, u32)> = self
            .line
            .iter()
            .enumerate()
            .filter(|(_, &slot)| slot != SLOT_VACANT)
            .map(|(t, &s)| (t, s))
            .collect();
        assert_eq!(occupied.len(), self.waiting_count);
        assert_eq!(self.idle_order.len(), self.waiting_count);
        for (rank, &(ticket, entry_id)) in occupied.iter().enumerate() {
            assert_eq!(self.rank(ticket as u32), rank as u64 + 1);
            let EntryState::Waiting {
                ticket: entry_ticket,
                last_seen_ms,
            } = self.entry(entry_id).state
            else {
                panic!("a line slot points at a non-waiter");
            };
            assert_eq!(entry_ticket as usize, ticket);
            assert!(self.idle_order.contains(&(last_seen_ms, entry_id)));
        }
        let live = self.entries.iter().flatten().count();
        assert_eq!(live, self.entry_id_by_user.len());
        assert_eq!(live + self.free_entry_ids.len(), self.entries.len());
        assert_eq!(live, self.waiting_count + self.pass_order.len());
        for (user, &entry_id) in &self.entry_id_by_user {
            assert_eq!(&self.entry(entry_id).user, user);
            if let EntryState::Admitted { pass_expires_ms } = self.entry(entry_id).state {
                assert!(self.pass_order.contains(&(pass_expires_ms, entry_id)));
            }
        }
        assert!(self.line.len() < QUEUE_LINE_COMPACT_MIN.max(2 * self.waiting_count + 1) + 1);
    }

    // --- entries -----------------------------------------------------------------------------------------

    fn entry(&self, entry_id: u32) -> &Entry {
        self.entries[entry_id as usize]
            .as_ref()
            .expect("a live entry")
    }

    fn is_idle(&self, last_seen_ms: u64, now_ms: u64) -> bool {
        self.idle_timeout_ms > 0 && now_ms >= last_seen_ms.saturating_add(self.idle_timeout_ms)
    }

    fn refresh(&mut self, entry_id: u32, ticket: u32, last_seen_ms: u64, now_ms: u64) {
        // A clock that stepped back must not make anyone look idle sooner.
        let seen_ms = last_seen_ms.max(now_ms);
        assert!(self.idle_order.remove(&(last_seen_ms, entry_id)));
        assert!(self.idle_order.insert((seen_ms, entry_id)));
        let entry = self.entries[entry_id as usize]
            .as_mut()
            .expect("a live entry");
        entry.state = EntryState::Waiting {
            ticket,
            last_seen_ms: seen_ms,
        };
    }

    /// Puts a new user at the back of the line; returns their position.
    fn enqueue(&mut self, user: &[u8], now_ms: u64) -> u64 {
        assert!(self.waiting_count < QUEUE_WAITERS_MAX);
        let ticket = self.line.len() as u32;
        let entry = Entry {
            user: user.into(),
            state: EntryState::Waiting {
                ticket,
                last_seen_ms: now_ms,
            },
        };
        let entry_id = match self.free_entry_ids.pop() {
            Some(entry_id) => {
                self.entries[entry_id as usize] = Some(entry);
                entry_id
            }
            None => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
        };
        assert!(self
            .entry_id_by_user
            .insert(user.into(), entry_id)
            .is_none());
        assert!(self.idle_order.insert((now_ms, entry_id)));
        self.line_push(entry_id);
        self.waiting_count += 1;
        let position = self.rank(ticket);
        assert_eq!(position, self.waiting_count as u64, "a newcomer is last");
        position
    }

    /// Forgets a user entirely: out of the line, the schedules and the map.
    fn remove_entry(&mut self, entry_id: u32) {
        let entry = self.entries[entry_id as usize]
            .take()
            .expect("a live entry");
        match entry.state {
            EntryState::Waiting {
                ticket,
                last_seen_ms,
            } => {
                self.line_vacate(ticket);
                assert!(self.idle_order.remove(&(last_seen_ms, entry_id)));
            }
            EntryState::Admitted { pass_expires_ms } => {
                assert!(self.pass_order.remove(&(pass_expires_ms, entry_id)));
            }
        }
        assert_eq!(self.entry_id_by_user.remove(&entry.user), Some(entry_id));
        self.free_entry_ids.push(entry_id);
        self.line_compact_if_sparse();
    }

    // --- the line: slots by ticket, with a Fenwick tree for ranks -------------------------------------------

    /// The position of an occupied ticket: occupied slots up to and including it.
    fn rank(&self, ticket: u32) -> u64 {
        assert_ne!(self.line[ticket as usize], SLOT_VACANT);
        u64::from(fenwick_prefix_sum(&self.line_ranks, ticket as usize + 1))
    }

    fn line_push(&mut self, entry_id: u32) {
        let index = self.line.len() + 1; // 1-based, as Fenwick trees count
        let covered_from = index - lowest_bit(index);
        // The new node covers (covered_from, index]: the earlier slots of that range plus itself.
        let node = fenwick_prefix_sum(&self.line_ranks, index - 1)
            - fenwick_prefix_sum(&self.line_ranks, covered_from)
            + 1;
        self.line.push(entry_id);
        self.line_ranks.push(node);
    }

    fn line_vacate(&mut self, ticket: u32) {
        let slot = &mut self.line[ticket as usize];
        assert_ne!(*slot, SLOT_VACANT);
        *slot = SLOT_VACANT;
        let mut index = ticket as usize + 1;
        while index <= self.line_ranks.len() {
            self.line_ranks[index - 1] -= 1;
            index += lowest_bit(index);
        }
        self.waiting_count -= 1;
    }

    /// Renumbers tickets densely, in order, once more than half the line is vacant: ranks are unchanged, and
    /// the work is paid for by the departures that made the line sparse.
    fn line_compact_if_sparse(&mut self) {
        let sparse =
            self.line.len() >= QUEUE_LINE_COMPACT_MIN && self.waiting_count * 2 < self.line.len();
        if !(sparse || (self.waiting_count == 0 && !self.line.is_empty())) {
            return;
        }
        let occupied: Vec<u32> = self.line[self.line_head..]
            .iter()
            .copied()
            .filter(|&s| s != SLOT_VACANT)
            .collect();
        assert_eq!(occupied.len(), self.waiting_count);
        for (ticket, &entry_id) in occupied.iter().enumerate() {
            let entry = self.entries[entry_id as usize]
                .as_mut()
                .expect("a live entry");
            let EntryState::Waiting { last_seen_ms, .. } = entry.state else {
                unreachable!("the line holds waiters")
            };
            entry.state = EntryState::Waiting {
                ticket: ticket as u32,
                last_seen_ms,
            };
        }
        self.line_ranks = fenwick_of_ones(occupied.len());
        self.line = occupied;
        self.line_head = 0;
    }
}

fn lowest_bit(index: usize) -> usize {
    index & index.wrapping_neg()
}

/// Sum of the first `count` elements.
fn fenwick_prefix_sum(tree: &[u32], count: usize) -> u32 {
    let mut sum = 0;
    let mut index = count;
    while index > 0 {
        sum += tree[index - 1];
        index -= lowest_bit(index);
    }
    sum
}

/// The Fenwick tree of `length` ones, in O(length): node i covers lowest_bit(i) elements.
fn fenwick_of_ones(length: usize) -> Vec<u32> {
    (1..=length).map(|index| lowest_bit(index) as u32).collect()
}

#[cfg(test)]
mod tests;
