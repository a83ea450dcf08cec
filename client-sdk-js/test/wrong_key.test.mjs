// Wrong and stale keys.
//
// A member whose frame key is wrong (a test hook flips one bit of every
// epoch's key in its engine) decodes nothing for 35 s, and the keyframe
// requests its browser sends cost the publisher a bounded number of
// keyframes: the SFU lets each subscriber's requests for a track through
// with a doubling backoff (0.5 s up to 16 s: at most 7 in 35 s), the SFU
// asks once itself for a new subscription, and the encoder's first frame is
// a keyframe. Bound: 1 + 1 + 7 + 1 spare = 10 keyframes in the window.
//
// A member removed from the group keeps the keys it left with (the
// `frameProbe` test hook keeps them in its worker), and the frames sent
// after its removal open under none of them. The SFU stops forwarding to a
// member that left; the test stands in for a server that would not, by
// handing the member frames another member received. The control: frames
// of its last epoch that it was never sent do open under the same keys.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoProblems, until, useFixture } from "./harness/fixture.mjs";
import { mintToken } from "./harness/token.mjs";

const ROOM = "wrong-key";
const WINDOW_MS = 35_000;
const KEYFRAME_BOUND = 10;

const f = useFixture();

const video = async (page, dir) => (await page.evaluate((d) => (d === "out" ? harness.outbound() : harness.inbound()), dir)).find((s) => s.kind === "video");

test("a member with a tampered key decodes nothing and costs the publisher few keyframes", { timeout: 120_000 }, async () => {
  const alice = await f.page();
  await alice.evaluate(([u, t]) => harness.join(u, t), [f.sfu.wsUrl, mintToken({ room: ROOM, identity: "alice" })]);
  await alice.evaluate(() => harness.publishFakeMedia());
  await until("alice encoding", () => video(alice, "out"), (v) => v?.framesEncoded > 30);
  const keyframesBefore = (await video(alice, "out")).keyFramesEncoded;
  const requests = async () => ({
    received: await f.sfu.metric("sfu_media_keyframe_requests_received_total"),
    sent: await f.sfu.metric("sfu_media_keyframe_requests_sent_total"),
    throttled: await f.sfu.metric("sfu_media_keyframe_requests_throttled_total"),
  });
  const requestsBefore = await requests();

  const mallory = await f.page();
  await mallory.evaluate(([u, t]) => harness.join(u, t, { testHooks: { tamperKeys: true } }), [
    f.sfu.wsUrl,
    mintToken({ room: ROOM, identity: "mallory" }),
  ]);
  await until("both in one group", () => alice.evaluate(() => harness.e2ee()), (s) => s.roster.length === 2);
  await until("mallory receiving video", () => video(mallory, "in"), (v) => v?.packetsReceived > 100);
  await new Promise((r) => setTimeout(r, WINDOW_MS));

  const got = await video(mallory, "in");
  const failures = (await mallory.evaluate(() => harness.e2ee())).decryptFailures;
  const keyframes = (await video(alice, "out")).keyFramesEncoded - keyframesBefore;
  const after = await requests();
  const delta = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - requestsBefore[k]]));
  console.log(
    `mallory: ${got.packetsReceived} video packets received, ${got.framesDecoded} frames decoded, failures ${JSON.stringify(failures)}; ` +
      `alice encoded ${keyframes} keyframes in ${WINDOW_MS / 1000} s; SFU keyframe requests ${JSON.stringify(delta)}`,
  );
  assert.equal(got.framesDecoded, 0, "a wrong key decodes nothing");
  assert.ok(failures.authFailed > 0, JSON.stringify(failures));
  assert.ok(keyframes <= KEYFRAME_BOUND, `${keyframes} keyframes, bound ${KEYFRAME_BOUND}`);

  for (const page of [mallory, alice]) {
    await page.evaluate(() => harness.leave());
    await assertNoProblems(page);
  }
});

