/**
 * Options of {@link connect}, with their defaults.
 *
 * @module
 */

/** Options of {@link connect}. Every field is optional. */
export interface ConnectOptions {
  /**
   * End-to-end encrypt media and chat (MLS + SFrame in a worker). Default
   * `true`. A browser without `RTCRtpScriptTransform` makes {@link connect}
   * fail with `ConnectError{kind: "e2ee_unavailable"}`: the SDK never sends
   * media in the clear unless asked to with `false`.
   */
  e2ee?: boolean;
  /**
   * Where the E2EE worker (`e2ee-worker.js`, with its `wasm/` directory
   * beside it) is served. Default: beside the SDK module.
   */
  e2eeWorkerUrl?: string;
  /** Tests only; never set in an app. */
  testHooks?: TestHooks;
  /** Limit on opening the WebSocket and being admitted. Default 10 000 ms. */
  connectTimeoutMs?: number;
  /** Limit on one SDP round trip with the server (publish). Default 10 000 ms. */
  negotiationTimeoutMs?: number;
  /**
   * How often to send a protocol `ping`. The connection counts as lost after
   * three intervals without any message from the server. Default 5 000 ms.
   */
  pingIntervalMs?: number;
  /**
   * After the signaling connection drops, how long to keep trying to
   * reconnect and resume the session; 0 disables it. Keep it under the
   * server's `resume_grace` (15 s by default). Default 10 000 ms.
   */
  reconnectWindowMs?: number;
  /** STUN/TURN servers. None by default: the SFU is ICE-lite with host candidates. */
  iceServers?: RTCIceServer[];
  /**
   * Negotiate the RTP dependency descriptor header extension on video.
   * Default `true`; Chromium does not offer it unless asked.
   */
  dependencyDescriptor?: boolean;
}

/** Hooks for the SDK's own tests. */
export interface TestHooks {
  /**
   * Appended to every outgoing encoded frame before encryption and stripped
   * after decryption, so a test can look for it on the wire. Also with
   * `e2ee: false` (the frames then carry it in the clear).
   */
  frameMarker?: Uint8Array;
  /**
   * Install every epoch's frame key with one bit flipped: this member then
   * decodes nothing (and nobody decodes it), as with a corrupted key.
   */
  tamperKeys?: boolean;
  /**
   * Offer `Room.frameProbeForTest()`: copy received frames before
   * decryption, and after `leave()` keep this member's keys (in the worker)
   * so a test can replay frames sent after its removal to them.
   */
  frameProbe?: boolean;
}

/** {@link ConnectOptions} with every default filled in. */
export type ResolvedOptions = Required<Omit<ConnectOptions, "e2eeWorkerUrl">> & { e2eeWorkerUrl: string | undefined };

/** Fills in the defaults. */
export function resolveOptions(options: ConnectOptions = {}): ResolvedOptions {
  return {
    e2ee: options.e2ee ?? true,
    e2eeWorkerUrl: options.e2eeWorkerUrl,
    testHooks: options.testHooks ?? {},
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    negotiationTimeoutMs: options.negotiationTimeoutMs ?? 10_000,
    pingIntervalMs: options.pingIntervalMs ?? 5_000,
    reconnectWindowMs: options.reconnectWindowMs ?? 10_000,
    iceServers: options.iceServers ?? [],
    dependencyDescriptor: options.dependencyDescriptor ?? true,
  };
}

/** The signaling session's part of the options. */
export function sessionOptions(options: ResolvedOptions): {
  connectTimeoutMs: number;
  pingIntervalMs: number;
  reconnectWindowMs: number;
} {
  return {
    connectTimeoutMs: options.connectTimeoutMs,
    pingIntervalMs: options.pingIntervalMs,
    reconnectWindowMs: options.reconnectWindowMs,
  };
}
