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
import type { ErrorCode, TrackInfo, TrackKind } from "./proto.js";
import { Serial } from "./serial.js";
import { Transport, type TransportHost } from "./transport.js";

/** What the publisher needs from the room. */
export interface PublisherHost extends TransportHost {
  /** Called with each sender before the offer that carries its track. */
  attachSender?(sender: RTCRtpSender, track: { cid: string; kind: TrackKind; codec: string }): void;
  /** Undoing a failed publish failed. */
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
}

/** A track this transport sends. */
export interface Published {
  cid: string;
  transceiver: RTCRtpTransceiver;
  info: TrackInfo;
}

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
      const transceiver = this.pc.addTransceiver(request.track, { direction: "sendonly" });
      try {
        transceiver.setCodecPreferences(preferences);
        if (kind === "video" && request.dependencyDescriptor) enableDependencyDescriptor(transceiver);
        this.#host.attachSender?.(transceiver.sender, { cid: request.cid, kind, codec: request.codec });
        const info = await this.#negotiate(transceiver, request, kind);
        const published = { cid: request.cid, transceiver, info };
        this.#published.set(request.cid, published);
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

  async #negotiate(transceiver: RTCRtpTransceiver, request: PublishRequest, kind: TrackKind): Promise<TrackInfo> {
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
      track: { cid: request.cid, mid, kind, codec: request.codec, e2ee: request.e2ee },
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
