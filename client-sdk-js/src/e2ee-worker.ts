/**
 * The E2EE worker: one per room. It loads the wasm engine (MLS group state
 * and SFrame keys, the project's Rust code) and hosts every sender and
 * receiver `RTCRtpScriptTransform` of the room, so one SFrame counter per
 * sender key serves all tracks and keys never leave this worker's wasm
 * memory. Bundled on its own (build/e2ee-worker.js); `e2ee-protocol.ts`
 * describes its messages.
 *
 * Sending: each encoded frame is encrypted into the media wire format; a
 * frame sent before this member holds a key is dropped, never sent in the
 * clear. Receiving: each frame is decrypted and checked against the
 * publisher of the track its m-line carries now; one that does not open is
 * dropped. A frame of an epoch not yet known waits in the engine and is
 * written out when the epoch arrives (or dropped after a timeout).
 *
 * Keyframes: every new epoch asks each video encoder for a keyframe (the
 * first frame under a new key should be one a receiver can start from);
 * each newly assigned receiver asks its publisher for one once, when its
 * first frame opens (unless that is a keyframe). Never on a failure.
 *
 * The frame probe (tests only) copies received frames before decryption,
 * and after `close{keep}` keeps the keys this member held when it left, so
 * a test can show that they open none of the frames sent after its removal.
 *
 * @module
 */

import type { CapturedFrame, FrameCost, FromWorker, ReplayResult, SentFrame, ToWorker, TransformOptions } from "./e2ee-protocol.js";

/** The wasm engine's JavaScript face (the wasm crate's `Engine`). */
interface WasmEngine {
  start(joined: string): void;
  serverMessage(message: string): void;
  tick(): void;
  nextTickMs(): number | undefined;
  poll(): string | undefined;
  sendChat(text: string): void;
  encrypt(codec: string, frame: Uint8Array): Uint8Array | undefined;
  decrypt(codec: string, publisher: string, handle: number, frame: Uint8Array): Uint8Array | undefined;
  lastWaits(): boolean;
  takeReleased(): { handle: number; data: Uint8Array; free(): void } | undefined;
  failures(): string;
  free(): void;
}

interface Glue {
  default(init: { module_or_path: string }): Promise<unknown>;
  Engine: new (identity: string, config: string) => WasmEngine;
}

/** The parts of the worker-side transform API used here. */
interface EncodedFrame {
  data: ArrayBuffer;
  readonly type?: "key" | "delta" | "empty";
  getMetadata?(): { synchronizationSource?: number; rid?: string; width?: number; height?: number };
}
interface ScriptTransformer {
  readonly options: TransformOptions;
  readonly readable: ReadableStream<EncodedFrame>;
  readonly writable: WritableStream<EncodedFrame>;
  generateKeyFrame(rid?: string): Promise<number>;
  sendKeyFrameRequest(): Promise<void>;
}
interface WorkerScope {
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  onrtctransform: ((e: Event & { transformer: ScriptTransformer }) => void) | null;
  postMessage(message: FromWorker): void;
}

const scope = self as unknown as WorkerScope;

/** How long a frame may wait for its epoch in the engine; it is forgotten here after this. */
const RELEASE_TIMEOUT_MS = 3_000;
/** How often changed drop counts and costs are reported. */
const REPORT_MS = 500;

interface Receiver {
  transformer?: ScriptTransformer;
  participantId?: string;
  codec?: string;
  /** A keyframe request is due when the first frame of this assignment opens. */
  askKeyframe: boolean;
}

interface Waiting {
  frame: EncodedFrame;
  out: WritableStreamDefaultWriter<EncodedFrame>;
  marker: Uint8Array | undefined;
  at: number;
}

let engine: WasmEngine | undefined;
let encrypt = true;
let marker: Uint8Array | undefined;
let tickTimer: ReturnType<typeof setTimeout> | undefined;
let lastFailures = "";
let nextHandle = 1;
let droppedNoKey = 0;
const senders = new Set<ScriptTransformer>();
const receivers = new Map<string, Receiver>();
const waiting = new Map<number, Waiting>();
const cost = () => ({ audio: { frames: 0, ms: 0 }, video: { frames: 0, ms: 0 } });
const costs = { encrypt: cost(), decrypt: cost() };
/** Left the room, keys kept for the frame probe: no more outputs, no more server messages. */
let detached = false;
/** The frame probe's capture in progress. */
let capture: { count: number; frames: CapturedFrame[] } | undefined;
/** The frame probe's capture of sent frames in progress. */
let sentCapture: { count: number; frames: SentFrame[] } | undefined;
/** Bytes of each sent frame the probe keeps: a VP8 keyframe's clear prefix (10) and the longest SFrame header (17). */
const SENT_HEAD_BYTES = 32;
/** Messages that came before the wasm was ready, in order. */
let queued: ToWorker[] | undefined = [];

const post = (m: FromWorker): void => scope.postMessage(m);

function fail(error: unknown): void {
  post({ type: "error", message: error instanceof Error ? error.message : String(error) });
}

