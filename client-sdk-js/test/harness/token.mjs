// Mints access tokens as `sfu token` does: HS256 JWTs signed with the
// public development key pair the SFU uses when none is configured (see
// signaling::token::DEV_API_KEY / DEV_API_SECRET; loopback only), or with
// the pair a test gave its SFU.
import { createHmac } from "node:crypto";

export const DEV_API_KEY = "devkey";
export const DEV_API_SECRET = "secret-for-local-development-only-0000";

const b64url = (data) => Buffer.from(data).toString("base64url");

/** A token for `identity` in `room`, valid for `ttlSeconds`, signed with `apiKey`/`apiSecret` (default: the development pair). */
export function mintToken({ room, identity, name = identity, ttlSeconds = 600, grants = {}, apiKey = DEV_API_KEY, apiSecret = DEV_API_SECRET }) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: apiKey,
    sub: identity,
    name,
    room,
    nbf: now - 5,
    exp: now + ttlSeconds,
    grants: { publish: true, subscribe: true, admin: false, ...grants },
  };
  const head = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  const signature = createHmac("sha256", apiSecret).update(head).digest("base64url");
  return `${head}.${signature}`;
}
