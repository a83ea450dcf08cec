//! The measurements: per-stream accounting, per-receiver state, and the
//! run's aggregate. All pure, so they are tested without a network.

pub mod collector;
pub mod epoch_loss;
pub mod histogram;
pub mod layers;
pub mod receiver;
pub mod stream;

pub use collector::{Collector, Measured, Rolling};
pub use epoch_loss::{ChangeLoss, EpochLoss};
pub use histogram::DurationHistogram;
pub use layers::{LayerSummary, LayerTrack};
pub use receiver::{ReceiverStats, ReceiverSummary, StreamKey, WindowSample};
pub use stream::{Arrival, Jitter, StreamTracker, WindowCounts};
