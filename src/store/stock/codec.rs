//! A sku's snapshot encoding (conventions in `store::encoding`).

use std::collections::{BTreeSet, HashMap};

use super::{
    OpenReservation, RememberedReply, ReservationState, ReserveOutcome, Stock, StockStatus,
    TakeOutcome,
};
use crate::store::encoding::{put_count, put_option_u64, put_u64, put_u8, Codec, Reader};
use crate::store::idempotency::{IdempotencyCache, WindowedMap};

fn put_stock_status(out: &mut Vec<u8>, status: StockStatus) {
    put_u8(
        out,
        match status {
            StockStatus::Ok => 0,
            StockStatus::SoldOut => 1,
        },
    );
}

fn stock_status(reader: &mut Reader) -> Result<StockStatus, String> {
    match reader.u8()? {
        0 => Ok(StockStatus::Ok),
        1 => Ok(StockStatus::SoldOut),
        other => Err(format!("unknown stock status {other}")),
    }
}

impl Codec for RememberedReply {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            RememberedReply::Add(available) => {
                put_u8(out, 0);
                put_u64(out, *available);
            }
            RememberedReply::Take(outcome) => {
                put_u8(out, 1);
                put_stock_status(out, outcome.status);
                put_u64(out, outcome.available);
            }
            RememberedReply::Reserve(outcome) => {
                put_u8(out, 2);
                put_stock_status(out, outcome.status);
                put_option_u64(out, outcome.reservation_id);
                put_u64(out, outcome.available);
            }
        }
    }

    fn decode(reader: &mut Reader) -> Result<Self, String> {
        Ok(match reader.u8()? {
            0 => RememberedReply::Add(reader.u64()?),
            1 => RememberedReply::Take(TakeOutcome {
                status: stock_status(reader)?,
                available: reader.u64()?,
            }),
            2 => RememberedReply::Reserve(ReserveOutcome {
                status: stock_status(reader)?,
                reservation_id: reader.option_u64()?,
                available: reader.u64()?,
            }),
            other => return Err(format!("unknown remembered stock reply {other}")),
        })
    }
}

impl Codec for ReservationState {
    fn encode(&self, out: &mut Vec<u8>) {
        put_u8(
            out,
            match self {
                ReservationState::Confirmed => 0,
                ReservationState::Released => 1,
                ReservationState::Expired => 2,
                ReservationState::Unknown => 3,
            },
        );
    }

    fn decode(reader: &mut Reader) -> Result<Self, String> {
        Ok(match reader.u8()? {
            0 => ReservationState::Confirmed,
            1 => ReservationState::Released,
            2 => ReservationState::Expired,
            3 => ReservationState::Unknown,
            other => return Err(format!("unknown reservation state {other}")),
        })
    }
}

impl Stock {
    /// Snapshot encoding (see `store::encoding`): counts, open reservations by id, the settled states
    /// and the request-ID cache. The deadline order is rebuilt on decode.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.available);
        put_u64(out, self.reserved);
        put_u64(out, self.sold);
        put_u64(out, self.supplied);
        put_u64(out, self.reservation_id_last);
        // Sorted, so the same state always encodes to the same bytes whatever the hash seed.
        let mut open: Vec<_> = self.open.iter().collect();
        open.sort_unstable_by_key(|(id, _)| **id);
        put_count(out, open.len());
        for (id, reservation) in open {
            put_u64(out, *id);
            put_u64(out, reservation.quantity);
            put_u64(out, reservation.deadline_ms);
        }
        self.settled.encode(out);
        self.request_replies.encode(out);
    }

    pub fn decode(reader: &mut Reader) -> Result<Stock, String> {
        let available = reader.u64()?;
        let reserved = reader.u64()?;
        let sold = reader.u64()?;
        let supplied = reader.u64()?;
        let reservation_id_last = reader.u64()?;
        let open_count = reader.count(24)?;
        let mut open = HashMap::with_capacity_and_hasher(open_count, Default::default());
        let mut expiry_order = BTreeSet::new();
        let mut reserved_sum: u64 = 0;
        for _ in 0..open_count {
            let id = reader.u64()?;
            let quantity = reader.u64()?;
            let deadline_ms = reader.u64()?;
            if id == 0 || id > reservation_id_last || quantity == 0 {
                return Err(format!("stock reservation {id} out of range"));
            }
            reserved_sum = reserved_sum.saturating_add(quantity);
            expiry_order.insert((deadline_ms, id));
            if open
                .insert(
                    id,
                    OpenReservation {
                        quantity,
                        deadline_ms,
                    },
                )
                .is_some()
            {
                return Err(format!("stock reservation {id} appears twice"));
            }
        }
        let conserved = available
            .checked_add(reserved)
            .and_then(|sum| sum.checked_add(sold))
            == Some(supplied);
        if !conserved || reserved_sum != reserved {
            return Err("stock counts do not add up".to_string());
        }
        Ok(Stock {
            available,
            reserved,
            sold,
            supplied,
            reservation_id_last,
            open,
            expiry_order,
            settled: WindowedMap::decode(reader)?,
            request_replies: IdempotencyCache::decode(reader)?,
        })
    }
}
