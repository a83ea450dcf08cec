/**
 * Browser SDK for the end-to-end encrypted SFU.
 *
 * ```ts
 * import { connect } from "@e2ee-sfu/client";
 * const room = await connect("wss://sfu.example.com/rtc", token, { e2ee: false });
 * room.on("trackSubscribed", (t) => attach(t.mediaStreamTrack));
 * const media = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
 * for (const track of media.getTracks()) await room.publish(track);
 * // …
 * await room.leave();
 * ```
 *
 * @module
 */

export { connect } from "./connect.js";
export { Room, type RoomEvents } from "./room.js";
export type { ConnectOptions } from "./options.js";
export {
  ConnectError,
  type ConnectErrorKind,
  PublishError,
  type PublishErrorKind,
  type ServerError,
  type NegotiationFailure,
} from "./errors.js";
export type {
  CloseReason,
  LocalTrackPublication,
  PublishOptions,
  RemoteParticipant,
  RemoteTrack,
  SignalingState,
  TrackSettings,
  TrackSource,
} from "./tracks.js";
export type {
  DecryptFailures,
  E2eeEngine,
  E2eeEvents,
  E2eeHost,
  E2eeSession,
  E2eeStats,
  CapturedFrame,
  FrameCost,
  FrameProbe,
  SentFrame,
  LocalTrackDescription,
  RemoteTrackDescription,
  ReplayResult,
  RosterMember,
} from "./e2ee.js";
export type { TestHooks } from "./options.js";
export { DEPENDENCY_DESCRIPTOR_URI } from "./header-extensions.js";
export { SIMULCAST } from "./publisher.js";
export {
  PROTOCOL_VERSION,
  type ErrorCode,
  type LayerSize,
  type LeaveReason,
  type Target,
  type TrackInfo,
  type TrackKind,
} from "./proto.js";
