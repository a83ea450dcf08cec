// Joins and leaves with end-to-end encryption: alice and bob stay in a room
// while carol joins, publishes her camera and leaves, 20 times. Each time
// both remaining members render carol's video, and the time from just
// before her connect() to the first frame their <video> renders is
// measured (the goal: within 1 s), and
// a new epoch follows her join and her leave. From the second run on, her
// video comes on the subscriber m-line the previous carol's video used (the
// SFU reuses freed m-lines): the case where a newcomer's video used to
// start seconds late.
//
// The 1 s goal is reported (how many of the 40 starts met it, and the
// distribution), and asserted only with JOIN_LEAVE_ASSERT_MS=1000 (or
// another bound) set: a timed assertion would fail on a slow or loaded CI
// machine for reasons that are not the code's. What the test always
// asserts: every newcomer's video starts (within 20 s) at both members, on
// a reused m-line after the first run, and a new epoch follows each join
// and leave. Every wait is bounded by counts and deadlines that only turn a
// hang into a failure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoProblems, until, useFixture } from "./harness/fixture.mjs";
import { mintToken } from "./harness/token.mjs";

const ROOM = "join-leave";
const RUNS = 20;
const BOUND_MS = 1000;
/** Set: fail if any start took longer than this many ms. */
const ASSERT_MS = process.env.JOIN_LEAVE_ASSERT_MS === undefined ? undefined : Number(process.env.JOIN_LEAVE_ASSERT_MS);

const f = useFixture();

async function member(identity) {
  const page = await f.page();
  const token = mintToken({ room: ROOM, identity });
  const joined = await page.evaluate(([u, t]) => harness.join(u, t), [f.sfu.wsUrl, token]);
  await page.evaluate(() => harness.publishFakeMedia());
  return { page, identity, ...joined };
}

const epochOf = async (p) => (await p.page.evaluate(() => harness.e2ee())).epoch;

test(`a newcomer's video starts at everyone (goal: within ${BOUND_MS} ms), ${RUNS} joins and leaves`, { timeout: 300_000 }, async () => {
  const stay = [await member("alice"), await member("bob")];
  await until("alice and bob in one group", () => stay[0].page.evaluate(() => harness.e2ee()), (s) => s.roster.length === 2);
  await until("bob in the group", () => stay[1].page.evaluate(() => harness.e2ee()), (s) => s.roster.length === 2);

  const delays = [];
  // Per member: the mids carol's video came on, and how many runs reused one.
  const mids = stay.map(() => new Set());
  const reused = stay.map(() => 0);
  for (let run = 0; run < RUNS; run++) {
    const before = await Promise.all(stay.map(epochOf));
    const page = await f.page();
    const token = mintToken({ room: ROOM, identity: `carol-${run}` });
    const startedAt = Date.now();
    const carol = await page.evaluate(([u, t]) => harness.join(u, t), [f.sfu.wsUrl, token]);
    await page.evaluate(() => harness.publishFakeMedia());
    const seen = await Promise.all(
      stay.map(async (p) => {
        try {
          return await until(`run ${run}: ${p.identity} renders carol`, () => p.page.evaluate((pid) => harness.firstVideoAt(pid), carol.participantId), (t) => t !== undefined, 20_000);
        } catch (e) {
          const [tracks, inbound, e2ee] = await p.page.evaluate(async () => [harness.remoteTracks(), await harness.inbound(), harness.e2ee()]);
          const events = (await p.page.evaluate(() => harness.events())).filter((e) => !["chat", "decryptFailures"].includes(e.name)).slice(-12);
          console.log(`run ${run}: ${p.identity} last events ${JSON.stringify(events)}`);
          for (const m of ["sfu_media_keyframe_requests_received_total", "sfu_media_keyframe_requests_sent_total", "sfu_media_keyframe_requests_throttled_total"]) {
            console.log(`${m} ${await f.sfu.metric(m)}`);
          }
          console.log(`run ${run}: ${p.identity} tracks ${JSON.stringify(tracks)} inbound ${JSON.stringify(inbound)} e2ee ${JSON.stringify({ epoch: e2ee.epoch, roster: e2ee.roster, f: e2ee.decryptFailures })}`);
          throw e;
        }
      }),
    );
    for (const [i, p] of stay.entries()) {
      const tracks = await p.page.evaluate(() => harness.remoteTracks());
      const mid = tracks.find((t) => t.participantId === carol.participantId && t.kind === "video")?.mid;
      if (mids[i].has(mid)) reused[i]++;
      mids[i].add(mid);
    }
    console.log(`run ${run}: ${seen.map((t) => t - startedAt).join(" ")} ms`);
    const joined = await Promise.all(stay.map(epochOf));
    for (const [i, p] of stay.entries()) {
      assert.ok(joined[i] > before[i], `run ${run}: ${p.identity}'s epoch ${before[i]} -> ${joined[i]} after the join`);
    }
    delays.push(...seen.map((t) => t - startedAt));

    await page.evaluate(() => harness.leave());
    await assertNoProblems(page);
    await page.context().close();
    for (const [i, p] of stay.entries()) {
      await until(`run ${run}: ${p.identity}'s epoch after carol left`, () => epochOf(p), (e) => e > joined[i], 20_000);
    }
  }

  const sorted = [...delays].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  console.log(
    `newcomer's first rendered video at the others, ms after her connect() (${sorted.length} = ${RUNS} runs x 2 members): ` +
      `min ${sorted[0]}, p50 ${at(0.5)}, p90 ${at(0.9)}, max ${sorted[sorted.length - 1]}; all: ${sorted.join(" ")}`,
  );
  console.log(`runs whose video came on a reused m-line: ${reused.join(", ")} (of ${RUNS - 1} possible)`);
  for (const n of reused) assert.equal(n, RUNS - 1, "every later carol's video reuses an m-line");
  const late = delays.filter((d) => d > BOUND_MS);
  console.log(`${delays.length - late.length} of ${delays.length} starts within ${BOUND_MS} ms`);
  if (ASSERT_MS !== undefined) {
    const over = delays.filter((d) => d > ASSERT_MS);
    assert.deepEqual(over, [], `${over.length} of ${delays.length} above ${ASSERT_MS} ms`);
  }
  for (const { page } of stay) {
    await page.evaluate(() => harness.leave());
    await assertNoProblems(page);
  }
});
