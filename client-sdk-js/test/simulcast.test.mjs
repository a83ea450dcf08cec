// Simulcast with end-to-end encryption, through the real SFU, in Chromium.
//
// One page publishes its fake camera at 1280×720 as three simulcast
// encodings (q 320×180, h 640×360, f 1280×720), SFrame-encrypted in one
// transform for all three. Two pages subscribe: "small" asks for at most
// 320×180 and must decode 320×180; "large" asks for 1280×720 and must
// decode 1280×720. Every frame both decode decrypts: no decrypt failure
// once the group is formed (the SFU probes a link with blank padding, as a
// resent packet could bring a frame to the decryptor twice, a replay),
// except replays on the limited link below, where a retransmitted packet
// can do the same. The frames the publisher sends on all its encodings
// never share an SFrame counter under one key (one counter
// per sender key, whatever the layer). Then the link into "large" is
// throttled to 300 kbit/s: it must fall back to a smaller layer and go on
// decoding, and once the limit is lifted climb back to 1280×720. Last,
// dynacast: while "large" hides the video, only q is wanted, and the
// publisher stops encoding h and f until it is shown again.
//
// "large" runs in a second Chromium inside a network namespace of its own,
// joined to the host by a veth pair whose host end the test throttles with
// tc (tbf). The SFU and the page server listen on the host end's address,
// which the other pages reach locally. Needs root and the ip and tc tools;
// without them the test is skipped and says why. Every wait is bounded by
// frame counts, and its deadline only turns a hang into a failure.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { assertNoProblems, failureTotal, until } from "./harness/fixture.mjs";
import { createNetns, netnsUnavailable } from "./harness/netns.mjs";
import { CHROMIUM, launchBrowser, openPage, servePages } from "./harness/pages.mjs";
import { startSfu } from "./harness/sfu.mjs";
import { mintToken } from "./harness/token.mjs";

const API_KEY = "simulcast-test";
const API_SECRET = randomBytes(32).toString("hex");
/** Frames a page must decode at a size before it counts as decoding that size. */
const FRAMES = 60;
/** Sent frames whose SFrame headers are checked. */
const SENT_FRAMES = 300;
const THROTTLE = ["rate", "300kbit", "burst", "16kb", "latency", "100ms"];

/** Why this machine cannot run the test (then it is skipped), or undefined. */
const unavailable = netnsUnavailable();

const env = { net: undefined, pages: undefined, sfu: undefined, browser: undefined, nsBrowser: undefined };

before(async () => {
  if (unavailable !== undefined) return;
  env.net = createNetns({ chromium: CHROMIUM });
  env.pages = await servePages({ host: env.net.hostIp });
  // Plain http on a non-loopback address: Chromium must be told it is a
  // secure context (getUserMedia, workers, crypto), and to show its real
  // host address in ICE candidates (the SFU is ICE-lite).
  const args = [
    `--unsafely-treat-insecure-origin-as-secure=${env.pages.origin}`,
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ];
  [env.browser, env.nsBrowser] = await Promise.all([
    launchBrowser({ args }),
    launchBrowser({ args, executablePath: env.net.chromium }),
  ]);
  env.sfu = await startSfu({
    host: env.net.hostIp,
    args: ["--allowed-origins", env.pages.origin, "--api-key", API_KEY, "--bandwidth-estimation-kbps", "1000"],
    env: { SFU_API_SECRET: API_SECRET },
  });
});

after(async () => {
  try {
    await env.browser?.close();
    await env.nsBrowser?.close();
    await env.pages?.close();
    await env.sfu?.stop();
  } finally {
    env.net?.destroy();
  }
  if (process.env.BROWSER_TEST_SFU_LOG) for (const l of env.sfu?.log ?? []) if (/"level":"(WARN|ERROR)"/.test(l)) console.log(l);
});

/** Joins `room` as `identity` with E2EE from a page of `browser`. */
async function join(browser, room, identity, options = {}) {
  const page = await openPage(browser, env.pages.origin);
  const token = mintToken({ room, identity, apiKey: API_KEY, apiSecret: API_SECRET });
  const joined = await page.evaluate(([u, t, o]) => harness.join(u, t, o), [env.sfu.wsUrl, token, options]);
  return { page, identity, sizes: [], ...joined };
}

/**
 * The page's one inbound video stream (undefined before it has one). Each
 * change of its decoded size is noted in `p.sizes` ({ at, size, frames }),
 * as the polls see it (every 100 ms while a wait polls), for the report.
 */