/** The epoch bits (low 8) of the KID of a VP8 frame in the media wire format (base64). */
function kidEpoch(base64) {
  const b = Buffer.from(base64, "base64");
  // The clear prefix: 10 bytes of a keyframe (P bit 0), 3 of a delta frame.
  let i = (b[0] & 1) === 0 ? 10 : 3;
  // RFC 9605 §4.3: |X|K(3)|Y|C(3)|; X set: K+1 bytes of KID follow.
  const config = b[i++];
  let kid = (config >> 4) & 7;
  if (config & 0x80) {
    kid = 0;
    for (let n = 0; n <= ((config >> 4) & 7); n++) kid = kid * 256 + b[i++];
  }
  return kid & 0xff;
}

test("a member removed from the group opens no frame of the next epoch", { timeout: 120_000 }, async () => {
  const room = "stale-key";
  const join = async (identity, options) => {
    const page = await f.page();
    await page.evaluate(([u, t, o]) => harness.join(u, t, o), [f.sfu.wsUrl, mintToken({ room, identity }), options]);
    return page;
  };
  const alice = await join("alice", {});
  await alice.evaluate(() => harness.publishFakeMedia());
  const bob = await join("bob", { testHooks: { frameProbe: true } });
  const carol = await join("carol", { testHooks: { frameProbe: true } });
  const state = (p) => p.evaluate(() => harness.e2ee());
  const oneGroup = async (pages, size) => {
    const states = await Promise.all(pages.map(state));
    return states.every((s) => s.roster.length === size && s.epoch === states[0].epoch) ? states[0].epoch : undefined;
  };
  const epoch = await until("three in one epoch", () => oneGroup([alice, bob, carol], 3), (e) => e !== undefined);
  await until("carol decoding alice", () => video(carol, "in"), (v) => v?.framesDecoded > 10);

  // Carol stops receiving alice's video: the frames bob captures next are new to her keys.
  const aliceVideo = (await carol.evaluate(() => harness.remoteTracks())).find((t) => t.kind === "video");
  await carol.evaluate((id) => harness.unsubscribe(id), aliceVideo.trackId);
  await until("carol unsubscribed", () => carol.evaluate(() => harness.remoteTracks()), (ts) => !ts.some((t) => t.kind === "video"));
  const control = await bob.evaluate(() => harness.capture(20));
  assert.deepEqual([...new Set(control.map((c) => kidEpoch(c.data)))], [epoch & 0xff], "control frames are of carol's last epoch");

  await carol.evaluate(() => harness.leave());
  const next = await until("alice and bob in a new epoch", () => oneGroup([alice, bob], 2), (e) => e !== undefined && e > epoch);
  const failuresBefore = (await state(bob)).decryptFailures;
  const captured = await bob.evaluate(() => harness.capture(60));
  const later = captured.filter((c) => kidEpoch(c.data) === (next & 0xff));
  assert.ok(later.length >= 30, `${later.length} of 60 frames of epoch ${next}`);
  await until("bob decoding the new epoch", () => state(bob), (s) => s.stats.decrypt.video.frames > 0);
  assert.deepEqual((await state(bob)).decryptFailures, failuresBefore, "bob opened every frame he captured");

  const opensControl = await carol.evaluate((fr) => harness.replay(fr), control);
  const opensLater = await carol.evaluate((fr) => harness.replay(fr), later);
  console.log(
    `carol (left in epoch ${epoch}): ${opensControl.opened}/${control.length} frames of epoch ${epoch} opened; ` +
      `${opensLater.opened}/${later.length} of epoch ${next} opened (${opensLater.waiting} held for an unknown epoch, ${opensLater.dropped} dropped)`,
  );
  assert.equal(opensControl.opened, control.length, "her keys open the frames of her last epoch");
  assert.equal(opensLater.opened, 0, "her keys open no frame of the next epoch");

  for (const page of [bob, alice]) {
    await page.evaluate(() => harness.leave());
    await assertNoProblems(page);
  }
  await assertNoProblems(carol);
});
