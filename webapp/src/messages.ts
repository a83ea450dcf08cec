/**
 * What the app tells a person when something fails: a short title and what
 * to do about it. Library errors are mapped here; their own text (which may
 * name internals) is never shown.
 *
 * @module
 */

import { ConnectError, PublishError } from "../../client-sdk-js/src/index.js";
import type { CloseReason } from "../../client-sdk-js/src/index.js";

/** An error meant for the person using the app. */
export class UserError extends Error {
  override readonly name = "UserError";
  constructor(
    /** What happened, in a few words. */
    readonly title: string,
    /** What to do about it. */
    readonly detail: string,
  ) {
    super(`${title}: ${detail}`);
  }
}

/** Why the camera or microphone could not be opened, from getUserMedia's exception. */
export function mediaError(error: unknown, what: "camera" | "microphone" | "camera and microphone"): UserError {
  const name = error instanceof DOMException ? error.name : "";
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return new UserError(
        `Access to the ${what} is blocked`,
        `Allow it in the browser (the camera icon in the address bar, or the site settings), then press Retry. You can also join without it.`,
      );
    case "NotFoundError":
    case "OverconstrainedError":
      return new UserError(`No ${what} found`, `Plug one in and press Retry, or join without it.`);
    case "NotReadableError":
    case "AbortError":
      return new UserError(
        `The ${what} is in use or not working`,
        `Close other applications that use it, then press Retry.`,
      );
    default:
      return new UserError(`Cannot open the ${what}`, `Press Retry, or join without it.`);
  }
}

/** Why joining failed, from connect()'s exception. */
export function connectError(error: unknown): UserError {
  if (error instanceof UserError) return error;
  if (!(error instanceof ConnectError)) return new UserError("Could not join", "Something went wrong while joining. Try again.");
  switch (error.kind) {
    case "unreachable":
    case "invalid_url":
      return new UserError("Cannot reach the server", "Check your network and that the server is running, then try again.");
    case "unauthorized":
      return new UserError(
        "The server refused the access token",
        "It may have expired, be for another room, or come from another server. Ask for a new link, or reload to get a new token.",
      );
    case "timeout":
      return new UserError("The server did not answer in time", "The network may be slow or blocked. Try again.");
    case "protocol_version":
      return new UserError("This page and the server do not match", "Reload the page to get the server's current version.");
    case "e2ee_unavailable":
      return new UserError(
        "This browser cannot encrypt the call end to end",
        "It lacks encoded-media transforms (RTCRtpScriptTransform). Use a current Chrome, Edge, Firefox or Safari.",
      );
    case "refused":
      return error.code === "rate_limited"
        ? new UserError("Too many attempts", "Wait a few seconds, then try again.")
        : new UserError("The server refused the join", "The room may be full, or the server shutting down or at capacity. Try again in a moment.");
  }
}

/** Why publishing a track failed. */
export function publishError(error: unknown, what: string): UserError {
  if (error instanceof PublishError && error.kind === "rejected" && error.code === "forbidden") {
    return new UserError(`You may not share your ${what}`, "Your access token does not allow publishing.");
  }
  return new UserError(`Could not share your ${what}`, "The connection to the server may be failing. Try again.");
}

/** Why the call ended, for the join screen. */
export function closedMessage(reason: CloseReason): UserError | undefined {
  switch (reason.kind) {
    case "left":
      return undefined;
    case "connection_lost":
      return new UserError("The connection was lost", "Reconnecting did not work within a few seconds. Check your network and join again.");
    case "server":
      switch (reason.reason) {
        case "removed":
          return new UserError("You were removed from the meeting", "An administrator removed you from the room.");
        case "room_closed":
          return new UserError("The meeting was closed", "An administrator closed the room.");
        case "replaced":
          return new UserError("You joined from somewhere else", "The same person joined this room from another tab or device, which replaced this one.");
        default:
          return new UserError("The server ended your session", "Join again; if it keeps happening the server may be restarting.");
      }
  }
}
