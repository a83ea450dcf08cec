/**
 * The seam where the end-to-end encryption engine plugs in.
 *
 * The engine is the project's Rust MLS and SFrame code compiled to wasm,
 * running in one dedicated worker that also hosts every
 * `RTCRtpScriptTransform` (sender and receiver), so one SFrame counter per
 * sender key serves all of a member's tracks and keys never leave the
 * worker. The SDK never encrypts in JavaScript. It gives the engine:
 *
 * - every MLS message from the server, in log order ({@link E2eeEngine.serverMessage}),
 *   and a way to send the `mls_*` client messages ({@link E2eeHost.send});
 * - the signaling roster ({@link E2eeEngine.participantJoined} / `Left`), to
 *   commit joins and leaves and to detect roster mismatches;
 * - each RTCRtpSender before its track's first frame, and each
 *   RTCRtpReceiver before its first frame, to attach transforms
 *   ({@link E2eeEngine.attachSender}, {@link E2eeEngine.attachReceiver});
 * - which track (and so which participant) a receiver carries now, which
 *   changes when the server reuses an m-line ({@link E2eeEngine.receiverAssigned}).
 *
 * The engine reports epochs, verification codes, chat and failures through
 * {@link E2eeHost.emit}; they surface as the room's E2EE events.
 *
 * @module
 */

import type { CapturedFrame, FrameCost, ReplayResult, SentFrame } from "./e2ee-protocol.js";
import type {
  MlsClientMessage,
  MlsInfo,
  MlsServerMessage,
  ParticipantInfo,
  RoomState,
  TrackKind,
} from "./proto.js";

/** A member of the MLS group: who holds the keys. */
export interface RosterMember {
  /** Its leaf index (the sender index in SFrame key ids). */
  leaf: number;
  /** The identity its credential names. */
  identity: string;
  /** The public signature key its credential is bound to. */
  signatureKey: Uint8Array;
}

/** Frames dropped instead of being decoded, by reason; running totals. */
export interface DecryptFailures {
  malformed: number;
  authFailed: number;
  replay: number;
  unknownKid: number;
  wrongEpoch: number;
  wrongSender: number;
  /**
   * Decrypted, from a group member, on the track of a participant the
   * signaling roster did not name within the wait for it (1 s): who sent it
   * is known, whether it is the track's publisher is not.
   */
  unknownSender: number;
  /**
   * Not a failure: frames of an epoch before this member's first one, sent
   * before it joined (in flight or retransmitted around the join), which by
   * design it cannot read.
   */
  beforeJoin: number;
  /** Packets that never formed a whole frame (the native SDK's count; always 0 in a browser, whose own depacketizer assembles frames). */
  incomplete: number;
}

export { createE2eeEngine, type E2eeEngineOptions } from "./e2ee-engine.js";

/** The events only an E2EE room emits (payload types by name). */
export interface E2eeEvents {
  /** A new epoch: new keys in use for sending and receiving. */
  epochChanged: { epoch: number };
  /** The group's members (every epoch). */
  rosterChanged: RosterMember[];
  /** Members who see the same code hold the same keys with the same members. */
  verificationCodeChanged: string;
  /** The MLS roster and the server's roster disagree beyond a change in progress. */
  rosterMismatch: { mlsOnly: string[]; signalingOnly: string[] };
  /** Frames were dropped; running totals by reason. */
  decryptFailures: DecryptFailures;
  /** An end-to-end encrypted chat message, in the room's order (own included). */
  chat: { from: string; text: string };
}

/** What the room gives the engine. */
export interface E2eeHost {
  /** Sends an MLS message to the server (queued while reconnecting). */
  send(message: MlsClientMessage): void;
  /** Emits one of the room's E2EE events. */
  emit<K extends keyof E2eeEvents>(name: K, payload: E2eeEvents[K]): void;
}

/** This participant's session, as the engine starts it. */
export interface E2eeSession {
  participantId: string;
  /** The token's identity: the MLS credential's identity. */
  identity: string;
  /** Everyone else in the room at join time. */
  room: RoomState;
  /** The room's MLS group at join time. */
  mls: MlsInfo;
}

