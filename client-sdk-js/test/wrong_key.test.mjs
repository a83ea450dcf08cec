// A member whose frame key is wrong (a test hook flips one bit of every
// epoch's key in its engine) decodes nothing for 35 s, and the keyframe
// requests its browser sends cost the publisher a bounded number of
// keyframes: the SFU lets each subscriber's requests for a track through
// with a doubling backoff (0.5 s up to 16 s: at most 7 in 35 s), the SFU
// asks once itself for a new subscription, and the encoder's first frame is
// a keyframe. Bound: 1 + 1 + 7 + 1 spare = 10 keyframes in the window.
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
