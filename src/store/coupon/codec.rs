//! A coupon's snapshot encoding (conventions in `store::encoding`): limits, counters, holders in order
//! with their numbers, and the request-ID cache. The number-to-holder table is rebuilt on decode.

use super::{validate_user, Coupon, IssueOutcome, IssueStatus, HOLDER_INDEX_REVOKED};
use crate::limits::COUPON_NUMBER_MAX;
use crate::store::encoding::{
    put_bytes, put_count, put_option_u64, put_u64, put_u8, Codec, Reader,
};
use crate::store::idempotency::{IdempotencyCache, IdempotencyPolicy};

impl Codec for IssueOutcome {
    fn encode(&self, out: &mut Vec<u8>) {
        let status = match self.status {
            IssueStatus::Issued => 0,
            IssueStatus::Already => 1,
            IssueStatus::SoldOut => 2,
            IssueStatus::NotStarted => 3,
            IssueStatus::Ended => 4,
        };
        put_u8(out, status);
        put_option_u64(out, self.number);
        put_u64(out, self.remaining);
    }

    fn decode(reader: &mut Reader) -> Result<Self, String> {
        let status = match reader.u8()? {
            0 => IssueStatus::Issued,
            1 => IssueStatus::Already,
            2 => IssueStatus::SoldOut,
            3 => IssueStatus::NotStarted,
            4 => IssueStatus::Ended,
            other => return Err(format!("unknown coupon issue status {other}")),
        };
        let number = reader.option_u64()?;
        let remaining = reader.u64()?;
        if number.is_some() != matches!(status, IssueStatus::Issued | IssueStatus::Already) {
            return Err("a coupon outcome's number does not match its status".to_string());
        }
        Ok(IssueOutcome::new(status, number, remaining))
    }
}

impl Coupon {
    /// Snapshot encoding (see `store::encoding`): limits, counters, holders in order with their numbers,
    /// and the request-ID cache. The number-to-holder index is rebuilt on decode.
    ///
    /// Per holder: the name, the first number (`0` for a holder whose coupons were all revoked), the count
    /// of further numbers and those numbers, each number a `u64`. The in-memory form keeps numbers in 32
    /// bits; the encoding keeps the `u64`s it always had, so snapshots written before and after read alike.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.total);
        put_u64(out, self.per_user);
        put_option_u64(out, self.start_ms);
        put_option_u64(out, self.end_ms);
        put_u64(out, self.issued);
        put_u64(out, self.revoked);
        put_count(out, self.holders.len());
        for (holder_index, (user, ())) in self.holders.iter().enumerate() {
            put_bytes(out, user);
            let first = self.first_number_by_holder.get(holder_index);
            put_u64(out, u64::from(first));
            let more: &[u32] = self
                .more_numbers_by_holder
                .get(&(holder_index as u32))
                .map_or(&[], |more| &**more);
            put_count(out, more.len());
            for number in more {
                put_u64(out, u64::from(*number));
            }
        }
        self.request_outcomes.encode(out);
    }

    pub fn decode(reader: &mut Reader) -> Result<Coupon, String> {
        let total = reader.u64()?;
        let per_user = reader.u64()?;
        let start_ms = reader.option_u64()?;
        let end_ms = reader.option_u64()?;
        let issued = reader.u64()?;
        let revoked = reader.u64()?;
        if revoked > issued || issued - revoked > total || issued > COUPON_NUMBER_MAX {
            return Err("coupon counts out of range".to_string());
        }
        // The request-ID cache comes last in the encoding; an empty one stands in until then.
        let mut coupon = Coupon::empty(
            total,
            per_user,
            start_ms,
            end_ms,
            IdempotencyCache::new(IdempotencyPolicy::default()),
        );
        coupon.issued = issued;
        coupon.revoked = revoked;
        coupon
            .holder_index_by_number
            .extend_filled(HOLDER_INDEX_REVOKED, issued as usize);
        let holder_count = reader.count(20)?;
        let mut held_total = 0;
        for holder_index in 0..holder_count {
            let user = reader.bytes()?;
            validate_user(user)
                .map_err(|_| "a coupon holder's name is out of range".to_string())?;
            if coupon.holders.contains_key(user) {
                return Err("a coupon holder appears twice".to_string());
            }
            let added = coupon.add_holder(user);
            debug_assert_eq!(added, holder_index);
            let first = reader.u64()?;
            let more_count = reader.count(8)?;
            if first == 0 && more_count != 0 {
                return Err("coupon holder with numbers but no first".to_string());
            }
            let held = if first == 0 { 0 } else { 1 + more_count as u64 };
            if held > per_user {
                return Err("a coupon holder holds more than PERUSER".to_string());
            }
            let mut previous = 0;
            for position in 0..held {
                let number = if position == 0 { first } else { reader.u64()? };
                if number <= previous {
                    return Err("a coupon holder's numbers do not ascend".to_string());
                }
                previous = number;
                let index = number - 1;
                if index >= issued {
                    return Err(format!("coupon number {number} was never issued"));
                }
                if coupon.holder_index_by_number.get(index as usize) != HOLDER_INDEX_REVOKED {
                    return Err(format!("coupon number {number} is held twice"));
                }
                coupon
                    .holder_index_by_number
                    .set(index as usize, holder_index as u32);
                // Numbers ascend, so each is larger than the ones the holder got before, as `hold` needs.
                coupon.hold(holder_index, number as u32);
            }
            held_total += held;
        }
        if held_total != issued - revoked {
            return Err("coupon holders do not add up to issued minus revoked".to_string());
        }
        coupon.request_outcomes = IdempotencyCache::decode(reader)?;
        Ok(coupon)
    }
}
