/**
 * Where the app gets its access token, in this order:
 *
 * 1. `?token=` or `#token=` in the page's address (an invitation link; the
 *    room and the name then come from the token);
 * 2. else the operator's token endpoint from `GET /api/app-config`
 *    (`tokenEndpoint`): `POST {room, name}` → `{token}`;
 * 3. else, when the server offers demo tokens (`demoTokens`, development
 *    key on loopback only): `POST /api/demo-token {room, name}` →
 *    `{token, identity}`.
 *
 * @module
 */

import { UserError } from "./messages.js";

/** What `GET /api/app-config` says. */
export interface AppConfig {
  /** The server mints tokens for the join screen (`POST /api/demo-token`). */
  demoTokens: boolean;
  /** The operator's token endpoint, if configured. */
  tokenEndpoint: string | null;
}

/** What an invitation token says about the room (read for display only: the server checks it). */
export interface TokenClaims {
  room: string;
  name: string;
  identity: string;
}

/** The server's app configuration; no configuration (an older server, an error) offers no token source. */
export async function loadAppConfig(): Promise<AppConfig> {
  try {
    const res = await fetch("/api/app-config", { headers: { accept: "application/json" } });
    if (!res.ok) return { demoTokens: false, tokenEndpoint: null };
    const body = (await res.json()) as Partial<AppConfig>;
    return {
      demoTokens: body.demoTokens === true,
      tokenEndpoint: typeof body.tokenEndpoint === "string" && body.tokenEndpoint !== "" ? body.tokenEndpoint : null,
    };
  } catch {
    throw new UserError(
      "Cannot reach the server",
      "The page could not load its settings from the server. Check that the server is running, then reload.",
    );
  }
}

/** The token an invitation link carries in `?token=` or `#token=`. */
export function tokenFromAddress(location: Location): string | undefined {
  const query = new URLSearchParams(location.search).get("token");
  const fragment = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
  const token = query ?? fragment;
  return token !== null && token !== "" ? token : undefined;
}

/** The room, name and identity a token names, or undefined if it is not a readable token. */
export function readClaims(token: string): TokenClaims | undefined {
  try {
    const payload = token.split(".")[1] ?? "";
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const claims = JSON.parse(json) as { room?: unknown; name?: unknown; sub?: unknown };
    if (typeof claims.room !== "string" || typeof claims.sub !== "string") return undefined;
    return { room: claims.room, identity: claims.sub, name: typeof claims.name === "string" && claims.name !== "" ? claims.name : claims.sub };
  } catch {
    return undefined;
  }
}

/** Asks the configured source for a token to join `room` as `name`. */
export async function requestToken(config: AppConfig, room: string, name: string): Promise<string> {
  // The operator's endpoint decides who may join, often from the page's login cookies.
  if (config.tokenEndpoint !== null) return post(config.tokenEndpoint, room, name, "the sign-in service", "include");
  if (config.demoTokens) return post("/api/demo-token", room, name, "the server", "same-origin");
  throw new UserError(
    "An invitation link is needed",
    "This server hands out no tokens itself. Open the meeting link (with its token) that the organiser sent you.",
  );
}

/** The longest refusal text shown as it came. */
const MAX_REASON = 300;

async function post(url: string, room: string, name: string, who: string, credentials: RequestCredentials): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      credentials,
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({ room, name }),
    });
  } catch {
    throw new UserError("Cannot reach the server", `No answer from ${who}. Check your network and that the server is running, then try again.`);
  }
  if (res.status === 404 && url === "/api/demo-token") {
    throw new UserError(
      "An invitation link is needed",
      "This server no longer hands out demo tokens. Open the meeting link (with its token) that the organiser sent you.",
    );
  }
  if (res.status >= 400 && res.status < 500) {
    // A refusal says why in its text (shown as text, never as markup).
    const reason = (await res.text().catch(() => "")).trim().slice(0, MAX_REASON);
    const title = res.status === 400 ? "Room or name not accepted" : "Not allowed to join";
    throw new UserError(title, reason !== "" ? `${capitalise(who)} says: ${reason}` : `${capitalise(who)} refused (HTTP ${res.status}).`);
  }
  if (!res.ok) throw new UserError("Could not get an access token", `${capitalise(who)} answered with an error (HTTP ${res.status}). Try again in a moment.`);
  const body = (await res.json().catch(() => ({}))) as { token?: unknown };
  if (typeof body.token !== "string" || body.token === "") {
    throw new UserError("Could not get an access token", `${capitalise(who)} sent no token.`);
  }
  return body.token;
}

const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
