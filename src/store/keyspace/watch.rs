//! WATCH versions: a key some client watches carries a version that every change to it bumps, so EXEC
//! can tell whether a watched key changed. Nothing is kept for keys nobody watches.

use super::{Key, Keyspace};

#[derive(Debug, Default)]
pub(super) struct Watch {
    pub(super) watchers: u32,
    version: u64,
}

impl Keyspace {
    pub fn watch(&mut self, key: &[u8]) -> u64 {
        let watch = self.watched.entry(Key::copy_from_slice(key)).or_default();
        watch.watchers += 1;
        watch.version
    }

    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(watch) = self.watched.get_mut(key) {
            watch.watchers -= 1;
            if watch.watchers == 0 {
                self.watched.remove(key);
            }
        }
    }

    pub fn watch_version(&self, key: &[u8]) -> u64 {
        self.watched.get(key).map_or(0, |watch| watch.version)
    }

    /// Marks `key` modified for WATCH. Cheap when nobody watches anything.
    pub fn touch(&mut self, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(watch) = self.watched.get_mut(key) {
            self.touches += 1;
            watch.version = self.touches;
        }
    }

    pub fn has_watchers(&self) -> bool {
        !self.watched.is_empty()
    }
}
