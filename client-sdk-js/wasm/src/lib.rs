//! The browser's end-to-end encryption engine: the same MLS group-key state
//! machine ([`client_core::Coordinator`]) and SFrame media keys
//! ([`client_core::MediaKeys`]) the native SDK runs, compiled to wasm for
//! the TypeScript SDK's worker (`client-sdk-js/src/e2ee-worker.ts`).
//!
//! One [`Engine`] per room. Keys and secrets stay inside it: the page sees
//! only epochs, rosters, verification codes, chat and ciphertext. Every
//! input from JavaScript or the network is checked; a bad one is an error
//! value (a thrown `Error` in JavaScript), never a panic.
//!
//! JavaScript API (wasm-bindgen, `--target web`):
//!
//! | call | what |
//! |---|---|
//! | `new Engine(identity, configJson)` | `configJson`: `""` or `{takeoverDelayMs, mismatchGraceMs, selfUpdateMs}` |
//! | `start(joinedJson)` | the server's `joined` message; again after joining afresh |
//! | `serverMessage(json)` | every server message the engine needs (`mls`, `mls_commit_rejected`, `participant_joined`/`left`, `resumed`, `error{mls_gap}`); others are ignored |
//! | `tick()`, `nextTickMs()` | call `tick` after `nextTickMs` milliseconds (`undefined`: nothing due) |
//! | `poll()` | the next output as JSON ([`EngineOutput`]), `undefined` when none |
//! | `sendChat(text)` | queue a chat message |
//! | `encrypt(codec, frame)` | the wire frame, `undefined` while no key is held |
//! | `decrypt(codec, publisherId, handle, frame)` | the plaintext, `undefined` when dropped or waiting for its epoch |
//! | `lastWaits()` | whether the last `decrypt`'s frame waits for its epoch (else it was dropped) |
//! | `takeReleased()` | a waiting frame that opened later: `{handle, data}`, or `undefined` |
//! | `failures()` | drop counts as JSON ([`client_core::FailureCounts`], camelCase) |
//! | `hasKey()` | whether frames can be sent |

mod engine;
mod outputs;

pub use engine::{EngineConfig, EngineCore, EngineError, Received, Released};
pub use outputs::{EngineOutput, RosterMember};

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
pub use bindings::{Engine, ReleasedFrame};
