// What every browser test file shares: one sfu, one page server and one
// Chromium for the file, and helpers to join pages and wait on them.
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { launchBrowser, openPage, servePages } from "./pages.mjs";
import { startSfu } from "./sfu.mjs";
import { mintToken } from "./token.mjs";

/**
 * Starts the sfu (with `sfuArgs`), the page server and Chromium before the
 * file's tests and stops them after; returns an object whose fields are set
 * once started.
 */
export function useFixture({ sfuArgs = [] } = {}) {
  const f = { sfu: undefined, pages: undefined, browser: undefined };
  before(async () => {
    [f.pages, f.browser] = await Promise.all([servePages(), launchBrowser()]);
    // The pages come from another origin than the SFU, as an app's own site
    // does, so the SFU must list it (it refuses other origins' pages).
    f.sfu = await startSfu({ args: ["--allowed-origins", f.pages.origin, ...sfuArgs] });
  });
  after(async () => {
    await f.browser?.close();
    await f.pages?.close();
    await f.sfu?.stop();
    if (process.env.BROWSER_TEST_SFU_LOG) for (const l of f.sfu?.log ?? []) if (/"level":"(WARN|ERROR)"/.test(l)) console.log(l);
  });
  /** A new page, not yet joined. */
  f.page = () => openPage(f.browser, f.pages.origin);
  /** A new page joined to `room` as `identity` (without E2EE unless `options` say); returns `{ page, ...joined }`. */
  f.join = async (room, identity, options = { e2ee: false }) => {
    const page = await f.page();
    const token = mintToken({ room, identity });
    const joined = await page.evaluate(([u, t, o]) => harness.join(u, t, o), [f.sfu.wsUrl, token, options]);
    return { page, ...joined };
  };
  return f;
}

/** Polls `probe` every 100 ms until `done(value)`; fails after `limitMs`. */
export async function until(what, probe, done, limitMs = 30_000) {
  const deadline = Date.now() + limitMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what} not reached within ${limitMs} ms; last: ${JSON.stringify(last)}`);
}

/** Waits until `page` has decoded `frames` more video frames on `mid` than `from` (default 0). */
export function decodes(page, mid, frames, from = 0) {
  return until(
    `${frames} frames decoded on mid ${mid}`,
    () => page.evaluate(() => harness.inbound()),
    (streams) => streams.some((s) => s.mid === mid && s.framesDecoded >= from + frames),
  );
}

/** Frames decoded so far on `mid`. */
export async function framesOn(page, mid) {
  const streams = await page.evaluate(() => harness.inbound());
  return streams.find((s) => s.mid === mid)?.framesDecoded ?? 0;
}

/** Fails if the page saw a server error, a failed negotiation, or a console error. */
export async function assertNoProblems(page) {
  const events = await page.evaluate(() => harness.events());
  assert.deepEqual(events.filter((e) => ["serverError", "negotiationFailed"].includes(e.name)), []);
  assert.deepEqual(page.problems, []);
}

/** Decrypt failures in a page's `decryptFailures`: every count but `beforeJoin`, which is no failure. */
export function failureTotal(failures) {
  return Object.entries(failures)
    .filter(([reason]) => reason !== "beforeJoin")
    .reduce((sum, [, n]) => sum + n, 0);
}
