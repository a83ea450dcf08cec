// Mints access tokens as `sfu token` does: HS256 JWTs signed with the
// public development key pair the SFU uses when none is configured (see
// signaling::token::DEV_API_KEY / DEV_API_SECRET). Loopback tests only.
import { createHmac } from "node:crypto";

export const DEV_API_KEY = "devkey";
export const DEV_API_SECRET = "secret-for-local-development-only-0000";

const b64url = (data) => Buffer.from(data).toString("base64url");

/** A token for `identity` in `room`, valid for `ttlSeconds`. */
export function mintToken({ room, identity, name = identity, ttlSeconds = 600, grants = {} }) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: DEV_API_KEY,
    sub: identity,
    name,
    room,
    nbf: now - 5,
    exp: now + ttlSeconds,
    grants: { publish: true, subscribe: true, admin: false, ...grants },
  };
  const head = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  const signature = createHmac("sha256", DEV_API_SECRET).update(head).digest("base64url");
  return `${head}.${signature}`;
}
