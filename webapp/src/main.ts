/**
 * The meeting app: the join screen, then the call, then back. Tokens come
 * from the address, the operator's endpoint or the server's demo endpoint
 * (tokens.ts); the room is joined through the browser SDK with end-to-end
 * encryption always on.
 *
 * @module
 */

import { connect } from "../../client-sdk-js/src/index.js";
import { CallScreen } from "./call.js";
import { JoinScreen } from "./join.js";
import { UserError, connectError } from "./messages.js";
import { type AppConfig, loadAppConfig, readClaims, requestToken, tokenFromAddress } from "./tokens.js";

let audioContext: AudioContext | undefined;
/** One AudioContext for the page (levels only; nothing plays through it). */
function audio(): AudioContext {
  audioContext ??= new AudioContext();
  return audioContext;
}
// Browsers start an AudioContext suspended until the person interacts.
for (const type of ["pointerdown", "keydown"]) {
  document.addEventListener(type, () => void audioContext?.resume(), { capture: true });
}

/** The signaling endpoint of the server that served this page. */
function signalingUrl(): string {
  return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/rtc`;
}

function start(): void {
  const invitation = tokenFromAddress(location);
  const invited = invitation === undefined ? {} : { invitation: { claims: readClaims(invitation) } };
  const join = new JoinScreen(audio);
  let config: Promise<AppConfig> | undefined;
  const appConfig = (): Promise<AppConfig> => {
    config ??= loadAppConfig().catch((error: unknown) => {
      config = undefined;
      throw error;
    });
    return config;
  };

  join.onJoin = async (request) => {
    const token = invitation ?? (await requestToken(await appConfig(), request.room, request.name));
    let room;
    try {
      room = await connect(signalingUrl(), token, {
        e2ee: true,
        e2eeWorkerUrl: new URL("e2ee-worker.js", location.href).href,
      });
    } catch (error) {
      throw connectError(error);
    }
    if (invitation === undefined) {
      // The address of this room, to send to others or open in another tab.
      const url = new URL(location.href);
      url.search = new URLSearchParams({ room: room.name }).toString();
      history.replaceState(null, "", url);
    }
    const media = join.hide();
    // An invitation whose token could not be read for display leaves the name empty.
    const myName = request.name !== "" ? request.name : room.identity;
    const call = new CallScreen(room, { ...request, ...media }, myName, audio(), (notice) => {
      join.show({ room: room.name, ...invited, notice: notice ?? new UserError("You left the meeting", `Join again to go back to ${room.name}.`) });
    });
    await call.start();
  };

  const room = new URLSearchParams(location.search).get("room") ?? undefined;
  join.show({ ...(room !== undefined ? { room } : {}), ...invited });
  if (invitation === undefined) {
    // Say early when this server cannot hand out tokens.
    appConfig()
      .then((c) => {
        if (!c.demoTokens && c.tokenEndpoint === null) {
          join.notice(new UserError("An invitation link is needed", "This server hands out no tokens itself. Open the meeting link (with its token) that the organiser sent you."));
        }
      })
      .catch((error: unknown) => join.notice(error as UserError));
  }
}

start();
