//! Bit-packed arrays of 32-bit values: what a post's index chunks and order log are stored in.
//!
//! [`PackedU32s`] keeps every value at one bit width, the fewest bits its largest value needs, in one
//! allocation of 64-bit words (value i at bits `i * width ..`, little-endian across words). A post's
//! sequence numbers need about log2(likes) bits (18 on a post of 190,000 likes) and integer user ids below
//! 50 million 26, instead of 32 each. Insert and remove shift the words above the position by `width`
//! bits, a word at a time, so their cost is a memmove of the packed bytes, like `Vec::insert`'s. A value
//! wider than the width repacks the array at the new width: bounded by the array's length, and at most 32
//! times in its life, since the width never narrows except when an array is rebuilt (split, decode).
//!
//! [`PagedLog`] is a log of such arrays of at most `LOG_PAGE_ENTRIES` each, so that a wider value repacks
//! one page, not the whole log, and only the last page holds spare capacity. A value is stored plus one,
//! so that the order log's tombstone (`u32::MAX`) is stored as 0 and does not widen a page.

use super::shrink_gently;

/// Entries per page of a [`PagedLog`]: a repack on widening moves at most this many values.
pub(super) const LOG_PAGE_ENTRIES: usize = 1024;

/// Values below 2^32 at a common bit width. Garbage may sit in the bits past the last value; every read
/// masks, every write clears its field first.
#[derive(Clone, Debug, Default)]
pub(super) struct PackedU32s {
    /// Capacity: `words.len() * 64 / width` values.
    words: Box<[u64]>,
    length: u32,
    /// Bits per value, 1..=32; 0 while nothing was ever stored.
    width: u8,
}

/// The bits `value` needs (at least 1).
fn bits_needed(value: u32) -> u8 {
    (u32::BITS - value.leading_zeros()).max(1) as u8
}

fn words_for(values: usize, width: u8) -> usize {
    (values * usize::from(width)).div_ceil(64)
}

impl PackedU32s {
    pub(super) fn new() -> Self {
        PackedU32s::default()
    }

    /// Packs `values` at the fewest bits their largest needs, with `spare` values of room.
    pub(super) fn from_values(values: &[u32], spare: usize) -> Self {
        let width = values.iter().copied().map(bits_needed).max().unwrap_or(0);
        let mut packed = PackedU32s {
            words: Box::default(),
            length: 0,
            width,
        };
        if width > 0 {
            packed.words = vec![0; words_for(values.len() + spare, width)].into_boxed_slice();
        }
        for (position, &value) in values.iter().enumerate() {
            packed.write(position, value);
        }
        packed.length = values.len() as u32;
        packed
    }

    #[inline]
    pub(super) fn len(&self) -> usize {
        self.length as usize
    }

    pub(super) fn is_empty(&self) -> bool {
        self.length == 0
    }

    /// Values that fit before the next growth.
    pub(super) fn capacity(&self) -> usize {
        if self.width == 0 {
            0
        } else {
            self.words.len() * 64 / usize::from(self.width)
        }
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.words.len() * std::mem::size_of::<u64>()
    }

    #[inline(always)]
    pub(super) fn get(&self, position: usize) -> u32 {
        debug_assert!(position < self.len());
        self.read(position)
    }

