/**
 * The page side of the E2EE engine: one dedicated worker per room
 * (`e2ee-worker.ts`), fed the room's MLS traffic and roster, with every
 * sender and receiver transform attached to it. It turns the worker's
 * outputs into the room's E2EE events and MLS messages to send.
 *
 * @module
 */

import type {
  DecryptFailures,
  E2eeEngine,
  E2eeHost,
  E2eeSession,
  E2eeStats,
  FrameProbe,
  LocalTrackDescription,
  RemoteTrackDescription,
  RosterMember,
} from "./e2ee.js";
import type { CapturedFrame, FromWorker, ReplayResult, SentFrame, ToWorker, TransformOptions } from "./e2ee-protocol.js";
import { ConnectError } from "./errors.js";
import type { MlsClientMessage, MlsInfo, MlsServerMessage, ParticipantInfo, TrackKind } from "./proto.js";

/** How the engine is created (from {@link ConnectOptions}). */
export interface E2eeEngineOptions {
  /** Encrypt (the default). `false` with a `frameMarker` runs the transforms for the test hook only. */
  encrypt: boolean;
  /** Where `e2ee-worker.js` is served; its `wasm/` directory must sit beside it. Default: beside the SDK. */
  workerUrl?: string;
  /** Engine tuning as JSON (`takeoverDelayMs`, `mismatchGraceMs`, `selfUpdateMs`). */
  config?: string;
  /** Test only: appended to every outgoing frame before encryption, stripped after decryption. */
  frameMarker?: Uint8Array;
  /** Test only: offer the {@link FrameProbe}, and keep the keys on close for it. */
  probe?: boolean;
}

type EngineOutput =
  | { type: "send"; message: MlsClientMessage }
  | { type: "epoch"; epoch: number; verificationCode: string; roster: { leaf: number; identity: string; signatureKey: string }[] }
  | { type: "leftGroup" }
  | { type: "chat"; from: string; text: string }
  | { type: "mismatch"; mlsOnly: string[]; signalingOnly: string[] }
  | { type: "desynchronized" };

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function defaultWorkerUrl(): string {
  return new URL("./e2ee-worker.js", import.meta.url).href;
}

