/**
 * The SDK's typed errors. Each failure has a `kind` to switch on; `message`
 * is for people and logs. Server error messages are passed on as the
 * server wrote them (they never contain secrets, see docs/protocol.md §7).
 *
 * @module
 */

import type { ErrorCode } from "./proto.js";

/** Why {@link connect} failed. */
export type ConnectErrorKind =
  /** The URL is not a `ws://` or `wss://` URL. */
  | "invalid_url"
  /** The WebSocket could not be opened, or closed before `joined`. */
  | "unreachable"
  /** The server refused the token (forged, expired, wrong room, no grant). */
  | "unauthorized"
  /** The server speaks another protocol version. */
  | "protocol_version"
  /** No `joined` within `connectTimeout`. */
  | "timeout"
  /** The server refused the join for another reason (room full, shutting down). */
  | "refused"
  /** `e2ee: true` was asked for and no E2EE engine is available. */
  | "e2ee_unavailable";

/** Why {@link connect} failed. */
export class ConnectError extends Error {
  override readonly name = "ConnectError";
  constructor(
    /** The class of failure. */
    readonly kind: ConnectErrorKind,
    message: string,
    /** The server's error code, when the server refused. */
    readonly code?: ErrorCode,
  ) {
    super(message);
  }
}

/** Why publishing or unpublishing a track failed. */
export type PublishErrorKind =
  /** The server refused it (`code` says why, e.g. `forbidden`). */
  | "rejected"
  /** A track with this cid is already published. */
  | "duplicate_cid"
  /** The browser cannot send the codec asked for. */
  | "unsupported_codec"
  /** The server did not answer within `negotiationTimeout`. */
  | "timeout"
  /** The browser refused the SDP step. */
  | "negotiation"
  /** No published track has this cid. */
  | "not_found"
  /** The room is closed. */
  | "closed";

/** Why publishing or unpublishing a track failed. */
export class PublishError extends Error {
  override readonly name = "PublishError";
  constructor(
    /** The class of failure. */
    readonly kind: PublishErrorKind,
    message: string,
    /** The server's error code, when the server refused. */
    readonly code?: ErrorCode,
  ) {
    super(message);
  }
}

/** An error the server reported that belongs to no request in flight. */
export interface ServerError {
  code: ErrorCode;
  message: string;
}

/** An SDP step on one transport failed; media on it may be affected. */
export interface NegotiationFailure {
  target: "publisher" | "subscriber";
  /** What went wrong, from the browser's exception. */
  message: string;
}
