// Two Chromium pages join one room through the real SFU, without E2EE,
// publish the fake camera (VP8) and microphone (Opus), and each decodes the
// other's video and receives its audio; then both leave cleanly.
//
// Everything is on loopback; every wait is bounded by frame or packet
// counts and a deadline that only turns a hang into a failure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoProblems, until, useFixture } from "./harness/fixture.mjs";
import { mintToken } from "./harness/token.mjs";

/** Video frames each page must decode from the other, and audio packets it must receive. */
const FRAMES = 60;
const AUDIO_PACKETS = 100;
const DD_URI = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

const f = useFixture();

const hasExtension = (sdp, uri) => sdp.split("\r\n").some((l) => l.startsWith("a=extmap:") && l.endsWith(` ${uri}`));

test("two browsers exchange VP8 video and Opus audio through the SFU", { timeout: 90_000 }, async () => {
  const alice = await f.join("call", "alice");
  assert.deepEqual(alice.others, []);
  const aTracks = await alice.page.evaluate(() => harness.publishFakeMedia());
  assert.deepEqual(aTracks.map((t) => [t.kind, t.codec, t.cid]).sort(), [["audio", "opus", "microphone"], ["video", "VP8", "camera"]]);

  const bob = await f.join("call", "bob");
  assert.deepEqual(bob.others, [alice.participantId]);
  const bTracks = await bob.page.evaluate(() => harness.publishFakeMedia());

  // Each page decodes the other's video and receives its audio.
  const enough = (streams) =>
    streams.some((s) => s.kind === "video" && s.framesDecoded >= FRAMES) &&
    streams.some((s) => s.kind === "audio" && s.packetsReceived >= AUDIO_PACKETS);
  const inbound = await Promise.all(
    [alice, bob].map((p) => until(`${p.identity} decoding`, () => p.page.evaluate(() => harness.inbound()), enough)),
  );
  for (const streams of inbound) {
    assert.equal(streams.find((s) => s.kind === "video" && s.framesDecoded >= FRAMES).codec, "video/VP8");
    assert.equal(streams.find((s) => s.kind === "audio" && s.packetsReceived >= AUDIO_PACKETS).codec, "audio/opus");
  }

  // Tracks are mapped by `subscribed{mid}` to the right publisher.
  const [aRemote, bRemote] = await Promise.all([alice, bob].map((p) => p.page.evaluate(() => harness.remoteTracks())));
  assert.deepEqual(aRemote.map((t) => t.trackId).sort(), bTracks.map((t) => t.trackId).sort());
  assert.deepEqual(bRemote.map((t) => t.trackId).sort(), aTracks.map((t) => t.trackId).sort());
  assert.ok(aRemote.every((t) => t.participantId === bob.participantId && t.readyState === "live"));
  assert.ok(bRemote.every((t) => t.participantId === alice.participantId && t.readyState === "live"));

  // The dependency descriptor is offered by the browser and accepted by the SFU, both ways.
  for (const { page } of [alice, bob]) {
    const sdp = await page.evaluate(() => harness.sdp());
    assert.ok(hasExtension(sdp.publisherOffer, DD_URI), "publisher offer lacks the DD extension");
    assert.ok(hasExtension(sdp.publisherAnswer, DD_URI), "the SFU's publisher answer lacks the DD extension");
    assert.ok(hasExtension(sdp.subscriberAnswer, DD_URI), "subscriber answer lacks the DD extension");
  }

  const firstFrameMs = await bob.page.evaluate(() => harness.firstFrameMs());
  assert.equal(typeof firstFrameMs, "number", "bob never rendered a remote frame");
  console.log(`first remote video frame at bob: ${firstFrameMs.toFixed(0)} ms after connect() began`);
  console.log(`sfu negotiation time: ${await f.sfu.metric("sfu_media_negotiation_microseconds_total")} us`);

  // Bob leaves: both his transports close, and alice sees him and his tracks go.
  const bLeft = await bob.page.evaluate(() => harness.leave());
  assert.deepEqual(bLeft, { closed: true, publisher: "closed", subscriber: "closed" });
  const aEvents = await until(
    "alice seeing bob leave",
    () => alice.page.evaluate(() => harness.events()),
    (events) => events.filter((e) => e.name === "trackUnsubscribed").length === 2 && events.some((e) => e.name === "participantLeft"),
  );
  assert.deepEqual(
    aEvents.filter((e) => e.name === "participantLeft").map((e) => [e.participantId, e.reason]),
    [[bob.participantId, "left"]],
  );
  const bEvents = await bob.page.evaluate(() => harness.events());
  assert.deepEqual(bEvents.filter((e) => e.name === "closed").map((e) => e.kind), ["left"]);

  const aLeft = await alice.page.evaluate(() => harness.leave());
  assert.deepEqual(aLeft, { closed: true, publisher: "closed", subscriber: "closed" });

  for (const { page } of [alice, bob]) {
    await assertNoProblems(page);
    await page.context().close();
  }
});
