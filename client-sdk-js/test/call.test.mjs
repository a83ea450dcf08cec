// Two Chromium pages join one room through the real SFU, without E2EE,
// publish the fake camera (VP8) and microphone (Opus), and each decodes the
// other's video and receives its audio; then both leave cleanly.
//
// Everything is on loopback; every wait is bounded by frame or packet
// counts and a deadline that only turns a hang into a failure.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, openPage, servePages } from "./harness/pages.mjs";
import { startSfu } from "./harness/sfu.mjs";
import { mintToken } from "./harness/token.mjs";

/** Video frames each page must decode from the other, and audio packets it must receive. */
const FRAMES = 60;
const AUDIO_PACKETS = 100;
const DD_URI = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

let sfu;
let pages;
let browser;

before(async () => {
  [sfu, pages, browser] = await Promise.all([
    startSfu(),
    servePages(),
    launchBrowser(),
  ]);
});

after(async () => {
  await browser?.close();
  await pages?.close();
  await sfu?.stop();
});

/** Polls `probe` every 100 ms until `done(value)`; fails after `limitMs`. */
async function until(what, probe, done, limitMs = 30_000) {
  const deadline = Date.now() + limitMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what} not reached within ${limitMs} ms; last: ${JSON.stringify(last)}`);
}

const hasExtension = (sdp, uri) => sdp.split("\r\n").some((l) => l.startsWith("a=extmap:") && l.endsWith(` ${uri}`));

test("e2ee: true is refused until the E2EE engine is built in", { timeout: 30_000 }, async () => {
  const page = await openPage(browser, pages.origin);
  const token = mintToken({ room: "refuse", identity: "eve" });
  for (const options of [undefined, { e2ee: true }]) {
    const error = await page.evaluate(([u, t, o]) => harness.joinError(u, t, o), [sfu.wsUrl, token, options]);
    assert.equal(error.isConnectError, true, JSON.stringify(error));
    assert.equal(error.kind, "e2ee_unavailable");
  }
  await page.context().close();
});

test("two browsers exchange VP8 video and Opus audio through the SFU", { timeout: 90_000 }, async () => {
  const room = "call";
  const alice = await openPage(browser, pages.origin);
  const bob = await openPage(browser, pages.origin);
  const join = (page, identity) =>
    page.evaluate(([u, t]) => harness.join(u, t, { e2ee: false }), [sfu.wsUrl, mintToken({ room, identity })]);

  const a = await join(alice, "alice");
  assert.deepEqual(a.others, []);
  const aTracks = await alice.evaluate(() => harness.publishFakeMedia());
  assert.deepEqual(aTracks.map((t) => [t.kind, t.codec, t.cid]).sort(), [["audio", "opus", "microphone"], ["video", "VP8", "camera"]]);

  const b = await join(bob, "bob");
  assert.deepEqual(b.others, [a.participantId]);
  const bTracks = await bob.evaluate(() => harness.publishFakeMedia());

  // Each page decodes the other's video and receives its audio.
  const enough = (streams) =>
    streams.some((s) => s.kind === "video" && s.framesDecoded >= FRAMES) &&
    streams.some((s) => s.kind === "audio" && s.packetsReceived >= AUDIO_PACKETS);
  const [aIn, bIn] = await Promise.all([
    until("alice decoding bob", () => alice.evaluate(() => harness.inbound()), enough),
    until("bob decoding alice", () => bob.evaluate(() => harness.inbound()), enough),
  ]);
  for (const streams of [aIn, bIn]) {
    assert.equal(streams.find((s) => s.kind === "video" && s.framesDecoded >= FRAMES).codec, "video/VP8");
    assert.equal(streams.find((s) => s.kind === "audio" && s.packetsReceived >= AUDIO_PACKETS).codec, "audio/opus");
  }

  // Tracks are mapped by `subscribed{mid}` to the right publisher.
  const [aRemote, bRemote] = await Promise.all([alice.evaluate(() => harness.remoteTracks()), bob.evaluate(() => harness.remoteTracks())]);
  assert.deepEqual(aRemote.map((t) => t.trackId).sort(), bTracks.map((t) => t.trackId).sort());
  assert.deepEqual(bRemote.map((t) => t.trackId).sort(), aTracks.map((t) => t.trackId).sort());
  assert.ok(aRemote.every((t) => t.participantId === b.participantId && t.readyState === "live"));
  assert.ok(bRemote.every((t) => t.participantId === a.participantId && t.readyState === "live"));

  // The dependency descriptor is offered by the browser and accepted by the SFU, both ways.
  for (const page of [alice, bob]) {
    const sdp = await page.evaluate(() => harness.sdp());
    assert.ok(hasExtension(sdp.publisherOffer, DD_URI), "publisher offer lacks the DD extension");
    assert.ok(hasExtension(sdp.publisherAnswer, DD_URI), "the SFU's publisher answer lacks the DD extension");
    assert.ok(hasExtension(sdp.subscriberAnswer, DD_URI), "subscriber answer lacks the DD extension");
  }

  console.log(`sfu negotiation time: ${await sfu.metric("sfu_media_negotiation_microseconds_total")} us`);
  const firstFrameMs = await bob.evaluate(() => harness.firstFrameMs());
  assert.equal(typeof firstFrameMs, "number", "bob never rendered a remote frame");
  console.log(`first remote video frame at bob: ${firstFrameMs.toFixed(0)} ms after connect() began`);

  // Bob leaves: both his transports close, and alice sees him and his tracks go.
  const bLeft = await bob.evaluate(() => harness.leave());
  assert.deepEqual(bLeft, { closed: true, publisher: "closed", subscriber: "closed" });
  const aEvents = await until(
    "alice seeing bob leave",
    () => alice.evaluate(() => harness.events()),
    (events) => events.filter((e) => e.name === "trackUnsubscribed").length === 2 && events.some((e) => e.name === "participantLeft"),
  );
  assert.deepEqual(
    aEvents.filter((e) => e.name === "participantLeft").map((e) => [e.participantId, e.reason]),
    [[b.participantId, "left"]],
  );
  const bEvents = await bob.evaluate(() => harness.events());
  assert.deepEqual(bEvents.filter((e) => e.name === "closed").map((e) => e.kind), ["left"]);

  const aLeft = await alice.evaluate(() => harness.leave());
  assert.deepEqual(aLeft, { closed: true, publisher: "closed", subscriber: "closed" });

  for (const page of [alice, bob]) {
    const events = await page.evaluate(() => harness.events());
    assert.deepEqual(events.filter((e) => ["serverError", "negotiationFailed"].includes(e.name)), []);
    assert.deepEqual(page.problems, []);
    await page.context().close();
  }
});