/** Runs an engine call; its errors go to the page, never kill the worker. */
function guarded(f: () => void): void {
  try {
    f();
  } catch (error) {
    fail(error);
  }
  drain();
}

/** Forwards engine outputs; on a new epoch asks every video encoder for a keyframe. */
function drain(): void {
  if (engine === undefined) return;
  for (let out = engine.poll(); out !== undefined; out = engine.poll()) {
    if (detached) continue;
    if (out.startsWith('{"type":"epoch"')) {
      for (const t of senders) if (t.options.side === "send" && t.options.kind === "video") keyframe(t, "generateKeyFrame");
    }
    post({ type: "output", output: out });
  }
  for (let r = engine.takeReleased(); r !== undefined; r = engine.takeReleased()) {
    const w = waiting.get(r.handle);
    waiting.delete(r.handle);
    if (w !== undefined) {
      w.frame.data = strip(r.data, w.marker).slice().buffer;
      w.out.write(w.frame).catch(() => {});
    }
    r.free();
  }
  schedule();
}

/**
 * Asks for a keyframe where the browser supports it: Chromium 148's
 * transformer has `sendKeyFrameRequest` but no `generateKeyFrame`, so there
 * a new epoch forces no keyframe and a newcomer's receivers ask for one.
 */
function keyframe(t: ScriptTransformer, how: "generateKeyFrame" | "sendKeyFrameRequest"): void {
  const f = (t as unknown as Record<string, unknown>)[how];
  if (typeof f !== "function") return;
  try {
    Promise.resolve((f as () => Promise<unknown>).call(t)).catch(() => {});
  } catch {
    // The encoder or the track is gone; nothing to ask.
  }
}

function schedule(): void {
  if (engine === undefined) return;
  clearTimeout(tickTimer);
  const ms = engine.nextTickMs();
  if (ms !== undefined) tickTimer = setTimeout(() => guarded(() => engine?.tick()), Math.max(0, Math.min(ms, 60_000)) + 1);
}

function report(): void {
  const now = performance.now();
  for (const [h, w] of waiting) if (now - w.at > RELEASE_TIMEOUT_MS) waiting.delete(h);
  if (engine !== undefined) {
    const f = engine.failures();
    if (f !== lastFailures) {
      lastFailures = f;
      post({ type: "failures", failures: f });
    }
  }
  post({ type: "stats", encrypt: costs.encrypt, decrypt: costs.decrypt, droppedNoKey });
}

function withMarker(data: Uint8Array): Uint8Array {
  if (marker === undefined) return data;
  const out = new Uint8Array(data.length + marker.length);
  out.set(data);
  out.set(marker, data.length);
  return out;
}

function strip(data: Uint8Array, m: Uint8Array | undefined): Uint8Array {
  if (m === undefined || data.length < m.length) return data;
  for (let i = 0; i < m.length; i++) if (data[data.length - m.length + i] !== m[i]) return data;
  return data.subarray(0, data.length - m.length);
}

function charge(c: FrameCost, start: number): void {
  c.frames++;
  c.ms += performance.now() - start;
}

function runSender(t: ScriptTransformer, o: Extract<TransformOptions, { side: "send" }>): void {
  senders.add(t);
  const c = costs.encrypt[o.kind];
  const transform = new TransformStream<EncodedFrame, EncodedFrame>({
    transform(frame, controller) {
      const plain = withMarker(new Uint8Array(frame.data));
      if (!encrypt) {
        frame.data = plain.buffer as ArrayBuffer;
        controller.enqueue(frame);
        return;
      }
      if (engine === undefined) {
        droppedNoKey++;
        return;
      }
      const start = performance.now();
      let wire: Uint8Array | undefined;
      try {
        wire = engine.encrypt(o.codec, plain);
      } catch (error) {
        fail(error);
      }
      if (wire === undefined) {
        droppedNoKey++;
        return;
      }
      charge(c, start);
      if (sentCapture !== undefined && o.kind === "video") capturedSent(frame, wire);
      frame.data = wire.buffer as ArrayBuffer;
      controller.enqueue(frame);
    },
  });
  t.readable
    .pipeThrough(transform)
    .pipeTo(t.writable)
    .catch(() => {})
    .finally(() => senders.delete(t));
}

