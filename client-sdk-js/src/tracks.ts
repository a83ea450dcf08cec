/**
 * The room's participants and tracks, as the app sees them.
 *
 * @module
 */

import type { LeaveReason, TrackInfo, TrackKind } from "./proto.js";

/** Where a local track comes from; it names the track (its cid) by default. */
export type TrackSource = "camera" | "microphone" | "screen" | "screen_audio";

/** Options of {@link Room.publish}. */
export interface PublishOptions {
  /** Where the track comes from. Default: `camera` for video, `microphone` for audio. */
  source?: TrackSource;
  /** The client's name for the track, unique among its tracks. Default: the source. */
  cid?: string;
  /** Codec MIME subtype. Default `VP8` for video, `opus` for audio. */
  codec?: string;
}

/** A track this participant publishes. */
export interface LocalTrackPublication {
  /** The client's name for it. */
  readonly cid: string;
  readonly source: TrackSource;
  /** The server's view of it (its `track_id` and more). */
  readonly info: TrackInfo;
  /** The track being sent. */
  readonly track: MediaStreamTrack;
  /** Its sender, e.g. for `getStats()` or `setParameters()`. */
  readonly sender: RTCRtpSender;
}

/**
 * A track another participant publishes, as it arrives here. Which track
 * a subscriber m-line carries comes from the server's `subscribed` message.
 *
 * The server reuses m-lines: after one track is unsubscribed, a later one
 * may arrive on the same m-line, so a later `RemoteTrack` may hold the same
 * `MediaStreamTrack` object (and receiver) as an earlier, ended one. Treat
 * each `trackSubscribed` event as a new track; never tell tracks apart by
 * `MediaStreamTrack.id` or by the SDP's `msid`.
 */
export interface RemoteTrack {
  /** The server's id for the track. */
  readonly trackId: string;
  /** Its publisher's participant id. */
  readonly participantId: string;
  readonly kind: TrackKind;
  readonly codec: string;
  /** Whether its payload is end-to-end encrypted. */
  readonly e2ee: boolean;
  /** The subscriber m-line it arrives on. */
  readonly mid: string;
  /** The media, ready for a `<video>`/`<audio>` element's `srcObject`. */
  readonly mediaStreamTrack: MediaStreamTrack;
  /** Its receiver, e.g. for `getStats()`. */
  readonly receiver: RTCRtpReceiver;
}

/** Another participant in the room (the signaling roster). */
export interface RemoteParticipant {
  readonly participantId: string;
  /** The identity from its access token. */
  readonly identity: string;
  /** Its display name. */
  readonly name: string;
  /** The tracks it publishes, by track id. */
  readonly tracks: ReadonlyMap<string, TrackInfo>;
}

/** Why a room closed. */
export type CloseReason =
  /** {@link Room.leave} was called. */
  | { kind: "left" }
  /** The server ended the session. */
  | { kind: "server"; reason: LeaveReason }
  /** The connection was lost and could not be resumed. */
  | { kind: "connection_lost" };

/** The signaling connection's state changes. */
export type SignalingState =
  /** The connection dropped; reconnecting with resume. */
  | "reconnecting"
  /** Reconnected; the session (and its media) went on. */
  | "resumed"
  /**
   * The server no longer held the session: the room was joined again as a
   * new participant (new participant id, new transports) and the same
   * tracks were published again.
   */
  | "rejoined";
