//! `Shared<T>`: how a collection value (a set, a coupon, a stock, a post's likes, a waiting room) is held,
//! so that a snapshot can take a frozen copy of it in O(1).
//!
//! Guarantees:
//! - It behaves like a `Box<T>`: `Deref`/`DerefMut` reach the value, equality compares values.
//! - `Shared::share` returns a second handle to the value in constant time, without copying. Handles never
//!   see each other's changes: the first `DerefMut` through a handle while another is alive copies the
//!   value (`Arc::make_mut`) and changes the copy. With one handle `DerefMut` costs one atomic read.
//!
//! Why: a compaction must serialize every value as it was at its start. Serializing a value of hundreds of
//! thousands of elements on the loop is a pause of many milliseconds (values are never split), and so
//! would be copying it. A second handle costs nothing to take, and the snapshot writer thread serializes
//! through it off the loop. Commands that would change a value the writer still holds wait for it
//! (`Keyspace::snapshot_holds`), so the copy is a fallback the command paths never take.
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

#[derive(Debug, PartialEq, Eq, Default)]
pub struct Shared<T>(Arc<T>);

impl<T: Clone> Shared<T> {
    pub fn new(value: T) -> Shared<T> {
        Shared(Arc::new(value))
    }

    /// A second handle to the value as it is now; see the module documentation.
    pub fn share(&self) -> Shared<T> {
        Shared(Arc::clone(&self.0))
    }

    /// Whether another handle is alive (the next change copies the value).
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_handle_keeps_the_value_as_it_was_and_a_change_copies_once() {
        let mut shared = Shared::new(vec![1, 2, 3]);
        assert!(!shared.is_shared());
        let frozen = shared.share();
        assert!(shared.is_shared());
        shared.push(4);
        assert!(!shared.is_shared(), "the change copied the value");
        assert_eq!(*frozen, vec![1, 2, 3]);
        assert_eq!(*shared, vec![1, 2, 3, 4]);
        drop(frozen);
        let address = shared.as_ptr();
        shared.push(5);
        assert_eq!(shared.as_ptr(), address, "no copy without a frozen handle");
    }
}
