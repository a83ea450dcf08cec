/**
 * The subscriber transport: SFU → client media, where the server always
 * makes the offer (docs/protocol.md §2).
 *
 * Which track an m-line carries comes only from `subscribed{track_id, mid}`,
 * never from the SDP's `msid`: the server reuses m-lines, and on a reused
 * one the `msid` still names the participant whose track it carried first.
 * `subscribed` comes just before the offer that carries a new m-line, so a
 * mapping whose transceiver does not exist yet waits for that offer; on a
 * reused m-line the transceiver exists and the mapping applies at once.
 *
 * @module
 */

import { enableDependencyDescriptor } from "./header-extensions.js";
import type { TrackKind } from "./proto.js";
import { Serial } from "./serial.js";
import { Transport, type TransportHost } from "./transport.js";

/** What the subscriber needs from the room. */
export interface SubscriberHost extends TransportHost {
  /** A new m-line's receiver, before the answer that accepts it. */
  receiverCreated(receiver: RTCRtpReceiver, mid: string, kind: TrackKind): void;
  /** The m-line `mid` now carries `trackId`. */
  trackMapped(trackId: string, mid: string, transceiver: RTCRtpTransceiver): void;
  /** The m-line `mid` stopped carrying `trackId`. */
  trackUnmapped(trackId: string, mid: string): void;
  /** Applying a server offer failed. */
  negotiationFailed(message: string): void;
}

/** The server-offered transport that carries everyone else's tracks. */
export class Subscriber extends Transport {
  readonly #host: SubscriberHost;
  readonly #dependencyDescriptor: boolean;
  readonly #serial = new Serial();
  /** mid → the track it carries now. */
  readonly #mapped = new Map<string, string>();
  /** `subscribed` messages whose m-line has no transceiver yet: mid → track. */
  readonly #waiting = new Map<string, string>();
  /** Mids whose receiver was handed to `receiverCreated`. */
  readonly #known = new Set<string>();

  constructor(host: SubscriberHost, config: RTCConfiguration, dependencyDescriptor: boolean) {
    super("subscriber", host, config);
    this.#host = host;
    this.#dependencyDescriptor = dependencyDescriptor;
  }

  /** Applies a server offer and sends the answer. Offers are applied in order. */
  onOffer(sdp: string): Promise<void> {
    return this.#serial.run(async () => {
      if (this.pc.signalingState === "closed") return;
      try {
        await this.pc.setRemoteDescription({ type: "offer", sdp });
        for (const transceiver of this.pc.getTransceivers()) {
          const mid = transceiver.mid;
          if (mid === null || this.#known.has(mid)) continue;
          this.#known.add(mid);
          const kind = transceiver.receiver.track.kind as TrackKind;
          if (kind === "video" && this.#dependencyDescriptor) enableDependencyDescriptor(transceiver);
          this.#host.receiverCreated(transceiver.receiver, mid, kind);
        }
        await this.pc.setLocalDescription();
        const answer = this.pc.localDescription?.sdp ?? "";
        this.#host.send({ type: "answer", target: "subscriber", sdp: answer });
        this.gate.open();
      } catch (error) {
        this.#host.negotiationFailed(`applying the server's offer: ${String(error)}`);
        return;
      }
      for (const [mid, trackId] of [...this.#waiting]) this.#apply(trackId, mid);
    });
  }

  /** Routes `subscribed{track_id, mid}`. */
  onSubscribed(trackId: string, mid: string): void {
    this.#waiting.set(mid, trackId);
    this.#apply(trackId, mid);
  }

  /** Routes `unsubscribed{track_id}`, and a departed publisher's tracks. */
  onUnsubscribed(trackId: string): void {
    for (const [mid, waiting] of this.#waiting) {
      if (waiting === trackId) this.#waiting.delete(mid);
    }
    for (const [mid, mapped] of this.#mapped) {
      if (mapped !== trackId) continue;
      this.#mapped.delete(mid);
      this.#host.trackUnmapped(trackId, mid);
    }
  }

  /** Maps `mid` to `trackId` if its transceiver exists. */
  #apply(trackId: string, mid: string): void {
    const transceiver = this.pc.getTransceivers().find((t) => t.mid === mid);
    if (transceiver === undefined || !this.#known.has(mid)) return;
    this.#waiting.delete(mid);
    const previous = this.#mapped.get(mid);
    if (previous === trackId) return;
    if (previous !== undefined) {
      // Reassigned without `unsubscribed`: end the old mapping first.
      this.#mapped.delete(mid);
      this.#host.trackUnmapped(previous, mid);
    }
    this.#mapped.set(mid, trackId);
    this.#host.trackMapped(trackId, mid, transceiver);
  }
}