    pub(super) fn last(&self) -> Option<u32> {
        self.len()
            .checked_sub(1)
            .map(|position| self.read(position))
    }

    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = u32> + ExactSizeIterator + '_ {
        (0..self.len()).map(|position| self.read(position))
    }

    pub(super) fn to_vec(&self) -> Vec<u32> {
        self.iter().collect()
    }

    pub(super) fn set(&mut self, position: usize, value: u32) {
        assert!(position < self.len());
        self.widen_for(value);
        self.write(position, value);
    }

    pub(super) fn push(&mut self, value: u32, growth_min: usize) {
        let position = self.len();
        self.widen_for(value);
        self.reserve_one(growth_min);
        self.write(position, value);
        self.length += 1;
    }

    /// Inserts `value` at `position`, moving the values from there one up.
    pub(super) fn insert(&mut self, position: usize, value: u32, growth_min: usize) {
        assert!(position <= self.len());
        self.widen_for(value);
        self.reserve_one(growth_min);
        let width = usize::from(self.width);
        let start = position * width;
        let end = self.len() * width;
        if start < end {
            shift_up(&mut self.words, start, end, width);
        }
        self.write(position, value);
        self.length += 1;
    }

    /// Removes and returns the value at `position`, moving the values above it one down.
    pub(super) fn remove(&mut self, position: usize) -> u32 {
        assert!(position < self.len());
        let value = self.read(position);
        let width = usize::from(self.width);
        let start = position * width;
        let end = self.len() * width;
        if start + width < end {
            shift_down(&mut self.words, start, end, width);
        }
        self.length -= 1;
        value
    }

    /// Splits off the values from `at` on, each half packed at its own width.
    pub(super) fn split_off(&mut self, at: usize, spare: usize) -> PackedU32s {
        let values = self.to_vec();
        *self = PackedU32s::from_values(&values[..at], spare);
        PackedU32s::from_values(&values[at..], spare)
    }

    /// Appends `other`'s values.
    pub(super) fn extend_from(&mut self, other: &PackedU32s, spare: usize) {
        let mut values = self.to_vec();
        values.extend(other.iter());
        *self = PackedU32s::from_values(&values, spare);
    }

    /// Gives back spare capacity beyond an eighth (at least `growth_min` values), so removals free memory.
    pub(super) fn shrink_gently(&mut self, growth_min: usize) {
        let keep = self.len() + (self.len() / 8).max(growth_min);
        if self.capacity() > keep + keep / 2 {
            self.resize_words(words_for(keep, self.width));
        }
    }

    /// Makes room for one more value, growing by an eighth (at least `growth_min` values).
    fn reserve_one(&mut self, growth_min: usize) {
        if self.len() == self.capacity() {
            let values = self.len() + (self.len() / 8).max(growth_min).max(1);
            self.resize_words(words_for(values, self.width));
        }
    }

    /// Repacks at a wider width when `value` does not fit the current one, with room for the value and
    /// an eighth more (the spare room of a narrow array would be many more values at the new width).
    #[inline]
    fn widen_for(&mut self, value: u32) {
        let needed = bits_needed(value);
        if needed > self.width {
            self.widen_to(needed);
        }
    }

    #[cold]
    fn widen_to(&mut self, width: u8) {
        let values = self.to_vec();
        let capacity = values.len() + values.len() / 8 + 1;
        self.width = width;
        self.words = vec![0; words_for(capacity, width)].into_boxed_slice();
        for (position, &old) in values.iter().enumerate() {
            self.write(position, old);
        }
    }

    fn resize_words(&mut self, words: usize) {
        let mut vector = std::mem::take(&mut self.words).into_vec();
        if words > vector.len() {
            vector.reserve_exact(words - vector.len());
        }
        vector.resize(words, 0);
        self.words = vector.into_boxed_slice();
    }

    #[inline(always)]
    fn read(&self, position: usize) -> u32 {
        let width = usize::from(self.width);
        let bit = position * width;
        let word = bit / 64;
        let offset = bit % 64;
        // Without a branch on whether the field crosses into the next word: searches read fields at
        // random positions, so such a branch would be mispredicted about width / 64 of the time. The
        // next word's bits are shifted in by 64 - offset in two steps (a shift by 64 would overflow);
        // past the last word there is nothing to shift in.
        let low = self.words[word] >> offset;
        let next = self.words.get(word + 1).copied().unwrap_or(0);
        let high = (next << 1) << (63 - offset);
        ((low | high) & field_mask(width)) as u32
    }

    /// Writes `value` (which fits the width) into `position`'s field, within capacity.
    #[inline]
    fn write(&mut self, position: usize, value: u32) {
        let width = usize::from(self.width);
        let mask = field_mask(width);
        let value = u64::from(value);
        debug_assert!(value <= mask);
        let bit = position * width;
        let word = bit / 64;
        let offset = bit % 64;
        self.words[word] = (self.words[word] & !(mask << offset)) | (value << offset);
        if offset + width > 64 {
            let high_bits = offset + width - 64;
            let shift = width - high_bits;
            self.words[word + 1] =
                (self.words[word + 1] & !field_mask(high_bits)) | (value >> shift);
        }
    }
}

