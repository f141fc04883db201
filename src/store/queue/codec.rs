//! A waiting room's snapshot encoding (conventions in `store::encoding`).

use super::{Entry, EntryState, WaitingRoom, SLOT_VACANT};
use crate::store::encoding::{put_bytes, put_count, put_u32, put_u32s, put_u64, put_u8, Reader};

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