function runReceiver(t: ScriptTransformer, o: Extract<TransformOptions, { side: "receive" }>): void {
  const r = receivers.get(o.mid) ?? { askKeyframe: false };
  r.transformer = t;
  receivers.set(o.mid, r);
  const c = costs.decrypt[o.kind];
  const out = t.writable.getWriter();
  const reader = t.readable.getReader();
  const write = (frame: EncodedFrame, data: Uint8Array): void => {
    frame.data = data.slice().buffer;
    out.write(frame).catch(() => {});
  };
  const pump = async (): Promise<void> => {
    for (;;) {
      const { value: frame, done } = await reader.read();
      if (done) return;
      const wire = new Uint8Array(frame.data);
      if (!encrypt) {
        write(frame, strip(wire, marker));
        continue;
      }
      const now = receivers.get(o.mid);
      if (engine === undefined || now?.participantId === undefined || now.codec === undefined) continue;
      if (capture !== undefined && o.kind === "video") captured(now.participantId, now.codec, wire);
      const handle = nextHandle++ >>> 0;
      const start = performance.now();
      let plain: Uint8Array | undefined;
      try {
        plain = engine.decrypt(now.codec, now.participantId, handle, wire);
      } catch (error) {
        // Only a codec the engine does not know throws: stop trying on this
        // assignment instead of reporting every frame.
        now.participantId = undefined;
        fail(error);
      }
      if (plain === undefined) {
        // Waiting for its epoch: written when released. Otherwise dropped.
        if (engine.lastWaits()) waiting.set(handle, { frame, out, marker, at: performance.now() });
        drain();
        continue;
      }
      charge(c, start);
      if (now.askKeyframe) {
        now.askKeyframe = false;
        if (frame.type !== "key") keyframe(t, "sendKeyFrameRequest");
      }
      write(frame, strip(plain, marker));
      drain();
    }
  };
  pump().catch(fail);
}

function captured(publisher: string, codec: string, wire: Uint8Array): void {
  if (capture === undefined) return;
  capture.frames.push({ publisher, codec, data: wire.slice() });
  if (capture.frames.length < capture.count) return;
  post({ type: "probeCaptured", frames: capture.frames });
  capture = undefined;
}

function capturedSent(frame: EncodedFrame, wire: Uint8Array): void {
  if (sentCapture === undefined) return;
  const m = frame.getMetadata?.() ?? {};
  sentCapture.frames.push({
    ssrc: m.synchronizationSource ?? 0,
    ...(m.rid ? { rid: m.rid } : {}),
    ...(m.width ? { width: m.width, height: m.height } : {}),
    head: wire.slice(0, SENT_HEAD_BYTES),
  });
  if (sentCapture.frames.length < sentCapture.count) return;
  post({ type: "probeCapturedSent", frames: sentCapture.frames });
  sentCapture = undefined;
}

function replay(frames: CapturedFrame[]): ReplayResult {
  const result = { opened: 0, waiting: 0, dropped: 0 };
  if (engine === undefined) return { ...result, dropped: frames.length };
  for (const f of frames) {
    const plain = engine.decrypt(f.codec, f.publisher, nextHandle++ >>> 0, f.data);
    if (plain !== undefined) result.opened++;
    else if (engine.lastWaits()) result.waiting++;
    else result.dropped++;
  }
  drain();
  return result;
}

scope.onrtctransform = (e) => {
  const t = e.transformer;
  if (t.options.side === "send") runSender(t, t.options);
  else runReceiver(t, t.options);
};

async function init(m: Extract<ToWorker, { type: "init" }>): Promise<void> {
  encrypt = m.encrypt;
  marker = m.frameMarker;
  setInterval(report, REPORT_MS);
  if (encrypt) {
    const glue = (await import(m.glueUrl)) as Glue;
    await glue.default({ module_or_path: m.wasmUrl });
    engine = new glue.Engine(m.identity, m.config);
  }
  const pending = queued ?? [];
  queued = undefined;
  for (const p of pending) handle(p);
  post({ type: "ready" });
}

function handle(m: ToWorker): void {
  if (queued !== undefined && m.type !== "init") {
    queued.push(m);
    return;
  }
  // A member that left hears nothing more from the room.
  if (detached && m.type !== "probeReplay") return;
  switch (m.type) {
    case "init":
      init(m).catch(fail);
      break;
    case "start":
      // A new session: waiting frames belong to the old one.
      waiting.clear();
      guarded(() => engine?.start(m.joined));
      break;
    case "server":
      guarded(() => engine?.serverMessage(m.message));
      break;
    case "chat":
      guarded(() => engine?.sendChat(m.text));
      break;
    case "assign": {
      const r = receivers.get(m.mid) ?? { askKeyframe: false };
      r.participantId = m.participantId;
      r.codec = m.codec;
      r.askKeyframe = true;
      receivers.set(m.mid, r);
      break;
    }
    case "unassign": {
      const r = receivers.get(m.mid);
      if (r !== undefined) {
        r.participantId = undefined;
        r.askKeyframe = false;
      }
      break;
    }
    case "probeCapture":
      capture = { count: m.count, frames: [] };
      break;
    case "probeCaptureSent":
      sentCapture = { count: m.count, frames: [] };
      break;
    case "probeReplay": {
      let result: ReplayResult = { opened: 0, waiting: 0, dropped: m.frames.length };
      guarded(() => {
        result = replay(m.frames);
      });
      post({ type: "probeReplayed", result });
      break;
    }
    case "close":
      if (m.keep === true) {
        // Frames waiting for a receiver that is gone; pending ones still time out in the engine.
        waiting.clear();
        detached = true;
        break;
      }
      clearTimeout(tickTimer);
      engine?.free();
      engine = undefined;
      break;
  }
}

scope.onmessage = (e) => handle(e.data);