class WorkerEngine implements E2eeEngine {
  readonly encrypts: boolean;
  readonly #worker: Worker;
  readonly #host: E2eeHost;
  readonly #options: E2eeEngineOptions;
  readonly #workerUrl: string;
  #initialised = false;
  /** The probe's requests waiting for the worker's answer, in order. */
  readonly #captures: ((frames: CapturedFrame[]) => void)[] = [];
  readonly #sentCaptures: ((frames: SentFrame[]) => void)[] = [];
  readonly #replays: ((result: ReplayResult) => void)[] = [];
  readonly probe?: FrameProbe;
  #stats: E2eeStats = {
    encrypt: { audio: { frames: 0, ms: 0 }, video: { frames: 0, ms: 0 } },
    decrypt: { audio: { frames: 0, ms: 0 }, video: { frames: 0, ms: 0 } },
    droppedNoKey: 0,
  };

  constructor(worker: Worker, workerUrl: string, host: E2eeHost, options: E2eeEngineOptions) {
    this.#worker = worker;
    this.#workerUrl = workerUrl;
    this.#host = host;
    this.#options = options;
    this.encrypts = options.encrypt;
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.#fromWorker(e.data);
    worker.onerror = (e) => console.warn("E2EE worker error:", e.message);
    if (options.probe === true) {
      this.probe = {
        capture: (count) =>
          new Promise((resolve) => {
            this.#captures.push(resolve);
            this.#post({ type: "probeCapture", count });
          }),
        captureSent: (count) =>
          new Promise((resolve) => {
            this.#sentCaptures.push(resolve);
            this.#post({ type: "probeCaptureSent", count });
          }),
        replay: (frames) =>
          new Promise((resolve) => {
            this.#replays.push(resolve);
            this.#post({ type: "probeReplay", frames });
          }),
      };
    }
  }

  #post(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  #server(message: object): void {
    this.#post({ type: "server", message: JSON.stringify(message) });
  }

  #fromWorker(m: FromWorker): void {
    switch (m.type) {
      case "output":
        this.#output(JSON.parse(m.output) as EngineOutput);
        break;
      case "failures":
        this.#host.emit("decryptFailures", JSON.parse(m.failures) as DecryptFailures);
        break;
      case "stats":
        this.#stats = { encrypt: m.encrypt, decrypt: m.decrypt, droppedNoKey: m.droppedNoKey };
        break;
      case "error":
        console.warn("E2EE engine:", m.message);
        break;
      case "probeCaptured":
        this.#captures.shift()?.(m.frames);
        break;
      case "probeCapturedSent":
        this.#sentCaptures.shift()?.(m.frames);
        break;
      case "probeReplayed":
        this.#replays.shift()?.(m.result);
        break;
      case "ready":
        break;
    }
  }

  #output(o: EngineOutput): void {
    switch (o.type) {
      case "send":
        this.#host.send(o.message);
        break;
      case "epoch": {
        const roster: RosterMember[] = o.roster.map((r) => ({
          leaf: r.leaf,
          identity: r.identity,
          signatureKey: fromHex(r.signatureKey),
        }));
        this.#host.emit("epochChanged", { epoch: o.epoch });
        this.#host.emit("rosterChanged", roster);
        this.#host.emit("verificationCodeChanged", o.verificationCode);
        break;
      }
      case "chat":
        this.#host.emit("chat", { from: o.from, text: o.text });
        break;
      case "mismatch":
        this.#host.emit("rosterMismatch", { mlsOnly: o.mlsOnly, signalingOnly: o.signalingOnly });
        break;
      case "leftGroup":
      case "desynchronized":
        break;
    }
  }

  stats(): E2eeStats {
    return this.#stats;
  }

  start(session: E2eeSession): void {
    if (!this.#initialised) {
      this.#initialised = true;
      this.#post({
        type: "init",
        glueUrl: new URL("./wasm/e2ee_wasm.js", this.#workerUrl).href,
        wasmUrl: new URL("./wasm/e2ee_wasm_bg.wasm", this.#workerUrl).href,
        identity: session.identity,
        config: this.#options.config ?? "",
        encrypt: this.#options.encrypt,
        ...(this.#options.frameMarker ? { frameMarker: this.#options.frameMarker } : {}),
      });
    }
    const joined = {
      type: "joined",
      protocol: 1,
      participant_id: session.participantId,
      room: session.room,
      auto_subscribe: true,
      mls: session.mls,
    };
    this.#post({ type: "start", joined: JSON.stringify(joined) });
  }

  serverMessage(message: MlsServerMessage): void {
    this.#server(message);
  }

  resumed(mls: MlsInfo): void {
    this.#server({ type: "resumed", participant_id: "", room: { room: "", participants: [] }, mls });
  }

  logGap(): void {
    this.#server({ type: "error", code: "mls_gap", message: "" });
  }

  participantJoined(participant: ParticipantInfo): void {
    this.#server({ type: "participant_joined", participant });
  }

  participantLeft(participantId: string): void {
    this.#server({ type: "participant_left", participant_id: participantId, reason: "left" });
  }

  attachSender(sender: RTCRtpSender, track: LocalTrackDescription): void {
    const options: TransformOptions = { side: "send", cid: track.cid, kind: track.kind, codec: track.codec };
    sender.transform = new RTCRtpScriptTransform(this.#worker, options);
  }

  attachReceiver(receiver: RTCRtpReceiver, mid: string, kind: TrackKind): void {
    const options: TransformOptions = { side: "receive", mid, kind };
    receiver.transform = new RTCRtpScriptTransform(this.#worker, options);
  }

  receiverAssigned(_receiver: RTCRtpReceiver, track: RemoteTrackDescription): void {
    this.#post({ type: "assign", mid: track.mid, participantId: track.participantId, codec: track.codec });
  }

  receiverUnassigned(mid: string): void {
    this.#post({ type: "unassign", mid });
  }

  sendChat(text: string): void {
    this.#post({ type: "chat", text });
  }

  close(): void {
    if (this.probe !== undefined) {
      this.#post({ type: "close", keep: true });
      return;
    }
    this.#post({ type: "close" });
    this.#worker.terminate();
  }
}

/**
 * Creates the E2EE engine for one room: starts its worker. Fails with
 * `ConnectError{kind: "e2ee_unavailable"}` where the browser lacks
 * `RTCRtpScriptTransform` or module workers: the SDK never pretends to
 * encrypt.
 */
export async function createE2eeEngine(host: E2eeHost, options: E2eeEngineOptions = { encrypt: true }): Promise<E2eeEngine> {
  if (typeof RTCRtpScriptTransform === "undefined" || typeof Worker === "undefined") {
    throw new ConnectError(
      "e2ee_unavailable",
      "this browser has no RTCRtpScriptTransform, which end-to-end encryption needs; " +
        "connect with { e2ee: false } to join without it",
    );
  }
  const url = options.workerUrl ?? defaultWorkerUrl();
  let worker: Worker;
  try {
    worker = new Worker(url, { type: "module", name: "e2ee" });
  } catch (error) {
    throw new ConnectError("e2ee_unavailable", `cannot start the E2EE worker: ${String(error)}`);
  }
  return new WorkerEngine(worker, url, host, options);
}