fn field_mask(width: usize) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// Moves bits `start..end` to `start + width..end + width`; bits below `start` keep their value, the
/// field at `start` is left for the caller to write. `words` holds at least `end + width` bits.
fn shift_up(words: &mut [u64], start: usize, end: usize, width: usize) {
    debug_assert!((1..=32).contains(&width));
    let first = start / 64;
    let last = (end + width - 1) / 64;
    for word in (first + 1..=last).rev() {
        words[word] = (words[word] << width) | (words[word - 1] >> (64 - width));
    }
    let kept = field_mask(start % 64);
    words[first] = (words[first] & kept) | ((words[first] << width) & !kept);
}

/// Moves bits `start + width..end` to `start..end - width`; bits below `start` keep their value.
fn shift_down(words: &mut [u64], start: usize, end: usize, width: usize) {
    debug_assert!((1..=32).contains(&width));
    let first = start / 64;
    let last = (end - 1) / 64;
    let kept = field_mask(start % 64);
    let original_first = words[first];
    for word in first..=last {
        let above = words
            .get(word + 1)
            .map_or(0, |&above| above << (64 - width));
        words[word] = (words[word] >> width) | above;
    }
    words[first] = (original_first & kept) | (words[first] & !kept);
}

/// Two arrays are equal when their values are, whatever their widths and capacities.
impl PartialEq for PackedU32s {
    fn eq(&self, other: &PackedU32s) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for PackedU32s {}

/// One element inline, or any number in a vector. Most posts have one index chunk and one log page;
/// keeping that one inline saves an allocation (and its allocator overhead) per post, and a dependent
/// memory read on every access to it.
#[derive(Clone, Debug)]
pub(super) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany::Many(Vec::new())
    }
}

impl<T> std::ops::Deref for OneOrMany<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        match self {
            OneOrMany::One(element) => std::slice::from_ref(element),
            OneOrMany::Many(elements) => elements,
        }
    }
}

impl<T> std::ops::DerefMut for OneOrMany<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            OneOrMany::One(element) => std::slice::from_mut(element),
            OneOrMany::Many(elements) => elements,
        }
    }
}

/// Equal when the elements are, inline or not.
impl<T: PartialEq> PartialEq for OneOrMany<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for OneOrMany<T> {}

impl<T> OneOrMany<T> {
    pub(super) fn push(&mut self, element: T) {
        let length = self.len();
        self.insert(length, element);
    }

    /// Inserts at `index`; a vector grows by an eighth (at least one element), as the module's vectors do.
    pub(super) fn insert(&mut self, index: usize, element: T) {
        match self {
            OneOrMany::Many(elements) if elements.is_empty() => *self = OneOrMany::One(element),
            OneOrMany::Many(elements) => {
                if elements.len() == elements.capacity() {
                    elements.reserve_exact((elements.len() / 8).max(1));
                }
                elements.insert(index, element);
            }
            OneOrMany::One(_) => {
                let OneOrMany::One(first) = std::mem::take(self) else {
                    unreachable!("matched One")
                };
                let mut elements = Vec::with_capacity(2);
                elements.push(first);
                elements.insert(index, element);
                *self = OneOrMany::Many(elements);
            }
        }
    }

