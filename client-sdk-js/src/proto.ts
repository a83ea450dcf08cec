/**
 * The signaling protocol's messages (version {@link PROTOCOL_VERSION}), as
 * `docs/protocol.md` describes them and `signaling/src/proto` defines them.
 * One JSON object per WebSocket text frame, tagged by `type`; every name is
 * snake_case. Only what the browser SDK reads or sends is typed here; unknown
 * fields and message types from a newer server are ignored.
 *
 * @module
 */

/** The protocol version this SDK speaks. */
export const PROTOCOL_VERSION = 1;

/** Which of a participant's two WebRTC transports a message is about. */
export type Target = "publisher" | "subscriber";

/** Audio or video. */
export type TrackKind = "audio" | "video";

/** Why a participant left, or why the server ended a session. */
export type LeaveReason =
  | "left"
  | "disconnected"
  | "media_timeout"
  | "removed"
  | "room_closed"
  | "replaced";

/** The server's error classes (`error.code`). */
export type ErrorCode =
  | "bad_message"
  | "too_large"
  | "out_of_order"
  | "unauthorized"
  | "forbidden"
  | "protocol_version"
  | "rate_limited"
  | "not_found"
  | "media"
  | "unavailable"
  | "mls_gap"
  | "resume_failed";

/** What a client declares in `publish`. */
export interface TrackPublish {
  /** The client's own name for the track, unique among its tracks. */
  cid: string;
  /** The `a=mid` of its m-line in the publisher offer. */
  mid: string;
  kind: TrackKind;
  /** Codec MIME subtype, e.g. `opus`, `VP8`. */
  codec: string;
  /** Simulcast rids, highest quality first. */
  simulcast?: string[];
  /**
   * The picture size of each spatial layer, lowest quality first (for
   * simulcast: the encodings of `simulcast` in reverse order). At most 4.
   */
  layers?: LayerSize[];
  /** Whether the payload is SFrame ciphertext. */
  e2ee?: boolean;
}

/** The picture size of one spatial layer. */
export interface LayerSize {
  width: number;
  height: number;
}

/**
 * A subscriber's preference for one subscribed track (`track_settings`):
 * `visible: false` sends nothing; `max_width`/`max_height` cap the layer
 * (absent: no limit).
 */
export interface TrackSettingsMessage {
  type: "track_settings";
  track_id: string;
  visible: boolean;
  max_width?: number;
  max_height?: number;
}

/** A published track as participants see it. */
export interface TrackInfo {
  /** The server's id (`TR_…`). */
  track_id: string;
  /** The publisher's participant id. */
  participant_id: string;
  kind: TrackKind;
  codec: string;
  simulcast: string[];
  e2ee: boolean;
  /** What its publisher's last `mute` said (a display hint). Absent from older servers. */
  muted?: boolean;
}

/** A participant as others see it. */
export interface ParticipantInfo {
  /** The server's id (`PA_…`). */
  participant_id: string;
  /** The token's `sub`. */
  identity: string;
  /** The token's display name. */
  name: string;
  tracks: TrackInfo[];
}

/** The room as a joining participant first sees it: everyone else. */
export interface RoomState {
  room: string;
  participants: ParticipantInfo[];
}

/** A trickled ICE candidate (snake_case, unlike the browser's `sdpMid`). */
export interface IceCandidate {
  candidate: string;
  sdp_mid?: string | null;
  sdp_m_line_index?: number | null;
}

/** Where a participant stands in the room's MLS group. */
export interface MlsInfo {
  /** 32 hex digits, chosen by the server per group incarnation. */
  group_id: string;
  /** The epoch the next commit must claim. */
  epoch: number;
  /** The last log sequence number before this join (or resume). */
  seq: number;
  /** Whether this participant must create the group. */
  founder: boolean;
}

/** What a client presents in `join` to take back a lost session. */
export interface Resume {
  participant_id: string;
  resume_token: string;
  /** The last MLS log sequence number processed (0 for none). */
  mls_seq: number;
}

/** One entry of a room's MLS log, tagged by `kind`. */
export type MlsEntry =
  | { kind: "key_package"; participant_id: string; key_package: string }
  | {
      kind: "commit";
      participant_id: string;
      epoch: number;
      commit: string;
      welcome: string | null;
      added: string[];
      removed: string[];
    }
  | { kind: "application"; participant_id: string; epoch: number; message: string }
  | { kind: "reset"; group_id: string; founder: string };

/** Messages a client sends. */
export type ClientMessage =
  | { type: "join"; protocol: number; token: string; resume?: Resume }
  | { type: "offer"; target: "publisher"; sdp: string }
  | { type: "answer"; target: "subscriber"; sdp: string }
  | { type: "candidate"; target: Target; candidate: IceCandidate }
  | { type: "publish"; track: TrackPublish }
  | { type: "unpublish"; cid: string }
  | { type: "mute"; cid: string; muted: boolean }
  | { type: "subscribe"; track_id: string }
  | { type: "unsubscribe"; track_id: string }
  | TrackSettingsMessage
  | { type: "leave" }
  | { type: "ping"; ts: number }
  | { type: "mls_key_package"; key_package: string }
  | { type: "mls_group_info"; group_info: string }
  | { type: "mls_commit"; epoch: number; commit: string; welcome?: string }
  | { type: "mls_application"; epoch: number; message: string };

/** The `mls_*` messages a client sends: only the E2EE engine sends these. */
export type MlsClientMessage = Extract<ClientMessage, { type: `mls_${string}` }>;

/** Messages the server sends. */
export type ServerMessage =
  | {
      type: "joined";
      protocol: number;
      participant_id: string;
      room: RoomState;
      auto_subscribe: boolean;
      mls: MlsInfo;
      resume_token: string;
    }
  | { type: "resumed"; participant_id: string; room: RoomState; mls: MlsInfo }
  | { type: "mls"; seq: number; entry: MlsEntry }
  | { type: "mls_commit_rejected"; epoch: number; current_epoch: number }
  | { type: "offer"; target: Target; sdp: string }
  | { type: "answer"; target: Target; sdp: string }
  | { type: "candidate"; target: Target; candidate: IceCandidate }
  | { type: "track_accepted"; cid: string; track: TrackInfo }
  | { type: "participant_joined"; participant: ParticipantInfo }
  | { type: "participant_left"; participant_id: string; reason: LeaveReason }
  | { type: "track_published"; track: TrackInfo }
  | { type: "track_unpublished"; participant_id: string; track_id: string }
  | { type: "track_muted"; participant_id: string; track_id: string; muted: boolean }
  | { type: "subscribed"; track_id: string; mid: string }
  | { type: "unsubscribed"; track_id: string }
  | { type: "track_paused"; track_id: string; paused: boolean }
  | { type: "active_speaker"; participant_id: string | null }
  | { type: "publisher_layers"; track_id: string; active: string[] }
  | { type: "pong"; ts: number }
  | { type: "closed"; reason: LeaveReason }
  | { type: "error"; code: ErrorCode; message: string };

/** The MLS messages the server sends: routed to the E2EE engine. */
export type MlsServerMessage = Extract<ServerMessage, { type: "mls" | "mls_commit_rejected" }>;

/**
 * Parses one text frame. Returns `undefined` for anything that is not an
 * object with a string `type`: the server is trusted to speak the protocol,
 * but a frame that is not one must not throw out of the read loop.
 */
export function parseServerMessage(text: string): ServerMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const type = (value as { type?: unknown }).type;
  return typeof type === "string" ? (value as ServerMessage) : undefined;
}
