/**
 * The messages between the page and the E2EE worker, and the options each
 * `RTCRtpScriptTransform` is created with. Types only; both sides import them.
 *
 * Page → worker ({@link ToWorker}): `init` once, then `start` after every
 * `joined`, `server` for each server message the engine needs, `chat`,
 * `assign`/`unassign` when a subscriber m-line carries another track, and
 * `close`; for the frame probe (tests only) `probeCapture`, `probeCaptureSent` and `probeReplay`. Worker → page ({@link FromWorker}): `ready` after `init`,
 * `output` for each engine output (JSON, see the wasm crate's
 * `EngineOutput`), `failures` when the drop counts change, `stats` (frame
 * counts and time spent in the wasm), `error`, and the probe's answers
 * `probeCaptured`, `probeCapturedSent` and `probeReplayed`.
 *
 * No key ever crosses: the worker installs each epoch's keys in the wasm
 * and reports only its number, roster and verification code.
 *
 * @module
 */

/** Page → worker. */
export type ToWorker =
  | {
      type: "init";
      /** The wasm-bindgen glue module and its .wasm. */
      glueUrl: string;
      wasmUrl: string;
      identity: string;
      /** Engine tuning (JSON), `""` for the defaults. */
      config: string;
      /** `false`: no wasm, transforms only apply the test marker. */
      encrypt: boolean;
      /** Test only: appended to every outgoing frame before encryption. */
      frameMarker?: Uint8Array;
    }
  | { type: "start"; joined: string }
  | { type: "server"; message: string }
  | { type: "chat"; text: string }
  | { type: "assign"; mid: string; participantId: string; codec: string }
  | { type: "unassign"; mid: string }
  /** `keep` (frame probe only): stop taking part in the room but keep the keys for `probeReplay`. */
  | { type: "close"; keep?: boolean }
  /** Copy the next `count` video frames received, as they arrived (before decryption). */
  | { type: "probeCapture"; count: number }
  /** Note the next `count` video frames sent, as they leave (encrypted). */
  | { type: "probeCaptureSent"; count: number }
  /** Decrypt these frames with the keys held now; the plaintext is thrown away. */
  | { type: "probeReplay"; frames: CapturedFrame[] };

/** A received video frame as it arrived, with the publisher of its track. */
export interface CapturedFrame {
  publisher: string;
  codec: string;
  data: Uint8Array;
}

/**
 * A video frame as this member sent it: where the browser put it and the
 * start of its wire form, enough to read its SFrame header.
 */
export interface SentFrame {
  /** The RTP stream (one per simulcast encoding). */
  ssrc: number;
  /** The simulcast encoding's rid, where the browser tells it. */
  rid?: string;
  /** The encoded picture's size, where the browser tells it. */
  width?: number;
  height?: number;
  /** The first bytes of the wire form (clear prefix, SFrame header, ciphertext). */
  head: Uint8Array;
}

/** What the keys held now made of replayed frames. */
export interface ReplayResult {
  /** Frames that decrypted. */
  opened: number;
  /** Frames held for an epoch this member does not know (dropped as `unknown_kid` after a timeout). */
  waiting: number;
  /** Frames dropped at once. */
  dropped: number;
}

/** Per-frame cost in the wasm, by direction and kind. */
export interface FrameCost {
  frames: number;
  /** Total milliseconds spent in `encrypt`/`decrypt`. */
  ms: number;
}

/** Worker → page. */
export type FromWorker =
  | { type: "ready" }
  | { type: "output"; output: string }
  | { type: "failures"; failures: string }
  | {
      type: "stats";
      encrypt: { audio: FrameCost; video: FrameCost };
      decrypt: { audio: FrameCost; video: FrameCost };
      /** Outgoing frames dropped because no key was held yet. */
      droppedNoKey: number;
    }
  | { type: "error"; message: string }
  | { type: "probeCaptured"; frames: CapturedFrame[] }
  | { type: "probeCapturedSent"; frames: SentFrame[] }
  | { type: "probeReplayed"; result: ReplayResult };

/** The options of each `RTCRtpScriptTransform`. */
export type TransformOptions =
  | { side: "send"; cid: string; kind: "audio" | "video"; codec: string }
  | { side: "receive"; mid: string; kind: "audio" | "video" };