    /// Removes the element at `index`; one left goes back inline.
    pub(super) fn remove(&mut self, index: usize) -> T {
        let removed = match self {
            OneOrMany::One(_) => {
                assert_eq!(index, 0);
                let OneOrMany::One(only) = std::mem::take(self) else {
                    unreachable!("matched One")
                };
                return only;
            }
            OneOrMany::Many(elements) => elements.remove(index),
        };
        if let OneOrMany::Many(elements) = self {
            if elements.len() == 1 {
                let only = elements.pop().expect("one element");
                *self = OneOrMany::One(only);
            }
        }
        removed
    }

    /// Takes `elements`, one of them inline.
    pub(super) fn from_vec(mut elements: Vec<T>) -> Self {
        if elements.len() == 1 {
            OneOrMany::One(elements.pop().expect("one element"))
        } else {
            OneOrMany::Many(elements)
        }
    }

    /// Removes the first `count` elements.
    pub(super) fn remove_front(&mut self, count: usize) {
        if count == 0 {
            return;
        }
        let mut elements = match std::mem::take(self) {
            OneOrMany::One(only) => vec![only],
            OneOrMany::Many(elements) => elements,
        };
        elements.drain(..count);
        shrink_gently(&mut elements);
        *self = OneOrMany::from_vec(elements);
    }

    /// Heap bytes of the vector (none inline).
    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            OneOrMany::One(_) => 0,
            OneOrMany::Many(elements) => elements.capacity() * std::mem::size_of::<T>(),
        }
    }
}

/// An append-mostly sequence of values: packed in pages of `LOG_PAGE_ENTRIES` values (every page but the
/// last full, values stored plus one) while it holds fewer than `LOG_PACKED_ENTRIES_MAX`, plain 32-bit
/// values from then on.
#[derive(Clone, Debug)]
pub(super) enum PagedLog {
    Packed(OneOrMany<PackedU32s>),
    Plain(Vec<u32>),
}

/// The longest log kept packed. Why: the order log's compaction is one pass over the whole log, and over
/// packed entries it costs about three times what it costs over plain ones; past this length a post's log
/// is plain, so compaction pauses no longer than it did before the packing (and below it, at most about
/// 0.7 ms). Posts this big are few: they give up 6 of 32 bits a like for it.
pub(super) const LOG_PACKED_ENTRIES_MAX: usize = 1 << 16;

impl Default for PagedLog {
    fn default() -> Self {
        PagedLog::Packed(OneOrMany::default())
    }
}

/// Equal when the values are, packed or not.
impl PartialEq for PagedLog {
    fn eq(&self, other: &PagedLog) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for PagedLog {}

impl PagedLog {
    pub(super) fn new() -> Self {
        PagedLog::default()
    }

    /// Takes `values`: packed if there are fewer than `LOG_PACKED_ENTRIES_MAX`, else as they are.
    pub(super) fn from_vec(values: Vec<u32>) -> Self {
        if values.len() >= LOG_PACKED_ENTRIES_MAX {
            return PagedLog::Plain(values);
        }
        let mut pages = OneOrMany::default();
        for page in values.chunks(LOG_PAGE_ENTRIES) {
            let stored: Vec<u32> = page.iter().map(|value| value.wrapping_add(1)).collect();
            pages.push(PackedU32s::from_values(&stored, 0));
        }
        PagedLog::Packed(pages)
    }

    /// The values, moved out when plain.
    pub(super) fn into_vec(self) -> Vec<u32> {
        match self {
            PagedLog::Plain(values) => values,
            packed => packed.to_vec(),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            PagedLog::Packed(pages) => pages
                .last()
                .map_or(0, |last| (pages.len() - 1) * LOG_PAGE_ENTRIES + last.len()),
            PagedLog::Plain(values) => values.len(),
        }
    }

    #[inline(always)]
    pub(super) fn get(&self, position: usize) -> u32 {
        match self {
            PagedLog::Packed(pages) => pages[position / LOG_PAGE_ENTRIES]
                .get(position % LOG_PAGE_ENTRIES)
                .wrapping_sub(1),
            PagedLog::Plain(values) => values[position],
        }
    }

