//! The JavaScript face of [`EngineCore`]: type conversions only.

use crate::engine::EngineCore;
use client_core::Instant;
use wasm_bindgen::prelude::*;

/// One room's E2EE engine (see the crate documentation for the API).
#[wasm_bindgen]
pub struct Engine {
    core: EngineCore,
}

/// A frame that opened after waiting for its epoch's key.
#[wasm_bindgen]
pub struct ReleasedFrame {
    handle: u32,
    data: Vec<u8>,
}

#[wasm_bindgen]
impl ReleasedFrame {
    /// The handle given to `decrypt`.
    #[wasm_bindgen(getter)]
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// The plaintext frame (moved out; a second read is empty).
    #[wasm_bindgen(getter)]
    pub fn data(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.data)
    }
}

fn js_error(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

#[wasm_bindgen]
impl Engine {
    /// A new engine for `identity`; `config` is JSON or `""`.
    #[wasm_bindgen(constructor)]
    pub fn new(identity: &str, config: &str) -> Result<Engine, JsError> {
        let core = EngineCore::new(identity, config).map_err(js_error)?;
        Ok(Self { core })
    }

    /// Starts from the server's `joined` message (JSON).
    pub fn start(&mut self, joined: &str) -> Result<(), JsError> {
        self.core.start(Instant::now(), joined).map_err(js_error)
    }

    /// One server message (JSON).
    #[wasm_bindgen(js_name = serverMessage)]
    pub fn server_message(&mut self, message: &str) -> Result<(), JsError> {
        self.core
            .server_message(Instant::now(), message)
            .map_err(js_error)
    }

    /// Time passed.
    pub fn tick(&mut self) {
        self.core.tick(Instant::now());
    }

    /// Milliseconds until `tick` has something to do; `undefined` if nothing.
    #[wasm_bindgen(js_name = nextTickMs)]
    pub fn next_tick_ms(&self) -> Option<f64> {
        let now = Instant::now();
        self.core
            .next_tick()
            .map(|t| t.saturating_duration_since(now).as_secs_f64() * 1000.0)
    }

    /// The next output (JSON), if any.
    pub fn poll(&mut self) -> Option<String> {
        self.core.poll()
    }

    /// Queues a chat message.
    #[wasm_bindgen(js_name = sendChat)]
    pub fn send_chat(&mut self, text: &str) -> Result<(), JsError> {
        self.core.send_chat(Instant::now(), text).map_err(js_error)
    }

    /// Encrypts a frame; `undefined` while no key is held.
    pub fn encrypt(&mut self, codec: &str, frame: &[u8]) -> Result<Option<Vec<u8>>, JsError> {
        self.core.encrypt(codec, frame).map_err(js_error)
    }

    /// Decrypts a frame from `publisher`'s track; `undefined` when dropped
    /// or waiting for its epoch.
    pub fn decrypt(
        &mut self,
        codec: &str,
        publisher: &str,
        handle: u32,
        frame: &[u8],
    ) -> Result<Option<Vec<u8>>, JsError> {
        self.core
            .decrypt(Instant::now(), codec, publisher, handle, frame)
            .map_err(js_error)
    }

    /// Whether the last frame given to `decrypt` waits for its epoch (then
    /// it may come back from `takeReleased`); else it was dropped.
    #[wasm_bindgen(js_name = lastWaits)]
    pub fn last_waits(&self) -> bool {
        self.core.last_waits()
    }

    /// A frame that opened after waiting for its epoch, if any.
    #[wasm_bindgen(js_name = takeReleased)]
    pub fn take_released(&mut self) -> Option<ReleasedFrame> {
        self.core.take_released().map(|r| ReleasedFrame {
            handle: r.handle,
            data: r.data,
        })
    }

    /// Drop counts (JSON).
    pub fn failures(&self) -> String {
        serde_json::to_string(&self.core.failures()).unwrap_or_default()
    }

    /// Whether frames can be sent now.
    #[wasm_bindgen(js_name = hasKey)]
    pub fn has_key(&self) -> bool {
        self.core.has_key()
    }
}
