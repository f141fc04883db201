//! A rate limiter's snapshot encoding (conventions in `store::encoding`): its theoretical arrival time.

use super::Throttle;
use crate::store::encoding::{put_u64, Reader};

impl Throttle {
    /// Snapshot encoding (see `store::encoding`): the theoretical arrival time.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_u64(out, self.theoretical_arrival_ns);
    }

    pub fn decode(reader: &mut Reader) -> Result<Throttle, String> {
        Ok(Throttle::from_theoretical_arrival_ns(reader.u64()?))
    }
}
