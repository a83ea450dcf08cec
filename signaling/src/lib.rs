//! Signaling for the SFU: the WebSocket protocol, access tokens, and (with
//! the default `server` feature) the axum server that speaks them.
//!
//! Clients depend on this crate with `default-features = false` and get only
//! [`proto`] and [`token`], so no message is defined twice. The server side
//! adds [`media`] (the boundary to the media plane) and [`server`] (the axum
//! app: WebSocket sessions, admin API, metrics, shutdown).
#![deny(missing_docs)]

pub mod proto;
pub mod token;

#[cfg(feature = "server")]
pub mod media;
#[cfg(feature = "server")]
pub mod server;
