/**
 * The room's participants and tracks, as the app sees them.
 *
 * @module
 */

import type { LayerSize, LeaveReason, TrackInfo, TrackKind } from "./proto.js";

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
  /**
   * Video only: send three simulcast encodings (rids `q`, `h`, `f` at a
   * quarter, half and full resolution) so that the server can give each
   * subscriber the one that fits its bandwidth and the size it shows the
   * video at. Default `false`. Not with `svc`.
   */
  simulcast?: boolean;
  /**
   * Video only, VP9 or AV1: one encoding with this scalability mode
   * (e.g. `L3T3`: three spatial and three temporal layers) instead of
   * simulcast. Default: none.
   */
  svc?: string;
}

/**
 * What a subscriber wants of one remote video track. The server sends the
 * highest layer that fits both these limits and the subscriber's bandwidth.
 */
export interface TrackSettings {
  /** `false`: send nothing of it (e.g. scrolled out of view). Default `true`. */
  visible?: boolean;
  /** Widest picture worth sending, in pixels (e.g. the element's size). Default: no limit. */
  maxWidth?: number;
  /** Tallest picture worth sending, in pixels. Default: no limit. */
  maxHeight?: number;
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
  /**
   * Its sender, e.g. for `getStats()`. With simulcast, the SDK sets its
   * encodings' `active` flags as the server asks (`publisher_layers`).
   */
  readonly sender: RTCRtpSender;
  /** Each spatial layer's picture size as announced, lowest first; empty for one layer. */
  readonly layers: readonly LayerSize[];
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