    pub(super) fn set(&mut self, position: usize, value: u32) {
        match self {
            PagedLog::Packed(pages) => pages[position / LOG_PAGE_ENTRIES]
                .set(position % LOG_PAGE_ENTRIES, value.wrapping_add(1)),
            PagedLog::Plain(values) => values[position] = value,
        }
    }

    pub(super) fn push(&mut self, value: u32, growth_min: usize) {
        if self.len() == LOG_PACKED_ENTRIES_MAX {
            if let PagedLog::Packed(_) = self {
                // Once per post: a bounded copy of `LOG_PACKED_ENTRIES_MAX` values.
                let mut values = std::mem::take(self).into_vec();
                values.reserve_exact(values.len() / 8);
                *self = PagedLog::Plain(values);
            }
        }
        match self {
            PagedLog::Packed(pages) => {
                if pages
                    .last()
                    .is_none_or(|last| last.len() == LOG_PAGE_ENTRIES)
                {
                    pages.push(PackedU32s::new());
                }
                let last = pages.last_mut().expect("a page was just made");
                // A full page is exactly full: it will never grow again.
                let growth_min = growth_min.min(LOG_PAGE_ENTRIES - last.len());
                last.push(value.wrapping_add(1), growth_min);
                if last.len() == LOG_PAGE_ENTRIES {
                    last.shrink_exact();
                }
            }
            PagedLog::Plain(values) => {
                if values.len() == values.capacity() {
                    values.reserve_exact((values.len() / 8).max(growth_min));
                }
                values.push(value);
            }
        }
    }

    pub(super) fn iter(&self) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            PagedLog::Packed(pages) => Box::new(
                pages
                    .iter()
                    .flat_map(|page| page.iter().map(|value| value.wrapping_sub(1))),
            ),
            PagedLog::Plain(values) => Box::new(values.iter().copied()),
        }
    }

    pub(super) fn to_vec(&self) -> Vec<u32> {
        self.iter().collect()
    }

    pub(super) fn heap_bytes(&self) -> usize {
        match self {
            PagedLog::Packed(pages) => {
                pages.heap_bytes() + pages.iter().map(PackedU32s::heap_bytes).sum::<usize>()
            }
            PagedLog::Plain(values) => values.capacity() * std::mem::size_of::<u32>(),
        }
    }
}

