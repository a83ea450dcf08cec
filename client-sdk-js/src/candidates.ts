/**
 * Trickling local ICE candidates to the server. A transport's candidates
 * are held until its first offer or answer has been sent, so the server
 * never gets a candidate for a description it does not have yet.
 *
 * @module
 */

import type { ClientMessage, IceCandidate, Target } from "./proto.js";

/** Holds one transport's local candidates until its description is out. */
export class CandidateGate {
  readonly #target: Target;
  readonly #send: (message: ClientMessage) => void;
  #open = false;
  #held: IceCandidate[] = [];

  constructor(target: Target, send: (message: ClientMessage) => void) {
    this.#target = target;
    this.#send = send;
  }

  /** A local candidate from `onicecandidate`; `null` (end of gathering) is dropped. */
  local(candidate: RTCIceCandidate | null): void {
    if (candidate === null || candidate.candidate === "") return;
    const c: IceCandidate = {
      candidate: candidate.candidate,
      sdp_mid: candidate.sdpMid,
      sdp_m_line_index: candidate.sdpMLineIndex,
    };
    if (this.#open) this.#send({ type: "candidate", target: this.#target, candidate: c });
    else this.#held.push(c);
  }

  /** The description went out: send what was held, and the rest directly. */
  open(): void {
    this.#open = true;
    for (const candidate of this.#held.splice(0)) {
      this.#send({ type: "candidate", target: this.#target, candidate });
    }
  }
}