async function video(p) {
  const v = (await p.page.evaluate(() => harness.inbound())).find((s) => s.kind === "video");
  if (v?.frameWidth !== undefined) {
    const size = `${v.frameWidth}x${v.frameHeight}`;
    if (p.sizes.at(-1)?.size !== size) p.sizes.push({ at: Date.now(), size, frames: v.framesDecoded });
  }
  return v;
}

/** The size changes `p` went through from `since` on, as "+ms WxH" relative to `since`. */
function sizesSince(p, since) {
  const last = p.sizes.findLast((s) => s.at <= since);
  const from = p.sizes.filter((s) => s.at > since);
  return [...(last ? [`+0 ${last.size}`] : []), ...from.map((s) => `+${s.at - since} ${s.size}`)].join(", ");
}

/**
 * Waits until `p` decodes `frames` more frames than `from` and its last
 * decoded frame passes `size`; returns that stream's stats.
 */
function decodesAt(p, what, size, from, frames, limitMs) {
  return until(
    `${p.identity} decoding ${what}`,
    () => video(p),
    (v) => v !== undefined && v.framesDecoded >= from + frames && size(v.frameWidth, v.frameHeight),
    limitMs,
  );
}

async function failures(p) {
  const s = await p.page.evaluate(() => harness.e2ee());
  const d = s.decryptFailures;
  return { total: failureTotal(d), replay: d.replay, other: failureTotal(d) - d.replay, detail: d };
}

/** Fails unless `p`'s decrypt failures are what they were (`then`), or (with `replays`) only its replays grew. */
async function noNewFailures(p, then, what, { replays = false } = {}) {
  const now = await failures(p);
  if (replays) assert.equal(now.other, then.other, `${p.identity} ${what}: ${JSON.stringify(now.detail)}`);
  else assert.equal(now.total, then.total, `${p.identity} ${what}: ${JSON.stringify(now.detail)}`);
  return now;
}

/** Reads the SFrame (KID, CTR) of a VP8 frame's wire form: after the clear prefix (10 bytes on a keyframe, else 3). */
function sframeHeader(head) {
  const prefix = (head[0] & 0x01) === 0 ? 10 : 3;
  let at = prefix;
  const config = head[at++];
  const field = (extended, value) => {
    if (!extended) return BigInt(value);
    let v = 0n;
    for (let i = 0; i <= value; i++) v = (v << 8n) | BigInt(head[at++]);
    return v;
  };
  const kid = field((config & 0x80) !== 0, (config >> 4) & 0x07);
  const ctr = field((config & 0x08) !== 0, config & 0x07);
  return { kid, ctr };
}

