/**
 * Joining a room: {@link connect}.
 *
 * @module
 */

import { type E2eeHost, createE2eeEngine } from "./e2ee.js";
import { ConnectError } from "./errors.js";
import { type ConnectOptions, resolveOptions, sessionOptions } from "./options.js";
import { Room } from "./room.js";
import { SignalSession } from "./signaling.js";

/** The identity (`sub`) an access token names; the server checked the token. */
function tokenIdentity(token: string): string {
  try {
    const payload = token.split(".")[1] ?? "";
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const sub = (JSON.parse(json) as { sub?: unknown }).sub;
    return typeof sub === "string" ? sub : "";
  } catch {
    return "";
  }
}

/**
 * Joins the room the access `token` names, at the signaling server `url`
 * (e.g. `wss://sfu.example.com/rtc`).
 *
 * With the default `e2ee: true` every frame and chat message is end-to-end
 * encrypted by the E2EE engine in a worker; a browser that cannot run it
 * is refused with `ConnectError{kind: "e2ee_unavailable"}` before
 * connecting.
 *
 * @throws {ConnectError} when the room cannot be joined.
 */
export async function connect(url: string, token: string, options: ConnectOptions = {}): Promise<Room> {
  const resolved = resolveOptions(options);
  // The host forwards to the room, which exists only once joined.
  let target: Room | undefined;
  const host: E2eeHost = {
    send: (message) => target?.sendSignal(message),
    emit: (name, payload) => target?.emitE2ee(name, payload),
  };
  const marker = resolved.testHooks.frameMarker;
  const engine =
    resolved.e2ee || marker !== undefined
      ? await createE2eeEngine(host, {
          encrypt: resolved.e2ee,
          ...(resolved.e2eeWorkerUrl !== undefined ? { workerUrl: resolved.e2eeWorkerUrl } : {}),
          ...(marker !== undefined ? { frameMarker: marker } : {}),
          ...(resolved.testHooks.tamperKeys ? { config: JSON.stringify({ testTamperKeys: true }) } : {}),
          ...(resolved.testHooks.frameProbe ? { probe: true } : {}),
        })
      : undefined;
  try {
    const { session, joined } = await SignalSession.join(url, token, sessionOptions(resolved));
    target = new Room({ url, token, identity: tokenIdentity(token) }, session, joined, resolved, engine);
    return target;
  } catch (error) {
    engine?.close();
    throw error instanceof ConnectError ? error : new ConnectError("unreachable", String(error));
  }
}
