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
//! removed it. dibs logs them anyway (`queue_commands`), so a replayed room equals the live one.

use crate::limits::{
    QUEUE_ADMIT_COUNT_MAX, QUEUE_IDLE_TIMEOUT_MS_MAX, QUEUE_LINE_COMPACT_MIN,
    QUEUE_PASS_TTL_MS_MAX, QUEUE_WAITERS_MAX, USER_ID_BYTES_MAX,
};
use crate::store::encoding::{put_bytes, put_count, put_u32, put_u32s, put_u64, put_u8, Reader};
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

    /// Asserts every structural invariant; O(n log n). For tests and debug checks after replay.
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

impl WaitingRoom {
    /// Snapshot encoding (see `store::encoding`): entries by id (free ids included), the line and its
    /// Fenwick tree, the head and the idle timeout. The user map, both schedules and the waiting count
    /// are functions of the entries and are rebuilt on decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_count(out, self.entries.len());
        for entry in &self.entries {
            match entry {
                None => put_u8(out, 0),
                Some(Entry { user, state }) => {
                    match state {
                        EntryState::Waiting {
                            ticket,
                            last_seen_ms,
                        } => {
                            put_u8(out, 1);
                            put_u32(out, *ticket);
                            put_u64(out, *last_seen_ms);
                        }
                        EntryState::Admitted { pass_expires_ms } => {
                            put_u8(out, 2);
                            put_u64(out, *pass_expires_ms);
                        }
                    }
                    put_bytes(out, user);
                }
            }
        }
        put_u32s(out, &self.free_entry_ids);
        put_u32s(out, &self.line);
        put_u32s(out, &self.line_ranks);
        put_count(out, self.line_head);
        put_u64(out, self.idle_timeout_ms);
    }

    pub fn decode(reader: &mut Reader) -> Result<WaitingRoom, String> {
        let entry_count = reader.count(1)?;
        let mut room = WaitingRoom::new();
        for entry_id in 0..entry_count {
            let state = match reader.u8()? {
                0 => {
                    room.entries.push(None);
                    continue;
                }
                1 => EntryState::Waiting {
                    ticket: reader.u32()?,
                    last_seen_ms: reader.u64()?,
                },
                2 => EntryState::Admitted {
                    pass_expires_ms: reader.u64()?,
                },
                tag => return Err(format!("unknown waiting room entry tag {tag}")),
            };
            let user: Box<[u8]> = reader.bytes()?.into();
            let entry_id = entry_id as u32;
            match state {
                EntryState::Waiting { last_seen_ms, .. } => {
                    room.idle_order.insert((last_seen_ms, entry_id));
                    room.waiting_count += 1;
                }
                EntryState::Admitted { pass_expires_ms } => {
                    room.pass_order.insert((pass_expires_ms, entry_id));
                }
            }
            if room
                .entry_id_by_user
                .insert(user.clone(), entry_id)
                .is_some()
            {
                return Err("a waiting room user appears twice".to_string());
            }
            room.entries.push(Some(Entry { user, state }));
        }
        room.free_entry_ids = reader.u32s()?;
        room.line = reader.u32s()?;
        room.line_ranks = reader.u32s()?;
        room.line_head = reader.u64()? as usize;
        room.idle_timeout_ms = reader.u64()?;
        let occupied = room
            .line
            .iter()
            .filter(|&&slot| slot != SLOT_VACANT)
            .count();
        if room.line.len() != room.line_ranks.len()
            || room.line_head > room.line.len()
            || occupied != room.waiting_count
            || room.line.iter().any(|&slot| {
                slot != SLOT_VACANT && room.entries.get(slot as usize).is_none_or(Option::is_none)
            })
        {
            return Err("a waiting room's line does not match its entries".to_string());
        }
        Ok(room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const NOW: u64 = 1_700_000_000_000;

    fn users(admitted: Vec<Vec<u8>>) -> Vec<String> {
        admitted
            .into_iter()
            .map(|user| String::from_utf8(user).unwrap())
            .collect()
    }

    #[test]
    fn join_returns_positions_and_joining_again_keeps_ones_place() {
        let mut room = WaitingRoom::new();
        assert_eq!(room.join(b"a", NOW), Ok(1));
        assert_eq!(room.join(b"b", NOW), Ok(2));
        assert_eq!(room.join(b"c", NOW), Ok(3));
        assert_eq!(room.join(b"a", NOW + 1), Ok(1));
        assert_eq!(room.join(b"c", NOW + 1), Ok(3));
        assert_eq!(room.position(b"b", NOW + 2), Some(2));
        assert_eq!(room.position(b"zed", NOW + 2), None);
        assert_eq!(room.waiting_count(), 3);
        assert!(room.join(&[b'x'; USER_ID_BYTES_MAX + 1], NOW).is_err());
        room.check_invariants();
    }

    #[test]
    fn admit_hands_out_passes_in_order() {
        let mut room = WaitingRoom::new();
        for user in [b"a", b"b", b"c"] {
            room.join(user, NOW).unwrap();
        }
        assert_eq!(users(room.admit(2, 1_000, NOW).unwrap()), ["a", "b"]);
        assert_eq!(room.position(b"a", NOW), Some(0));
        assert_eq!(room.position(b"c", NOW), Some(1));
        assert_eq!(room.waiting_count(), 1);
        assert!(room.has_pass(b"a", NOW + 999));
        assert!(
            !room.has_pass(b"a", NOW + 1_000),
            "valid until now + ttl, exclusive"
        );
        assert!(!room.has_pass(b"c", NOW));
        // Joining with a valid pass changes nothing.
        assert_eq!(room.join(b"b", NOW + 10), Ok(0));
        assert_eq!(room.waiting_count(), 1);
        // After expiry the user is unknown, and a JOIN goes to the back.
        assert_eq!(room.position(b"a", NOW + 1_000), None);
        assert_eq!(room.join(b"b", NOW + 1_000), Ok(2));
        assert_eq!(
            users(room.admit(10, 1_000, NOW + 1_000).unwrap()),
            ["c", "b"]
        );
        assert_eq!(room.admit(1, 1_000, NOW + 1_000), Ok(vec![]));
        room.check_invariants();
    }

    #[test]
    fn a_full_room_refuses_newcomers_and_expired_pass_holders_but_keeps_waiters() {
        let mut room = WaitingRoom::new();
        room.join(b"admitted", NOW).unwrap();
        room.admit(1, 10, NOW).unwrap();
        room.join(b"waiting", NOW).unwrap();
        // Pretend the other places are taken: only the capacity check reads the count before a change.
        room.waiting_count = QUEUE_WAITERS_MAX;
        assert!(room.join(b"new", NOW).unwrap_err().contains("full"));
        assert!(room
            .join(b"admitted", NOW + 10)
            .unwrap_err()
            .contains("full"));
        assert_eq!(room.join(b"waiting", NOW + 10), Ok(1));
        assert!(
            room.entry_id_by_user.contains_key(&b"admitted"[..]),
            "a refused JOIN changed nothing"
        );
    }

    #[test]
    fn admit_validates_its_arguments() {
        let mut room = WaitingRoom::new();
        room.join(b"a", NOW).unwrap();
        assert!(room.admit(0, 1_000, NOW).is_err());
        assert!(room.admit(QUEUE_ADMIT_COUNT_MAX + 1, 1_000, NOW).is_err());
        assert!(room.admit(1, 0, NOW).is_err());
        assert!(room.admit(1, QUEUE_PASS_TTL_MS_MAX + 1, NOW).is_err());
        assert_eq!(room.waiting_count(), 1, "a refused command changes nothing");
        assert!(room
            .set_idle_timeout_ms(QUEUE_IDLE_TIMEOUT_MS_MAX + 1)
            .is_err());
        assert_eq!(room.idle_timeout_ms(), 0);
    }

    #[test]
    fn leave_removes_waiters_and_revokes_passes() {
        let mut room = WaitingRoom::new();
        for user in [b"a", b"b", b"c"] {
            room.join(user, NOW).unwrap();
        }
        room.admit(1, 100, NOW).unwrap();
        assert!(room.leave(b"b", NOW));
        assert!(!room.leave(b"b", NOW));
        assert_eq!(room.position(b"c", NOW), Some(1));
        assert!(room.leave(b"a", NOW));
        assert!(!room.has_pass(b"a", NOW));
        room.admit(1, 100, NOW).unwrap();
        assert!(
            !room.leave(b"c", NOW + 100),
            "an expired pass is nothing to leave"
        );
        assert!(room.is_empty());
        room.check_invariants();
    }

    #[test]
    fn idle_waiters_are_dropped_lazily_and_actively() {
        let mut room = WaitingRoom::new();
        room.set_idle_timeout_ms(1_000).unwrap();
        for user in [b"a", b"b", b"c", b"d"] {
            room.join(user, NOW).unwrap();
        }
        assert_eq!(room.next_deadline_ms(), Some(NOW + 1_000));
        assert_eq!(room.position(b"b", NOW + 500), Some(2)); // a poll keeps b's spot
        assert_eq!(room.join(b"d", NOW + 600), Ok(4));
        // At NOW + 1000 a and c are idle. c touching the room sees itself dropped and rejoins at the back.
        assert_eq!(room.position(b"c", NOW + 1_000), None);
        assert_eq!(room.join(b"c", NOW + 1_000), Ok(4));
        // a still holds its place for others until the active cycle drops it.
        assert_eq!(room.rank_of(b"b"), Some(2));
        assert_eq!(room.next_deadline_ms(), Some(NOW + 1_000));
        assert_eq!(users(room.expire_idle(NOW + 1_000, 10)), ["a"]);
        assert_eq!(room.rank_of(b"b"), Some(1));
        assert_eq!(room.next_deadline_ms(), Some(NOW + 1_500));
        // ADMIT skips (and drops) idlers at the front.
        assert_eq!(users(room.admit(1, 100, NOW + 1_500).unwrap()), ["d"]);
        assert_eq!(room.position(b"b", NOW + 1_500), None);
        assert_eq!(room.next_deadline_ms(), Some(NOW + 1_600), "d's pass");
        // Turning the timeout off keeps everyone.
        room.set_idle_timeout_ms(0).unwrap();
        assert_eq!(room.position(b"c", NOW + 1_000_000), Some(1));
        room.check_invariants();
    }

    #[test]
    fn sweeps_are_bounded() {
        let mut room = WaitingRoom::new();
        room.set_idle_timeout_ms(10).unwrap();
        for user in 0..10u32 {
            room.join(user.to_string().as_bytes(), NOW).unwrap();
        }
        assert_eq!(room.expire_idle(NOW + 10, 3).len(), 3);
        assert_eq!(room.waiting_count(), 7);
        room.set_idle_timeout_ms(0).unwrap();
        room.admit(7, 5, NOW + 10).unwrap();
        assert_eq!(room.expire_passes(NOW + 14, 100).len(), 0);
        assert_eq!(room.expire_passes(NOW + 15, 4).len(), 4);
        assert_eq!(room.expire_passes(NOW + 15, 4).len(), 3);
        assert!(room.is_empty());
        assert_eq!(room.next_deadline_ms(), None);
        room.check_invariants();
    }

    #[test]
    fn the_line_compacts_and_ranks_survive() {
        let mut room = WaitingRoom::new();
        for user in 0..5_000u32 {
            room.join(user.to_string().as_bytes(), NOW).unwrap();
        }
        for user in (0..5_000u32).filter(|user| user % 4 != 0) {
            assert!(room.leave(user.to_string().as_bytes(), NOW));
        }
        room.admit(200, 1_000, NOW).unwrap();
        room.check_invariants();
        assert!(
            room.line.len() < 2_000,
            "compacted: {} slots",
            room.line.len()
        );
        assert_eq!(room.position(b"800", NOW), Some(1));
        assert_eq!(room.position(b"4996", NOW), Some(1_050));
    }

    #[derive(Clone, Debug)]
    enum Operation {
        Join(usize),
        Position(usize),
        Leave(usize),
        HasPass(usize),
        Admit(u64, u64),
        Advance(u64),
        ExpireIdle(usize),
        ExpirePasses,
        SetIdle(u64),
    }

    fn operations(users: usize) -> impl Strategy<Value = Vec<Operation>> {
        let operation = prop_oneof![
            6 => (0..users).prop_map(Operation::Join),
            4 => (0..users).prop_map(Operation::Position),
            2 => (0..users).prop_map(Operation::Leave),
            1 => (0..users).prop_map(Operation::HasPass),
            2 => (1..4u64, 1..200u64).prop_map(|(count, ttl)| Operation::Admit(count, ttl)),
            3 => (0..80u64).prop_map(Operation::Advance),
            1 => (1..4usize).prop_map(Operation::ExpireIdle),
            1 => Just(Operation::ExpirePasses),
            1 => prop_oneof![Just(0u64), Just(50), Just(300)].prop_map(Operation::SetIdle),
        ];
        proptest::collection::vec(operation, 0..300)
    }

    /// A FIFO of (user, last seen, join instance) and a map of passes: the waiting room, slowly.
    #[derive(Default)]
    struct Model {
        line: Vec<(usize, u64, u64)>,
        passes: HashMap<usize, u64>,
        idle_timeout_ms: u64,
        instance_next: u64,
    }

    impl Model {
        fn is_idle(&self, last_seen_ms: u64, now_ms: u64) -> bool {
            self.idle_timeout_ms > 0 && now_ms >= last_seen_ms + self.idle_timeout_ms
        }

        fn find(&self, user: usize) -> Option<usize> {
            self.line.iter().position(|&(waiter, _, _)| waiter == user)
        }

        fn enqueue(&mut self, user: usize, now_ms: u64) -> u64 {
            self.line.push((user, now_ms, self.instance_next));
            self.instance_next += 1;
            self.line.len() as u64
        }
    }

    fn run_against_model(operations: &[Operation]) -> WaitingRoom {
        let name = |user: usize| format!("user{user}").into_bytes();
        let mut room = WaitingRoom::new();
        let mut model = Model::default();
        let mut now = NOW;
        // Join instance -> the last position seen: a waiting user's position never increases.
        let mut last_positions: HashMap<u64, u64> = HashMap::new();
        for operation in operations {
            match *operation {
                Operation::Join(user) => {
                    let expected = if let Some(index) = model.find(user) {
                        if model.is_idle(model.line[index].1, now) {
                            model.line.remove(index);
                            model.enqueue(user, now)
                        } else {
                            model.line[index].1 = now;
                            index as u64 + 1
                        }
                    } else if model
                        .passes
                        .get(&user)
                        .is_some_and(|&expires| now < expires)
                    {
                        0
                    } else {
                        model.passes.remove(&user);
                        model.enqueue(user, now)
                    };
                    assert_eq!(room.join(&name(user), now), Ok(expected));
                }
                Operation::Position(user) => {
                    let expected = if let Some(index) = model.find(user) {
                        if model.is_idle(model.line[index].1, now) {
                            model.line.remove(index);
                            None
                        } else {
                            model.line[index].1 = now;
                            Some(index as u64 + 1)
                        }
                    } else if model
                        .passes
                        .get(&user)
                        .is_some_and(|&expires| now < expires)
                    {
                        Some(0)
                    } else {
                        model.passes.remove(&user);
                        None
                    };
                    assert_eq!(room.position(&name(user), now), expected);
                }
                Operation::Leave(user) => {
                    let expected = if let Some(index) = model.find(user) {
                        let (_, last_seen, _) = model.line.remove(index);
                        !model.is_idle(last_seen, now)
                    } else {
                        model
                            .passes
                            .remove(&user)
                            .is_some_and(|expires| now < expires)
                    };
                    assert_eq!(room.leave(&name(user), now), expected);
                }
                Operation::HasPass(user) => {
                    let expected = model
                        .passes
                        .get(&user)
                        .is_some_and(|&expires| now < expires);
                    assert_eq!(room.has_pass(&name(user), now), expected);
                }
                Operation::Admit(count, ttl) => {
                    let mut expected = Vec::new();
                    while (expected.len() as u64) < count && !model.line.is_empty() {
                        let (user, last_seen, _) = model.line.remove(0);
                        if !model.is_idle(last_seen, now) {
                            model.passes.insert(user, now + ttl);
                            expected.push(name(user));
                        }
                    }
                    assert_eq!(room.admit(count, ttl, now), Ok(expected));
                }
                Operation::Advance(milliseconds) => now += milliseconds,
                Operation::ExpireIdle(count_max) => {
                    let dropped = room.expire_idle(now, count_max);
                    let idle: Vec<(usize, u64)> = model
                        .line
                        .iter()
                        .filter(|&&(_, last_seen, _)| model.is_idle(last_seen, now))
                        .map(|&(user, last_seen, _)| (user, last_seen))
                        .collect();
                    assert_eq!(dropped.len(), idle.len().min(count_max));
                    let dropped_seen: Vec<u64> = dropped
                        .iter()
                        .map(|user| {
                            idle.iter()
                                .find(|(u, _)| name(*u) == *user)
                                .expect("only idlers are dropped")
                                .1
                        })
                        .collect();
                    let kept_seen = idle
                        .iter()
                        .filter(|(u, _)| !dropped.contains(&name(*u)))
                        .map(|&(_, seen)| seen);
                    let newest_dropped = dropped_seen.iter().copied().max().unwrap_or(0);
                    assert!(
                        kept_seen.into_iter().all(|seen| seen >= newest_dropped),
                        "longest idle first"
                    );
                    model
                        .line
                        .retain(|&(user, _, _)| !dropped.contains(&name(user)));
                }
                Operation::ExpirePasses => {
                    let expired = model
                        .passes
                        .values()
                        .filter(|&&expires| now >= expires)
                        .count();
                    assert_eq!(room.expire_passes(now, usize::MAX).len(), expired);
                    model.passes.retain(|_, &mut expires| now < expires);
                }
                Operation::SetIdle(milliseconds) => {
                    room.set_idle_timeout_ms(milliseconds).unwrap();
                    model.idle_timeout_ms = milliseconds;
                }
            }
            assert_eq!(room.waiting_count(), model.line.len() as u64);
            for (index, &(user, _, instance)) in model.line.iter().enumerate() {
                let position = index as u64 + 1;
                assert_eq!(room.rank_of(&name(user)), Some(position));
                if let Some(&last) = last_positions.get(&instance) {
                    assert!(
                        position <= last,
                        "a waiting user's position never increases"
                    );
                }
                last_positions.insert(instance, position);
            }
            let idle_deadline = (model.idle_timeout_ms > 0)
                .then(|| {
                    model
                        .line
                        .iter()
                        .map(|&(_, seen, _)| seen + model.idle_timeout_ms)
                        .min()
                })
                .flatten();
            let pass_deadline = model.passes.values().copied().min();
            let expected = [idle_deadline, pass_deadline].into_iter().flatten().min();
            assert_eq!(room.next_deadline_ms(), expected);
        }
        room.check_invariants();
        room
    }

    proptest! {
        #[test]
        fn agrees_with_a_fifo_and_positions_never_increase(operations in operations(12)) {
            run_against_model(&operations);
        }

        #[test]
        fn the_same_operations_give_the_same_state(operations in operations(30)) {
            prop_assert_eq!(run_against_model(&operations), run_against_model(&operations));
        }
    }

    #[test]
    fn snapshot_encoding_round_trips_waiters_passes_and_vacancies() {
        let mut room = WaitingRoom::new();
        room.set_idle_timeout_ms(1_000).unwrap();
        for user in 0..50 {
            room.join(format!("u{user}").as_bytes(), user).unwrap();
        }
        room.admit(10, 500, 100).unwrap();
        room.leave(b"u20", 100);
        room.leave(b"u3", 100);
        let mut out = Vec::new();
        room.encode(&mut out);
        let mut reader = Reader::new(&out);
        let mut decoded = WaitingRoom::decode(&mut reader).expect("decodes");
        reader.finish().expect("every byte read");
        decoded.check_invariants();
        assert_eq!(decoded, room);
        assert!(WaitingRoom::decode(&mut Reader::new(&out[..out.len() - 1])).is_err());
        assert_eq!(decoded.position(b"u30", 200), room.position(b"u30", 200));
        for copy in [&mut room, &mut decoded] {
            copy.join(b"new", 200).unwrap();
            copy.expire_idle(1_040, 100);
        }
        assert_eq!(decoded, room);
    }
}
