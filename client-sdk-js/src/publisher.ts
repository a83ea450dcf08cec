/**
 * The publisher transport: client → SFU media, where the client always
 * makes the offer (docs/protocol.md §2).
 *
 * Publishing a track is one round trip, one at a time: add a sendonly
 * transceiver, `setLocalDescription` (which assigns the m-line its mid),
 * then `publish{track}` naming that mid, then `offer{publisher}`; the
 * server answers with `track_accepted` and `answer{publisher}`. The server
 * needs the `publish` before (or with) the offer that carries the m-line.
 *
 * @module
 */

import { PublishError } from "./errors.js";
import { enableDependencyDescriptor } from "./header-extensions.js";
import type { ErrorCode, LayerSize, TrackInfo, TrackKind } from "./proto.js";
import { Serial } from "./serial.js";
import { Transport, type TransportHost } from "./transport.js";

/** What the publisher needs from the room. */
export interface PublisherHost extends TransportHost {
  /** Called with each sender before the offer that carries its track. */
  attachSender?(sender: RTCRtpSender, track: { cid: string; kind: TrackKind; codec: string }): void;
  /** Undoing a failed publish failed, or a sender refused the server's choice of layers. */
  negotiationFailed(message: string): void;
}

/** How to publish one track. */
export interface PublishRequest {
  cid: string;
  track: MediaStreamTrack;
  /** Codec MIME subtype; the only one offered for this track. */
  codec: string;
  e2ee: boolean;
  dependencyDescriptor: boolean;
  /** Video: send the three {@link SIMULCAST} encodings. */
  simulcast?: boolean;
  /** Video: one encoding with this scalability mode (e.g. `L3T3`). */
  svc?: string;
}

/** A track this transport sends. */
export interface Published {
  cid: string;
  transceiver: RTCRtpTransceiver;
  info: TrackInfo;
  /** Each spatial layer's picture size as announced, lowest first; empty for one layer. */
  layers: LayerSize[];
}

/** One simulcast encoding: its rid, how much smaller than the track, its bitrate cap. */
interface SimulcastEncoding {
  rid: string;
  scaleResolutionDownBy: number;
  maxBitrate: number;
}

/**
 * The simulcast encodings, lowest quality first (the order of
 * `sendEncodings`). Chromium drops the top encodings of a small track
 * (fewer than three for less than about 960×540).
 */
export const SIMULCAST: readonly SimulcastEncoding[] = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** The spatial layers of an L<n>T<m> scalability mode: each halves the one above. */
function svcSpatialLayers(mode: string): number {
  const n = /^L(\d)T\d/.exec(mode)?.[1];
  return n === undefined ? 1 : Number(n);
}

/** The picture sizes of layers downscaled by `scales` (lowest quality first), or none without a known size. */
function layerSizes(track: MediaStreamTrack, scales: number[]): LayerSize[] {
  const { width, height } = track.getSettings();
  if (width === undefined || height === undefined || scales.length < 2) return [];
  return scales.map((s) => ({ width: Math.floor(width / s), height: Math.floor(height / s) }));
}

/** What the server last asked a sender's encodings to be, and the queue that applies it. */
interface LayerSwitch {
  wanted: Set<string> | undefined;
  serial: Serial;
}

/** `degradationPreference`, not yet in TypeScript's DOM types. */
type SendParameters = RTCRtpSendParameters & { degradationPreference?: string };

type Waiter<T> = { resolve(value: T): void; reject(error: PublishError): void };

/**
 * The codecs `kind` may use on this browser, limited to `codec` and its
 * retransmission format; `undefined` if the browser cannot send `codec`.
 */
function codecPreferences(kind: TrackKind, codec: string): RTCRtpCodec[] | undefined {
  const all = RTCRtpSender.getCapabilities(kind)?.codecs ?? [];
  const wanted = `${kind}/${codec}`.toLowerCase();
  const main = all.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (main.length === 0) return undefined;
  const rtx = all.filter((c) => c.mimeType.toLowerCase() === `${kind}/rtx`);
  return [...main, ...rtx];
}

/** The client-offered transport that carries this participant's tracks. */
export class Publisher extends Transport {
  readonly #host: PublisherHost;
  readonly #negotiationTimeoutMs: number;
  readonly #serial = new Serial();
  readonly #published = new Map<string, Published>();
  /** Per track id: the rids the server wants sent; kept for a track whose publish is still finishing. */
  readonly #layerSwitches = new Map<string, LayerSwitch>();
  #answer: Waiter<string> | undefined;
  #accepted: (Waiter<TrackInfo> & { cid: string }) | undefined;

  constructor(host: PublisherHost, config: RTCConfiguration, negotiationTimeoutMs: number) {
    super("publisher", host, config);
    this.#host = host;
    this.#negotiationTimeoutMs = negotiationTimeoutMs;
  }

  /** The tracks published now, by cid. */
  get published(): ReadonlyMap<string, Published> {
    return this.#published;
  }

