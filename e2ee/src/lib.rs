//! Sans-IO end-to-end encryption for the client SDK.
//!
//! - [`group`]: the room's MLS group (RFC 9420, `openmls`): credentials,
//!   KeyPackages, commits, Welcome, roster, exporter and verification code.
//! - [`frame`]: SFrame (RFC 9605) keys per epoch and sender (§5.2), frame
//!   encryption and decryption with replay windows and epoch grace, and the
//!   packetization of one ciphertext into RTP payloads.
//!
//! Nothing here reads a clock or touches a socket: time is an argument.
#![deny(missing_docs)]

pub mod frame;
pub mod group;
