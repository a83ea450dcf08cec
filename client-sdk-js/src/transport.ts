/**
 * What the publisher and subscriber transports share: one
 * RTCPeerConnection, its local candidates trickled to the server once its
 * first description is out, the server's candidates applied to it, and its
 * connection state reported.
 *
 * @module
 */

import { CandidateGate } from "./candidates.js";
import type { ClientMessage, IceCandidate, Target } from "./proto.js";

/** What a transport needs from the room. */
export interface TransportHost {
  send(message: ClientMessage): void;
  /** The transport's connection state changed. */
  connectionState(state: RTCPeerConnectionState): void;
}

/** One of a participant's two WebRTC transports. */
export class Transport {
  readonly pc: RTCPeerConnection;
  protected readonly gate: CandidateGate;

  constructor(target: Target, host: TransportHost, config: RTCConfiguration) {
    this.pc = new RTCPeerConnection(config);
    this.gate = new CandidateGate(target, host.send);
    this.pc.onicecandidate = (event) => this.gate.local(event.candidate);
    this.pc.onconnectionstatechange = () => host.connectionState(this.pc.connectionState);
  }

  /** Routes a server candidate (the ICE-lite SFU sends none today). */
  async onCandidate(candidate: IceCandidate): Promise<void> {
    await this.pc.addIceCandidate({
      candidate: candidate.candidate,
      sdpMid: candidate.sdp_mid ?? null,
      sdpMLineIndex: candidate.sdp_m_line_index ?? null,
    });
  }

  /** Closes the transport. */
  close(): void {
    this.pc.close();
  }
}