test("simulcast with E2EE: each subscriber gets the layer it asks for, and the one its link carries", { timeout: 420_000, skip: unavailable }, async () => {
  const room = "simulcast";
  const pub = await join(env.browser, room, "pub", { testHooks: { frameProbe: true } });
  const cam = await pub.page.evaluate(() => harness.publishCamera(1280, 720, { simulcast: true }));
  assert.deepEqual(cam.captured, { width: 1280, height: 720 }, "the fake camera captures 1280x720");
  assert.deepEqual(cam.simulcast, ["f", "h", "q"]);
  assert.deepEqual(cam.layers, [
    { width: 320, height: 180 },
    { width: 640, height: 360 },
    { width: 1280, height: 720 },
  ]);
  const params = await pub.page.evaluate((cid) => harness.encodings(cid), cam.cid);
  assert.equal(params.degradationPreference, "maintain-resolution");
  assert.deepEqual(
    params.encodings.map((e) => [e.rid, e.scaleResolutionDownBy]),
    [["q", 4], ["h", 2], ["f", 1]],
  );

  const small = await join(env.browser, room, "small");
  await small.page.evaluate((id) => harness.setTrackSettings(id, { maxWidth: 320, maxHeight: 180 }), cam.trackId);
  const large = await join(env.nsBrowser, room, "large");
  await large.page.evaluate((id) => harness.setTrackSettings(id, { maxWidth: 1280, maxHeight: 720 }), cam.trackId);

  const everyone = [pub, small, large];
  await Promise.all(
    everyone.map((p) =>
      until(`${p.identity} in the three-member group`, () => p.page.evaluate(() => harness.e2ee()), (s) => s.roster.length === 3, 60_000),
    ),
  );

  // From here on no frame may fail to decrypt.
  const atGroup = await Promise.all([small, large].map(failures));
  console.log(`decrypt failures when the group formed: small ${JSON.stringify(atGroup[0].detail)}, large ${JSON.stringify(atGroup[1].detail)}`);

  // Each subscriber decodes the size it asked for.
  const started = Date.now();
  const [s0, l0] = await Promise.all([
    decodesAt(small, "320x180", (w, h) => w === 320 && h === 180, 0, FRAMES, 90_000),
    decodesAt(large, "1280x720", (w, h) => w === 1280 && h === 720, 0, FRAMES, 120_000),
  ]);
  console.log(`both at their sizes ${Date.now() - started} ms after the group formed: small ${JSON.stringify(s0)}, large ${JSON.stringify(l0)}`);
  // And small stays at 320x180 while it decodes more.
  await decodesAt(small, "320x180 on", (w, h) => w === 320 && h === 180, s0.framesDecoded, FRAMES, 60_000);

  // One SFrame counter for every encoding: no (KID, CTR) twice across layers.
  const sent = await pub.page.evaluate((n) => harness.sentFrames(n), SENT_FRAMES);
  const byStream = new Map();
  const seen = new Set();
  let repeats = 0;
  for (const f of sent) {
    const { kid, ctr } = sframeHeader(Buffer.from(f.head, "base64"));
    const key = `${kid}/${ctr}`;
    if (seen.has(key)) repeats++;
    seen.add(key);
    const s = byStream.get(f.ssrc) ?? { frames: 0, sizes: new Set(), ctrs: [] };
    s.frames++;
    if (f.width) s.sizes.add(`${f.width}x${f.height}`);
    s.ctrs.push(ctr);
    byStream.set(f.ssrc, s);
  }
  const streams = [...byStream.entries()].map(([ssrc, s]) => ({
    ssrc,
    frames: s.frames,
    sizes: [...s.sizes],
    ctrs: `${s.ctrs[0]}..${s.ctrs.at(-1)}`,
  }));
  console.log(`sent frames by RTP stream: ${JSON.stringify(streams)}; (KID, CTR) repeats ${repeats}`);
  assert.ok(byStream.size >= 2, `frames of at least two encodings were sent: ${JSON.stringify(streams)}`);
  assert.equal(repeats, 0, "no SFrame counter is used twice under one key");
  const outbound = await pub.page.evaluate(() => harness.outbound());
  console.log(`publisher outbound: ${JSON.stringify(outbound.map((o) => [o.rid, o.active, o.frameWidth, o.frameHeight, o.framesEncoded, o.qualityLimitationReason]))}`);

  // Throttle the link into "large": it falls back to a smaller layer and
  // keeps decoding. First it must be at 1280x720 (its estimate may have
  // dipped meanwhile, on a machine this busy).
  const beforeLimit = await decodesAt(large, "1280x720 before the limit", (w, h) => w === 1280 && h === 720, (await video(large)).framesDecoded, 30, 120_000);
  const atLimit = [await noNewFailures(small, atGroup[0], "before the limit"), await noNewFailures(large, atGroup[1], "before the limit")];
  env.net.limit(THROTTLE);
  const limited = Date.now();
  const fallen = await until(
    "large falling back to a smaller layer",
    () => video(large),
    (v) => v.frameWidth < 1280,
    90_000,
  );
  const fellMs = Date.now() - limited;
  const fallenAt = Date.now();
  const low = await decodesAt(large, "a smaller layer", (w) => w < 1280, fallen.framesDecoded, 30, 60_000);
  // What came through while it decoded the smaller layer: the link's share, not a measure of speed.
  const lowKbps = Math.round(((low.bytesReceived - fallen.bytesReceived) * 8) / (Date.now() - fallenAt));
  console.log(
    `throttled to 300 kbit/s: large below 1280x720 (at ${fallen.frameWidth}x${fallen.frameHeight}) ${fellMs} ms after the limit, ` +
      `decoding on at ${low.frameWidth}x${low.frameHeight} (${low.framesDecoded - beforeLimit.framesDecoded} frames since the limit, ` +
      `${low.packetsLost - beforeLimit.packetsLost} packets lost, about ${lowKbps} kbit/s of video received meanwhile); ` +
      `sizes decoded since the limit: ${sizesSince(large, limited)}`,
  );
  const tcStats = env.net.stats();

  // Lift the limit: back to 1280x720.
  env.net.unlimit();
  const lifted = Date.now();
  const back = await decodesAt(large, "1280x720 again", (w, h) => w === 1280 && h === 720, low.framesDecoded, FRAMES, 120_000);
  const upAt = large.sizes.find((s) => s.at > lifted && s.size === "1280x720")?.at ?? Date.now();
  console.log(
    `limit lifted: large back at 1280x720 ${upAt - lifted} ms after the lift (${FRAMES} frames there after ${Date.now() - lifted} ms); ` +
      `sizes decoded since the lift: ${sizesSince(large, lifted)}; ${JSON.stringify(back)}`,
  );
  console.log(`tc while throttled: ${tcStats.replace(/\s+/g, " ").trim()}`);
  // On the throttled link (drops, NACKs, a queue that delays the resends)
  // a packet may arrive twice, and Chromium hands a frame it already
  // assembled to the decryptor again if a copy comes before the frame is
  // decoded: such a frame is refused as a replay (it was decrypted once).
  // No other failure is allowed, and none at all on a clean link.
  const atBack = [await noNewFailures(small, atLimit[0], "while large was limited"), await noNewFailures(large, atLimit[1], "while limited", { replays: true })];
  console.log(`replayed frames at large while its link was limited (and until back at 1280x720): ${atBack[1].replay - atLimit[1].replay}`);

  // Dynacast: with "large" hidden, only q is wanted (small's limit), and the
  // publisher stops encoding h and f; shown again, they come back at once.
  await large.page.evaluate((id) => harness.setTrackSettings(id, { visible: false }), cam.trackId);
  const hidden = Date.now();
  const only = await until(
    "the publisher encoding only q",
    () => pub.page.evaluate((cid) => harness.encodings(cid), cam.cid),
    (p) => p.encodings.every((e) => e.active === (e.rid === "q")),
    60_000,
  );
  const hiddenMs = Date.now() - hidden;
  const stillSmall = await decodesAt(small, "320x180 with only q encoded", (w, h) => w === 320 && h === 180, (await video(small)).framesDecoded, 30, 60_000);
  await large.page.evaluate((id) => harness.setTrackSettings(id, { visible: true, maxWidth: 1280, maxHeight: 720 }), cam.trackId);
  const shown = Date.now();
  await until(
    "the publisher encoding every layer again",
    () => pub.page.evaluate((cid) => harness.encodings(cid), cam.cid),
    (p) => p.encodings.every((e) => e.active),
    60_000,
  );
  const reshown = await decodesAt(large, "1280x720 once shown again", (w, h) => w === 1280 && h === 720, (await video(large)).framesDecoded, FRAMES, 120_000);
  console.log(
    `dynacast: only q encoded ${hiddenMs} ms after large hid the video (${JSON.stringify(only.encodings.map((e) => [e.rid, e.active]))}), ` +
      `small decoding on at ${stillSmall.frameWidth}x${stillSmall.frameHeight}; shown again: large at 1280x720 after ${Date.now() - shown} ms ` +
      `(${reshown.framesDecoded} frames decoded in all)`,
  );

  // Small stayed at its size; nobody failed to decrypt a frame since the
  // group formed but for the replays of the limited link.
  const sEnd = await video(small);
  assert.deepEqual([sEnd.frameWidth, sEnd.frameHeight], [320, 180]);
  const lEnd = await video(large);
  console.log(`end: small ${JSON.stringify(sEnd)}; large ${JSON.stringify(lEnd)}`);
  await noNewFailures(small, atBack[0], "at the end");
  await noNewFailures(large, atBack[1], "after the limit was lifted");
  const events = await large.page.evaluate(() => harness.events());
  const paused = events.filter((e) => e.name === "trackPaused");
  console.log(`large: trackPaused events ${JSON.stringify(paused)}; decrypt failures before the group formed: small ${atGroup[0].total}, large ${atGroup[1].total}`);
  const metrics = await (await fetch(`http://${env.sfu.http}/metrics`)).text();
  const interesting = metrics
    .split("\n")
    .filter((l) => /^sfu_(packets_dropped_total|media_layer_retargets_total|media_paused_for_bandwidth|media_keyframe)/.test(l) && !/ 0$/.test(l));
  console.log(`sfu metrics: ${interesting.join("; ")}`);

  for (const p of everyone) {
    await p.page.evaluate(() => harness.leave());
    await assertNoProblems(p.page);
    await p.page.context().close();
  }
});
