// Joins and leaves with end-to-end encryption: alice and bob stay in a room
// while carol joins, publishes her camera and leaves, 20 times. Each time
// both remaining members render carol's video within 1 s of her join (from
// just before her connect() to the first frame their <video> renders), and
// a new epoch follows her join and her leave.
//
// The 1 s bound is the test's purpose, so it is asserted; every other wait
// is bounded by counts and deadlines that only turn a hang into a failure.
import assert from "node:assert/strict";
import { test } from "node:test";
import { assertNoProblems, until, useFixture } from "./harness/fixture.mjs";
import { mintToken } from "./harness/token.mjs";

const ROOM = "join-leave";
const RUNS = 20;
const BOUND_MS = 1000;

const f = useFixture();

async function member(identity) {
  const page = await f.page();
  const token = mintToken({ room: ROOM, identity });
  const joined = await page.evaluate(([u, t]) => harness.join(u, t), [f.sfu.wsUrl, token]);
  await page.evaluate(() => harness.publishFakeMedia());
  return { page, identity, ...joined };
}

const epochOf = async (p) => (await p.page.evaluate(() => harness.e2ee())).epoch;

test(`a newcomer's video starts within ${BOUND_MS} ms at everyone, ${RUNS} joins and leaves`, { timeout: 300_000 }, async () => {
  const stay = [await member("alice"), await member("bob")];
  await until("alice and bob in one group", () => stay[0].page.evaluate(() => harness.e2ee()), (s) => s.roster.length === 2);
  await until("bob in the group", () => stay[1].page.evaluate(() => harness.e2ee()), (s) => s.roster.length === 2);

  const delays = [];
  for (let run = 0; run < RUNS; run++) {
    const before = await Promise.all(stay.map(epochOf));
    const page = await f.page();
    const token = mintToken({ room: ROOM, identity: `carol-${run}` });
    const startedAt = Date.now();
    const carol = await page.evaluate(([u, t]) => harness.join(u, t), [f.sfu.wsUrl, token]);
    await page.evaluate(() => harness.publishFakeMedia());
    const seen = await Promise.all(
      stay.map((p) =>
        until(`run ${run}: ${p.identity} renders carol`, () => p.page.evaluate((pid) => harness.firstVideoAt(pid), carol.participantId), (t) => t !== undefined, 20_000),
      ),
    );
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
  const late = delays.filter((d) => d > BOUND_MS);
  assert.deepEqual(late, [], `${late.length} of ${delays.length} above ${BOUND_MS} ms`);
  for (const { page } of stay) {
    await page.evaluate(() => harness.leave());
    await assertNoProblems(page);
  }
});
