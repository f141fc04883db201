//! Timers: the earliest internal deadline of each value that has one (stock reservations, waiting-room
//! passes and idle waiters, stale rate limiters), in an index ordered by deadline, so the loop's active
//! cycle finds due values without scanning.

use super::expiry::pop_due;
use super::{Key, Keyspace};

impl Keyspace {
    /// Registers (or with `None` clears) the earliest internal deadline of the value at `key`.
    pub fn set_timer(&mut self, key: &[u8], deadline_ms: Option<u64>) {
        if self.timer_of.is_empty() && deadline_ms.is_none() {
            return;
        }
        if let Some((stored_key, old)) = self.timer_of.remove_entry(key) {
            self.timers.remove(&(old, stored_key));
        }
        if let Some(at) = deadline_ms {
            let key = Key::copy_from_slice(key);
            self.timers.insert((at, key.clone()));
            self.timer_of.insert(key, at);
        }
    }

    pub fn next_timer_ms(&self) -> Option<u64> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Removes and returns up to `count_max` keys whose timer is due at `now_ms`; the caller fires each
    /// and registers the value's next deadline.
    pub fn take_due_timers(&mut self, now_ms: u64, count_max: usize) -> Vec<Key> {
        let due = pop_due(&mut self.timers, now_ms, count_max);
        for key in &due {
            self.timer_of.remove(key);
        }
        due
    }
}