  /** Publishes `request.track`; resolves once the server accepted it and answered. */
  publish(request: PublishRequest): Promise<Published> {
    return this.#serial.run(async () => {
      if (this.pc.signalingState === "closed") throw new PublishError("closed", "room closed");
      if (this.#published.has(request.cid)) {
        throw new PublishError("duplicate_cid", `a track with cid ${request.cid} is already published`);
      }
      const kind = request.track.kind as TrackKind;
      const preferences = codecPreferences(kind, request.codec);
      if (preferences === undefined) {
        throw new PublishError("unsupported_codec", `this browser cannot send ${kind}/${request.codec}`);
      }
      const layering = kind === "video" ? this.#layering(request) : { encodings: undefined, layers: [], rids: [] };
      const transceiver = this.pc.addTransceiver(request.track, {
        direction: "sendonly",
        ...(layering.encodings !== undefined ? { sendEncodings: layering.encodings } : {}),
      });
      try {
        // Nothing may be awaited between addTransceiver and attachSender:
        // Chromium 148 ignores a transform set on a sender after a task
        // boundary (even a setParameters() or a timer), and the track's
        // frames then go out unencrypted.
        transceiver.setCodecPreferences(preferences);
        if (kind === "video" && request.dependencyDescriptor) enableDependencyDescriptor(transceiver);
        this.#host.attachSender?.(transceiver.sender, { cid: request.cid, kind, codec: request.codec });
        const info = await this.#negotiate(transceiver, request, kind, layering);
        if (layering.encodings !== undefined) await this.#keepResolution(transceiver.sender);
        const published = { cid: request.cid, transceiver, info, layers: layering.layers };
        this.#published.set(request.cid, published);
        // The server may have chosen layers while the publish was finishing.
        if (this.#layerSwitches.has(info.track_id)) this.#switchLayers(info.track_id);
        return published;
      } catch (error) {
        await this.#undo(transceiver);
        throw error;
      }
    });
  }

  /** Stops publishing the track `cid` and renegotiates without it. */
  unpublish(cid: string): Promise<void> {
    return this.#serial.run(async () => {
      const published = this.#published.get(cid);
      if (published === undefined) return;
      this.#published.delete(cid);
      this.#layerSwitches.delete(published.info.track_id);
      this.#host.send({ type: "unpublish", cid });
      this.pc.removeTrack(published.transceiver.sender);
      published.transceiver.stop();
      const answer = this.#expectAnswer();
      answer.catch(() => undefined);
      await this.pc.setLocalDescription();
      this.#sendOffer();
      const timeout = this.#timeout();
      try {
        const sdp = await Promise.race([answer, timeout.promise]);
        await this.pc.setRemoteDescription({ type: "answer", sdp });
      } finally {
        timeout.cancel();
        this.#answer = undefined;
      }
    });
  }

  /**
   * Routes `publisher_layers{track_id, active}`: only the simulcast
   * encodings whose rids `active` lists stay on. Calls to the sender are
   * queued, one at a time, and each applies the latest wish.
   */
  onPublisherLayers(trackId: string, active: string[]): void {
    const entry = this.#layerSwitches.get(trackId) ?? { wanted: undefined, serial: new Serial() };
    entry.wanted = new Set(active);
    this.#layerSwitches.set(trackId, entry);
    this.#switchLayers(trackId);
  }

  #switchLayers(trackId: string): void {
    const entry = this.#layerSwitches.get(trackId);
    const published = [...this.#published.values()].find((p) => p.info.track_id === trackId);
    if (entry === undefined || published === undefined) return;
    const sender = published.transceiver.sender;
    void entry.serial.run(async () => {
      if (this.pc.signalingState === "closed" || this.#layerSwitches.get(trackId) !== entry) return;
      const wanted = entry.wanted;
      if (wanted === undefined) return;
      const params = sender.getParameters();
      let changed = false;
      for (const encoding of params.encodings) {
        if (encoding.rid === undefined) continue;
        const active = wanted.has(encoding.rid);
        if (encoding.active !== active) {
          encoding.active = active;
          changed = true;
        }
      }
      if (!changed) return;
      try {
        await sender.setParameters(params);
      } catch (error) {
        // A sender stopped meanwhile (unpublished, closed) refuses; that is no failure.
        const closed = (this.pc.signalingState as RTCSignalingState) === "closed";
        if (this.#layerSwitches.get(trackId) === entry && !closed) {
          this.#host.negotiationFailed(`switching the layers of ${trackId}: ${String(error)}`);
        }
      }
    });
  }

  /** Routes `answer{publisher}`. */
  onAnswer(sdp: string): void {
    const waiter = this.#answer;
    this.#answer = undefined;
    if (waiter === undefined) console.warn("publisher answer with no offer in flight; ignored");
    else waiter.resolve(sdp);
  }

  /** Routes `track_accepted`. */
  onTrackAccepted(cid: string, track: TrackInfo): void {
    const waiter = this.#accepted;
    if (waiter === undefined || waiter.cid !== cid) {
      console.warn("track_accepted for a track not being published; ignored");
      return;
    }
    this.#accepted = undefined;
    waiter.resolve(track);
  }

  /**
   * Hands a server error to the negotiation in flight, if any (the protocol
   * has no request ids: while one is in flight, errors are its). Returns
   * whether it was taken.
   */
  onError(code: ErrorCode, message: string): boolean {
    const waiters = [this.#answer, this.#accepted].filter((w) => w !== undefined);
    this.#answer = this.#accepted = undefined;
    for (const w of waiters) w.reject(new PublishError("rejected", message, code));
    return waiters.length > 0;
  }

  /** Closes the transport; pending publishes fail with `closed`. */
  override close(): void {
    const waiters = [this.#answer, this.#accepted].filter((w) => w !== undefined);
    this.#answer = this.#accepted = undefined;
    for (const w of waiters) w.reject(new PublishError("closed", "room closed"));
    super.close();
  }

  /**
   * The encodings of a layered video track (none for one layer), the rids
   * to announce (highest first) and the layers' sizes (lowest first).
   */
  #layering(request: PublishRequest): { encodings: RTCRtpEncodingParameters[] | undefined; layers: LayerSize[]; rids: string[] } {
    if (request.svc !== undefined) {
      const spatial = svcSpatialLayers(request.svc);
      const scales = Array.from({ length: spatial }, (_, i) => 2 ** (spatial - 1 - i));
      return {
        encodings: [{ scalabilityMode: request.svc } as RTCRtpEncodingParameters],
        layers: layerSizes(request.track, scales),
        rids: [],
      };
    }
    if (request.simulcast !== true) return { encodings: undefined, layers: [], rids: [] };
    return {
      encodings: SIMULCAST.map((e) => ({ ...e, active: true })),
      layers: layerSizes(request.track, SIMULCAST.map((e) => e.scaleResolutionDownBy)),
      rids: SIMULCAST.map((e) => e.rid).reverse(),
    };
  }

  /**
   * Asks the encoder to lower the frame rate rather than the resolution
   * when the CPU or the bandwidth is short: with layers, the smaller
   * pictures are already there, and a top layer that shrinks on its own
   * would no longer be the size the server announced. Called once the
   * track is negotiated (see the transform's ordering in `publish`).
   */
  async #keepResolution(sender: RTCRtpSender): Promise<void> {
    const params = sender.getParameters() as SendParameters;
    params.degradationPreference = "maintain-resolution";
    try {
      await sender.setParameters(params);
    } catch (error) {
      // A browser without the field may refuse it; the layers work without it.
      console.warn("degradationPreference not applied:", String(error));
    }
  }

  async #negotiate(
    transceiver: RTCRtpTransceiver,
    request: PublishRequest,
    kind: TrackKind,
    layering: { layers: LayerSize[]; rids: string[] },
  ): Promise<TrackInfo> {
    try {
      await this.pc.setLocalDescription();
    } catch (error) {
      throw new PublishError("negotiation", `setLocalDescription failed: ${String(error)}`);
    }
    const mid = transceiver.mid;
    if (mid === null) throw new PublishError("negotiation", "the offer gave the track no mid");
    const answer = this.#expectAnswer();
    const accepted = new Promise<TrackInfo>((resolve, reject) => {
      this.#accepted = { cid: request.cid, resolve, reject };
    });
    // Both waiters fail together on a server error; neither may go unhandled.
    answer.catch(() => undefined);
    accepted.catch(() => undefined);
    this.#host.send({
      type: "publish",
      track: {
        cid: request.cid,
        mid,
        kind,
        codec: request.codec,
        e2ee: request.e2ee,
        ...(layering.rids.length > 0 ? { simulcast: layering.rids } : {}),
        ...(layering.layers.length > 0 ? { layers: layering.layers } : {}),
      },
    });
    this.#sendOffer();
    const timeout = this.#timeout();
    try {
      const sdp = await Promise.race([answer, timeout.promise]);
      try {
        await this.pc.setRemoteDescription({ type: "answer", sdp });
      } catch (error) {
        throw new PublishError("negotiation", `the server's answer was refused: ${String(error)}`);
      }
      return await Promise.race([accepted, timeout.promise]);
    } finally {
      timeout.cancel();
      this.#answer = this.#accepted = undefined;
    }
  }

  #expectAnswer(): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.#answer = { resolve, reject };
    });
  }

  #sendOffer(): void {
    const sdp = this.pc.localDescription?.sdp ?? "";
    this.#host.send({ type: "offer", target: "publisher", sdp });
    this.gate.open();
  }

  #timeout(): { promise: Promise<never>; cancel(): void } {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ms = this.#negotiationTimeoutMs;
    const promise = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PublishError("timeout", `no answer from the server within ${ms} ms`)), ms);
    });
    return { promise, cancel: () => clearTimeout(timer) };
  }

  /** Takes back a transceiver whose publish failed. */
  async #undo(transceiver: RTCRtpTransceiver): Promise<void> {
    if (this.pc.signalingState === "closed") return;
    try {
      if (this.pc.signalingState === "have-local-offer") {
        await this.pc.setLocalDescription({ type: "rollback" });
      }
      this.pc.removeTrack(transceiver.sender);
      transceiver.stop();
    } catch (error) {
      this.#host.negotiationFailed(`undoing a failed publish: ${String(error)}`);
    }
  }
}