/** A local track, as the engine sees it when its sender is attached. */
export interface LocalTrackDescription {
  cid: string;
  kind: TrackKind;
  /** Codec MIME subtype: the engine leaves its payload prefix in the clear. */
  codec: string;
}

/** A remote track, as the engine sees it when a receiver carries it. */
export interface RemoteTrackDescription {
  trackId: string;
  /** The publisher: frames must decrypt under this participant's key. */
  participantId: string;
  kind: TrackKind;
  codec: string;
  /** The subscriber m-line. */
  mid: string;
}

/** The E2EE engine: MLS group state and SFrame transforms, in a worker. */
export interface E2eeEngine {
  /**
   * Whether frames are encrypted. `false` only for the test hook that runs
   * the transforms with `e2ee: false` (they then only add the test marker).
   */
  readonly encrypts: boolean;
  /** Time spent encrypting and decrypting so far. */
  stats(): E2eeStats;
  /**
   * Called right after `joined`, before any other call; called again when
   * the room had to join afresh (the server no longer held the session):
   * then the engine drops its group state and joins the group as the new
   * participant.
   */
  start(session: E2eeSession): void;
  /** Every `mls` and `mls_commit_rejected` message, in the order received. */
  serverMessage(message: MlsServerMessage): void;
  /** The session was resumed; missed log entries follow as `serverMessage`s. */
  resumed(mls: MlsInfo): void;
  /**
   * After a resume, the server no longer held every missed log entry
   * (`error{mls_gap}`): the engine must rejoin the group with a new KeyPackage.
   */
  logGap(): void;
  /** Another participant joined (signaling roster). */
  participantJoined(participant: ParticipantInfo): void;
  /** A participant left (signaling roster). */
  participantLeft(participantId: string): void;
  /** Attach the sender transform; called before the offer that carries the track. */
  attachSender(sender: RTCRtpSender, track: LocalTrackDescription): void;
  /** Attach the receiver transform; called for each new subscriber m-line before its answer. */
  attachReceiver(receiver: RTCRtpReceiver, mid: string, kind: TrackKind): void;
  /** The receiver at `track.mid` now carries `track` (also on a reused m-line). */
  receiverAssigned(receiver: RTCRtpReceiver, track: RemoteTrackDescription): void;
  /** The receiver at `mid` carries no track until the next `receiverAssigned`. */
  receiverUnassigned(mid: string): void;
  /** Queues a chat message; it arrives as a `chat` event at every member. */
  sendChat(text: string): void;
  /**
   * Ends the engine: the worker is terminated and every key dropped (with
   * the frame probe, the keys are kept for {@link FrameProbe.replay}).
   */
  close(): void;
  /** Tests only: present with the `frameProbe` test hook. */
  readonly probe?: FrameProbe;
}

/**
 * Tests only: what a member's keys make of frames it was not sent, to show
 * that a member removed from the group cannot open the frames that follow
 * its removal even if a server kept forwarding them.
 */
export interface FrameProbe {
  /** The next `count` video frames this member receives, as they arrived (still encrypted). */
  capture(count: number): Promise<CapturedFrame[]>;
  /**
   * The next `count` video frames this member sends, every encoding of
   * every track, as they leave the transform (encrypted): to check that
   * no two share an SFrame counter under one key.
   */
  captureSent(count: number): Promise<SentFrame[]>;
  /** Decrypts `frames` with the keys held now (after leaving: the keys held when it left). */
  replay(frames: CapturedFrame[]): Promise<ReplayResult>;
}

/** The cost of E2EE in the worker so far: frames and milliseconds spent in the wasm. */
export interface E2eeStats {
  encrypt: { audio: FrameCost; video: FrameCost };
  decrypt: { audio: FrameCost; video: FrameCost };
  /** Outgoing frames dropped because this member held no key yet. */
  droppedNoKey: number;
}

export type { CapturedFrame, FrameCost, ReplayResult, SentFrame };