impl PackedU32s {
    /// Drops every spare word.
    fn shrink_exact(&mut self) {
        let words = words_for(self.len(), self.width);
        if words < self.words.len() {
            self.resize_words(words);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Operation {
        Insert(usize, u32),
        Remove(usize),
        Set(usize, u32),
        Push(u32),
        SplitAndJoin(usize),
        Shrink,
    }

    /// Values of every width, small ones most often (as sequence numbers and ids are).
    fn value() -> impl Strategy<Value = u32> {
        prop_oneof![0u32..4, 0u32..300, 0u32..100_000, any::<u32>()]
    }

    fn operation() -> impl Strategy<Value = Operation> {
        prop_oneof![
            4 => (any::<usize>(), value()).prop_map(|(at, value)| Operation::Insert(at, value)),
            3 => any::<usize>().prop_map(Operation::Remove),
            1 => (any::<usize>(), value()).prop_map(|(at, value)| Operation::Set(at, value)),
            2 => value().prop_map(Operation::Push),
            1 => any::<usize>().prop_map(Operation::SplitAndJoin),
            1 => Just(Operation::Shrink),
        ]
    }

    proptest! {
        #[test]
        fn packed_values_behave_as_a_vector(operations in prop::collection::vec(operation(), 1..400)) {
            let mut packed = PackedU32s::new();
            let mut model: Vec<u32> = Vec::new();
            for operation in operations {
                match operation {
                    Operation::Insert(at, value) => {
                        let at = at % (model.len() + 1);
                        packed.insert(at, value, 4);
                        model.insert(at, value);
                    }
                    Operation::Remove(at) if !model.is_empty() => {
                        let at = at % model.len();
                        prop_assert_eq!(packed.remove(at), model.remove(at));
                    }
                    Operation::Set(at, value) if !model.is_empty() => {
                        let at = at % model.len();
                        packed.set(at, value);
                        model[at] = value;
                    }
                    Operation::Push(value) => {
                        packed.push(value, 4);
                        model.push(value);
                    }
                    Operation::SplitAndJoin(at) => {
                        let at = at % (model.len() + 1);
                        let upper = packed.split_off(at, 2);
                        prop_assert_eq!(packed.to_vec(), &model[..at]);
                        prop_assert_eq!(upper.to_vec(), &model[at..]);
                        packed.extend_from(&upper, 4);
                    }
                    Operation::Shrink => packed.shrink_gently(4),
                    Operation::Remove(_) | Operation::Set(..) => {}
                }
                prop_assert_eq!(packed.len(), model.len());
                prop_assert!(packed.capacity() >= packed.len());
                prop_assert_eq!(packed.to_vec(), model.clone());
                prop_assert_eq!(packed.last(), model.last().copied());
            }
        }

        #[test]
        fn a_paged_log_behaves_as_a_vector(
            values in prop::collection::vec(value(), 0..3_000),
            plain in any::<bool>(),
            tombstones in prop::collection::vec(any::<usize>(), 0..50),
        ) {
            let mut log = if plain { PagedLog::Plain(Vec::new()) } else { PagedLog::new() };
            let mut model = Vec::new();
            for &value in &values {
                // The order log never stores a tombstone by pushing it.
                let value = value.min(u32::MAX - 1);
                log.push(value, 4);
                model.push(value);
            }
            for at in tombstones {
                if !model.is_empty() {
                    let at = at % model.len();
                    log.set(at, u32::MAX);
                    model[at] = u32::MAX;
                }
            }
            prop_assert_eq!(log.len(), model.len());
            prop_assert_eq!(log.to_vec(), model.clone());
            for (position, &value) in model.iter().enumerate() {
                prop_assert_eq!(log.get(position), value);
            }
            prop_assert_eq!(&PagedLog::from_vec(model.clone()), &log);
            prop_assert_eq!(log.clone().into_vec(), model.clone());
        }
    }

    proptest! {
        #[test]
        fn one_or_many_behaves_as_a_vector(
            operations in prop::collection::vec((any::<bool>(), any::<usize>(), any::<u16>()), 1..200),
        ) {
            let mut elements = OneOrMany::default();
            let mut model: Vec<u16> = Vec::new();
            for (insert, at, value) in operations {
                if insert || model.is_empty() {
                    let at = at % (model.len() + 1);
                    elements.insert(at, value);
                    model.insert(at, value);
                } else if at % 5 == 0 {
                    let count = at % (model.len() + 1);
                    elements.remove_front(count);
                    model.drain(..count);
                } else {
                    let at = at % model.len();
                    prop_assert_eq!(elements.remove(at), model.remove(at));
                }
                prop_assert_eq!(&*elements, &model[..]);
                prop_assert_eq!(matches!(elements, OneOrMany::One(_)), model.len() == 1);
                prop_assert_eq!(&OneOrMany::from_vec(model.clone()), &elements);
            }
        }
    }

    #[test]
    fn small_values_take_few_bits() {
        let values: Vec<u32> = (0..1_000).map(|value| value * 199).collect();
        let packed = PackedU32s::from_values(&values, 0);
        // 18 bits a value instead of 32.
        assert_eq!(packed.heap_bytes(), (1_000 * 18usize).div_ceil(64) * 8);
        let mut log = PagedLog::new();
        for value in 0..5_000u32 {
            log.push(50_000_000 - value, 4);
        }
        // Ids below 2^26 - 1 take 26 bits; only the last page has spare room.
        assert!(
            log.heap_bytes() < 5_000 * 26 / 8 + 5 * 24 + 700,
            "{}",
            log.heap_bytes()
        );
    }
}
