//! Retransmission memory shared by every subscriber of a track.
//!
//! A forwarded packet is kept once, in its track's [`PacketStore`], however
//! many subscribers it went to. Each subscription keeps only a [`SentLog`]:
//! for each sequence number it sent, where the packet is in the store and
//! the timestamp it carried. A subscriber's NACK names its own sequence
//! numbers; the log turns each into the stored packet, and the plane writes
//! it again to the subscriber's str0m stream as an RTX resend. str0m itself
//! keeps no copy (`StreamTx::set_resends_by_app`).
//!
//! Per packet and subscriber this costs a 16-byte log entry, where str0m's
//! own cache kept a 416-byte record per packet per subscriber stream.

mod log;
mod store;

pub(crate) use log::SentLog;
pub(crate) use store::{PacketStore, StoreIndex};
