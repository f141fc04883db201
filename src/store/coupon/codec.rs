//! A coupon's snapshot encoding (conventions in `store::encoding`): limits, counters, holders in order
//! with their numbers, and the request-ID cache. The number-to-holder table is rebuilt on decode.

use indexmap::IndexMap;

use super::{Coupon, HeldNumbers, IssueOutcome, IssueStatus, HOLDER_INDEX_REVOKED};
use crate::limits::COUPON_NUMBER_MAX;
use crate::store::encoding::{
    put_bytes, put_count, put_option_u64, put_u64, put_u8, Codec, Reader,
};
use crate::store::idempotency::IdempotencyCache;

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
    /// and the request-ID cache. The number-to-holder table is rebuilt on decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.total);
        put_u64(out, self.per_user);
        put_option_u64(out, self.start_ms);
        put_option_u64(out, self.end_ms);
        put_u64(out, self.issued);
        put_u64(out, self.revoked);
        put_count(out, self.holders.len());
        for (user, held) in &self.holders {
            put_bytes(out, user);
            put_u64(out, held.first);
            put_count(out, held.rest.len());
            for number in held.rest.iter() {
                put_u64(out, *number);
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
        let holder_count = reader.count(20)?;
        let mut holders = IndexMap::with_capacity_and_hasher(holder_count, Default::default());
        let mut holder_index_by_number = vec![HOLDER_INDEX_REVOKED; issued as usize];
        let mut holders_heap_bytes = 0;
        let mut held_total = 0;
        for holder_index in 0..holder_count {
            let user: Box<[u8]> = reader.bytes()?.into();
            let first = reader.u64()?;
            let rest_count = reader.count(8)?;
            let rest: Box<[u64]> = (0..rest_count)
                .map(|_| reader.u64())
                .collect::<Result<_, _>>()?;
            let held = HeldNumbers { first, rest };
            if first == 0 && !held.rest.is_empty() {
                return Err("coupon holder with numbers but no first".to_string());
            }
            for number in held.iter() {
                let slot = number
                    .checked_sub(1)
                    .and_then(|index| holder_index_by_number.get_mut(index as usize))
                    .ok_or_else(|| format!("coupon number {number} was never issued"))?;
                if *slot != HOLDER_INDEX_REVOKED {
                    return Err(format!("coupon number {number} is held twice"));
                }
                *slot = holder_index as u32;
            }
            held_total += held.len();
            holders_heap_bytes += user.len() + held.heap_bytes();
            if holders.insert(user, held).is_some() {
                return Err("a coupon holder appears twice".to_string());
            }
        }
        if held_total != issued - revoked {
            return Err("coupon holders do not add up to issued minus revoked".to_string());
        }
        Ok(Coupon {
            total,
            per_user,
            start_ms,
            end_ms,
            issued,
            revoked,
            holders,
            holder_index_by_number,
            holders_heap_bytes,
            request_outcomes: IdempotencyCache::decode(reader)?,
        })
    }
}
